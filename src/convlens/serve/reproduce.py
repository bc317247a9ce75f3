"""What the page offers to redo on the command line: an image file's original size and the
``convlens explain ...`` command that prints the hovered pixel's numbers.

The command is built here, not on the page, so its flag names have one home in Python. The
layer flags are the CLI's rule, ``--`` and the :class:`~convlens.config.LayerConfig` field with
``-`` for ``_`` (``pool_type`` -> ``--pool-type``); a setting equal to ``LayerConfig()``'s is
left out, since the CLI's defaults are the library's. ``tests/test_serve_api.py`` runs the
command through the CLI and compares its numbers with the page's.
"""

from __future__ import annotations

import functools
import shlex
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import LayerConfig
from ..images import DEFAULT_SAMPLE, SAMPLES
from ..kernels import Kernel, get_kernel

COMMAND = ("convlens", "explain")
LAYER_FLAGS = ("stride", "padding", "padding_mode", "dilation", "activation", "pool",
               "pool_type", "pool_stride")
"""The :class:`~convlens.config.LayerConfig` fields ``convlens explain`` takes as flags."""
_ROTATED = (5, 6, 7, 8)
"""EXIF orientations that turn the picture a quarter turn (width and height swap)."""


def flag(field: str) -> str:
    """The CLI flag of a setting: ``pool_type`` -> ``--pool-type``."""
    return "--" + field.replace("_", "-")


@functools.lru_cache(maxsize=256)
def original_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` in pixels of the image file at ``path`` as it is shown, its EXIF
    orientation applied (read from the header; the pixels are not decoded)."""
    with Image.open(path) as image:
        width, height = image.size
        orientation = image.getexif().get(0x0112, 1)
    return (height, width) if orientation in _ROTATED else (width, height)


def image_argument(image_id: str, name: str, path: Path) -> str | None:
    """How the command names the image: nothing for the default sample (``convlens explain``
    opens it when no image is given), a bundled sample's path, or an upload's file name."""
    sample = image_id.removeprefix("sample-")
    if image_id.startswith("sample-") and sample in SAMPLES:
        return None if sample == DEFAULT_SAMPLE else str(path)
    return f"./{name}" if name.startswith("-") else name  # -x.png is a file, not a flag


def explain_command(image: str | None, *, mode: str, max_side: int | None, kernel: Kernel,
                    config: LayerConfig, at: tuple[int, int], pooled: bool = False,
                    flip: bool = False) -> str:
    """The shell command that explains conv pixel (or, with ``pooled``, pooled cell) ``at``
    (row, col) of ``kernel`` on ``image``: ``convlens explain cat.jpg --kernel sobel-h --at
    120,45 --max-side 1024``. ``max_side`` is given only when the image was shrunk."""
    words = [*COMMAND] + ([image] if image is not None else [])
    words += ["--kernel", kernel_spec(kernel)]
    words += ["--pooled-at" if pooled else "--at", f"{at[0]},{at[1]}"]
    if mode != "gray":
        words += ["--mode", mode]
    if max_side is not None:
        words += ["--max-side", str(max_side)]
    given, default = config.to_dict(), LayerConfig().to_dict()
    for field in LAYER_FLAGS:
        if given[field] != default[field]:
            value = given[field]
            words += [flag(field), "none" if value is None else str(value)]
    if flip and not pooled:
        words.append("--flip")
    return " ".join(shlex.quote(word) for word in words)


def kernel_spec(kernel: Kernel) -> str:
    """``--kernel``'s text for ``kernel``: its built-in name when the weights are the built-in
    ones, else its rows inline (``"1 0 -1; 2 0 -2; 1 0 -1"``, R | G | B grids for an RGB
    kernel), each number written so that it reads back as the same float32."""
    try:
        builtin = get_kernel(kernel.name)
    except Exception:  # not a built-in name: the weights are written out
        builtin = None
    if builtin is not None and np.array_equal(builtin.weights.astype(np.float32),
                                              kernel.weights.astype(np.float32)):
        return kernel.name
    return " | ".join("; ".join(" ".join(_exact(float(v)) for v in row) for row in grid)
                      for grid in kernel.weights)


def _exact(value: float) -> str:
    """``value`` as short text that parses back to the same float32: ``2``, ``-0.5``,
    ``1/3`` (a fraction when a small one is exact and shorter), ``0.12345679``."""
    single = np.float32(value)
    if float(single).is_integer():
        return str(int(single))
    text = np.format_float_positional(single, unique=True, trim="-")
    if len(text) <= 7:
        return text
    for denominator in range(3, 65):
        top = round(float(single) * denominator)
        if np.float32(top / denominator) == single:
            return f"{top}/{denominator}"
    return text
