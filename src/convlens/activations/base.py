"""What every activation explanation shares: where the value is, what the hook recorded, and
the receptive field it has in the input image.

Each layer kind has its own frozen dataclass (:mod:`.conv`, :mod:`.norm`, :mod:`.elementwise`,
:mod:`.pool`, :mod:`.linear`, :mod:`.merge`, :mod:`.other`), built on :class:`Where`; each
gives ``parts()`` (the words, :mod:`convlens.explain.parts`, worded once) and ``to_dict()``.
``total`` is what convlens' arithmetic gives; ``value`` is what a forward hook recorded; they
agree to float32 rounding (:func:`close_enough`), or the layer is shown as it is instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..explain.parts import Heading, Part, Sentence, Span, parts_to_dicts, six

TOP_DEFAULT = 8
"""Input channels (or inputs of a dense layer) shown one by one; the rest are summed."""


@dataclass(frozen=True, kw_only=True)
class Where:
    """One number of one layer's output: ``layer`` (its name), ``kind`` (the layer's class,
    ``Conv2d``, or the function, ``add``), ``channel`` and ``y``/``x`` (``None`` for a layer
    whose output is ``(N, features)``), the output's ``shape`` without the batch, the
    ``value`` the forward hook recorded, and ``field``: the input image rows/cols it depends
    on (``{"top", "bottom", "left", "right"}``, inclusive, clipped to the image; ``None``
    where unknown)."""

    layer: str
    kind: str
    channel: int
    y: int | None
    x: int | None
    shape: tuple[int, ...]
    value: float
    field: dict | None = None

    @property
    def position(self) -> str:
        """``(3, 5, 7)`` or ``[3]``: the number's place in the layer's output."""
        if self.y is None:
            return f"[{self.channel}]"
        return f"({self.channel}, {self.y}, {self.x})"

    def where_dict(self) -> dict:
        """The keys every explanation's ``to_dict()`` starts with; ``parts`` the words
        (:func:`convlens.explain.parts.parts_to_dicts`)."""
        parts = getattr(self, "parts", None)
        return {"layer": self.layer, "kind": self.kind, "channel": self.channel,
                "y": self.y, "x": self.x, "shape": list(self.shape), "value": self.value,
                "receptive_field": self.field,
                "parts": parts_to_dicts(parts()) if parts is not None else []}

    def heading(self, what: str) -> Heading:
        """``features.3 (Conv2d): conv output (2, 5, 7)``; a function node is named once
        (``add: sum (2, 5, 7)``)."""
        kind = "" if self.kind == self.layer else f" ({self.kind})"
        return Heading(f"{self.layer}{kind}: {what} {self.position}")

    def result(self, label: str, total: float) -> Sentence:
        """``= 1.2345 (the hooked value 1.2345)``: the total and what the hook recorded."""
        return Sentence((Span(f"{label} = "), Span(six(total), "strong", "total", total),
                         Span(f" (the layer's output holds {six(self.value)})", "dim")),
                        "total")

    def field_sentence(self) -> list[Part]:
        if self.field is None:
            return []
        f = self.field
        return [Sentence((Span(
            f"it depends on input image rows {f['top']}..{f['bottom']} and cols "
            f"{f['left']}..{f['right']} ({f['bottom'] - f['top'] + 1}x"
            f"{f['right'] - f['left'] + 1} pixels)."),), "field")]


def close_enough(total: float, value: float, terms: Sequence[float] | np.ndarray = ()) -> bool:
    """Whether ``total`` (float64 arithmetic) is ``value`` (what float32 layers gave) to
    float32 rounding: relative to the size of the terms that were added up."""
    size = float(np.sum(np.abs(np.asarray(terms, dtype=np.float64)))) if len(terms) else 0.0
    scale = max(size, abs(total), abs(value), 1e-12)
    return bool(abs(total - value) <= 2e-4 * scale + 1e-6)


def ranked(values: np.ndarray, top: int) -> tuple[list[int], float]:
    """Indices of the ``top`` largest ``|values|`` (largest first) and the sum of the rest."""
    order = np.argsort(-np.abs(values), kind="stable")
    shown = [int(i) for i in order[:max(top, 0)]]
    rest = float(np.sum(values[order[max(top, 0):]], dtype=np.float64))
    return shown, rest


def grid_texts(values: np.ndarray) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(six(float(v) + 0.0) for v in row)  # + 0.0: no "-0"
                 for row in np.atleast_2d(values))


def grid_numbers(values: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row)
                 for row in np.atleast_2d(np.asarray(values, dtype=np.float64)))
