"""The arithmetic behind one number: a conv output pixel, a pooled cell, a chain of sizes.

:func:`explain_pixel` works out one pixel of the conv stage the way the tutorial works its
example by hand: which input cells the kernel covers (padding, stride and dilation included, the
padded cells marked), the products cell by cell, their sum, the activation and the pooled cell
it feeds. :func:`explain_pooled` does the same for one cell of the pooled stage. Both read only
the few input pixels they need (no full-image convolution), so a web page can call them on hover.

PyTorch's ``nn.Conv2d`` computes cross-correlation: the kernel is laid on the patch as it is,
not turned round. True convolution turns the kernel 180 degrees first; ``flip=True`` adds that
sum too, the number :func:`scipy.ndimage.convolve` gives.

The arithmetic of sizes (output sizes, size chains, receptive fields) is :mod:`convlens.sizes`.

Coordinates are 0-based ``(row, col)`` array indices, as in ``stages.npz``. "Raw" values are the
normalized values times 255 (images are loaded as ``value / type max``), the 0-255 numbers a
photo editor shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from .config import LayerConfig, PaddingMode, PoolType
from .errors import ConfigError
from .explain_parts import (
    CHANNEL_LABELS,
    CROSS_CORRELATION_NOTE,
    Part,
    parts_to_dicts,
    pixel_parts,
    pooled_parts,
)
from .layers import make_activation
from .numbers import format_factor, format_raw
from .sizes import check_at, check_fits, resolve_padding

RAW_SCALE = 255.0
"""What 1.0 of a normalized value is in raw units (8-bit pixel values)."""

MAX_WRITTEN_TERMS = 121
"""Longest sum (number of products) written out term by term; longer ones show row sums."""



# --------------------------------------------------------------------------- taps and patches


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


# --------------------------------------------------------------------------- one conv pixel


@dataclass
class PixelExplanation:
    """How one conv output pixel is made. Arrays are ``(C, kh, kw)`` unless said otherwise.

    ``patch`` holds the normalized input values under the kernel (padding included), ``weights``
    the kernel, ``products`` their cell-by-cell products; ``total`` is the sum of the products,
    ``value`` adds the bias (the number in the conv stage), ``activated`` is the activation of
    it. ``padded`` ``(kh, kw)`` marks taps that fall in the padding; ``input_rows`` /
    ``input_cols`` are the input coordinates of the taps (outside the image where padded).
    """

    kernel: int
    kernel_name: str
    row: int
    col: int
    image_shape: tuple[int, int, int]
    conv_shape: tuple[int, int]
    config: LayerConfig
    input_rows: list[int]
    input_cols: list[int]
    source_rows: list[int]
    source_cols: list[int]
    padded: np.ndarray
    patch: np.ndarray
    weights: np.ndarray
    products: np.ndarray
    total: float
    bias: float
    value: float
    activated: float
    pooled: list[dict] = field(default_factory=list)
    pooled_shape: tuple[int, int] | None = None
    flipped_products: np.ndarray | None = None
    flipped_total: float | None = None
    scale: float = RAW_SCALE
    what: ClassVar[str] = "conv pixel"

    @property
    def channels(self) -> int:
        return int(self.patch.shape[0])

    @property
    def receptive_field(self) -> dict[str, int]:
        """Input rows/cols the kernel spans, inclusive; may reach into the padding (< 0 or >= H)."""
        return {"top": self.input_rows[0], "bottom": self.input_rows[-1],
                "left": self.input_cols[0], "right": self.input_cols[-1]}

    @property
    def pooled_cell(self) -> tuple[int, int] | None:
        """The first pooled cell this pixel feeds, or None (no pool stage, or in no window)."""
        return tuple(self.pooled[0]["cell"]) if self.pooled else None  # type: ignore[return-value]

    @property
    def flipped_weights(self) -> np.ndarray:
        """The kernel turned 180 degrees: what true convolution multiplies the patch by."""
        return self.weights[:, ::-1, ::-1]

    def sum_lines(self, flipped: bool = False) -> list[str]:
        """The sum written out in raw (0-255) units, as the tutorial does, step by step.

        ``["(88×1 + 126×0 + 145×1) + (86×1 + ...)", "233 + 211 + 0", "444"]``: the products
        grouped by kernel row (per channel for RGB), the row sums, the total. Sums of more than
        :data:`MAX_WRITTEN_TERMS` products skip the first line.
        """
        weights = self.flipped_weights if flipped else self.weights
        raw = self.patch.astype(np.float64) * self.scale
        lines = []
        if raw.size <= MAX_WRITTEN_TERMS:
            groups = []
            for channel in range(self.channels):
                label = f"{CHANNEL_LABELS[channel]}: " if self.channels == 3 else ""
                for index, (values, row_weights) in enumerate(zip(raw[channel], weights[channel])):
                    terms = " + ".join(f"{format_raw(v)}×{format_factor(w)}"
                                       for v, w in zip(values, row_weights))
                    groups.append(f"{label if index == 0 else ''}({terms})")
            lines.append(" + ".join(groups))
        row_sums = (raw * weights).sum(axis=2).ravel()
        if len(row_sums) > 1:
            lines.append(" + ".join(format_raw(v) for v in row_sums).replace("+ -", "- "))
        lines.append(format_raw(float(row_sums.sum())))
        return lines

    def parts(self) -> tuple[Part, ...]:
        """The explanation in words and grids (:func:`convlens.explain_parts.pixel_parts`),
        which every renderer styles."""
        return pixel_parts(self)

    def to_dict(self) -> dict:
        """JSON-ready: every array as nested lists ``(C, kh, kw)``, values at full precision;
        ``parts`` the explanation's words and grids (:mod:`convlens.explain_parts`)."""
        data = {
            "what": self.what,
            "kernel_index": self.kernel,
            "kernel_name": self.kernel_name,
            "at": [self.row, self.col],
            "image_shape": list(self.image_shape),
            "conv_shape": list(self.conv_shape),
            "layer": self.config.to_dict(),
            "operation": "cross-correlation",
            "note": CROSS_CORRELATION_NOTE,
            "receptive_field": self.receptive_field,
            "input_rows": self.input_rows,
            "input_cols": self.input_cols,
            "source_rows": self.source_rows,
            "source_cols": self.source_cols,
            "padded": self.padded.tolist(),
            "patch": self.patch.tolist(),
            "patch_raw": (self.patch.astype(np.float64) * self.scale).tolist(),
            "kernel": self.weights.tolist(),
            "products": self.products.tolist(),
            "sum": self.total,
            "sum_raw": self.total * self.scale,
            "sum_written": " = ".join(self.sum_lines()),
            "bias": self.bias,
            "conv": self.value,
            "activation": self.config.activation.value,
            "activated": self.activated,
            "pooled_cell": list(self.pooled_cell) if self.pooled_cell else None,
            "pooled_cells": self.pooled,
            "pooled_shape": list(self.pooled_shape) if self.pooled_shape else None,
            "raw_scale": self.scale,
        }
        if self.flipped_products is not None:
            data["convolution"] = {
                "kernel": self.flipped_weights.tolist(),
                "products": self.flipped_products.tolist(),
                "sum": self.flipped_total,
                "sum_raw": (self.flipped_total or 0.0) * self.scale,
                "sum_written": " = ".join(self.sum_lines(flipped=True)),
                "conv": (self.flipped_total or 0.0) + self.bias,
            }
        data["parts"] = parts_to_dicts(self.parts())
        return data


