"""The size the page computes a photo at, and the words that say so.

The page computes at the photo's own size by default, as ``convlens run`` and ``convlens
explain`` do (:data:`convlens.defaults.DEFAULT_MAX_SIDE`); only a photo over the page's working
budget (:data:`.limits.PAGE_BUDGET_BYTES`) starts shrunk, to :func:`.limits.fit_side`. Every
answer that draws an image carries :func:`image_sizes`: both sizes and, when they differ or the
budget is passed, why, in words the page shows as they are.
"""

from __future__ import annotations

from pathlib import Path

from .limits import PAGE_BUDGET_BYTES, STAGE_BYTES_PER_PIXEL, budget_text, fit_side
from .reproduce import original_size


def image_sizes(path: Path, shape: tuple[int, ...], max_side: int | None) -> dict:
    """What the page shows of an image file's sizes once loaded at ``max_side`` (``shape``
    ``(C, H, W)``): the file's ``original`` size and the ``working`` size, both ``[width,
    height]`` in pixels, whether it was ``shrunk``, the working size the page starts it at
    (``fit_side``, None: full size), and a ``note`` saying why the sizes differ or that the
    budget is passed (None when there is nothing to say)."""
    width, height = original_size(path)
    working = [int(shape[-1]), int(shape[-2])]
    shrunk = [width, height] != working
    fit = fit_side(width, height)
    return {"original": [width, height], "working": working, "shrunk": shrunk,
            "fit_side": fit, "note": size_note(shrunk, max_side, fit, working)}


def size_note(shrunk: bool, max_side: int | None, fit: int | None, working: list[int]
              ) -> str | None:
    """Why the working size is what it is, in the page's words."""
    if shrunk and max_side == fit:
        return (f"shrunk to fit the page's working budget of {budget_text()}; pick a working "
                "size to change it")
    if shrunk:
        return f"shrunk to the working size picked, {max_side} px on the longer side"
    if working[0] * working[1] * STAGE_BYTES_PER_PIXEL > PAGE_BUDGET_BYTES:
        return (f"over the page's working budget of {budget_text()}: edits take longer; pick "
                "a smaller working size to speed them up")
    return None
