"""How one number was made from the nearest conv before it: the conv's arithmetic, then each
step that follows it to the number (batch norm, activation, a max pool's winner, layers that
pass their input on), in the order they ran, as CNN Explainer shows a neuron.

:func:`explain_chain` walks back from the number: through a batch norm, an activation or a
layer that gave its input unchanged to the same place of its input, through a max pool to its
winner, and stops at the first conv (included) or at a layer that reads more than one number
of one map in a way it cannot follow to one place (an average pool, a dense layer, an add, a
concatenation: shown as the first step, never guessed). Every step is the
:meth:`~convlens.activations.Explainer.explain` of its layer at its place, so each step's total
is that layer's hooked number, and each step's input is the previous step's output.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..explain.parts import Heading, Part, Sentence, Span, parts_to_dicts, six
from .base import TOP_DEFAULT
from .capture import INPUT
from .conv import ConvExplanation
from .core import ActivationExplanation, Explainer
from .elementwise import ActivationFunctionExplanation
from .linear import LinearExplanation
from .merge import AddExplanation, ConcatExplanation, FlattenExplanation, MulExplanation
from .norm import BatchNormExplanation
from .other import OtherExplanation
from .pool import PoolExplanation

MAX_STEPS = 12
"""Most layers a chain walks back through (a conv is normally 1 to 4 layers before)."""

WHAT_WORDS: dict[type, str] = {
    ConvExplanation: "conv", BatchNormExplanation: "batch norm", LinearExplanation: "dense layer",
    AddExplanation: "sum", MulExplanation: "product", ConcatExplanation: "concatenation",
    FlattenExplanation: "flatten"}
"""A step's kind, as the chain's path names it (an activation by its function, a pool by
its kind, any other layer by its class)."""


def _what(e: ActivationExplanation) -> str:
    if isinstance(e, ActivationFunctionExplanation):
        return e.function
    if isinstance(e, PoolExplanation):
        return f"{e.pool} pool"
    return WHAT_WORDS.get(type(e), e.kind)


def _position(e: ActivationExplanation) -> tuple[int, ...]:
    return (e.channel,) if e.y is None or e.x is None else (e.channel, e.y, e.x)


def _place(e: ActivationExplanation) -> str:
    return f"{e.layer} {e.position}"


@dataclass(frozen=True)
class Chain:
    """``steps``: the explanations from the first one (a conv where one is reached) to the
    number asked about (the last), in the order the layers ran; ``end`` why the walk back
    stopped there (``""`` when it reached a conv)."""

    steps: tuple[ActivationExplanation, ...]
    end: str = ""

    @property
    def last(self) -> ActivationExplanation:
        """The number asked about."""
        return self.steps[-1]

    @property
    def conv(self) -> ConvExplanation | None:
        """The conv the chain starts from, if it reached one."""
        first = self.steps[0]
        return first if isinstance(first, ConvExplanation) else None

    def intro(self) -> tuple[Part, ...]:
        """The chain's own words: the path from its first layer to the number, and why it
        starts there."""
        last = self.last
        path = " → ".join(f"{_what(e)} ({e.layer})" for e in self.steps)
        spans = [Span(f"{len(self.steps)} step{'s' if len(self.steps) > 1 else ''}: {path}; "
                      "each step's output is the next step's input, ending in "),
                 Span(six(last.value), "strong", "chain_value", last.value),
                 Span(f" at {_place(last)}.")]
        parts: list[Part] = [Heading(f"how {_place(last)} was made, step by step"),
                             Sentence(tuple(spans), "chain")]
        if self.end:
            parts.append(Sentence((Span(self.end, "dim"),), "chain_end"))
        return tuple(parts)

    def parts(self) -> tuple[Part, ...]:
        """The intro, then every step's parts in the order the layers ran."""
        parts = list(self.intro())
        for step in self.steps:
            parts += step.parts()
        return tuple(parts)

    def to_dict(self) -> dict:
        """``intro`` (the chain's words), ``steps`` (each step's ``to_dict()``, first layer
        first) and ``end``."""
        return {"intro": parts_to_dicts(self.intro()),
                "steps": [step.to_dict() for step in self.steps], "end": self.end}


def explain_chain(explainer: Explainer, layer: str, channel: int, y: int | None = None,
                  x: int | None = None, *, top: int = TOP_DEFAULT) -> Chain:
    """The :class:`Chain` that ends at number ``(channel, y, x)`` of ``layer`` (see the
    module)."""
    e = explainer.explain(layer, channel, y, x, top=top)
    steps = [e]
    end = ""
    while len(steps) < MAX_STEPS:
        if isinstance(e, ConvExplanation):
            break
        record = explainer.capture.get(e.layer)
        source = record.sources[0] if len(record.sources) == 1 else None
        position: tuple[int, ...] | None = None
        if isinstance(e, BatchNormExplanation | ActivationFunctionExplanation) or (
                isinstance(e, OtherExplanation) and explainer.passes_through(record)):
            position = _position(e)
        elif isinstance(e, PoolExplanation) and e.winner is not None:
            position = (e.channel, *e.winner)
        else:
            end = (f"{e.layer} ({_what(e)}) combines many numbers, not one conv's: the "
                   "chain starts there.")
            break
        if source is None or source == INPUT:
            end = f"{e.layer} reads the input image: the chain starts there."
            break
        e = explainer.explain(source, *_split(position), top=top)
        steps.append(e)
    else:
        end = f"the chain stops after {MAX_STEPS} layers."
    return Chain(tuple(reversed(steps)), end)


def _split(position: tuple[int, ...]) -> tuple[int, int | None, int | None]:
    if len(position) == 3:
        return position[0], position[1], position[2]
    return position[0], None, None
