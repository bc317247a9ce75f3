"""Routes over the conv layer: ``POST /api/stages`` (every stage, for drawing),
``POST /api/explain`` (one hovered pixel) and ``POST /api/download/{npz,figures,overview}``
(the files ``convlens run`` writes)."""

from __future__ import annotations

import io
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from ..defaults import FIGURE_DPI
from ..display import figure_png
from ..kernels import kernel_bank
from ..layers import Stages
from ..plot import plot_overview
from ..runs import check_run_budget, save_stages, write_figures
from .hover import explain_message
from .schemas import ExplainIn, StagesIn, StateIn
from .session import LatestWins, Session
from .stages import full_stages, stage_message
from .wire import pack


def stage_routes(session: Session) -> APIRouter:
    """The routes of :mod:`.routes_stages` over ``session``."""
    router = APIRouter()
    gate = session.gate

    @router.post("/api/stages")
    async def stages(body: StagesIn) -> Response:
        """Every stage of every kernel, quantized for drawing; 409 if a newer request won."""
        started = time.perf_counter()
        result = await gate.run(body.client, body.seq, lambda: stage_message(session, body))
        if result is None:
            return JSONResponse({"superseded": True, "seq": body.seq}, status_code=409)
        header, arrays = result
        header["timing"]["total_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return Response(pack(header, arrays), media_type="application/octet-stream",
                        headers={"Server-Timing": f"compute;dur={header['timing']['compute_ms']}"})

    @router.post("/api/explain")
    async def explain(body: ExplainIn) -> dict:
        """One pixel worked out by :mod:`convlens.explain`, with its numbers as text."""
        return await to_thread.run_sync(explain_message, session, body)

    @router.post("/api/download/npz")
    async def download_npz(body: StateIn) -> Response:
        """``stages.npz``: the float32 arrays ``convlens run`` writes, full size."""
        def work() -> bytes:
            buffer = io.BytesIO()
            stages = _bounded_stages(session, body, figures=False)
            save_stages(stages, buffer)  # type: ignore[arg-type]  # np.savez takes a file
            return buffer.getvalue()

        data = await _download(gate, work)
        return _attachment(data, "stages.npz", "application/octet-stream")

    @router.post("/api/download/figures")
    async def download_figures(body: StateIn) -> Response:
        """A zip of the figures ``convlens run`` writes (filters, conv, activated, pooled,
        overview) and the npz."""
        def work() -> bytes:
            stages = _bounded_stages(session, body, figures=True)
            buffer = io.BytesIO()
            with tempfile.TemporaryDirectory(prefix="convlens-figures-") as folder, \
                    zipfile.ZipFile(buffer, "w") as archive:
                paths = write_figures(stages, Path(folder))
                npz = save_stages(stages, Path(folder) / "stages.npz")  # all arrays: written
                paths.extend([npz] if npz is not None else [])
                for path in paths:
                    archive.write(path, path.name)
            return buffer.getvalue()

        data = await _download(gate, work)
        return _attachment(data, "convlens-figures.zip", "application/zip")

    @router.post("/api/download/overview")
    async def download_overview(body: StateIn) -> Response:
        """The overview figure (input, kernels, every stage) as a PNG, as ``convlens run``
        writes ``overview.png``."""
        def work() -> bytes:
            stages = _bounded_stages(session, body, figures=True, archive=False)
            return figure_png(plot_overview(stages), dpi=FIGURE_DPI)

        data = await _download(gate, work)
        return _attachment(data, "overview.png", "image/png")

    return router


def _bounded_stages(session: Session, body: StateIn, figures: bool, archive: bool = True
                    ) -> Stages:
    """:func:`.stages.full_stages`, refused first (a 400 naming what it needs) when the
    download's estimated memory, the stages and the figures or archive made in memory, is over
    the budget (:func:`convlens.runs.check_run_budget`)."""
    image, kernels, config = session.inputs(body)
    check_run_budget(tuple(image.shape), tuple(kernel_bank(kernels, image.shape[0]).shape),
                     config, figures=figures, archive=archive)
    return full_stages(session, body)


async def _download(gate: LatestWins, work: Callable[[], bytes]) -> bytes:
    """``work()`` queued behind the gate; downloads send no client id, so none is dropped."""
    data = await gate.run("", 0, work)
    assert data is not None
    return data


def _attachment(data: bytes, filename: str, media_type: str) -> Response:
    return Response(data, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
