"""The arithmetic behind one number: a conv output pixel, a pooled cell, a chain of sizes.

:func:`explain_pixel` works out one pixel of the conv stage the way the tutorial works its
example by hand: which input cells the kernel covers (padding, stride and dilation included, the
padded cells marked), the products cell by cell, their sum, the activation and the pooled cell
it feeds. :func:`explain_pooled` does the same for one cell of the pooled stage. Both read only
the few input pixels they need (no full-image convolution), so a web page can call them on hover.

PyTorch's ``nn.Conv2d`` computes cross-correlation: the kernel is laid on the patch as it is,
not turned round. True convolution turns the kernel 180 degrees first; ``flip=True`` adds that
sum too, the number :func:`scipy.ndimage.convolve` gives.

:func:`size_chain` follows the output size ``(I - F + 2P)/S + 1`` through a chain of conv and
pool layers (``"conv3 p1, pool2, conv3 s2 p1 d2, pool3 s2 ceil"``), with the receptive field of
one output pixel, built on :func:`convlens.layers.output_size`.

Coordinates are 0-based ``(row, col)`` array indices, as in ``stages.npz``. "Raw" values are the
normalized values times 255 (images are loaded as ``value / type max``), the 0-255 numbers a
photo editor shows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError
from .layers import (
    LayerConfig,
    PaddingMode,
    PaddingSpec,
    PoolType,
    check_fits,
    effective_size,
    make_activation,
    output_size,
    parse_padding,
    resolve_padding,
    same_padding,
)
from .limits import MAX_IMAGE_SIDE, MAX_LAYER_NUMBER, bounded_int, check_at_most
from .plot import format_number
from .wording import verb

RAW_SCALE = 255.0
"""What 1.0 of a normalized value is in raw units (8-bit pixel values)."""

MAX_WRITTEN_TERMS = 121
"""Longest sum (number of products) written out term by term; longer ones show row sums."""

CROSS_CORRELATION_NOTE = (
    "PyTorch's Conv2d computes cross-correlation: each weight multiplies the pixel under it as "
    "the kernel lies, without turning the kernel round (true convolution turns it 180 degrees "
    "first; see --flip)."
)
CHANNEL_LABELS = ("R", "G", "B")


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
                    terms = " + ".join(f"{format_raw(v)}×{_factor(w)}"
                                       for v, w in zip(values, row_weights))
                    groups.append(f"{label if index == 0 else ''}({terms})")
            lines.append(" + ".join(groups))
        row_sums = (raw * weights).sum(axis=2).ravel()
        if len(row_sums) > 1:
            lines.append(" + ".join(format_raw(v) for v in row_sums).replace("+ -", "- "))
        lines.append(format_raw(float(row_sums.sum())))
        return lines

    def to_dict(self) -> dict:
        """JSON-ready: every array as nested lists ``(C, kh, kw)``, values at full precision."""
        data = {
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
        return data

    def _repr_html_(self) -> str:
        from .display import pixel_explanation_html

        return pixel_explanation_html(self)


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
    _check_at("conv pixel", row, col, conv_shape, "conv map")
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

    @property
    def pool_type(self) -> PoolType:
        return self.config.pool_type

    def to_dict(self) -> dict:
        """JSON-ready, values at full precision."""
        return {
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
        }

    def _repr_html_(self) -> str:
        from .display import pooled_explanation_html

        return pooled_explanation_html(self)


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
    _check_at("pooled cell", row, col, pooled_shape, "pooled map")
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
        raise ConfigError("pool winners need max pooling (--pool N --pool-type max)")
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


def _check_at(what: str, row, col, shape: tuple[int, int], map_name: str) -> None:
    height, width = shape
    for value in (row, col):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ConfigError(f"{what} coordinates must be whole numbers; got {row!r},{col!r}")
    if not (0 <= row < height and 0 <= col < width):
        raise ConfigError(
            f"{what} ({row}, {col}) is outside the {height}x{width} {map_name}: row must be "
            f"0..{height - 1} and col 0..{width - 1}"
        )


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


def _factor(weight: float) -> str:
    text = format_number(float(weight), 4)
    return f"({text})" if text.startswith("-") else text


def format_raw(value: float, decimals: int = 2) -> str:
    """A raw (0-255) value with at most ``decimals`` decimals: ``88``, ``87.62``, ``-3.5``."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# --------------------------------------------------------------------------- size chains


