"""A layer convlens does not work out: what it is, and its input and output values at the
place asked for. Nothing is guessed."""

from __future__ import annotations

from dataclasses import dataclass

from ..explain.parts import Note, Part, Sentence, Span, six
from .base import Where


@dataclass(frozen=True, kw_only=True, eq=False)
class OtherExplanation(Where):
    """``inputs`` the value at the same place of each input of the same shape (``None``
    where an input has another shape), ``why`` why it is not worked out, ``children`` the
    layers inside it (for a container)."""

    inputs: tuple[float | None, ...]
    sources: tuple[str | None, ...]
    why: str
    children: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        return self.value

    def parts(self) -> tuple[Part, ...]:
        parts: list[Part] = [self.heading("output"), Sentence((
            Span(f"{self.layer} is a {self.kind}; {self.why}, so its arithmetic is not shown "
                 "(convlens does not guess it)."),), "what")]
        for index, (value, source) in enumerate(zip(self.inputs, self.sources)):
            made = f" (made by {source})" if source else ""
            text = (f"input {index}{made} at the same place: {six(value)}" if value is not None
                    else f"input {index}{made} has another shape")
            parts.append(Sentence((Span(text),), "input"))
        parts.append(Sentence((Span("output: "), Span(six(self.value), "strong", "total",
                                                      self.value)), "total"))
        if self.children:
            shown = ", ".join(self.children[:12])
            more = f", ... ({len(self.children)} in all)" if len(self.children) > 12 else ""
            parts.append(Note(f"the layers inside it: {shown}{more}; explain one of them to "
                              "see its arithmetic", "children"))
        parts += self.field_sentence()
        return tuple(parts)

    def to_dict(self) -> dict:
        return {**self.where_dict(), "what": "other", "total": self.value, "why": self.why,
                "inputs": [{"layer": s, "value": v} for v, s in zip(self.inputs, self.sources)],
                "children": list(self.children)}
