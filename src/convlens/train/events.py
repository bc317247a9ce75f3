"""What a training run tells whoever watches it. The loop never prints: it calls a
:class:`TrainEvents` (the console table and progress bars of ``convlens train`` are one, in
:mod:`convlens.results.training`), and ``on_epoch_end(record)`` callbacks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

EpochCallback = Callable[[dict], None]
"""Called after every epoch, on every process, with a copy of that epoch's record."""


class Tone(str, Enum):
    """How a note reads: plain information, a warning, or the run's result."""

    INFO = "info"
    WARNING = "warning"
    RESULT = "result"


@dataclass(frozen=True)
class BatchUpdate:
    """One training step of an epoch: ``step`` of ``steps`` (1-based), ``images_per_second``
    over the epoch so far (all processes), and the batch's mean ``loss`` and ``accuracy``
    (``None`` between reads: reading them makes the host wait for the GPU)."""

    epoch: int
    step: int
    steps: int
    images_per_second: float
    loss: float | None = None
    accuracy: float | None = None


class TrainEvents:
    """The main process's account of a run; every method here does nothing. Subclass and
    override what you show. ``batches``: whether :meth:`batch` is wanted at all."""

    batches: bool = False

    def note(self, text: str, tone: Tone = Tone.INFO) -> None:
        """A line of plain text about the run."""

    def begin(self, epochs: int, done: int, steps: int) -> None:
        """The loop starts: ``epochs`` planned, ``done`` of them finished before (a resume),
        ``steps`` per epoch."""

    def batch(self, update: BatchUpdate) -> None:
        """A training step finished (only when :attr:`batches`)."""

    def epoch(self, record: dict, improved: bool) -> None:
        """An epoch finished: its ``record`` (see :func:`convlens.train.fit`); ``improved``
        when it is the best so far (its weights became the kept model)."""

    def end(self) -> None:
        """The loop is over (finished, stopped or failed)."""


__all__ = ["BatchUpdate", "EpochCallback", "Tone", "TrainEvents"]
