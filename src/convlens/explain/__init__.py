"""The arithmetic behind one number, worked out by hand and told in words once.

:func:`explain_pixel` works out one pixel of the conv stage the way the tutorial works its
example by hand: which input cells the kernel covers (padding, stride and dilation included, the
padded cells marked), the products cell by cell, their sum, the activation and the pooled cell
it feeds. :func:`explain_pooled` does the same for one cell of the pooled stage. Both read only
the few input pixels they need (no full-image convolution), so a web page can call them on hover.

PyTorch's ``nn.Conv2d`` computes cross-correlation: the kernel is laid on the patch as it is,
not turned round. True convolution turns the kernel 180 degrees first; ``flip=True`` adds that
sum too, the number :func:`scipy.ndimage.convolve` gives.

Every explanation words itself once, as parts (:mod:`.parts`: headings, sentences, grids, the
written sum, notes) that each surface only styles: ``PixelExplanation.parts()``,
``PooledExplanation.parts()`` and :func:`chain_parts` for a chain of sizes (whose arithmetic is
:mod:`convlens.sizes`). The modules:

* :mod:`.parts`: the parts and their JSON;
* :mod:`.patches`: where a kernel lies on the input (taps, padding, patches);
* :mod:`.layer`: what a pixel and a pooled cell share (checks, bias, activation, windows);
* :mod:`.pixel` / :mod:`.pooled`: one conv pixel / one pooled cell, worked out and worded;
* :mod:`.chain`: a chain of sizes, worded.

Coordinates are 0-based ``(row, col)`` array indices, as in ``stages.npz``. "Raw" values are the
normalized values times 255 (images are loaded as ``value / type max``), the 0-255 numbers a
photo editor shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for readers and type checkers; at run time each name loads on first use
    from .chain import chain_parts
    from .layer import RAW_SCALE, layer_words
    from .patches import gather_patches, padding_source, tap_positions
    from .pixel import CROSS_CORRELATION_NOTE, PixelExplanation, explain_pixel
    from .pooled import PooledExplanation, explain_pooled, pool_winners, pooled_cells_of

# Every name loads with its module on first use, so importing one module of the package (say
# convlens.explain.parts for `convlens size`) does not load the others.
_EXPORTS = {
    "chain": ("chain_parts",),
    "layer": ("RAW_SCALE", "layer_words"),
    "patches": ("gather_patches", "padding_source", "tap_positions"),
    "pixel": ("CROSS_CORRELATION_NOTE", "PixelExplanation", "explain_pixel"),
    "pooled": ("PooledExplanation", "explain_pooled", "pool_winners", "pooled_cells_of"),
}
_LAZY = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "CROSS_CORRELATION_NOTE",
    "RAW_SCALE",
    "PixelExplanation",
    "PooledExplanation",
    "chain_parts",
    "explain_pixel",
    "explain_pooled",
    "gather_patches",
    "layer_words",
    "padding_source",
    "pool_winners",
    "pooled_cells_of",
    "tap_positions",
]
