"""Routes of the model panel: ``GET /api/model`` (the open model and the checkpoints found),
``POST /api/model/open``, ``POST /api/model/upload`` and ``POST /api/model/run``."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import ModelError
from .limits import MAX_MODEL_BYTES, too_large
from .schemas import ModelOpenIn, ModelRunIn
from .session import Session


def model_routes(session: Session) -> APIRouter:
    """The routes of :mod:`.routes_model` over ``session``."""
    router = APIRouter()
    models = session.models

    @router.get("/api/model")
    async def model_info() -> dict:
        """The model now open (or null) and the checkpoints found under the working folder."""
        return {"model": models.info(), "found": await to_thread.run_sync(models.found)}

    @router.post("/api/model/open")
    async def model_open(body: ModelOpenIn) -> dict:
        """Open one of the checkpoints :meth:`~.ModelPanel.found` lists (never an arbitrary
        path)."""
        return await to_thread.run_sync(models.open_found, body.path)

    @router.post("/api/model/upload")
    async def model_upload(request: Request) -> dict:
        """Open a convlens checkpoint sent as two files (``.safetensors`` and ``.json``),
        multipart form fields ``weights`` and ``info``."""
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_MODEL_BYTES:
            raise ModelError(too_large(int(length), MAX_MODEL_BYTES, "model"))
        form = await request.form(max_files=2, max_fields=4)
        weights, info = form.get("weights"), form.get("info")
        if not hasattr(weights, "read") or not hasattr(info, "read"):
            raise ModelError("send the checkpoint as two files: model.safetensors and its "
                             "model.json (as `convlens train` writes them)")
        data = await weights.read()  # type: ignore[union-attr]
        description = await info.read()  # type: ignore[union-attr]
        return await to_thread.run_sync(models.open_upload, data, description,
                                        str(getattr(weights, "filename", "") or "upload"))

    @router.post("/api/model/run")
    async def model_run(body: ModelRunIn) -> Response:
        """Predictions, one layer's feature maps and filters, and Grad-CAM for the image."""
        def work() -> bytes:
            image = session.images.load(body.image, "rgb", body.max_side)
            return models.run(image, body)

        return Response(await to_thread.run_sync(work), media_type="application/octet-stream")

    return router