@dataclass(frozen=True)
class LayerSpec:
    """One conv or pool layer of a size chain. Sizes in pixels; ``kernel`` is ``(kh, kw)``.

    ``stride=None`` means 1 for conv and the window size for pool (PyTorch's defaults).
    ``padding`` is cells per side, ``"same"`` (conv only) or ``(top, bottom, left, right)``.
    """

    kind: str
    kernel: tuple[int, int]
    stride: int | None = None
    padding: PaddingSpec = 0
    dilation: int = 1
    ceil_mode: bool = False
    pool_type: str = "max"

    def __post_init__(self) -> None:
        if self.kind not in ("conv", "pool"):
            raise ConfigError(f"layer kind must be conv or pool; got {self.kind!r}")
        set_ = object.__setattr__
        kernel = self.kernel
        if isinstance(kernel, (int, np.integer)):
            kernel = (int(kernel), int(kernel))
        if not isinstance(kernel, (tuple, list)) or len(kernel) != 2:
            raise ConfigError(f"{self.kind} kernel must be F or (F, G) pixels; got {kernel!r}")
        set_(self, "kernel", tuple(kernel))
        set_(self, "padding", parse_padding(self.padding))
        label = self.describe()
        for name, value in (("kernel", self.kernel[0]), ("kernel", self.kernel[1]),
                            ("stride", self.axis_stride(0)), ("dilation", self.dilation)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{label}: {name} must be a whole number >= 1; got {value!r}")
            check_at_most(value, MAX_LAYER_NUMBER, f"{label}: {name}")
        if self.kind == "pool":
            if self.padding == "same":
                raise ConfigError(f"{label}: 'same' padding applies to conv layers only")
            if self.dilation != 1:
                raise ConfigError(f"{label}: dilation applies to conv layers only")
        elif self.ceil_mode:
            raise ConfigError(f"{label}: ceil mode applies to pool layers only (conv floors)")

    def axis_stride(self, axis: int) -> int:
        """Stride along axis 0 (rows) or 1 (cols): as given, else 1 (conv) or the window (pool)."""
        if self.stride is not None:
            return self.stride
        return self.kernel[axis] if self.kind == "pool" else 1

    def axis_padding(self, axis: int) -> tuple[int, int]:
        """``(before, after)`` padding along axis 0 (rows) or 1 (cols)."""
        if self.padding == "same":
            return same_padding(self.kernel[axis], self.dilation)
        if isinstance(self.padding, tuple):
            return self.padding[2 * axis], self.padding[2 * axis + 1]
        return self.padding, self.padding  # type: ignore[return-value]

    def describe(self) -> str:
        """The spec back as text, e.g. ``conv3 s2 p1 d2`` or ``pool3 s2 ceil``."""
        kh, kw = self.kernel
        name = ("avgpool" if self.pool_type == "avg" else "pool") if self.kind == "pool" else "conv"
        text = f"{name}{kh}" if kh == kw else f"{name}{kh}x{kw}"
        if self.stride is not None:
            text += f" s{self.stride}"
        if self.padding == "same":
            text += " same"
        elif isinstance(self.padding, tuple):
            text += " p" + ",".join(map(str, self.padding))
        elif self.padding:
            text += f" p{self.padding}"
        if self.dilation != 1:
            text += f" d{self.dilation}"
        if self.ceil_mode:
            text += " ceil"
        return text


LAYER_SYNTAX = (
    "layers are comma-separated, each `conv<F>` or `pool<F>` (also maxpool/avgpool, F or FxG) "
    "then options: s<N> stride, p<N> padding, same, valid, d<N> dilation, ceil; "
    "e.g. 'conv3 p1, pool2, conv3 s2 p1 d2, pool3 s2 ceil'"
)
_HEAD = re.compile(r"^(conv|pool|maxpool|avgpool)(\d+)(?:x(\d+))?$")
_OPTION = re.compile(r"^(s|stride|p|pad|padding|d|dilation)=?(\d+)$")


def parse_layers(text: str) -> list[LayerSpec]:
    """``"conv3 p1, pool2, conv3 s2 p1 d2, pool3 s2 ceil"`` -> a list of :class:`LayerSpec`.

    >>> [layer.describe() for layer in parse_layers("conv3 p1, pool2")]
    ['conv3 p1', 'pool2']
    """
    layers = []
    parts = [part.strip() for part in str(text).split(",")]
    if not any(parts):
        raise ConfigError(f"no layers given; {LAYER_SYNTAX}")
    for number, part in enumerate(parts, start=1):
        if not part:
            raise ConfigError(f"layer {number} is empty in {text!r}; {LAYER_SYNTAX}")
        tokens = part.lower().split()
        head = _HEAD.match(tokens[0])
        if not head:
            raise ConfigError(f"layer {number} {part!r} must start with conv<F> or pool<F>; "
                              f"{LAYER_SYNTAX}")
        kind = "conv" if head.group(1) == "conv" else "pool"
        label = f"layer {number} ({part[:40]})"
        size = bounded_int(head.group(2), MAX_LAYER_NUMBER, f"{label}: the {kind} window")
        width = bounded_int(head.group(3) or head.group(2), MAX_LAYER_NUMBER,
                            f"{label}: the {kind} window")
        options: dict = {"kind": kind, "kernel": (size, width),
                         "pool_type": "avg" if head.group(1) == "avgpool" else "max"}
        for token in tokens[1:]:
            option = _OPTION.match(token)
            if token in ("same", "psame"):
                options["padding"] = "same"
            elif token in ("valid", "pvalid"):
                options["padding"] = 0
            elif token == "ceil":
                options["ceil_mode"] = True
            elif option:
                key = {"s": "stride", "p": "padding", "pad": "padding", "d": "dilation"}.get(
                    option.group(1), option.group(1))
                options[key] = bounded_int(option.group(2), MAX_LAYER_NUMBER, f"{label}: {key}")
            else:
                raise ConfigError(f"layer {number} {part!r}: unknown option {token!r}; "
                                  f"{LAYER_SYNTAX}")
        try:
            layers.append(LayerSpec(**options))
        except ConfigError as exc:
            raise ConfigError(f"layer {number} {exc}") from None
    return layers


def layer_specs(config: LayerConfig, kernel_size: tuple[int, int]) -> list[LayerSpec]:
    """The conv (and pool) layer of a :class:`LayerConfig` as a size chain."""
    specs = [LayerSpec("conv", kernel_size, config.stride, config.padding, config.dilation)]
    if config.pool is not None:
        specs.append(LayerSpec("pool", (config.pool, config.pool), config.effective_pool_stride,
                               pool_type=config.pool_type.value))
    return specs


@dataclass(frozen=True)
class AxisStep:
    """One layer along one axis: the formula with the numbers put in, and what it gives.

    ``field`` is the receptive field of one output pixel in input pixels, ``jump`` the input
    distance between neighbouring outputs, ``start`` the input coordinate where output 0's
    field begins (negative: it starts in the padding).
    """

    size_in: int
    kernel: int
    span: int
    before: int
    after: int
    stride: int
    dilation: int
    ceil_mode: bool
    size_out: int
    field: int
    jump: int
    start: int

    @property
    def numerator(self) -> int:
        return self.size_in - self.span + self.before + self.after

    @property
    def exact(self) -> bool:
        return self.numerator % self.stride == 0

    def formula(self) -> str:
        """``(224 - 3 + 2×1)/2 + 1 = floor(223/2) + 1 = 112``-style text (``= 111 + 1 = 112``
        where the division is exact, just ``= 224`` at stride 1)."""
        pad = (f"2×{self.before}" if self.before == self.after
               else f"{self.before}+{self.after}")
        head = f"({self.size_in} - {self.span} + {pad})/{self.stride} + 1"
        if self.exact:
            if self.stride == 1:
                return f"{head} = {self.size_out}"
            return f"{head} = {self.numerator // self.stride} + 1 = {self.size_out}"
        rounding = "ceil" if self.ceil_mode else "floor"
        text = f"{head} = {rounding}({self.numerator}/{self.stride}) + 1"
        if self.ceil_mode and -(-self.numerator // self.stride) + 1 != self.size_out:
            return (f"{text} - 1 = {self.size_out} (the last window would start in the right "
                    "padding, so PyTorch drops it)")
        return f"{text} = {self.size_out}"

    def rounding_note(self) -> str:
        """Empty when the division is exact; else what PyTorch does with the remainder."""
        if self.exact:
            return ""
        left = self.numerator % self.stride
        if self.ceil_mode and -(-self.numerator // self.stride) + 1 != self.size_out:
            return (f"{self.numerator}/{self.stride} is not whole: ceil mode would add a last "
                    "window, but it would start in the right padding, so PyTorch drops it")
        if self.ceil_mode:
            return (f"{self.numerator}/{self.stride} is not whole: ceil mode rounds up, adding a "
                    f"last, partial window over the final {left} px")
        return (f"{self.numerator}/{self.stride} is not whole: PyTorch floors, so the last {left} "
                f"px (padding included) {verb(left, 'is', 'are')} never covered")


@dataclass(frozen=True)
class ChainStep:
    """One layer of a :class:`SizeChain`: its spec and the (rows, cols) arithmetic."""

    index: int
    layer: LayerSpec
    rows: AxisStep
    cols: AxisStep

    @property
    def size_in(self) -> tuple[int, int]:
        return self.rows.size_in, self.cols.size_in

    @property
    def size_out(self) -> tuple[int, int]:
        return self.rows.size_out, self.cols.size_out

    def same_padding(self) -> str:
        """The padding that keeps this layer's size at stride 1, as text."""
        if self.layer.kind != "conv":
            return ""
        parts = []
        for axis in (0, 1):
            before, after = same_padding(self.layer.kernel[axis], self.layer.dilation)
            parts.append(str(before) if before == after else f"{before}+{after}")
        return parts[0] if parts[0] == parts[1] else f"{parts[0]} (rows), {parts[1]} (cols)"

    def axes(self) -> list[tuple[str, AxisStep]]:
        """``[("H", rows), ("W", cols)]``, or one ``("H=W", rows)`` where both are the same."""
        if self.rows == self.cols:
            return [("H=W" if self.rows.size_in == self.cols.size_in else "H", self.rows)]
        return [("H", self.rows), ("W", self.cols)]

    def to_dict(self) -> dict:
        data = {"index": self.index, "layer": self.layer.describe(), "kind": self.layer.kind,
                "input": list(self.size_in), "output": list(self.size_out),
                "same_padding": self.same_padding()}
        for name, step in (("rows", self.rows), ("cols", self.cols)):
            data[name] = {
                "formula": step.formula(), "exact": step.exact, "note": step.rounding_note(),
                "input": step.size_in, "kernel": step.kernel, "span": step.span,
                "padding": [step.before, step.after], "stride": step.stride,
                "dilation": step.dilation, "ceil_mode": step.ceil_mode,
                "output": step.size_out, "receptive_field": step.field, "jump": step.jump,
                "start": step.start,
            }
        return data


@dataclass(frozen=True)
class SizeChain:
    """Every layer's output size for one input, with receptive fields (:func:`size_chain`)."""

    input_size: tuple[int, int]
    steps: tuple[ChainStep, ...]

    @property
    def output_size(self) -> tuple[int, int]:
        return self.steps[-1].size_out if self.steps else self.input_size

    @property
    def receptive_field(self) -> tuple[int, int]:
        """Input pixels (rows, cols) one final output pixel depends on."""
        if not self.steps:
            return 1, 1
        return self.steps[-1].rows.field, self.steps[-1].cols.field

    def field_of(self, row: int, col: int) -> dict[str, int]:
        """Input box (inclusive, may reach into padding) of final output pixel ``(row, col)``."""
        height, width = self.output_size
        _check_at("output pixel", row, col, (height, width), "output")
        if not self.steps:
            return {"top": row, "bottom": row, "left": col, "right": col}
        rows, cols = self.steps[-1].rows, self.steps[-1].cols
        top, left = rows.start + row * rows.jump, cols.start + col * cols.jump
        return {"top": top, "bottom": top + rows.field - 1,
                "left": left, "right": left + cols.field - 1}

    def warnings(self) -> list[str]:
        """One line per layer and axis where the division is not exact."""
        lines = []
        for step in self.steps:
            for axis, item in step.axes():
                note = item.rounding_note()
                if note:
                    lines.append(f"layer {step.index} ({step.layer.describe()}), {axis}: {note}")
        return lines

    def to_dict(self) -> dict:
        """JSON-ready, for the web page's live formula."""
        return {"input": list(self.input_size), "output": list(self.output_size),
                "receptive_field": list(self.receptive_field),
                "layers": [step.to_dict() for step in self.steps],
                "warnings": self.warnings()}

    def _repr_html_(self) -> str:
        from .display import size_chain_html

        return size_chain_html(self)


def size_chain(
    input_size: int | tuple[int, int], layers: str | Sequence[LayerSpec]
) -> SizeChain:
    """Follow ``(I - F + 2P)/S + 1`` through ``layers`` for an input of ``input_size`` pixels.

    ``input_size`` is one side (square) or ``(height, width)``; ``layers`` is text for
    :func:`parse_layers` or a list of :class:`LayerSpec`. A layer that leaves no output raises
    :class:`ConfigError` naming the layer and why.

    >>> size_chain(5, "conv3").output_size
    (3, 3)
    >>> size_chain(224, "conv3 p1, pool2").steps[1].rows.formula()
    '(224 - 2 + 2×0)/2 + 1 = 111 + 1 = 112'
    """
    specs = parse_layers(layers) if isinstance(layers, str) else list(layers)
    size = parse_size(input_size)
    steps = []
    fields = [(1, 1, 0), (1, 1, 0)]  # (field, jump, start) per axis
    current = size
    for index, layer in enumerate(specs, start=1):
        axes = []
        for axis in (0, 1):
            field_, jump, start = fields[axis]
            before, after = layer.axis_padding(axis)
            kernel, stride = layer.kernel[axis], layer.axis_stride(axis)
            label = f"layer {index} ({layer.describe()})"
            if layer.kind == "pool" and max(before, after) > kernel // 2:
                raise ConfigError(f"{label}: pool padding {max(before, after)} is more than half "
                                  f"the window {kernel}; PyTorch refuses it")
            try:
                out = output_size(current[axis], kernel, (before, after), stride,
                                  layer.dilation, layer.ceil_mode)
            except ConfigError as exc:
                raise ConfigError(f"{label}: {exc}") from None
            span = effective_size(kernel, layer.dilation)
            axes.append(AxisStep(current[axis], kernel, span, before, after, stride,
                                 layer.dilation, layer.ceil_mode, out,
                                 field_ + (span - 1) * jump, jump * stride,
                                 start - before * jump))
            fields[axis] = (axes[-1].field, axes[-1].jump, axes[-1].start)
        steps.append(ChainStep(index, layer, axes[0], axes[1]))
        current = (axes[0].size_out, axes[1].size_out)
    return SizeChain(size, tuple(steps))


def config_chain(
    config: LayerConfig, input_size: int | tuple[int, int], kernel_size: int | tuple[int, int]
) -> SizeChain:
    """The size chain of a run's layer (conv, then pool if any) for an input and kernel size."""
    if isinstance(kernel_size, (int, np.integer)):
        kernel_size = (int(kernel_size), int(kernel_size))
    return size_chain(input_size, layer_specs(config, tuple(kernel_size)))


def parse_size(value: str | int | Sequence[int], what: str = "input size") -> tuple[int, int]:
    """``"32"``, ``"224x224"`` (also ``224X224``, ``224×224``, ``224,224``), ``32`` or ``(H, W)`` ->
    ``(H, W)`` whole pixels, each at least 1; anything else a clear :class:`ConfigError` naming
    ``what`` (``"input size"``, ``"--crop"``).

    >>> parse_size("300x451"), parse_size(5)
    ((300, 451), (5, 5))
    """
    sides = value
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*(?:[xX×,]\s*(\d+))?\s*", value)
        if not match:
            raise ConfigError(f"{what} must be N or HxW pixels; got {value!r}")
        sides = (bounded_int(match.group(1), MAX_IMAGE_SIDE, what),
                 bounded_int(match.group(2) or match.group(1), MAX_IMAGE_SIDE, what))
    elif isinstance(value, (int, np.integer)):
        sides = (value, value)
    if (not isinstance(sides, (tuple, list)) or len(sides) != 2 or any(
            isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in sides)):
        raise ConfigError(f"{what} must be a positive number of pixels or (H, W); got {value!r}")
    for side in sides:
        check_at_most(int(side), MAX_IMAGE_SIDE, f"{what} (a side, in pixels)")
    return int(sides[0]), int(sides[1])


def parse_at(text: str, flag: str = "--at") -> tuple[int, int]:
    """``"120,45"`` -> ``(120, 45)``; anything else (a 5000-digit number too) a clear error."""
    match = re.fullmatch(r"\s*(-?\d{1,18})\s*[, ]\s*(-?\d{1,18})\s*", str(text))
    if not match:
        shown = str(text) if len(str(text)) <= 40 else f"{str(text)[:37]}..."
        raise ConfigError(f"{flag} must be ROW,COL (two whole numbers); got {shown!r}")
    return int(match.group(1)), int(match.group(2))


__all__ = [
    "CROSS_CORRELATION_NOTE",
    "LAYER_SYNTAX",
    "RAW_SCALE",
    "AxisStep",
    "ChainStep",
    "LayerSpec",
    "PixelExplanation",
    "PooledExplanation",
    "SizeChain",
    "config_chain",
    "explain_pixel",
    "explain_pooled",
    "format_raw",
    "gather_patches",
    "layer_specs",
    "padding_source",
    "parse_at",
    "parse_layers",
    "parse_size",
    "pool_winners",
    "pooled_cells_of",
    "size_chain",
    "tap_positions",
]
