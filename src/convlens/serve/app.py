"""The explorer's FastAPI app, made by :func:`create_app`: the page and the API over the library.

Routes, by module (each a thin layer over :mod:`convlens` functions):

* :mod:`.routes_page`: ``GET /api/meta`` (presets, limits, defaults, colour maps, samples, the
  model if any); ``POST /api/image?name=&mode=&max_side=`` (the raw bytes of an upload, not
  multipart, so the size limit holds while reading; the answer says the working size the page
  starts it at, :mod:`.working`); ``GET /api/input`` (the loaded image,
  downsampled for display);
* :mod:`.routes_stages`: ``POST /api/stages`` (every stage of every kernel, quantized to uint8,
  see :mod:`.wire`, and with ``input`` the image and its sizes: a new photo's first drawing);
  ``POST /api/explain`` (one conv, activated or pooled pixel, see :mod:`.hover`);
  ``POST /api/download/{npz,figures,overview}`` (``stages.npz``, the run figures as a zip, the
  overview PNG, made by the same functions as ``convlens run``);
* :mod:`.routes_model`: ``/api/model/...`` (predictions, layers, feature maps, filters,
  Grad-CAM, see :mod:`.model_panel`).

What the server keeps between requests (caches, latest edit wins) is in :mod:`.session`.
Bad input (a corrupt upload, a bad kernel, settings with no output) is answered ``400`` with
``{"error": "<one line>"}``; the page shows the line and the server keeps serving.
Every request passes :class:`.guard.RequestGuard` first: the Host header, and on every
state-changing request the Origin/Referer, the page's token (embedded in the HTML of ``/``) and
the body size (:data:`.limits.MAX_JSON_BYTES` for JSON, the upload limits for uploads).
"""

from __future__ import annotations

import contextlib
import mimetypes
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ..config import LayerConfig
from ..devices import resolve_device
from ..errors import ConvlensError
from ..layers import run_layer
from ..models import OpenedModel
from ..version import __version__
from .guard import TOKEN_META, BodyLimit, RequestGuard, new_token
from .limits import MAX_JSON_BYTES, MAX_MODEL_BYTES, MAX_PIXELS, MAX_UPLOAD_BYTES
from .model_panel import ModelPanel
from .routes_model import model_routes
from .routes_page import page_routes
from .routes_stages import stage_routes
from .session import ImageStore, Session

STATIC_DIR = Path(__file__).resolve().parent / "static"
TOKEN_PLACEHOLDER = "{{convlens-token}}"
"""Where ``static/index.html`` takes the token (its ``<meta name="convlens-token">``)."""


def create_app(
    model: str | Path | OpenedModel | None = None,
    *,
    device: str = "cpu",
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_PIXELS,
    allowed_hosts: list[str] | None = None,
    token: str | None = None,
    trust_code: bool = False,
) -> FastAPI:
    """The explorer's FastAPI app: the page at ``/`` and the JSON/binary API under ``/api``.

    ``model`` is shown in the model panel: a model :func:`convlens.models.open_model`
    opened already, or a file it opens.
    ``device`` runs the stages (``cpu`` keeps the page's latency steady; ``auto`` takes a GPU).
    ``allowed_hosts`` limits the ``Host`` header (e.g. ``["127.0.0.1", "localhost"]`` for a
    loopback server, which keeps other web sites from reaching it by DNS rebinding); None allows
    any. ``token`` is the secret every state-changing request must send in the
    ``X-Convlens-Token`` header (default: a new random one, ``app.state.token``); the page gets
    it in its HTML. ``trust_code``: whether models that run code when loaded (pickles,
    TorchScript, ``.pt2`` files with pickled parts) may be opened from the page.
    """
    target = resolve_device(device)
    token = token or new_token()
    session = Session(target, ImageStore(max_pixels),
                      ModelPanel(model, target, trust_code=trust_code),
                      max_upload_bytes=max_upload_bytes)
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    if TOKEN_PLACEHOLDER not in page:
        raise RuntimeError(f"static/index.html lacks the {TOKEN_META} meta tag")
    page = page.replace(TOKEN_PLACEHOLDER, token)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # load the compiled conv kernel now, not on the page's first request
        warm = threading.Thread(target=_warm_up, args=(target,), daemon=True)
        warm.start()
        yield
        session.close()

    # no /docs page: FastAPI's loads its scripts from a CDN, and the explorer makes no
    # request beyond this server; the schema stays at /api/openapi.json
    app = FastAPI(title="convlens explorer", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.images = session.images
    app.state.gate = session.gate
    app.state.models = session.models
    app.state.token = token
    app.add_middleware(
        RequestGuard, token=token, allowed_hosts=allowed_hosts,
        default_limit=BodyLimit(MAX_JSON_BYTES),
        body_limits={"/api/image": BodyLimit(max_upload_bytes, "an image upload"),
                     "/api/model/upload": BodyLimit(MAX_MODEL_BYTES, "a model upload")})

    @app.exception_handler(ConvlensError)
    async def _user_error(_request: Request, exc: ConvlensError) -> JSONResponse:
        return JSONResponse({"error": exc.worded("page")}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(exc)}, status_code=400)

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        # 404, 405, 413 and FastAPI's own refusals, in the same one-line shape; a body that
        # does not parse (JSON nested too deep, an integer too long) says why
        message = str(exc.detail)
        cause = exc.__cause__
        if exc.status_code == 400 and cause is not None:
            why = " ".join(str(cause).split())[:200] or type(cause).__name__
            message = f"bad request: the body cannot be read ({why})"
        return JSONResponse({"error": message}, status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(Exception)
    async def _bug(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error ({type(exc).__name__}: "
                                      f"{' '.join(str(exc).split())}); "
                                      "the server keeps running"}, status_code=500)

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    # the page's script is ES modules, which browsers run only when served as JavaScript;
    # some systems' MIME tables (the Windows registry) say text/plain for .js
    mimetypes.add_type("text/javascript", ".js")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    app.include_router(page_routes(session))
    app.include_router(stage_routes(session))
    app.include_router(model_routes(session))
    return app


def _warm_up(device: torch.device) -> None:
    # A server lives long enough for the fused CPU kernel to pay for loading (0.3 s from numba's
    # disk cache, 5-10 s the first time): every later edit then takes it, some 10x faster than
    # the torch path for one kernel. A failed warm-up only means slower requests, which report
    # any error themselves.
    backend = "fused" if device.type == "cpu" else "auto"
    with contextlib.suppress(Exception):
        run_layer(torch.rand(1, 1, 16, 16), torch.ones(1, 1, 3, 3), LayerConfig(), device,
                  backend=backend)


def _validation_message(exc: RequestValidationError) -> str:
    """Pydantic's errors as one line: where in the request, and what was wrong."""
    parts = []
    for error in exc.errors()[:3]:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
        where = ".".join(location)
        if len(location) >= 2 and location[0] == "kernels" and location[1].isdigit():
            where = f"kernel {int(location[1]) + 1}" + (
                f" {'.'.join(location[2:])}" if location[2:] else "")
        message = error.get("msg", "is invalid")
        parts.append(f"{where}: {message}" if where else message)
    return "bad request: " + "; ".join(parts)


__all__ = ["STATIC_DIR", "create_app"]
