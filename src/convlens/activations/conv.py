"""One number of a Conv2d's output: the receptive patch in each input channel of its group,
that channel's kernel slice and products, each channel's partial sum ranked by contribution,
the bias and the total. Groups, depthwise, stride, dilation, every padding mode and 'same'
padding are read from the layer; padded taps are marked and filled as the mode says."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import PaddingMode
from ..explain.parts import (
    Grids,
    Heading,
    Note,
    Part,
    Sentence,
    Span,
    Table,
    WrittenSum,
    six,
)
from ..explain.patches import padding_source
from ..explain.pixel import CROSS_CORRELATION_NOTE, PADDING_WORDS
from .base import TOP_DEFAULT, Where, grid_numbers, grid_texts, ranked
from .ops import LayerOp


@dataclass(frozen=True, kw_only=True, eq=False)
class ConvExplanation(Where):
    """``patches``, ``kernel`` and ``products`` are ``(C_g, kh, kw)`` over the input channels
    ``in_channels`` of this output channel's group; ``partial`` ``(C_g,)`` their sums;
    ``input_rows``/``input_cols`` the taps' input coordinates (outside ``[0, H)`` in the
    padding, marked in ``padded`` ``(kh, kw)``); ``total = partial.sum() + bias``."""

    in_channels: tuple[int, ...]
    groups: int
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilation: tuple[int, int]
    padding_mode: str
    input_shape: tuple[int, int, int]
    input_rows: tuple[int, ...]
    input_cols: tuple[int, ...]
    padded: np.ndarray
    patches: np.ndarray
    kernel: np.ndarray
    products: np.ndarray
    partial: np.ndarray
    bias: float
    total: float
    top: int = TOP_DEFAULT
    title: str = "conv output"

    def ranked(self) -> tuple[list[int], float]:
        """Positions (in ``in_channels``) of the ``top`` largest ``|partial|``, and the rest."""
        return ranked(self.partial, self.top)

    def strongest(self) -> tuple[int, int, int]:
        """``(input channel, row, col)`` of the largest ``|product|``, a real pixel."""
        products = np.where(self.padded[None], 0.0, self.products)
        c, i, j = np.unravel_index(int(np.argmax(np.abs(products))), products.shape)
        return self.in_channels[c], self.input_rows[i], self.input_cols[j]

    def parts(self) -> tuple[Part, ...]:
        kh, kw = self.kernel.shape[1:]
        c, h, w = self.input_shape
        top, _, left, _ = self.pads
        group = (f" (group {self.in_channels[0] // len(self.in_channels)} of {self.groups}: "
                 f"input channels {self.in_channels[0]}..{self.in_channels[-1]})"
                 if self.groups > 1 else "")
        where = (f"the {kh}x{kw} kernel of output channel {self.channel} lies on input rows "
                 f"{self.input_rows[0]}..{self.input_rows[-1]} and cols {self.input_cols[0]}.."
                 f"{self.input_cols[-1]} of the {c}x{h}x{w} input (row {self.y} × stride "
                 f"{self.stride[0]} - padding {top}, col {self.x} × stride {self.stride[1]} - "
                 f"padding {left}){group}")
        if max(self.dilation) > 1:
            where += f", its taps {self.dilation[0]}x{self.dilation[1]} px apart"
        parts: list[Part] = [self.heading(self.title), Sentence((Span(where + "."),), "where")]
        padded = int(self.padded.sum())
        if padded:
            parts.append(Sentence((Span(
                f"{padded} of {self.padded.size} taps lie in the padding ({self.padding_mode}: "
                f"{PADDING_WORDS[self.padding_mode]}).", "padding"),), "padding"))
        shown, rest = self.ranked()
        marks = tuple(tuple("padding" if p else "" for p in row) for row in self.padded)
        rows, cols = tuple(self.input_rows), tuple(self.input_cols)
        for index in shown:
            label = f"in {self.in_channels[index]}"
            parts.append(Grids((
                Table("patch", "patch", grid_texts(self.patches[index]),
                      grid_numbers(self.patches[index]), channel=label, marks=marks,
                      row_labels=rows, col_labels=cols, scale="signed"),
                Table("kernel", "kernel", grid_texts(self.kernel[index]),
                      grid_numbers(self.kernel[index]), channel=label, scale="signed"),
                Table("products", "products", grid_texts(self.products[index]),
                      grid_numbers(self.products[index]), channel=label, marks=marks,
                      row_labels=rows, col_labels=cols, scale="signed"),
                Table("partial", "sum", ((six(float(self.partial[index])),),),
                      ((float(self.partial[index]),),), channel=label, scale="signed"),
            ), ("", "×", "=", "→"), "products"))
        parts += self.sum_parts(shown, rest)
        parts.append(self.result("conv output", self.total))
        parts += self.field_sentence()
        parts.append(Note(CROSS_CORRELATION_NOTE, "cross_correlation"))
        return tuple(parts)

    def sum_parts(self, shown: list[int], rest: float) -> list[Part]:
        """The channels' partial sums, largest first, the rest summed, plus the bias."""
        terms = [f"{six(float(self.partial[i]))} (in {self.in_channels[i]})" for i in shown]
        hidden = len(self.partial) - len(shown)
        if hidden:
            terms.append(f"{six(rest)} (the other {hidden} input channels)")
        if self.bias:
            terms.append(f"{six(self.bias)} (bias)")
        lines = (" + ".join(terms).replace("+ -", "- "), six(self.total))
        parts: list[Part] = [Heading("input channels ranked by contribution", 2),
                             WrittenSum("partial sums + bias", lines, self.total, key="sum")]
        return parts

    def to_dict(self) -> dict:
        shown, rest = self.ranked()
        return {**self.where_dict(), "what": "conv", "total": self.total, "bias": self.bias,
                "groups": self.groups, "stride": list(self.stride), "padding": list(self.pads),
                "dilation": list(self.dilation), "padding_mode": self.padding_mode,
                "input_shape": list(self.input_shape),
                "input_rows": list(self.input_rows), "input_cols": list(self.input_cols),
                "padded": self.padded.tolist(),
                "channels": [{"input_channel": self.in_channels[i],
                              "partial_sum": float(self.partial[i]),
                              "patch": self.patches[i].tolist(),
                              "kernel": self.kernel[i].tolist(),
                              "products": self.products[i].tolist()} for i in shown],
                "rest": {"channels": len(self.partial) - len(shown), "sum": rest},
                "partial_sums": self.partial.tolist(),
                "input_channels": list(self.in_channels)}


