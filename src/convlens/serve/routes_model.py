"""Routes of the model panel: ``GET /api/model`` (the open model and the checkpoints found),
``POST /api/model/open``, ``POST /api/model/upload`` and ``POST /api/model/run``; and of the
network view (:mod:`.network`): ``GET/POST /api/network`` (the layers as columns of channel
thumbnails) and ``POST /api/network/explain`` (one cell worked out)."""

from __future__ import annotations

from pathlib import Path

from anyio import to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from ..errors import ModelError
from ..models import INFO_FILE, WEIGHTS_FILE
from .network import NetworkExplainIn, NetworkIn, NetworkView
from .schemas import ModelOpenIn, ModelRunIn
from .session import Session

UPLOAD_SUFFIXES = (".pt", ".pth", ".pt2")
"""Single model files the page takes: TorchScript, or a torch.export program."""


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
        """Open an uploaded model: a convlens checkpoint as two files (multipart fields
        ``weights``, the ``.safetensors``, and ``info``, its ``model.json``), or one
        TorchScript ``.pt`` or torch.export ``.pt2`` file (field ``model``), refused unless the
        server trusts code (:class:`.ModelPanel`). The body is limited to
        :data:`.limits.MAX_MODEL_BYTES` while it is read (:mod:`.guard`)."""
        form = await request.form(max_files=2, max_fields=4)
        weights, info, single = form.get("weights"), form.get("info"), form.get("model")
        if isinstance(single, UploadFile):
            name = str(single.filename or "model.pt")
            suffix = Path(name).suffix.lower()
            if suffix not in UPLOAD_SUFFIXES:
                raise ModelError(f"{name}: a single model file must be TorchScript (.pt) or "
                                 "torch.export (.pt2); a checkpoint is two files")
            files = {f"model{suffix}": await single.read()}
        elif isinstance(weights, UploadFile) and isinstance(info, UploadFile):
            name = str(weights.filename or "upload")
            files = {WEIGHTS_FILE: await weights.read(), INFO_FILE: await info.read()}
        else:
            raise ModelError("send a checkpoint as two files, model.safetensors and its "
                             "model.json (as `convlens train` writes them), or one TorchScript "
                             ".pt or torch.export .pt2 file")
        return await to_thread.run_sync(models.open_upload, files, name)

    @router.post("/api/model/run")
    async def model_run(body: ModelRunIn) -> Response:
        """Predictions, one layer's feature maps and filters, and Grad-CAM for the image."""
        def work() -> bytes:
            image = session.images.load(body.image, "rgb", body.max_side)
            return models.run(image, body)

        return Response(await to_thread.run_sync(work), media_type="application/octet-stream")

    network = NetworkView(models)

    def network_message(body: NetworkIn) -> bytes:
        image = session.images.load(body.image, "rgb", body.max_side)
        return network.render(image, (body.image, body.max_side), body.columns, body.top,
                              body.display, body.scale, body.open)

    @router.post("/api/network")
    async def network_columns(body: NetworkIn) -> Response:
        """The open model's layers as columns of channel thumbnails for the image."""
        return Response(await to_thread.run_sync(network_message, body),
                        media_type="application/octet-stream")

    @router.get("/api/network")
    async def network_columns_get(body: NetworkIn = Depends(network_query)) -> Response:
        """As ``POST /api/network``, from the query (``columns`` comma-separated)."""
        return Response(await to_thread.run_sync(network_message, body),
                        media_type="application/octet-stream")

    @router.post("/api/network/explain")
    async def network_explain(body: NetworkExplainIn) -> dict:
        """One cell of the view worked out (``explain_activation(...).to_dict()``), with its
        receptive field in the input and in the layer before."""
        def work() -> dict:
            image = session.images.load(body.image, "rgb", body.max_side)
            return network.explain(image, (body.image, body.max_side), body.layer,
                                   body.channel, body.y, body.x, body.top)

        return await to_thread.run_sync(work)

    return router


def network_query(image: str, max_side: int | None = None, columns: str | None = None,
                  top: int | None = None, display: int | None = None,
                  scale: str | None = None, open: str | None = None) -> NetworkIn:
    """``GET /api/network``'s query as a :class:`.NetworkIn` (checked the same way)."""
    given = {"image": image, "max_side": max_side, "top": top, "display": display,
             "scale": scale,
             "columns": None if columns is None else [c for c in columns.split(",") if c],
             "open": None if open is None else [c for c in open.split(",") if c]}
    return NetworkIn.model_validate({key: value for key, value in given.items()
                                     if value is not None or key == "columns"})
