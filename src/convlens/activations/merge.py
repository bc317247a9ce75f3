"""Numbers made from other layers' numbers without weights: a residual add (which branch
gave what), a product of two tensors (a gate), a concatenation (which input the channel comes
from), a flatten (where the number was in the map)."""

from __future__ import annotations

from dataclasses import dataclass

from ..explain.parts import Part, Sentence, Span, WrittenSum, six
from .base import Where


@dataclass(frozen=True, kw_only=True, eq=False)
class AddExplanation(Where):
    """``branches`` the layers that made each added tensor (``None``: no layer), ``terms``
    the value each gives at this place."""

    branches: tuple[str | None, ...]
    terms: tuple[float, ...]
    total: float

    def strongest(self) -> int:
        return max(range(len(self.terms)), key=lambda i: abs(self.terms[i]))

    def parts(self) -> tuple[Part, ...]:
        names = [b or "a tensor no layer made" for b in self.branches]
        spans = [Span(f"{len(self.terms)} branches are added element by element: ")]
        spans += [Span(f"{name} gives {six(v)}" + ("; " if i < len(names) - 1 else "."))
                  for i, (name, v) in enumerate(zip(names, self.terms))]
        lines = (" + ".join(six(v) for v in self.terms).replace("+ -", "- "), six(self.total))
        return (self.heading("sum"), Sentence(tuple(spans), "branches"),
                WrittenSum("sum of the branches", lines, self.total, key="sum"),
                Sentence((Span(f"the largest share comes from "
                               f"{names[self.strongest()]}."),), "strongest"),
                self.result("sum", self.total), *self.field_sentence())

    def to_dict(self) -> dict:
        return {**self.where_dict(), "what": "add", "total": self.total,
                "branches": [{"layer": b, "value": v} for b, v in zip(self.branches,
                                                                      self.terms)]}


@dataclass(frozen=True, kw_only=True, eq=False)
class MulExplanation(Where):
    """Two tensors multiplied element by element (a squeeze-and-excitation gate): the value
    each gives at this place (``factors``), made by ``branches``."""

    branches: tuple[str | None, ...]
    factors: tuple[float, ...]
    total: float

    def parts(self) -> tuple[Part, ...]:
        names = [b or "a tensor no layer made" for b in self.branches]
        spans = [Span("two tensors are multiplied element by element: ")]
        spans += [Span(f"{name} gives {six(v)}" + ("; " if i < len(names) - 1 else "."))
                  for i, (name, v) in enumerate(zip(names, self.factors))]
        lines = (" × ".join(six(v) for v in self.factors), six(self.total))
        return (self.heading("product"), Sentence(tuple(spans), "branches"),
                WrittenSum("product", lines, self.total, key="sum"),
                self.result("product", self.total), *self.field_sentence())

    def to_dict(self) -> dict:
        return {**self.where_dict(), "what": "mul", "total": self.total,
                "branches": [{"layer": b, "value": v} for b, v in zip(self.branches,
                                                                      self.factors)]}


@dataclass(frozen=True, kw_only=True, eq=False)
class ConcatExplanation(Where):
    """Output channel ``channel`` is channel ``source_channel`` of input ``part`` (made by
    ``source``); ``sizes`` the channels each input brings."""

    part: int
    source: str | None
    source_channel: int
    sizes: tuple[int, ...]
    total: float

    def parts(self) -> tuple[Part, ...]:
        bounds, start = [], 0
        for size in self.sizes:
            bounds.append(f"{start}..{start + size - 1}")
            start += size
        return (self.heading("concatenated output"),
                Sentence((Span(f"{len(self.sizes)} inputs are stacked along the channels "
                               f"(channels {', '.join(bounds)}); channel {self.channel} is "
                               f"channel {self.source_channel} of input {self.part} ("
                               f"{self.source or 'no layer'}), which holds "),
                          Span(six(self.total), "strong", "total", self.total),
                          Span(" there.")), "concat"),
                self.result("concatenated output", self.total), *self.field_sentence())

    def to_dict(self) -> dict:
        return {**self.where_dict(), "what": "cat", "total": self.total, "part": self.part,
                "source": self.source, "source_channel": self.source_channel,
                "sizes": list(self.sizes)}


@dataclass(frozen=True, kw_only=True, eq=False)
class FlattenExplanation(Where):
    """Output ``[channel]`` of a flatten is input ``at`` of the ``input_shape`` map."""

    at: tuple[int, ...]
    input_shape: tuple[int, ...]
    total: float

    def parts(self) -> tuple[Part, ...]:
        shape = "x".join(map(str, self.input_shape))
        return (self.heading("flattened output"),
                Sentence((Span(f"the {shape} map is laid out row by row, channel after "
                               f"channel: number {self.channel} is the input at "
                               f"{tuple(self.at)}, "),
                          Span(six(self.total), "strong", "total", self.total),
                          Span(".")), "flatten"),
                self.result("flattened output", self.total), *self.field_sentence())

    def to_dict(self) -> dict:
        return {**self.where_dict(), "what": "flatten", "total": self.total,
                "at": list(self.at), "input_shape": list(self.input_shape)}