def explain_pixel(
    image: torch.Tensor,
    weights: torch.Tensor,
    config: LayerConfig,
    kernel: int,
    row: int,
    col: int,
    *,
    kernel_name: str | None = None,
    flip: bool = False,
    scale: float = RAW_SCALE,
) -> PixelExplanation:
    """Explain conv output pixel ``(row, col)`` of kernel ``kernel``.

    ``image`` is ``(C, H, W)`` (normalized, as :func:`convlens.load_image` gives), ``weights``
    ``(K, C, kh, kw)`` (as :func:`convlens.kernel_bank` gives). ``row``/``col`` are conv-output
    coordinates; outside the map raises :class:`ConfigError` naming the valid range. ``flip``
    adds true convolution (the kernel turned 180 degrees). ``scale`` is what 1.0 is in raw units.

    >>> import torch
    >>> patch = torch.tensor([[[88., 126, 145], [86, 125, 142], [85, 124, 141]]]) / 255
    >>> kernel = torch.tensor([[[[1., 0, 1], [1, 1, 0], [0, 0, 0]]]])
    >>> result = explain_pixel(patch, kernel, LayerConfig(pool=None), 0, 0, 0)
    >>> result.sum_lines()[-1]
    '444'
    """
    data, bank, steps = _prepare(image, weights, config, kernel)
    channels, height, width = data.shape
    kernel_size = (int(bank.shape[2]), int(bank.shape[3]))
    conv_shape = steps[0].outputs
    check_at("conv pixel", row, col, conv_shape, "conv map")
    tap_rows, tap_cols = tap_positions(config, (height, width), kernel_size, [row], [col])
    src_rows, pad_rows = padding_source(tap_rows[0], height, config.padding_mode)
    src_cols, pad_cols = padding_source(tap_cols[0], width, config.padding_mode)
    patch = gather_patches(data, config, kernel_size, [row], [col])[0, 0]
    kernel_weights = bank[kernel]
    products = patch.astype(np.float64) * kernel_weights.astype(np.float64)
    total = float(products.sum())
    bias = _bias(config, kernel)
    value = total + bias
    explanation = PixelExplanation(
        kernel=kernel, kernel_name=kernel_name or f"kernel {kernel}", row=row, col=col,
        image_shape=(channels, height, width), conv_shape=conv_shape, config=config,
        input_rows=tap_rows[0].tolist(), input_cols=tap_cols[0].tolist(),
        source_rows=src_rows.tolist(), source_cols=src_cols.tolist(),
        padded=pad_rows[:, None] | pad_cols[None, :], patch=patch, weights=kernel_weights,
        products=products, total=total, bias=bias, value=value,
        activated=_activate(config, np.array([value]))[0], scale=scale,
    )
    if flip:
        explanation.flipped_products = patch * kernel_weights[:, ::-1, ::-1].astype(np.float64)
        explanation.flipped_total = float(explanation.flipped_products.sum())
    if config.pool is not None:
        explanation.pooled_shape = steps[1].outputs
        explanation.pooled = [
            _fed_cell(data, bank, config, kernel, cell, (row, col), kernel_size)
            for cell in pooled_cells_of(config, steps[1].outputs, row, col)
        ]
    return explanation


