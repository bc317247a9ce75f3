"""A chain of sizes in words: the table ``convlens size`` prints and notebooks show.

:func:`chain_parts` words a :class:`~convlens.sizes.SizeChain` (the arithmetic is
:mod:`convlens.sizes`) as :mod:`.parts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .parts import Column, Note, Part, Sentence, Span, TextTable, span_text

if TYPE_CHECKING:
    from ..sizes import SizeChain

FORMULA_HEADING = "(I - F + 2P)/S + 1"
CHAIN_LEGEND = ("field: input pixels one output pixel depends on; jump: input pixels between "
                "neighbouring outputs; same P: padding that keeps the size at stride 1")


def chain_parts(chain: SizeChain) -> tuple[Part, ...]:
    """The words of a size chain (:func:`convlens.sizes.size_chain`): one table row per layer
    and axis (the formula with the numbers put in, the output size, receptive field, jump and
    'same' padding, the rounding note), a warning per inexact division, and what one output
    pixel sees.

    >>> from convlens.explain.parts import find
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
        if layer.dilation > 1:  # the dilated kernel's span; rows first, each axis named
            spans = [f"{layer.dilation}×({item.kernel}-1)+1 = {item.span}"
                     for item in (step.rows, step.cols)]
            name += (f"\n(F = {spans[0]})" if spans[0] == spans[1] else
                     f"\n(F = {spans[0]} rows, {spans[1]} cols)")
        for axis, item in step.axes():
            rows.append((str(step.index), name, axis, item.formula(), str(item.size_out),
                         str(item.field), item.rounding_note(), str(item.jump),
                         step.same_padding()))
            marks.append(("",) * 3 + ("" if item.exact else "warning",) + ("",) * 5)
    title = (f"{height}x{width} input -> {out_h}x{out_w} output; one output pixel sees "
             f"{field_h}x{field_w} input pixels (height x width)")
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
            f"the input (pixel (0, 0) sees input rows {span_text(box['top'], box['bottom'])}, "
            f"cols {span_text(box['left'], box['right'])}{padding})."),), "field"))
    return tuple(parts)


__all__ = ["CHAIN_LEGEND", "FORMULA_HEADING", "chain_parts"]
