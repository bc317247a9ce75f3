"""One number of a Linear layer: the inputs that contribute most (weight × input), with each
input's place in the map it was flattened from, the rest summed, the bias; and, for the
model's own output, the softmax: each class's share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..explain.parts import Column, Heading, Part, Sentence, Span, TextTable, WrittenSum, six
from .base import TOP_DEFAULT, Where, ranked

SHARES_SHOWN = 5
"""Classes listed with their softmax share."""


@dataclass(frozen=True, kw_only=True, eq=False)
class LinearExplanation(Where):
    """``inputs``/``weights``/``products`` ``(F,)``; ``map_shape`` ``(C, H, W)`` of the map
    the inputs were flattened from (``None``: they were not, or it is not known), made by
    layer ``map_source``;
    ``shares`` ``[(class index, name, probability)]`` largest first where this layer's output
    is the model's output, with ``share`` the chosen output's."""

    inputs: np.ndarray
    weights: np.ndarray
    products: np.ndarray
    bias: float
    total: float
    map_shape: tuple[int, int, int] | None = None
    top: int = TOP_DEFAULT
    shares: tuple[tuple[int, str, float], ...] = ()
    share: float | None = None
    map_source: str | None = None

    def place(self, index: int) -> str:
        """``(c, y, x)`` of flattened input ``index`` in its map, else ``[index]``."""
        if self.map_shape is None:
            return f"[{index}]"
        c, y, x = np.unravel_index(index, self.map_shape)
        return f"({c}, {y}, {x})"

    def position_of(self, index: int) -> tuple[int, ...]:
        if self.map_shape is None:
            return (index,)
        return tuple(int(v) for v in np.unravel_index(index, self.map_shape))

    def parts(self) -> tuple[Part, ...]:
        shown, rest = ranked(self.products, self.top)
        where = (f"output {self.channel} = sum over the {len(self.inputs)} inputs of weight × "
                 "input, plus the bias")
        if self.map_shape is not None:
            c, h, w = self.map_shape
            where += f"; the inputs are the {c}x{h}x{w} map flattened, (channel, y, x) below"
        rows = tuple((self.place(i), six(float(self.inputs[i])), six(float(self.weights[i])),
                      six(float(self.products[i]))) for i in shown)
        columns = (Column("input at"), Column("value", "right"), Column("weight", "right"),
                   Column("product", "right"))
        terms = [six(float(self.products[i])) for i in shown]
        hidden = len(self.products) - len(shown)
        if hidden:
            terms.append(f"{six(rest)} (the other {hidden})")
        if self.bias:
            terms.append(f"{six(self.bias)} (bias)")
        parts: list[Part] = [
            self.heading("dense output"), Sentence((Span(where + "."),), "where"),
            TextTable("inputs", f"the {len(shown)} largest contributions", columns, rows),
            WrittenSum("products + bias", (" + ".join(terms).replace("+ -", "- "),
                                           six(self.total)), self.total, key="sum"),
            self.result("dense output", self.total)]
        if self.shares:
            parts.append(Heading("softmax: each class's share", 2))
            parts.append(Sentence((
                Span("this is the model's output; softmax turns it into probabilities "
                     "e^z / Σ e^z: "),
                Span(", ".join(f"{name} {share:.1%}" for _, name, share in self.shares)),
                Span(f"; output {self.channel} gets "),
                Span(f"{(self.share or 0):.2%}", "strong", "share", self.share)), "softmax"))
        parts += self.field_sentence()
        return tuple(parts)

    def to_dict(self) -> dict:
        shown, rest = ranked(self.products, self.top)
        return {**self.where_dict(), "what": "linear", "total": self.total, "bias": self.bias,
                "map_shape": None if self.map_shape is None else list(self.map_shape),
                "map_layer": self.map_source,
                "inputs": [{"index": i, "at": list(self.position_of(i)),
                            "value": float(self.inputs[i]), "weight": float(self.weights[i]),
                            "product": float(self.products[i])} for i in shown],
                "rest": {"inputs": len(self.products) - len(shown), "sum": rest},
                "softmax": [{"class": k, "name": name, "share": share}
                            for k, name, share in self.shares],
                "share": self.share}


def linear_explanation(where: dict, weight: np.ndarray, bias: np.ndarray | None,
                       data: np.ndarray, map_shape, top: int,
                       shares: tuple[tuple[int, str, float], ...] = (),
                       share: float | None = None, map_source: str | None = None
                       ) -> LinearExplanation:
    """``data`` the layer's input ``(F,)``; ``map_shape`` the map it was flattened from."""
    row = weight[where["channel"]]
    products = data * row
    bias_value = float(bias[where["channel"]]) if bias is not None else 0.0
    return LinearExplanation(**where, inputs=data, weights=row, products=products,
                             bias=bias_value, total=float(products.sum() + bias_value),
                             map_shape=map_shape, top=top, shares=shares, share=share,
                             map_source=map_source)