def conv_explanation(where: dict, op: LayerOp, data: np.ndarray, top: int,
                     weight: np.ndarray | None = None, bias: np.ndarray | None = None,
                     title: str = "conv output") -> ConvExplanation:
    """Work out ``where``'s number of conv ``op`` on its input ``data`` ``(C, H, W)``
    (float64); ``weight``/``bias`` replace the layer's (folded conv + batch norm)."""
    p = op.params
    weight = p["weight"] if weight is None else weight
    bias_all = p["bias"] if bias is None else bias
    channel, y, x = where["channel"], where["y"], where["x"]
    out_channels, per_group, kh, kw = weight.shape
    groups = p["groups"]
    group = channel // (out_channels // groups)
    in_channels = tuple(range(group * per_group, (group + 1) * per_group))
    top_pad, _, left_pad, _ = p["pads"]
    (sh, sw), (dh, dw) = p["stride"], p["dilation"]
    height, width = data.shape[1:]
    rows = y * sh + np.arange(kh) * dh - top_pad
    cols = x * sw + np.arange(kw) * dw - left_pad
    mode: PaddingMode = p["padding_mode"]
    src_rows, pad_rows = padding_source(rows, height, mode)
    src_cols, pad_cols = padding_source(cols, width, mode)
    patch = data[np.ix_(list(in_channels), np.maximum(src_rows, 0), np.maximum(src_cols, 0))]
    padded = pad_rows[:, None] | pad_cols[None, :]
    if mode is PaddingMode.ZEROS:
        patch = np.where(padded[None], 0.0, patch)
    kernel = weight[channel]
    products = patch * kernel
    partial = products.sum(axis=(1, 2))
    bias_value = float(bias_all[channel]) if bias_all is not None else 0.0
    return ConvExplanation(
        **where, in_channels=in_channels, groups=groups, stride=(sh, sw),
        pads=tuple(p["pads"]), dilation=(dh, dw), padding_mode=mode.value,
        input_shape=tuple(data.shape), input_rows=tuple(int(r) for r in rows),
        input_cols=tuple(int(c) for c in cols), padded=padded, patches=patch, kernel=kernel,
        products=products, partial=partial, bias=bias_value,
        total=float(partial.sum() + bias_value), top=top, title=title)
