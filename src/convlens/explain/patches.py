"""Where a kernel lies on the input: the taps of conv outputs and the patches under them.

Coordinates are 0-based ``(row, col)`` array indices; positions outside ``[0, H)`` / ``[0, W)``
lie in the padding, whose values come from the layer's padding mode.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import LayerConfig, PaddingMode
from ..sizes import resolve_padding


def tap_positions(
    config: LayerConfig, image_size: tuple[int, int], kernel_size: tuple[int, int],
    rows: Sequence[int] | np.ndarray, cols: Sequence[int] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Input coordinates under each kernel tap for conv outputs at ``rows`` x ``cols``.

    Returns ``(tap_rows, tap_cols)`` of shapes ``(len(rows), kh)`` and ``(len(cols), kw)``: output
    row ``r``'s tap ``i`` reads input row ``r * S + i * D - top``. Values outside
    ``[0, H)`` / ``[0, W)`` lie in the padding.
    """
    height, width = image_size
    top, _, left, _ = resolve_padding(config, height, width, kernel_size)
    taps_h = np.arange(kernel_size[0]) * config.dilation
    taps_w = np.arange(kernel_size[1]) * config.dilation
    tap_rows = np.asarray(rows)[:, None] * config.stride + taps_h[None] - top
    tap_cols = np.asarray(cols)[:, None] * config.stride + taps_w[None] - left
    return tap_rows, tap_cols


def padding_source(
    positions: np.ndarray, size: int, mode: PaddingMode
) -> tuple[np.ndarray, np.ndarray]:
    """Where each position along one axis takes its value from, and whether it is padding.

    ``positions`` may lie outside ``[0, size)``. Returns ``(source, padded)``: ``source`` is the
    input index the padding mode copies (reflect mirrors without repeating the edge, replicate
    repeats the edge, circular wraps round) or -1 for zero padding.
    """
    padded = (positions < 0) | (positions >= size)
    if mode is PaddingMode.ZEROS:
        source = np.where(padded, -1, positions)
    elif mode is PaddingMode.REFLECT:
        source = np.abs(positions)
        source = np.where(source >= size, 2 * (size - 1) - source, source)
    elif mode is PaddingMode.REPLICATE:
        source = np.clip(positions, 0, size - 1)
    else:
        source = np.mod(positions, size)
    return source, padded


def gather_patches(
    image: np.ndarray, config: LayerConfig, kernel_size: tuple[int, int],
    rows: Sequence[int] | np.ndarray, cols: Sequence[int] | np.ndarray,
) -> np.ndarray:
    """The input values under the kernel for conv outputs ``rows`` x ``cols``.

    ``image`` is ``(C, H, W)``; the result is ``(len(rows), len(cols), C, kh, kw)`` with padding
    filled as ``config.padding_mode`` says. Reads only those cells.
    """
    height, width = image.shape[1:]
    tap_rows, tap_cols = tap_positions(config, (height, width), kernel_size, rows, cols)
    src_rows, _ = padding_source(tap_rows, height, config.padding_mode)
    src_cols, _ = padding_source(tap_cols, width, config.padding_mode)
    # (C, nr, kh, nc, kw) by fancy indexing, then zero the cells that read zero padding
    values = image[:, np.maximum(src_rows, 0)[:, :, None, None],
                   np.maximum(src_cols, 0)[None, None, :, :]]
    if config.padding_mode is PaddingMode.ZEROS:
        outside = (src_rows < 0)[:, :, None, None] | (src_cols < 0)[None, None, :, :]
        values = np.where(outside[None], 0.0, values)
    return values.transpose(1, 3, 0, 2, 4)


__all__ = ["gather_patches", "padding_source", "tap_positions"]
