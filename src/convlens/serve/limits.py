"""What the explorer's server accepts: sizes, counts and working sizes, in one place.

The page reads these through ``GET /api/meta``, so its controls never offer a value the server
refuses; the request bodies (:mod:`.schemas`) and the stores check them again. Limits shared
with the CLI and the library (the kernel side, the page's counts) are
:mod:`convlens.limits`'s constants, re-exported here under the names the server uses.
"""

from __future__ import annotations

from ..defaults import WORKING_SIDES
from ..errors import ImageError
from ..limits import MAX_KERNEL_SIDE as MAX_KERNEL_SIDE  # the library's: one limit everywhere
from ..limits import PAGE_MAX_DILATION, PAGE_MAX_KERNELS, PAGE_MAX_LAYER_NUMBER
from ..numbers import format_bytes

MAX_KERNELS = PAGE_MAX_KERNELS
"""Most kernels the page may send at once (:data:`convlens.limits.PAGE_MAX_KERNELS`)."""
MAX_UPLOAD_BYTES = 32 * 1024 * 1024
"""Largest image upload accepted, in bytes; the body is read in chunks and refused past this."""
MAX_JSON_BYTES = 2 * 1024 * 1024
"""Largest JSON request body, in bytes, refused (413) from its Content-Length or while read.
The largest legitimate one, 16 RGB kernels of 31x31 cells with every number written out in
full (25 characters), is 1.15 MB."""
MAX_MODEL_BYTES = 256 * 1024 * 1024
"""Largest checkpoint upload, in bytes."""
MAX_PIXELS = 25_000_000
"""Largest image accepted, in pixels (decompression-bomb guard; 6000x4000 is 24 M)."""
DISPLAY_SIDES = (32, 1024)
"""Range of the longest side, in pixels, of the maps sent for drawing."""
MAX_LAYER_NUMBER = PAGE_MAX_LAYER_NUMBER
"""Upper bound for stride, padding, pool size and pool stride on the page."""
MAX_DILATION = PAGE_MAX_DILATION


KERNEL_STAGE_BYTES = 3 * 4
"""Bytes of one kernel's stages per working pixel: its float32 conv, activated and pooled maps
(a pooled map is at most as large as its conv map), held while they are quantized for
drawing."""
STAGE_BYTES_PER_PIXEL = KERNEL_STAGE_BYTES * MAX_KERNELS
"""Bytes of stages one working pixel costs the page at its most kernels."""
PAGE_BUDGET_BYTES = 2**30
"""The page's working budget: the most bytes of stages (:data:`STAGE_BYTES_PER_PIXEL` per
working pixel) a page's photo may need at the size it is computed at by default. A photo
within it (5.5 Mpx, a 2800x1900 photo) is computed at its own size, as ``convlens run`` and
``convlens explain`` do (:data:`convlens.defaults.DEFAULT_MAX_SIDE`); a larger one (a 12 Mpx
phone photo, 4000x3000) is shrunk to the largest of :data:`WORKING_SIDES` that fits (2048 px),
and the page says so. The reason is the page's pace and the server's memory: every kernel edit
recomputes a kernel's maps at the working size, and a layer change all of them, on a laptop's
CPU, and 16 kernels' stages of a 24 Mpx photo would take 4.6 GB. Any working size, full size
included, can still be picked; the stages are then computed a few kernels at a time, so one
computation holds at most this budget."""


def working_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """``(width, height)`` of a ``width`` x ``height`` photo shrunk to ``max_side`` px on its
    longer side (``None``: its own size), rounded as :func:`convlens.images.resize_max_side`
    rounds."""
    longer = max(width, height)
    if max_side is None or longer <= max_side:
        return width, height
    scale = max_side / longer
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_side(width: int, height: int) -> int | None:
    """The working size the page computes a ``width`` x ``height`` photo at unless another is
    picked: ``None`` (its own size) within :data:`PAGE_BUDGET_BYTES`, else the largest of
    :data:`WORKING_SIDES` whose stages fit (the smallest if none does)."""
    def fits(side: int | None) -> bool:
        w, h = working_size(width, height, side)
        return w * h * STAGE_BYTES_PER_PIXEL <= PAGE_BUDGET_BYTES

    if fits(None):
        return None
    return next((side for side in sorted(WORKING_SIDES, reverse=True) if fits(side)),
                min(WORKING_SIDES))


def budget_text() -> str:
    """The working budget in words: ``"1 GiB"``."""
    return format_bytes(PAGE_BUDGET_BYTES)


def check_working_side(max_side: int | None) -> None:
    """Refuse a working size the page does not offer (each one is a cached copy of the image);
    ``None`` (full size) is offered."""
    if max_side is not None and max_side not in WORKING_SIDES:
        raise ImageError(f"working size must be full size (none) or one of "
                         f"{', '.join(map(str, WORKING_SIDES))} px; got {max_side}")


def too_large(size: int, limit: int, what: str = "image") -> str:
    """The message for an upload of ``size`` bytes over ``limit`` bytes."""
    return (f"the upload is {size / 2**20:.1f} MiB, over the {limit / 2**20:.0f} MiB limit; "
            f"use a smaller {what}")