def pooled_cells_of(
    config: LayerConfig, pooled_shape: tuple[int, int], row: int, col: int
) -> list[tuple[int, int]]:
    """Pooled cells whose window holds conv pixel ``(row, col)``, in row-major order.

    None when the pixel falls between windows (pool stride > size) or in the rows/cols the
    floor division drops; several when windows overlap (pool stride < size).
    """
    if config.pool is None:
        return []
    size, stride = config.pool, config.effective_pool_stride or config.pool

    def cells(index: int, limit: int) -> range:
        first = max(0, -(-(index - size + 1) // stride))
        return range(first, min(index // stride, limit - 1) + 1)

    return [(r, c) for r in cells(row, pooled_shape[0]) for c in cells(col, pooled_shape[1])]


def _fed_cell(data, bank, config, kernel, cell, pixel, kernel_size) -> dict:
    """One pooled cell a pixel feeds: its value and whether the pixel wins it (max pooling)."""
    window = _pool_window(config, cell)
    conv = _conv_block(data, bank, config, kernel, window, kernel_size)
    activated = _activate(config, conv)
    entry: dict = {"cell": list(cell), "window": _window_dict(window)}
    if config.pool_type is PoolType.MAX:
        winner = np.unravel_index(int(np.argmax(activated)), activated.shape)
        position = [window[0][winner[0]], window[1][winner[1]]]
        entry.update(value=float(activated[winner]), winner=position,
                     wins=position == list(pixel))
    else:
        entry.update(value=float(activated.mean()), winner=None, wins=None)
    return entry


# --------------------------------------------------------------------------- one pooled cell


@dataclass
class PooledExplanation:
    """How one pooled cell is made from its window of the activated map.

    ``window_rows`` / ``window_cols`` are conv-map coordinates; ``conv_values`` and ``values``
    (activated, what the pool sees) are ``(p, p)``. ``winner`` is the conv position of the
    maximum (max pooling; the first in row-major order on ties, as PyTorch picks) or None.
    """

    kernel: int
    kernel_name: str
    row: int
    col: int
    conv_shape: tuple[int, int]
    pooled_shape: tuple[int, int]
    config: LayerConfig
    window_rows: list[int]
    window_cols: list[int]
    conv_values: np.ndarray
    values: np.ndarray
    value: float
    winner: tuple[int, int] | None
    mean: float | None
    receptive_field: dict[str, int]
    what: ClassVar[str] = "pooled cell"

    @property
    def pool_type(self) -> PoolType:
        return self.config.pool_type

    def parts(self) -> tuple[Part, ...]:
        """The explanation in words and grids (:func:`convlens.explain_parts.pooled_parts`),
        which every renderer styles."""
        return pooled_parts(self)

    def to_dict(self) -> dict:
        """JSON-ready, values at full precision; ``parts`` the explanation's words and grids
        (:mod:`convlens.explain_parts`)."""
        return {
            "what": self.what,
            "kernel_index": self.kernel,
            "kernel_name": self.kernel_name,
            "at": [self.row, self.col],
            "conv_shape": list(self.conv_shape),
            "pooled_shape": list(self.pooled_shape),
            "layer": self.config.to_dict(),
            "pool_type": self.pool_type.value,
            "window": _window_dict((self.window_rows, self.window_cols)),
            "conv_values": self.conv_values.tolist(),
            "values": self.values.tolist(),
            "value": self.value,
            "winner": (None if self.winner is None else
                       {"row": self.winner[0], "col": self.winner[1], "value": self.value}),
            "mean": self.mean,
            "receptive_field": self.receptive_field,
            "parts": parts_to_dicts(self.parts()),
        }


def explain_pooled(
    image: torch.Tensor,
    weights: torch.Tensor,
    config: LayerConfig,
    kernel: int,
    row: int,
    col: int,
    *,
    kernel_name: str | None = None,
) -> PooledExplanation:
    """Explain pooled cell ``(row, col)`` of kernel ``kernel``: its window, values and winner.

    Shapes as in :func:`explain_pixel`. Needs a pool stage (``config.pool``); a cell outside the
    pooled map raises :class:`ConfigError` naming the valid range.
    """
    if config.pool is None:
        raise ConfigError("there is no pool stage to explain (pooling is off); set a pool size")
    data, bank, steps = _prepare(image, weights, config, kernel)
    kernel_size = (int(bank.shape[2]), int(bank.shape[3]))
    pooled_shape = steps[1].outputs
    check_at("pooled cell", row, col, pooled_shape, "pooled map")
    window = _pool_window(config, (row, col))
    conv = _conv_block(data, bank, config, kernel, window, kernel_size)
    values = _activate(config, conv)
    tap_rows, tap_cols = tap_positions(config, data.shape[1:], kernel_size, *window)
    field_ = {"top": int(tap_rows.min()), "bottom": int(tap_rows.max()),
              "left": int(tap_cols.min()), "right": int(tap_cols.max())}
    if config.pool_type is PoolType.MAX:
        first = np.unravel_index(int(np.argmax(values)), values.shape)
        winner: tuple[int, int] | None = (window[0][first[0]], window[1][first[1]])
        value, mean = float(values[first]), None
    else:
        winner, value = None, float(values.mean())
        mean = value
    return PooledExplanation(
        kernel=kernel, kernel_name=kernel_name or f"kernel {kernel}", row=row, col=col,
        conv_shape=steps[0].outputs, pooled_shape=pooled_shape, config=config,
        window_rows=window[0], window_cols=window[1], conv_values=conv, values=values,
        value=value, winner=winner, mean=mean, receptive_field=field_,
    )


def pool_winners(activated: torch.Tensor, config: LayerConfig) -> torch.Tensor:
    """Boolean ``(K, H, W)`` mask of the activated-map pixels that win a max-pool window.

    Uses PyTorch's own ``max_pool2d`` indices, so ties go where PyTorch sends them. Pixels in
    no window, and losers, are False.
    """
    if config.pool is None or config.pool_type is not PoolType.MAX:
        raise ConfigError("pool winners need max pooling; this layer's pooling is "
                          f"{config.pool_type.value if config.pool else 'off'}")
    maps = activated.detach().to("cpu", torch.float32)
    if maps.ndim != 3:
        raise ConfigError(f"expected activated maps (K, H, W); got shape {tuple(maps.shape)}")
    _, indices = F.max_pool2d(maps[None], config.pool, config.effective_pool_stride,
                              return_indices=True)
    mask = torch.zeros(maps.shape[0], maps.shape[1] * maps.shape[2], dtype=torch.bool)
    mask.scatter_(1, indices[0].flatten(1), True)
    return mask.view_as(maps)


# --------------------------------------------------------------------------- helpers


def _prepare(image, weights, config: LayerConfig, kernel: int):
    """Validate and turn the inputs into NumPy ``(C, H, W)`` and ``(K, C, kh, kw)``."""
    if not isinstance(config, LayerConfig):
        raise ConfigError(f"expected a LayerConfig; got {type(config).__name__}")
    data = _numpy(image)
    bank = _numpy(weights)
    if data.ndim != 3:
        raise ConfigError(f"expected an image (C, H, W); got shape {data.shape}")
    if bank.ndim != 4:
        raise ConfigError(f"expected kernel weights (K, C, kh, kw); got shape {bank.shape}")
    if bank.shape[1] != data.shape[0]:
        raise ConfigError(
            f"the kernels have {bank.shape[1]} input channels but the image has {data.shape[0]}"
        )
    count = bank.shape[0]
    if isinstance(kernel, bool) or not isinstance(kernel, (int, np.integer)) or not (
        0 <= kernel < count
    ):
        raise ConfigError(f"kernel index must be 0..{count - 1}; got {kernel!r}")
    steps = check_fits(config, data.shape[1], data.shape[2], (bank.shape[2], bank.shape[3]))
    return data, bank, steps


def _numpy(array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().to("cpu", torch.float32).numpy()
    return np.asarray(array, dtype=np.float32)


def _bias(config: LayerConfig, kernel: int) -> float:
    if config.bias is None:
        return 0.0
    if len(config.bias) <= kernel:
        raise ConfigError(f"bias has {len(config.bias)} values; kernel {kernel} has none")
    return float(config.bias[kernel])


def _activate(config: LayerConfig, values: np.ndarray) -> np.ndarray:
    """The layer's own activation module applied to ``values`` (float64)."""
    module = make_activation(config.activation)
    with torch.no_grad():
        return module(torch.from_numpy(np.asarray(values, dtype=np.float64))).numpy()


def _pool_window(config: LayerConfig, cell: tuple[int, int]) -> tuple[list[int], list[int]]:
    size = config.pool or 1
    stride = config.effective_pool_stride or size
    return ([cell[0] * stride + i for i in range(size)],
            [cell[1] * stride + j for j in range(size)])


def _window_dict(window: tuple[list[int], list[int]]) -> dict:
    rows, cols = window
    return {"top": rows[0], "bottom": rows[-1], "left": cols[0], "right": cols[-1],
            "rows": list(rows), "cols": list(cols)}


def _conv_block(data, bank, config, kernel, window, kernel_size) -> np.ndarray:
    """Conv values (with bias) at the ``rows`` x ``cols`` of ``window``, float64."""
    patches = gather_patches(data, config, kernel_size, *window).astype(np.float64)
    conv = np.einsum("abckl,ckl->ab", patches, bank[kernel].astype(np.float64))
    return conv + _bias(config, kernel)


__all__ = [
    "RAW_SCALE",
    "PixelExplanation",
    "PooledExplanation",
    "explain_pixel",
    "explain_pooled",
    "gather_patches",
    "padding_source",
    "pool_winners",
    "pooled_cells_of",
    "tap_positions",
]
