"""One number of an elementwise activation (ReLU, LeakyReLU, GELU, SiLU, Hardswish, Sigmoid,
Tanh, ReLU6, Hardsigmoid): its formula with the numbers put in."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..explain.parts import Part, Sentence, Span, WrittenSum, six
from .base import Where
from .ops import LayerOp

FORMULAS = {
    "relu": "max(0, v)",
    "leaky_relu": "v if v > 0, else slope × v",
    "gelu": "v × Φ(v) = v × (1 + erf(v / √2)) / 2",
    "gelu_tanh": "v × (1 + tanh(√(2/π) × (v + 0.044715 v³))) / 2",
    "silu": "v × sigmoid(v) = v / (1 + e^-v)",
    "hardswish": "v × min(max(v + 3, 0), 6) / 6",
    "sigmoid": "1 / (1 + e^-v)",
    "tanh": "tanh(v) = (e^v - e^-v) / (e^v + e^-v)",
    "relu6": "min(max(0, v), 6)",
    "hardsigmoid": "min(max(v + 3, 0), 6) / 6",
}


def apply(function: str, v: float, slope: float = 0.01, approximate: str = "none"
          ) -> tuple[float, list[str]]:
    """``function(v)`` in float64 and the steps written out with the numbers."""
    if function == "relu":
        out = max(0.0, v)
        return out, [f"max(0, {six(v)})", six(out)]
    if function == "leaky_relu":
        out = v if v > 0 else slope * v
        return out, ([six(v)] if v > 0 else [f"{slope:g} × {six(v)}", six(out)])
    if function == "gelu":
        if approximate == "tanh":
            inner = math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)
            out = v * (1 + math.tanh(inner)) / 2
            return out, [f"{six(v)} × (1 + tanh({six(inner)})) / 2", six(out)]
        phi = (1 + math.erf(v / math.sqrt(2))) / 2
        out = v * phi
        return out, [f"{six(v)} × Φ({six(v)})", f"{six(v)} × {six(phi)}", six(out)]
    if function == "silu":
        sig = 1 / (1 + math.exp(-v)) if v > -700 else 0.0
        out = v * sig
        return out, [f"{six(v)} × sigmoid({six(v)})", f"{six(v)} × {six(sig)}", six(out)]
    if function == "hardswish":
        gate = min(max(v + 3, 0.0), 6.0)
        out = v * gate / 6
        return out, [f"{six(v)} × min(max({six(v)} + 3, 0), 6) / 6",
                     f"{six(v)} × {six(gate)} / 6", six(out)]
    if function == "relu6":
        out = min(max(0.0, v), 6.0)
        return out, [f"min(max(0, {six(v)}), 6)", six(out)]
    if function == "hardsigmoid":
        out = min(max(v + 3, 0.0), 6.0) / 6
        return out, [f"min(max({six(v)} + 3, 0), 6) / 6", six(out)]
    if function == "sigmoid":
        out = 1 / (1 + math.exp(-v)) if v > -700 else 0.0
        return out, [f"1 / (1 + e^{six(-v)})", six(out)]
    out = math.tanh(v)
    return out, [f"tanh({six(v)})", six(out)]


@dataclass(frozen=True, kw_only=True, eq=False)
class ActivationFunctionExplanation(Where):
    """``function`` (``relu``, ...) applied to ``input``, the value at the same place of the
    layer's input; ``lines`` the formula with the numbers, step by step."""

    function: str
    formula: str
    input: float
    lines: tuple[str, ...]
    total: float
    slope: float | None = None

    def parts(self) -> tuple[Part, ...]:
        return (self.heading("activation output"),
                Sentence((Span(f"{self.function}(v) = {self.formula}, with v = "),
                          Span(six(self.input), "strong", "input", self.input),
                          Span(" (the layer's input at the same place)")), "formula"),
                WrittenSum(f"{self.function}({six(self.input)})", self.lines, self.total,
                           key="sum"),
                self.result(f"{self.function} output", self.total),
                *self.field_sentence())

    def to_dict(self) -> dict:
        return {**self.where_dict(), "what": "activation", "function": self.function,
                "formula": self.formula, "input": self.input, "total": self.total,
                "slope": self.slope, "written": list(self.lines)}


def activation_explanation(where: dict, op: LayerOp, data: np.ndarray
                           ) -> ActivationFunctionExplanation:
    """``data`` is the layer's input, the same shape as its output (batch left out)."""
    p = op.params
    index = (where["channel"],) if where["y"] is None else (where["channel"], where["y"],
                                                            where["x"])
    v = float(data[index])
    function = p["function"]
    key = "gelu_tanh" if function == "gelu" and p.get("approximate") == "tanh" else function
    total, lines = apply(function, v, p.get("slope", 0.01), p.get("approximate", "none"))
    formula = FORMULAS[key].replace("slope", f"{p['slope']:g}") if function == "leaky_relu" \
        else FORMULAS[key]
    return ActivationFunctionExplanation(
        **where, function=function, formula=formula, input=v, lines=tuple(lines), total=total,
        slope=p.get("slope") if function == "leaky_relu" else None)
