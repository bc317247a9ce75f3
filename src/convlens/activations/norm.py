"""One number of a BatchNorm2d in eval mode: ``(x - mean) / sqrt(var + eps) * weight + bias``
with the numbers; when a conv feeds it, the conv and the batch norm folded into one affine
step (the conv's weights times ``weight / sqrt(var + eps)``, its bias shifted), which gives the
same number."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..explain.parts import Heading, Part, Sentence, Span, WrittenSum, six
from .base import Where
from .conv import ConvExplanation, conv_explanation
from .ops import LayerOp


@dataclass(frozen=True, kw_only=True, eq=False)
class BatchNormExplanation(Where):
    """``input`` the value entering at the same place; ``mean``/``var`` the running
    statistics of this channel, ``eps``, ``weight``/``bias`` its affine step; ``folded`` the
    conv that feeds it with the batch norm folded in (``None`` where no conv feeds it)."""

    input: float
    mean: float
    var: float
    eps: float
    weight: float
    bias: float
    total: float
    folded: ConvExplanation | None = None
    source: str | None = None

    @property
    def scale(self) -> float:
        """``weight / sqrt(var + eps)``: what the batch norm multiplies by."""
        return self.weight / math.sqrt(self.var + self.eps)

    def parts(self) -> tuple[Part, ...]:
        std = math.sqrt(self.var + self.eps)
        lines = (f"({six(self.input)} - {six(self.mean)}) / sqrt({six(self.var)} + "
                 f"{self.eps:g}) × {six(self.weight)} + {six(self.bias)}",
                 f"{six(self.input - self.mean)} / {six(std)} × {six(self.weight)} + "
                 f"{six(self.bias)}",
                 six(self.total))
        parts: list[Part] = [
            self.heading("batch norm output"),
            Sentence((Span("eval mode: the running statistics of channel "
                           f"{self.channel} normalize the input "),
                      Span(six(self.input), "strong", "input", self.input),
                      Span(" (x - mean) / sqrt(var + eps) × weight + bias.")), "formula"),
            WrittenSum("batch norm", lines, self.total, key="sum"),
            self.result("batch norm output", self.total)]
        if self.folded is not None:
            f = self.folded
            parts += [
                Heading(f"{self.source} and {self.layer} folded into one conv", 2),
                Sentence((Span(f"the conv's weights × {six(self.scale)} (weight / sqrt(var + "
                               f"eps)), its bias becomes (bias - mean) × {six(self.scale)} + "
                               f"{six(self.bias)} = {six(f.bias)}: the folded conv gives "),
                          Span(six(f.total), "strong", "folded", f.total),
                          Span(", the same number.")), "folded")]
        parts += self.field_sentence()
        return tuple(parts)

    def to_dict(self) -> dict:
        data = {**self.where_dict(), "what": "batchnorm", "total": self.total,
                "input": self.input, "mean": self.mean, "var": self.var, "eps": self.eps,
                "weight": self.weight, "bias": self.bias, "scale": self.scale,
                "folded": None}
        if self.folded is not None:
            data["folded"] = {"conv": self.source, "total": self.folded.total,
                              "bias": self.folded.bias,
                              "partial_sums": self.folded.partial.tolist()}
        return data


def batchnorm_explanation(where: dict, op: LayerOp, data: np.ndarray,
                          conv: tuple[str, LayerOp, np.ndarray] | None, top: int
                          ) -> BatchNormExplanation:
    """``data`` is the batch norm's input ``(C, H, W)``; ``conv`` the ``(name, op, input)`` of
    the conv that made it, if one did."""
    p = op.params
    c, y, x = where["channel"], where["y"], where["x"]
    value = float(data[c, y, x])
    mean, var, weight, bias = (float(p[k][c]) for k in ("mean", "var", "weight", "bias"))
    total = (value - mean) / math.sqrt(var + p["eps"]) * weight + bias
    folded = None
    if conv is not None:
        name, conv_op, conv_input = conv
        scale = p["weight"] / np.sqrt(p["var"] + p["eps"])
        conv_bias = conv_op.params["bias"]
        conv_bias = np.zeros_like(scale) if conv_bias is None else conv_bias
        folded = conv_explanation(
            {**where, "layer": name, "kind": conv_op.name}, conv_op, conv_input, top,
            weight=conv_op.params["weight"] * scale[:, None, None, None],
            bias=(conv_bias - p["mean"]) * scale + p["bias"], title="folded conv output")
    return BatchNormExplanation(**where, input=value, mean=mean, var=var, eps=p["eps"],
                                weight=weight, bias=bias, total=total, folded=folded,
                                source=conv[0] if conv is not None else None)
