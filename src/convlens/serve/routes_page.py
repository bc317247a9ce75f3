"""Routes the page starts from: ``GET /api/meta`` (presets, limits, defaults, colour tables),
``POST /api/image`` (an upload) and ``GET /api/input`` (the loaded image, for drawing; the page
itself gets it with its stages, see :mod:`.stages`)."""

from __future__ import annotations

from pathlib import Path

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..config import Activation, LayerConfig, PaddingMode, PoolType
from ..defaults import DEFAULT_MAX_SIDE
from ..errors import ImageError
from ..images import SAMPLES, ColorMode
from ..inspect.fields import DENSE_TYPES
from ..inspect.names import CONV_TYPES
from ..kernels import TUTORIAL_KERNELS, Kernel, common_denominator, get_kernel, list_kernels
from ..numbers import format_number
from ..plot.stages import SIGNED_CMAP, UNSIGNED_CMAP
from ..version import __version__
from .limits import (
    DISPLAY_SIDES,
    MAX_DILATION,
    MAX_JSON_BYTES,
    MAX_KERNEL_SIDE,
    MAX_KERNELS,
    MAX_LAYER_NUMBER,
    MAX_MODEL_BYTES,
    PAGE_BUDGET_BYTES,
    WORKING_SIDES,
    budget_text,
    fit_side,
)
from .reproduce import original_size
from .session import Session
from .wire import colour_table, input_pixels, pack
from .working import image_sizes

HEAT_CMAP = "jet"
"""Colour map of the Grad-CAM overlay (the one Grad-CAM figures usually use)."""
PADDING_CHOICES = (0, 1, 2, 3, 4, 5, 6, "same")
"""Paddings (cells per side) the page's menu offers."""
POOL_CHOICES = (2, 3, 4, 5, 6, 8)
"""Pooling windows the page's menu offers (beside none)."""
POOL_STRIDE_CHOICES = (1, 2, 3, 4, 5, 6, 8)
"""Pooling strides the page's menu offers (beside the window's own)."""
NO_MAP_TYPES = (*DENSE_TYPES, "Flatten", "Dropout", "Softmax", "LogSoftmax")
"""Layer types whose output the model panel does not offer as feature maps."""


def page_routes(session: Session) -> APIRouter:
    """The routes of :mod:`.routes_page` over ``session``."""
    router = APIRouter()
    images = session.images

    @router.get("/api/meta")
    async def meta() -> dict:
        """Presets, limits, defaults and colour tables: everything the page starts from."""
        presets = []
        for name in list_kernels():
            kernel = get_kernel(name)
            if kernel.channels == 1 and max(kernel.size) <= MAX_KERNEL_SIDE:
                presets.append({"name": name, "description": kernel.description,
                                "cells": preset_cells(kernel),
                                "weights": kernel.as_2d().tolist()})
        defaults = LayerConfig()
        return {
            "version": __version__,
            "samples": [{"id": f"sample-{name}", "name": name,
                         "fit_side": fit_side(*original_size(images.get(f"sample-{name}").path))}
                        for name in SAMPLES],
            "presets": presets,
            "default_kernels": list(TUTORIAL_KERNELS),
            "layer": {**defaults.to_dict(), "pool": defaults.pool},
            "choices": {"activation": [a.value for a in Activation],
                        "padding_mode": [m.value for m in PaddingMode],
                        "pool_type": [p.value for p in PoolType],
                        "working_sides": [None, *sorted(WORKING_SIDES, reverse=True)],
                        "mode": [m.value for m in ColorMode],
                        "padding": list(PADDING_CHOICES), "pool": list(POOL_CHOICES),
                        "pool_stride": list(POOL_STRIDE_CHOICES)},
            "layer_kinds": {"conv": list(CONV_TYPES), "without_maps": list(NO_MAP_TYPES)},
            "limits": {"kernels": MAX_KERNELS, "kernel_side": MAX_KERNEL_SIDE,
                       "upload_bytes": session.max_upload_bytes, "pixels": images.max_pixels,
                       "json_bytes": MAX_JSON_BYTES, "model_bytes": MAX_MODEL_BYTES,
                       "layer_number": MAX_LAYER_NUMBER, "dilation": MAX_DILATION,
                       "display": list(DISPLAY_SIDES),
                       "working_budget": {"bytes": PAGE_BUDGET_BYTES, "text": budget_text()}},
            "default_working_side": DEFAULT_MAX_SIDE,
            "colours": {"signed": colour_table(SIGNED_CMAP),
                        "unsigned": colour_table(UNSIGNED_CMAP), "heat": colour_table(HEAT_CMAP)},
            "model": session.models.info(),
        }

    @router.post("/api/image")
    async def upload(request: Request, name: str = "upload", mode: str = "gray",
                     max_side: int | None = None) -> dict:
        """Take an image file as the raw request body; answer its id and its sizes
        (:func:`.working.image_sizes`) loaded at ``max_side`` (default: the working size the
        page starts it at, its ``fit_side``: full size unless over the working budget). The
        body is limited to ``session.max_upload_bytes`` while it is read (:mod:`.guard`)."""
        data = await request.body()
        if not data:
            raise ImageError("the upload is empty; choose an image file")

        def work() -> dict:  # hashing, writing and decoding off the event loop, in one go
            stored, new = images.add_upload(data, name)
            side = _fit_of(stored.path) if max_side is None else max_side
            try:
                image = images.load(stored.id, mode, side)
            except ImageError as exc:
                if new:  # a file that does not load; an earlier copy of it stays usable
                    images.forget(stored)
                message = str(exc).replace(str(stored.path), repr(stored.name))
                raise ImageError(message.replace(stored.path.name, stored.name)) from None
            return {**stored.info(image), "max_side": side,
                    **image_sizes(stored.path, tuple(image.shape), side)}

        return await to_thread.run_sync(work)

    @router.get("/api/input")
    async def input_image(image: str, mode: str = "gray",
                          max_side: int | None = DEFAULT_MAX_SIDE, display: int = 512
                          ) -> Response:
        """The loaded image as uint8 ``(C, h, w)``, downsampled to ``display`` px for drawing."""
        display = min(max(display, DISPLAY_SIDES[0]), DISPLAY_SIDES[1])
        stored = images.get(image)
        tensor = await to_thread.run_sync(images.load, image, mode, max_side)
        shown, factor = input_pixels(tensor, display)
        header = {**stored.info(tensor), **image_sizes(stored.path, tuple(tensor.shape),
                                                       max_side), "factor": factor}
        return Response(pack(header, {"input": shown}), media_type="application/octet-stream")

    return router


def _fit_of(path: Path) -> int | None:
    """The page's working size for the image file at ``path`` (:func:`.limits.fit_side`); None
    for a file whose header does not read, which :func:`convlens.images.load_image` then
    refuses with its own words."""
    try:
        return fit_side(*original_size(path))
    except Exception:
        return None


def preset_cells(kernel: Kernel) -> list[list[str]]:
    """A preset's weights as the text of its cells: whole numbers, or ``n/d`` fractions when the
    weights share a denominator (``1/16`` for a Gaussian), so every cell is exact."""
    weights = kernel.as_2d()
    denominator = common_denominator(weights)
    if denominator == 1:
        return [[format_number(float(v), 6) for v in row] for row in weights]
    return [[_fraction(float(v), denominator) for v in row] for row in weights]


def _fraction(value: float, denominator: int) -> str:
    top = round(value * denominator)
    return "0" if top == 0 else f"{top}/{denominator}"
