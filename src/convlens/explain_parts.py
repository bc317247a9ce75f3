"""Explanations as parts: the words of every explanation, written once, styled anywhere.

An explanation (one conv pixel, one pooled cell, a chain of sizes) is told as a short tuple of
parts:

* :class:`Heading` names what is explained (``sobel-h: conv pixel (0, 3)``);
* :class:`Sentence` says one thing in words, made of :class:`Span` pieces so a renderer can
  make a number bold or mark padding, and find a number by its ``key`` (``conv``,
  ``activated``, ...) with its exact ``value``;
* :class:`Grids` puts :class:`Table` grids of numbers side by side with the operators between
  them (patch ``×`` kernel ``=`` products);
* :class:`WrittenSum` is a sum written out term by term, then row by row, then its total;
* :class:`TextTable` is a table of words (the size chain's rows), its :class:`Column` s named;
* :class:`Note` is a side remark (shown small or dim).

:func:`pixel_parts` and :func:`pooled_parts` word the two explanations of
:mod:`convlens.explain`, :func:`chain_parts` a :class:`~convlens.sizes.SizeChain`; nothing
else in convlens words them. The renderers only style the parts: rich text (``convlens
explain``, ``convlens size``), HTML (:func:`convlens.display.parts_html`: notebooks, widgets
and ``report.html``), figures (:mod:`convlens.plot.explain`) and the page, which reads the
``parts`` list of an explanation's JSON (:func:`parts_to_dicts`)::

    {"kind": "heading", "text": ...}
    {"kind": "sentence", "key": ..., "text": ..., "spans": [{"text", "style", "key", "value"}]}
    {"kind": "note", "key": ..., "text": ...}
    {"kind": "grids", "key": ..., "operators": [...], "tables": [{"kind": "table", "key",
     "title", "unit", "channel", "caption", "cells", "values", "marks", "row_labels",
     "col_labels", "scale", "detail"}]}
    {"kind": "sum", "key": ..., "label": ..., "unit": ..., "lines": [...], "total": ...}
    {"kind": "text_table", "key": ..., "title": ..., "columns": [{"name", "align",
     "compact", "group"}], "rows": [[...]], "marks": [[...]] or null}

Span and mark styles are ``strong``, ``dim``, ``padding``, ``winner``, ``warning`` or
empty. A table's ``scale`` says how to colour it: ``raw`` (0 to the raw scale, pixels),
``signed`` (around 0) or ``plain`` (0 to its largest value). ``detail`` tables (the
normalized patch) are for the long renderers (text) and left out by the compact ones (HTML,
figures, the page).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from .numbers import format_number, format_raw

if TYPE_CHECKING:
    from .config import LayerConfig
    from .explain import PixelExplanation, PooledExplanation
    from .sizes import SizeChain

CHANNEL_LABELS = ("R", "G", "B")
MAX_WRITTEN_VALUES = 16
"""Most values a mean is written out with; longer ones end in ``... (N values)``."""

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


# --------------------------------------------------------------------------- the parts


@dataclass(frozen=True)
class Span:
    """A piece of a sentence: its ``text``, a ``style`` (``strong``, ``dim``, ``padding``,
    ``winner`` or empty) and, for a number, the ``key`` that names it and its exact ``value``."""

    text: str
    style: str = ""
    key: str = ""
    value: float | None = None


@dataclass(frozen=True)
class Heading:
    """What is explained, one line (``sobel-h: conv pixel (0, 3)``); ``level`` 2 for a
    sub-heading inside an explanation."""

    text: str
    level: int = 1
    kind = "heading"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "level": self.level}


@dataclass(frozen=True)
class Sentence:
    """One thing said in words, as :class:`Span` pieces; ``key`` says what it is about."""

    spans: tuple[Span, ...]
    key: str = ""
    kind = "sentence"

    @property
    def text(self) -> str:
        return "".join(span.text for span in self.spans)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "text": self.text,
                "spans": [asdict(span) for span in self.spans]}


@dataclass(frozen=True)
class Note:
    """A side remark, shown small or dim."""

    text: str
    key: str = ""
    kind = "note"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "text": self.text}


@dataclass(frozen=True)
class Table:
    """A ``(rows, cols)`` grid of numbers: ``cells`` the text of each, ``values`` the numbers
    (for colour), ``marks`` a style per cell (``padding``, ``winner`` or empty).

    ``title`` says what it holds, ``unit`` in what (``0-255``), ``channel`` which colour
    channel (``R``); :attr:`caption` puts them together. ``row_labels`` / ``col_labels`` are
    coordinates (input rows and cols), ``scale`` how to colour it (``raw``, ``signed``,
    ``plain``), ``detail`` True for a table only the long renderers show.
    """

    key: str
    title: str
    cells: tuple[tuple[str, ...], ...]
    values: tuple[tuple[float, ...], ...]
    unit: str = ""
    channel: str = ""
    marks: tuple[tuple[str, ...], ...] | None = None
    row_labels: tuple[int, ...] | None = None
    col_labels: tuple[int, ...] | None = None
    scale: str = "plain"
    detail: bool = False
    kind = "table"

    def caption(self, unit_style: str = " ({unit})") -> str:
        """``patch (0-255) [R]``; ``unit_style`` places the unit (``", {unit}"`` for text)."""
        text = self.title
        if self.unit:
            text += unit_style.format(unit=self.unit)
        if self.channel:
            text += f" [{self.channel}]"
        return text

    def array(self) -> np.ndarray:
        """The values as a float64 ``(rows, cols)`` array."""
        return np.array(self.values, dtype=np.float64).reshape(len(self.cells), -1)

    def mark_array(self, style: str) -> np.ndarray:
        """Boolean ``(rows, cols)``: the cells marked ``style``."""
        grid = np.zeros((len(self.cells), len(self.cells[0]) if self.cells else 0), dtype=bool)
        for (row, col), mark in np.ndenumerate(np.array(self.marks or [[""]], dtype=object)):
            if self.marks is not None and mark == style:
                grid[row, col] = True
        return grid

    def to_dict(self) -> dict:
        data = asdict(self)
        data["kind"] = self.kind
        data["caption"] = self.caption()
        return data


@dataclass(frozen=True)
class Grids:
    """Tables side by side: ``operators[i]`` stands before ``tables[i]`` (empty for none)."""

    tables: tuple[Table, ...]
    operators: tuple[str, ...]
    key: str = ""
    kind = "grids"

    def shown(self, detail: bool = True) -> list[tuple[str, Table]]:
        """``(operator, table)`` pairs, without the detail tables unless ``detail``."""
        return [(op, table) for op, table in zip(self.operators, self.tables)
                if detail or not table.detail]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "operators": list(self.operators),
                "tables": [table.to_dict() for table in self.tables]}


@dataclass(frozen=True)
class WrittenSum:
    """A sum written out: ``lines`` from the terms to the total (each line equals the one
    before), ``label`` what it is (``sum of products``), ``unit`` what its numbers are in,
    ``total`` the exact sum in those units."""

    label: str
    lines: tuple[str, ...]
    total: float
    unit: str = ""
    key: str = "sum"
    kind = "sum"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "label": self.label, "unit": self.unit,
                "lines": list(self.lines), "total": self.total}


@dataclass(frozen=True)
class Column:
    """One column of a :class:`TextTable`: its ``name``, ``align`` (``left``/``right``) and
    ``compact`` True for a column only the compact renderers show (HTML, the page), where the
    long ones (text) say the same in sentences after the table; ``group`` True for a column
    whose value belongs to a group of rows (a layer), which a renderer may write once."""

    name: str
    align: str = "left"
    compact: bool = False
    group: bool = False


@dataclass(frozen=True)
class TextTable:
    """A table of words and numbers: ``columns``, then ``rows`` of cell texts; ``marks`` a style
    per cell (``warning`` or empty). Every row holds all its cells (a renderer may blank a value
    that repeats the row above)."""

    key: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]
    marks: tuple[tuple[str, ...], ...] | None = None
    kind = "text_table"

    def shown(self, compact: bool) -> list[int]:
        """Indices of the columns a compact (or long) renderer shows."""
        return [i for i, column in enumerate(self.columns) if compact or not column.compact]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "title": self.title,
                "columns": [asdict(column) for column in self.columns],
                "rows": [list(row) for row in self.rows],
                "marks": None if self.marks is None else [list(row) for row in self.marks]}


Part = Heading | Sentence | Note | Grids | WrittenSum | TextTable


def parts_to_dicts(parts: Iterable[Part]) -> list[dict]:
    """The parts as JSON-ready dicts (the ``parts`` list of an explanation's JSON)."""
    return [part.to_dict() for part in parts]


def find(parts: Iterable[Part], key: str) -> Part | None:
    """The first part whose ``key`` is ``key``, or None."""
    return next((part for part in parts if getattr(part, "key", None) == key), None)


# --------------------------------------------------------------------------- numbers as text


def six(value: float) -> str:
    """A value to six significant digits: ``1.74118``."""
    return f"{value:.6g}"


def _weight(value: float) -> str:
    return format_number(float(value), 4)


def _texts(values: np.ndarray, fmt: Callable[[float], str]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(fmt(float(v)) for v in row) for row in values)


def _numbers(values: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in np.asarray(values, dtype=np.float64))


def _marks(mask: np.ndarray, style: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(style if flag else "" for flag in row) for row in mask)


def _span_range(first: int, last: int) -> str:
    return f"{first}..{last}"


# --------------------------------------------------------------------------- one conv pixel


def pixel_parts(e: PixelExplanation) -> tuple[Part, ...]:
    """The words of one conv pixel's explanation (see :func:`convlens.explain.explain_pixel`):
    where the kernel lies, the padding, patch × kernel = products per channel, the sum written
    out, the division to normalized units, bias, activation, the pooled cell it feeds, true
    convolution when it was asked for, and the cross-correlation note.

    >>> import torch
    >>> from convlens.config import LayerConfig
    >>> from convlens.explain import explain_pixel
    >>> patch = torch.tensor([[[88., 126, 145], [86, 125, 142], [85, 124, 141]]]) / 255
    >>> kernel = torch.tensor([[[[1., 0, 1], [1, 1, 0], [0, 0, 0]]]])
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
             f"{kh}x{kw} kernel covers input rows {_span_range(field['top'], field['bottom'])} "
             f"and cols {_span_range(field['left'], field['right'])} (row {e.row} × stride "
             f"{c.stride} - padding {e.row * c.stride - field['top']} = {field['top']})")
    if c.dilation > 1:
        where += f", its taps {c.dilation} px apart"
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
    marks = _marks(e.padded, "padding")
    grids: list[Part] = []
    for channel in range(e.channels):
        label = CHANNEL_LABELS[channel] if e.channels == 3 else ""
        tables: list[Table] = []
        operators: list[str] = []
        if raw is not None:
            tables += [
                Table("patch", "patch", _texts(raw[channel], format_raw), _numbers(raw[channel]),
                      "0-255", label, marks, rows, cols, "raw"),
                Table("normalized", "normalized", _texts(e.patch[channel], lambda v: f"{v:.4f}"),
                      _numbers(e.patch[channel]), f"÷{format_number(e.scale)}", label, marks,
                      rows, cols, "plain", detail=True),
            ]
            operators += ["", "→"]
        tables.append(Table("kernel" if raw is not None else "flipped_kernel", kernel_title,
                            _texts(weights[channel], _weight), _numbers(weights[channel]), "",
                            label, None, None, None, "signed"))
        operators.append("×" if raw is not None else "")
        scaled = products[channel] * e.scale
        tables.append(Table("products", products_title, _texts(scaled, format_raw),
                            _numbers(scaled), "0-255", label, marks, rows, cols, "signed"))
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


# --------------------------------------------------------------------------- one pooled cell


def pooled_parts(e: PooledExplanation) -> tuple[Part, ...]:
    """The words of one pooled cell's explanation (see
    :func:`convlens.explain.explain_pooled`): its window in the conv map and the input, the
    window's conv and activated values, and the max with its winner or the mean."""
    c = e.config
    stride = c.effective_pool_stride
    field = e.receptive_field
    size = f"{len(e.window_rows)}x{len(e.window_cols)}"
    where = (f"pooled cell ({e.row}, {e.col}) of {e.kernel_name} in the {e.pooled_shape[0]}x"
             f"{e.pooled_shape[1]} pooled map: {c.pool_type.value} pool {size}, stride "
             f"{stride}: window = conv rows {_span_range(e.window_rows[0], e.window_rows[-1])}, "
             f"cols {_span_range(e.window_cols[0], e.window_cols[-1])} (row {e.row} × stride "
             f"{stride}); input rows {_span_range(field['top'], field['bottom'])}, cols "
             f"{_span_range(field['left'], field['right'])}.")
    rows, cols = tuple(e.window_rows), tuple(e.window_cols)
    winner = np.zeros(e.values.shape, dtype=bool)
    if e.winner is not None:
        winner[e.window_rows.index(e.winner[0]), e.window_cols.index(e.winner[1])] = True
    marks = _marks(winner, "winner") if e.winner is not None else None
    grids = Grids((
        Table("conv_values", "conv values", _texts(e.conv_values, six),
              _numbers(e.conv_values), row_labels=rows, col_labels=cols, scale="signed"),
        Table("values", f"after {c.activation.value}", _texts(e.values, six),
              _numbers(e.values), marks=marks, row_labels=rows, col_labels=cols),
        Table("pooled", "pooled", ((six(e.value),),), ((e.value,),)),
    ), ("", "→", "→"), "window")
    count = e.values.size
    if e.winner is not None:
        result = Sentence((
            Span(f"the pool keeps the max of the {count} values: max = "),
            Span(six(e.value), "strong", "pooled", e.value),
            Span(f", won by conv pixel ({e.winner[0]}, {e.winner[1]})", "winner"),
            Span(f"; the other {count - 1} values are dropped"),
        ), "max")
    else:
        terms = [six(v) for v in e.values.ravel()]
        if len(terms) > MAX_WRITTEN_VALUES:
            terms = [*terms[:MAX_WRITTEN_VALUES - 1], f"... ({len(terms)} values)"]
        result = Sentence((
            Span(f"mean of {count} values = "), Span(six(e.value), "strong", "pooled", e.value),
            Span(f", that is ({' + '.join(terms)}) / {count}"),
        ), "mean")
    return (Heading(f"{e.kernel_name}: pooled cell ({e.row}, {e.col})"),
            Sentence((Span(where),), "where"), grids, result)


