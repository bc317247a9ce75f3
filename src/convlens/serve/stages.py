"""The stages the page draws: every kernel's conv, activated and pooled maps, ready to send.

:func:`stage_message` runs :func:`convlens.layers.run_layer` for the kernels whose payload is
not cached yet, a few kernels at a time so one computation holds at most the page's working
budget (:data:`.limits.PAGE_BUDGET_BYTES`), and quantizes each map for drawing
(:func:`.wire.quantize_map`); the full-size float maps are never kept. For a new image the
message also carries the input picture and its sizes, so the page's first drawing of a photo
takes one request. :func:`full_stages` makes the same :class:`~convlens.layers.Stages`
``convlens run`` makes, for the downloads.
"""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np

from ..config import LayerConfig
from ..kernels import kernel_bank
from ..kernels import unique_names as unique_kernel_names
from ..layers import Stages, compute_stages, run_layer
from ..sizes import check_fits, config_chain
from .limits import KERNEL_STAGE_BYTES, PAGE_BUDGET_BYTES
from .schemas import StagesIn, StateIn
from .session import Session
from .wire import input_pixels, quantize_map
from .working import image_sizes


def stage_message(session: Session, body: StagesIn) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and arrays of ``POST /api/stages``: per kernel its maps as uint8 and their
    numbers (:func:`.wire.quantize_map`), plus the loaded image and its sizes
    (:func:`.working.image_sizes`), the size chain and timings. Maps the page already shows
    (``body.have``) are named in the header but not sent; with ``body.input`` the input image
    is sent too (``input``, uint8 ``(C, h, w)``, drawn at 1/``input_factor``)."""
    started = time.perf_counter()
    image, kernels, config = session.inputs(body)
    bank = kernel_bank(kernels, image.shape[0])
    check_fits(config, image.shape[1], image.shape[2], tuple(bank.shape[2:]))
    chain = config_chain(config, (image.shape[1], image.shape[2]), (bank.shape[2], bank.shape[3]))
    base = (body.image, body.mode, body.max_side, _key_of(config), body.display)
    keys = [(*base, tuple(bank.shape[1:]), hashlib.sha1(bank[k].numpy().tobytes()).digest())
            for k in range(len(kernels))]
    found = {k: session.payloads.get(key) for k, key in enumerate(keys)}
    missing = [k for k, item in found.items() if item is None]
    compute_ms = 0.0
    for chunk in _chunks(missing, image.shape[1] * image.shape[2]):
        began = time.perf_counter()
        outputs = run_layer(image[None], bank[chunk].contiguous(), config, session.device)
        compute_ms += (time.perf_counter() - began) * 1000
        for j, k in enumerate(chunk):
            found[k] = _kernel_payload(outputs, j, config, body.display)
            session.payloads.put(keys[k], found[k])
        del outputs
    names = unique_kernel_names(kernels)
    arrays, maps = {}, []
    for k in range(len(kernels)):
        item = found[k]
        key = hashlib.sha1(repr(keys[k]).encode()).hexdigest()[:16]
        shown = k < len(body.have) and body.have[k] == key
        maps.append({"name": names[k], "key": key, "sent": not shown, **item["stats"]})
        if not shown:
            for stage, data in item["arrays"].items():
                arrays[f"{stage}{k}"] = data
    stored = session.images.get(body.image)
    header = {
        "seq": body.seq,
        "image": {**stored.info(image),
                  **image_sizes(stored.path, tuple(image.shape), body.max_side)},
        "kernel_size": list(bank.shape[2:]),
        "chain": chain.to_dict(),
        "pooling": config.pool is not None,
        "maps": maps,
        "timing": {"compute_ms": round(compute_ms, 2), "recomputed": len(missing),
                   "server_ms": round((time.perf_counter() - started) * 1000, 2)},
    }
    if body.input is not None:
        arrays["input"], header["input_factor"] = input_pixels(image, body.input)
    return header, arrays


def _chunks(indices: list[int], pixels: int) -> list[list[int]]:
    """``indices`` of kernels in runs whose stages (:data:`.limits.KERNEL_STAGE_BYTES` a pixel
    each) at ``pixels`` working pixels fit :data:`.limits.PAGE_BUDGET_BYTES` (one at least)."""
    size = max(1, PAGE_BUDGET_BYTES // (KERNEL_STAGE_BYTES * pixels))
    return [indices[i:i + size] for i in range(0, len(indices), size)] if indices else []


def full_stages(session: Session, body: StateIn) -> Stages:
    """Every stage at full size, float32, as ``convlens run`` computes it."""
    image, kernels, config = session.inputs(body)
    return compute_stages(image, kernels, config, session.device)


def _kernel_payload(outputs, index: int, config: LayerConfig, display: int) -> dict:
    """Kernel ``index``'s maps of ``outputs`` quantized for drawing, and their numbers."""
    conv, conv_stats = quantize_map(outputs.conv[0, index], display, signed=True)
    activated, act_stats = quantize_map(outputs.activated[0, index], display)
    arrays = {"conv": conv, "activated": activated}
    stats = {"conv": conv_stats, "activated": act_stats}
    if config.pool is not None:
        arrays["pooled"], stats["pooled"] = quantize_map(outputs.pooled[0, index], display,
                                                         signed=act_stats["signed"])
    return {"arrays": arrays, "stats": stats}


def _key_of(config: LayerConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)
