"""The binary messages the server sends the page: a JSON header and raw arrays in one body.

Arrays travel as bytes, not re-encoded PNGs: the page draws a uint8 map straight into a canvas
through a 256-entry colour table (:func:`colour_table`), which is faster than decoding images.
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch
from matplotlib import colormaps

from ..images import downsample_for_display
from ..plot.stages import display_norm


def pack(header: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """One binary message: ``uint32`` header length (little endian), the JSON header, then the
    arrays' bytes, each 8-byte aligned. ``header["arrays"]`` lists name, dtype, shape and offset
    (from the start of the data part, which begins at the first 8-byte boundary after the
    header)."""
    entries, chunks, offset = [], [], 0
    for name, array in arrays.items():
        data = np.ascontiguousarray(array)
        entries.append({"name": name, "dtype": str(data.dtype), "shape": list(data.shape),
                        "offset": offset})
        raw = data.tobytes()
        chunks.append(raw + b"\0" * (-len(raw) % 8))
        offset += len(chunks[-1])
    text = json.dumps({**header, "arrays": entries}, allow_nan=False).encode()
    start = 4 + len(text)
    return b"".join([len(text).to_bytes(4, "little"), text, b"\0" * (-start % 8), *chunks])


def unpack(message: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """Inverse of :func:`pack` (tests and Python clients)."""
    length = int.from_bytes(message[:4], "little")
    header = json.loads(message[4:4 + length])
    base = 4 + length + (-(4 + length) % 8)
    arrays = {}
    for entry in header["arrays"]:
        count = math.prod(entry["shape"])
        start = base + entry["offset"]
        arrays[entry["name"]] = np.frombuffer(message, entry["dtype"], count, start).reshape(
            entry["shape"])
    return header, arrays


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Values already scaled to 0..255, rounded and clipped to ``uint8`` (same shape)."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def input_pixels(image: torch.Tensor, display_side: int) -> tuple[np.ndarray, int]:
    """The image ``(C, H, W)`` in [0, 1] as uint8 ``(C, h, w)`` for drawing, area-averaged by a
    whole factor to at most ``display_side`` px a side; and that factor."""
    shown, factor = downsample_for_display(image.numpy(), display_side)
    return to_uint8(shown * 255), factor


def quantize_map(data: torch.Tensor, display_side: int, signed: bool | None = None
                 ) -> tuple[np.ndarray, dict]:
    """One map ``(H, W)`` -> uint8 ``(h, w)`` for drawing, and its numbers.

    The map is area-averaged to at most ``display_side`` pixels a side and scaled with the
    figures' colour scale (:func:`convlens.plot.stages.display_norm`): signed maps put 0 at 128
    and +-limit at 255/0 (diverging colours), others map [low, limit] onto 0..255 (gray). The
    range reported is the full-size map's true minimum and maximum.
    """
    full = data.detach().to("cpu", torch.float32).numpy()
    low, high = float(full.min()), float(full.max())
    if signed is None:
        signed = low < 0
    shown, factor = downsample_for_display(full[None], display_side)
    drawn, vmin, vmax = scale_for_display(shown[0], signed)
    stats = {"shape": list(full.shape), "min": low, "max": high, "vmin": vmin, "vmax": vmax,
             "signed": bool(signed), "cmap": "signed" if signed else "unsigned",
             "factor": factor}
    return drawn, stats


def scale_for_display(shown: np.ndarray, signed: bool) -> tuple[np.ndarray, float, float]:
    """Maps already at display size (any shape) -> uint8 on one colour scale, the figures'
    (:func:`convlens.plot.stages.display_norm`), and that scale's ``(vmin, vmax)``: signed maps
    put 0 at 128 and +-limit at 255/0, others map [low, limit] onto 0..255."""
    norm, _ = display_norm(shown, signed)
    assert norm.vmin is not None and norm.vmax is not None  # display_norm sets both
    vmin, vmax = float(norm.vmin), float(norm.vmax)
    if signed:
        scaled = shown * (127.5 / vmax) + 127.5
    else:
        scaled = (shown - vmin) * (255.0 / ((vmax - vmin) or 1.0))
    return to_uint8(scaled), vmin, vmax


def colour_table(name: str) -> list[list[int]]:
    """256 RGB entries of a matplotlib colour map, for drawing on the page's canvases."""
    values = colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3]
    return np.rint(values * 255).astype(int).tolist()
