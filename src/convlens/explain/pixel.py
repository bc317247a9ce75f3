"""One conv output pixel worked out by hand, and told in words.

:func:`explain_pixel` works out one pixel of the conv stage the way the tutorial works its
example: which input cells the kernel covers (padding, stride and dilation included, the padded
cells marked), the products cell by cell, their sum, the activation and the pooled cell it
feeds, reading only the few input pixels it needs. :func:`pixel_parts` words it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ..config import LayerConfig, PoolType
from ..numbers import format_factor, format_number, format_raw
from ..sizes import check_at
from .layer import (
    RAW_SCALE,
    activate,
    bias_of,
    conv_block,
    pool_window,
    prepare,
    window_dict,
)
from .parts import (
    Grids,
    Heading,
    Note,
    Part,
    Sentence,
    Span,
    Table,
    WrittenSum,
    marks_where,
    parts_to_dicts,
    six,
    span_text,
)
from .patches import gather_patches, padding_source, tap_positions
from .pooled import pooled_cells_of

if TYPE_CHECKING:
    import torch

MAX_WRITTEN_TERMS = 121
"""Longest sum (number of products) written out term by term; longer ones show row sums."""
CHANNEL_LABELS = ("R", "G", "B")
CROSS_CORRELATION_NOTE = (
    "PyTorch's Conv2d computes cross-correlation: each weight multiplies the pixel under it as "
    "the kernel lies, without turning the kernel round (true convolution turns it 180 degrees "
    "first)."
)
PADDING_WORDS = {
    "zeros": "they hold 0",
    "reflect": "mirror images of the pixels next to the edge",
    "replicate": "copies of the edge pixel",
    "circular": "pixels from the opposite edge",
}


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
        if not self.pooled:
            return None
        row, col = self.pooled[0]["cell"]
        return int(row), int(col)

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
        """The explanation in words and grids (:func:`pixel_parts`),
        which every renderer styles."""
        return pixel_parts(self)

    def to_dict(self) -> dict:
        """JSON-ready: every array as nested lists ``(C, kh, kw)``, values at full precision;
        ``parts`` the explanation's words and grids (:mod:`convlens.explain.parts`)."""
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
    image: torch.Tensor | np.ndarray,
    weights: torch.Tensor | np.ndarray,
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
    ``(K, C, kh, kw)`` (as :func:`convlens.kernel_bank` or :func:`convlens.kernels.kernel_array`
    gives), PyTorch tensors or NumPy arrays: the arithmetic is NumPy on the cells it reads.
    ``row``/``col`` are conv-output coordinates; outside the map raises :class:`ConfigError`
    naming the valid range. ``flip`` adds true convolution (the kernel turned 180 degrees).
    ``scale`` is what 1.0 is in raw units.

    >>> import torch
    >>> patch = torch.tensor([[[88., 126, 145], [86, 125, 142], [85, 124, 141]]]) / 255
    >>> kernel = torch.tensor([[[[1., 0, 1], [1, 1, 0], [0, 0, 0]]]])
    >>> result = explain_pixel(patch, kernel, LayerConfig(pool=None), 0, 0, 0)
    >>> result.sum_lines()[-1]
    '444'
    """
    data, bank, steps = prepare(image, weights, config, kernel)
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
    bias = bias_of(config, kernel)
    value = total + bias
    explanation = PixelExplanation(
        kernel=kernel, kernel_name=kernel_name or f"kernel {kernel}", row=row, col=col,
        image_shape=(channels, height, width), conv_shape=conv_shape, config=config,
        input_rows=tap_rows[0].tolist(), input_cols=tap_cols[0].tolist(),
        source_rows=src_rows.tolist(), source_cols=src_cols.tolist(),
        padded=pad_rows[:, None] | pad_cols[None, :], patch=patch, weights=kernel_weights,
        products=products, total=total, bias=bias, value=value,
        activated=activate(config, np.array([value]))[0], scale=scale,
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


def _fed_cell(data, bank, config, kernel, cell, pixel, kernel_size) -> dict:
    """One pooled cell a pixel feeds: its value and whether the pixel wins it (max pooling)."""
    window = pool_window(config, cell)
    conv = conv_block(data, bank, config, kernel, window, kernel_size)
    activated = activate(config, conv)
    entry: dict = {"cell": list(cell), "window": window_dict(window)}
    if config.pool_type is PoolType.MAX:
        winner = np.unravel_index(int(np.argmax(activated)), activated.shape)
        position = [window[0][winner[0]], window[1][winner[1]]]
        entry.update(value=float(activated[winner]), winner=position,
                     wins=position == list(pixel))
    else:
        entry.update(value=float(activated.mean()), winner=None, wins=None)
    return entry


# --------------------------------------------------------------------------- in words


def pixel_parts(e: PixelExplanation) -> tuple[Part, ...]:
    """The words of one conv pixel's explanation (see :func:`convlens.explain.explain_pixel`):
    where the kernel lies, the padding, patch × kernel = products per channel, the sum written
    out, the division to normalized units, bias, activation, the pooled cell it feeds, true
    convolution when it was asked for, and the cross-correlation note.

    >>> import torch
    >>> from convlens.config import LayerConfig
    >>> patch = torch.tensor([[[88., 126, 145], [86, 125, 142], [85, 124, 141]]]) / 255
    >>> kernel = torch.tensor([[[[1., 0, 1], [1, 1, 0], [0, 0, 0]]]])
    >>> from convlens.explain.parts import find
    >>> parts = pixel_parts(explain_pixel(patch, kernel, LayerConfig(pool=None), 0, 0, 0))
    >>> print(find(parts, "divided").text)
    divided by 255: 444 / 255 = 1.74118
    """
    c = e.config
    field = e.receptive_field
    kh, kw = e.weights.shape[1:]
    scale_text = format_number(e.scale)
    channels, height, width = e.image_shape
    where = (f"conv pixel ({e.row}, {e.col}) of {e.kernel_name} in the {e.conv_shape[0]}x"
             f"{e.conv_shape[1]} conv map of the {channels}x{height}x{width} input: the "
             f"{kh}x{kw} kernel covers input rows {span_text(field['top'], field['bottom'])} "
             f"and cols {span_text(field['left'], field['right'])} (row {e.row} × stride "
             f"{c.stride} - padding {e.row * c.stride - field['top']} = {field['top']})")
    if c.dilation > 1:
        where += f", its taps {c.dilation} px apart"
    where += "; sizes are height x width, channels first"
    parts: list[Part] = [Heading(f"{e.kernel_name}: conv pixel ({e.row}, {e.col})"),
                         Sentence((Span(where + "."),), "where")]
    padded = int(e.padded.sum())
    if padded:
        mode = c.padding_mode.value
        parts.append(Sentence((Span(
            f"{padded} of {e.padded.size} cells lie in the padding ({mode}: "
            f"{PADDING_WORDS[mode]}).", "padding"),), "padding"))
    raw = e.patch.astype(np.float64) * e.scale
    parts += _product_grids(e, raw, e.weights, e.products, "kernel", "products")
    parts.append(WrittenSum("sum of products", tuple(e.sum_lines()), e.total * e.scale,
                            "0-255 units"))
    parts.append(Sentence((Span(
        f"divided by {scale_text}: {format_raw(e.total * e.scale)} / {scale_text} = "
        f"{six(e.total)}"),), "divided"))
    stage = Span(f" (the conv stage's number: conv[{e.kernel}, {e.row}, {e.col}] in "
                 "stages.npz)", "dim")
    parts.append(Sentence((*_value_spans("conv value", e.total, e.bias, e.value, "conv"),
                           stage), "conv"))
    parts.append(Sentence((Span(f"{c.activation.value}({six(e.value)}) = "),
                           Span(six(e.activated), "strong", "activated", e.activated)),
                          "activation"))
    parts += _fed_parts(e)
    if e.flipped_products is not None and e.flipped_total is not None:
        total = e.flipped_total
        parts.append(Heading("true convolution: the kernel turned 180 degrees", level=2))
        parts += _product_grids(e, None, e.flipped_weights, e.flipped_products, "kernel 180°",
                                "products")
        parts.append(WrittenSum("sum of products", tuple(e.sum_lines(flipped=True)),
                                total * e.scale, "0-255 units", key="convolution_sum"))
        divided = Span(f"divided by {scale_text}: {format_raw(total * e.scale)} / "
                       f"{scale_text} = {six(total)}; ")
        parts.append(Sentence((
            divided, *_value_spans("convolution value", total, e.bias, total + e.bias,
                                   "convolution"),
            Span(" (scipy.ndimage.convolve's number)", "dim")), "convolution"))
    parts.append(Note(CROSS_CORRELATION_NOTE, "cross_correlation"))
    return tuple(parts)


def _value_spans(label: str, total: float, bias: float, value: float, key: str
                 ) -> tuple[Span, ...]:
    """``conv value = 1.74118`` or ``conv value = 1.74118 + bias 0.25 = 1.99118``."""
    if not bias:
        return (Span(f"{label} = "), Span(six(value), "strong", key, value))
    return (Span(f"{label} = {six(total)} + bias {six(bias)} = "),
            Span(six(value), "strong", key, value))


def _product_grids(e: PixelExplanation, raw: np.ndarray | None, weights: np.ndarray,
                   products: np.ndarray, kernel_title: str, products_title: str) -> list[Part]:
    """One :class:`Grids` per channel: patch (0-255) [÷ scale: normalized] × kernel =
    products (0-255); ``raw`` None leaves the patch out (it is the one shown above)."""

    rows, cols = tuple(e.input_rows), tuple(e.input_cols)
    marks = marks_where(e.padded, "padding")
    grids: list[Part] = []
    for channel in range(e.channels):
        label = CHANNEL_LABELS[channel] if e.channels == 3 else ""
        tables: list[Table] = []
        operators: list[str] = []
        if raw is not None:
            tables += [
                Table.of("patch", "patch", raw[channel], format_raw, unit="0-255",
                         channel=label, marks=marks, row_labels=rows, col_labels=cols,
                         scale="raw"),
                Table.of("normalized", "normalized", e.patch[channel], lambda v: f"{v:.4f}",
                         unit=f"÷{format_number(e.scale)}", channel=label, marks=marks,
                         row_labels=rows, col_labels=cols, detail=True),
            ]
            operators += ["", "→"]
        tables.append(Table.of("kernel" if raw is not None else "flipped_kernel", kernel_title,
                               weights[channel], lambda v: format_number(v, 4), channel=label,
                               scale="signed"))
        operators.append("×" if raw is not None else "")
        scaled = products[channel] * e.scale
        tables.append(Table.of("products", products_title, scaled, format_raw, unit="0-255",
                               channel=label, marks=marks, row_labels=rows, col_labels=cols,
                               scale="signed"))
        operators.append("=")
        grids.append(Grids(tuple(tables), tuple(operators),
                           "products" if raw is not None else "convolution_products"))
    return grids


def _fed_parts(e: PixelExplanation) -> list[Part]:
    """Where the activated value goes: the pooled cells it feeds (wins or loses), none."""
    if e.pooled_shape is None:
        return [Sentence((Span("no pool stage: the activated value is the layer's output"),),
                         "pooled")]
    if not e.pooled:
        return [Sentence((Span("it lies in no pooling window: the pool skips it"),), "pooled")]
    parts: list[Part] = []
    for fed in e.pooled:
        row, col = fed["cell"]
        spans = [Span(f"feeds pooled cell ({row}, {col}) = "),
                 Span(six(fed["value"]), "", "pooled", fed["value"])]
        if fed["wins"] is True:
            spans.append(Span(": it wins its window (the maximum)", "winner"))
        elif fed["wins"] is False:
            winner = tuple(fed["winner"])
            spans.append(Span(f": the maximum of its window is conv pixel {winner}, so this "
                              "value is dropped"))
        else:
            spans.append(Span(" (the mean of its window)"))
        parts.append(Sentence(tuple(spans), "pooled"))
    return parts


__all__ = ["CROSS_CORRELATION_NOTE", "MAX_WRITTEN_TERMS", "PixelExplanation", "explain_pixel",
           "pixel_parts"]