# --------------------------------------------------------------------------- a size chain

FORMULA_HEADING = "(I - F + 2P)/S + 1"
CHAIN_LEGEND = ("field: input pixels one output pixel depends on; jump: input pixels between "
                "neighbouring outputs; same P: padding that keeps the size at stride 1")


def chain_parts(chain: SizeChain) -> tuple[Part, ...]:
    """The words of a size chain (:func:`convlens.sizes.size_chain`): one table row per layer
    and axis (the formula with the numbers put in, the output size, receptive field, jump and
    'same' padding, the rounding note), a warning per inexact division, and what one output
    pixel sees.

    >>> from convlens.sizes import size_chain
    >>> parts = chain_parts(size_chain(5, "conv3"))
    >>> find(parts, "field").text.split(". ")[0], parts[0].rows[0][3]
    ('output 3x3', '(5 - 3 + 2×0)/1 + 1 = 3')
    """
    height, width = chain.input_size
    out_h, out_w = chain.output_size
    field_h, field_w = chain.receptive_field
    columns = (Column("#", "right", group=True), Column("layer", group=True), Column("axis"),
               Column(FORMULA_HEADING), Column("out", "right"), Column("field", "right"),
               Column("note", compact=True), Column("jump", "right"),
               Column("same P", group=True))
    rows, marks = [], []
    for step in chain.steps:
        layer = step.layer
        name = layer.describe()
        if layer.dilation > 1:
            name += "\n" + ", ".join(
                f"(F = {layer.dilation}×({k}-1)+1 = {span})" for k, span in
                sorted({(step.rows.kernel, step.rows.span), (step.cols.kernel, step.cols.span)}))
        for axis, item in step.axes():
            rows.append((str(step.index), name, axis, item.formula(), str(item.size_out),
                         str(item.field), item.rounding_note(), str(item.jump),
                         step.same_padding()))
            marks.append(("",) * 3 + ("" if item.exact else "warning",) + ("",) * 5)
    title = (f"{height}x{width} input -> {out_h}x{out_w} output; one output pixel sees "
             f"{field_h}x{field_w} input pixels")
    parts: list[Part] = [TextTable("chain", title, columns, tuple(rows), tuple(marks)),
                         Note(CHAIN_LEGEND, "legend")]
    parts += [Sentence((Span("warning:", "warning"), Span(f" {warning}")), "warning")
              for warning in chain.warnings()]
    if chain.steps:
        box = chain.field_of(0, 0)
        padding = ", partly padding" if min(box["top"], box["left"]) < 0 else ""
        parts.append(Sentence((Span(
            f"output {out_h}x{out_w}. Each output pixel depends on a {field_h}x{field_w} region "
            f"of the input; neighbouring outputs are {chain.steps[-1].rows.jump} px apart in "
            f"the input (pixel (0, 0) sees input rows {_span_range(box['top'], box['bottom'])}, "
            f"cols {_span_range(box['left'], box['right'])}{padding})."),), "field"))
    return tuple(parts)


def layer_words(config: LayerConfig) -> str:
    """``conv (stride 1, padding 0 zeros, dilation 1), relu, max pool 2 stride 2``: a layer's
    settings in a few words."""
    pool = (f", {config.pool_type.value} pool {config.pool} stride "
            f"{config.effective_pool_stride}" if config.pool else ", no pool")
    return (f"conv (stride {config.stride}, padding {config.padding} "
            f"{config.padding_mode.value}, dilation {config.dilation}), "
            f"{config.activation.value}{pool}")


__all__ = [
    "CROSS_CORRELATION_NOTE",
    "Column",
    "Grids",
    "Heading",
    "Note",
    "Part",
    "Sentence",
    "Span",
    "Table",
    "TextTable",
    "WrittenSum",
    "chain_parts",
    "find",
    "layer_words",
    "parts_to_dicts",
    "pixel_parts",
    "pooled_parts",
    "six",
]
