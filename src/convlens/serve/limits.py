"""What the explorer's server accepts: sizes, counts and working sizes, in one place.

The page reads these through ``GET /api/meta``, so its controls never offer a value the server
refuses; the request bodies (:mod:`.schemas`) and the stores check them again. Limits shared
with the CLI and the library (the kernel side, the page's counts) are
:mod:`convlens.limits`'s constants, re-exported here under the names the server uses.
"""

from __future__ import annotations

from ..defaults import DEFAULT_MAX_SIDE, WORKING_SIDES
from ..errors import ImageError
from ..limits import MAX_KERNEL_SIDE as MAX_KERNEL_SIDE  # the library's: one limit everywhere
from ..limits import PAGE_MAX_DILATION, PAGE_MAX_KERNELS, PAGE_MAX_LAYER_NUMBER

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
DEFAULT_WORKING_SIDE = DEFAULT_MAX_SIDE
"""The working size the page starts at (:data:`convlens.defaults.DEFAULT_MAX_SIDE`)."""
DISPLAY_SIDES = (32, 1024)
"""Range of the longest side, in pixels, of the maps sent for drawing."""
MAX_LAYER_NUMBER = PAGE_MAX_LAYER_NUMBER
"""Upper bound for stride, padding, pool size and pool stride on the page."""
MAX_DILATION = PAGE_MAX_DILATION


def check_working_side(max_side: int) -> None:
    """Refuse a working size the page does not offer (each one is a cached copy of the image)."""
    if max_side not in WORKING_SIDES:
        raise ImageError(f"working size must be one of {', '.join(map(str, WORKING_SIDES))} "
                         f"px; got {max_side}")


def too_large(size: int, limit: int, what: str = "image") -> str:
    """The message for an upload of ``size`` bytes over ``limit`` bytes."""
    return (f"the upload is {size / 2**20:.1f} MiB, over the {limit / 2**20:.0f} MiB limit; "
            f"use a smaller {what}")
