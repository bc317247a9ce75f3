"""Which of a model's outputs holds its class scores, when it returns several.

A face detector such as MTCNN's ONet returns a tuple: box offsets ``(1, 4)``, landmarks
``(1, 10)`` and the face probability ``(1, 2)``. Taking the first as class scores would rank four
box offsets as if they were classes. :func:`choose_output` takes the one the user names, or says
which one it took and why, and lists the others.

>>> probs = torch.tensor([[0.1, 0.9]])
>>> chosen = choose_output((torch.zeros(1, 4), torch.ones(1, 10), probs))
>>> chosen.part.index, chosen.part.probabilities
(2, True)
>>> for part in chosen.note().split("; "):
...     print(part)
the model returns 3 outputs: #0 (1, 4), #1 (1, 10), #2 (1, 2)
used #2 (1, 2), the only one whose rows are probabilities (at least 0, summing to 1)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ModelError, Option
from ..wording import clipped

OUTPUT = Option("output=N", "--output N")
"""How the user picks one output, as each surface spells it."""

OutputChoice = int | str | None
"""An output's place (``2``, also ``"2"``), its name (a dict key or named-tuple field), or
``None``: let :func:`choose_output` pick."""


@dataclass(frozen=True)
class OutputPart:
    """One tensor a model returns: its place among the outputs, its name where it has one (a
    dict key or named-tuple field), its shape, and whether its rows are already probabilities
    (at least 0 and summing to 1, as after a softmax)."""

    index: int
    name: str | None
    shape: tuple[int, ...]
    probabilities: bool = False

    @property
    def scores(self) -> bool:
        """Shaped like class scores: ``(N, K)`` with at least two classes."""
        return len(self.shape) == 2 and self.shape[1] >= 2

    def label(self) -> str:
        """``#2 (1, 2)``, or ``#1 'prob' (1, 2)`` for a named output."""
        name = f" {self.name!r}" if self.name is not None else ""
        return f"#{self.index}{name} {tuple(self.shape)}"


@dataclass(frozen=True)
class ChosenOutput:
    """The output used as class scores: ``tensor`` (``None`` where the model returned no
    tensor), its ``part``, every part the model returned (one for a plain tensor) and why this
    one was taken."""

    tensor: torch.Tensor | None
    part: OutputPart | None
    parts: tuple[OutputPart, ...]
    reason: str

    @property
    def several(self) -> bool:
        return len(self.parts) > 1

    def note(self) -> str | None:
        """One line for the user where the model returns several outputs: all of them, which
        was used and why (``None`` for a model with one output)."""
        if not self.several or self.part is None:
            return None
        listing = ", ".join(part.label() for part in self.parts)
        return (f"the model returns {len(self.parts)} outputs: {listing}; used "
                f"{self.part.label()}, {self.reason}")


def output_parts(output: Any) -> list[tuple[OutputPart, torch.Tensor]]:
    """The tensors in a model's output, in order: the output itself, or the tensors of a tuple,
    list, named tuple or dict (one level; other items are skipped but keep their place)."""
    if isinstance(output, torch.Tensor):
        items: list[tuple[str | None, Any]] = [(None, output)]
    elif isinstance(output, Mapping):
        items = [(str(key), value) for key, value in output.items()]
    elif isinstance(output, Sequence) and not isinstance(output, (str, bytes)):
        fields = getattr(output, "_fields", None)
        names = list(fields) if fields else [None] * len(output)
        items = list(zip(names, output))
    else:
        items = []
    return [(OutputPart(index, name, tuple(value.shape), _are_probabilities(value)), value)
            for index, (name, value) in enumerate(items) if isinstance(value, torch.Tensor)]


def choose_output(output: Any, choice: OutputChoice = None) -> ChosenOutput:
    """The output of a model to read as class scores.

    ``choice`` names it (its place or name; anything else raises :class:`ModelError` listing the
    outputs). Without one: a single tensor is used as it is; of several, the only one whose rows
    are probabilities, else the only one shaped ``(N, classes)``, else the first so shaped, else
    the first; :meth:`ChosenOutput.note` says which and why.
    """
    found = output_parts(output)
    parts = tuple(part for part, _ in found)
    if not found:
        return ChosenOutput(None, None, parts, "the model returned no tensor")
    if choice is not None:
        return _named(found, choice)
    if len(found) == 1:
        part, tensor = found[0]
        return ChosenOutput(tensor, part, parts, "the model's only output")
    scores = [(part, tensor) for part, tensor in found if part.scores]
    probabilities = [(part, tensor) for part, tensor in scores if part.probabilities]
    if len(probabilities) == 1:
        picked, reason = probabilities[0], ("the only one whose rows are probabilities (at "
                                            "least 0, summing to 1)")
    elif len(scores) == 1:
        picked, reason = scores[0], "the only one shaped (N, classes)"
    elif scores:
        picked, reason = scores[0], "the first shaped (N, classes)"
    else:
        picked, reason = found[0], "the first; none is shaped (N, classes)"
    return ChosenOutput(picked[1], picked[0], parts, reason)


def check_output_choice(choice: Any) -> OutputChoice:
    """``choice`` as an output's place (a whole number, also written as text) or name; anything
    else raises :class:`ModelError`."""
    if choice is None or (isinstance(choice, int) and not isinstance(choice, bool)):
        if isinstance(choice, int) and choice < 0:
            raise ModelError(f"output=N counts from 0; got {choice}", options=[OUTPUT])
        return choice
    if isinstance(choice, str) and choice.strip():
        text = choice.strip()
        return int(text) if text.isdigit() else text
    raise ModelError(f"output=N takes an output's place (0, 1, ...) or name; got "
                     f"{clipped(repr(choice))}",
                     options=[OUTPUT])


def _named(found: list[tuple[OutputPart, torch.Tensor]], choice: OutputChoice) -> ChosenOutput:
    choice = check_output_choice(choice)
    parts = tuple(part for part, _ in found)
    for part, tensor in found:
        if choice in (part.index, part.name):
            return ChosenOutput(tensor, part, parts, "as asked")
    listing = ", ".join(part.label() for part in parts)
    raise ModelError(f"the model has no output {clipped(repr(choice))}; it returns {listing}")


def _are_probabilities(tensor: torch.Tensor) -> bool:
    """Rows ``(N, K)`` of numbers at least 0 that sum to 1 (within float rounding)."""
    if tensor.ndim != 2 or tensor.shape[1] < 2 or not tensor.is_floating_point():
        return False
    values = tensor.detach().to(torch.float32)
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
        return False
    return bool(torch.allclose(values.sum(dim=1), torch.ones(values.shape[0],
                                                              device=values.device), atol=1e-4))


__all__ = [
    "OUTPUT",
    "ChosenOutput",
    "OutputChoice",
    "OutputPart",
    "check_output_choice",
    "choose_output",
    "output_parts",
]
