"""The outputs of a training run that the loop writes itself: the run folder, the kept model
(``model.safetensors`` + ``model.json``, rewritten whenever val accuracy improves) and
``metrics.json``. Its figures are drawn above this layer, from :class:`TrainResult`
(:func:`convlens.results.training.write_figures`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..models import ModelInfo
from ..outputs import check_out_dir, write_text
from .config import TrainConfig
from .metrics import EvalResult
from .state import LoopState

METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.png"
CONFUSION_FILE = "confusion.png"
FILTERS_GIF = "filters-evolution.gif"
DEFAULT_RUNS_ROOT = Path("runs")


@dataclass
class TrainResult:
    """What :func:`convlens.train.fit` produced (every process gets the same metrics).

    ``metrics`` is the content of ``metrics.json``; ``history`` one record per epoch;
    ``evaluation`` the kept model on the val split; ``filters`` the first conv layer's
    weights ``(K, C, kh, kw)`` per epoch (the random start first; empty without one) and
    ``first_conv`` its name; ``files`` what was written (by the main process only: ``main``).
    In a notebook it shows as :func:`convlens.display.train_result_html` draws it.
    """

    out_dir: Path
    info: ModelInfo
    metrics: dict
    history: list[dict]
    files: list[Path] = field(default_factory=list)
    config: TrainConfig = field(default_factory=TrainConfig)
    evaluation: EvalResult | None = None
    filters: list[np.ndarray] = field(default_factory=list)
    first_conv: str | None = None
    main: bool = True

    @property
    def best_epoch(self) -> int:
        return int(self.metrics["best_epoch"])

    @property
    def baseline(self) -> dict | None:
        return self.metrics.get("baseline")


def kept_info(info: ModelInfo, state: LoopState) -> ModelInfo:
    """``info`` with the kept model's metrics (its val accuracy and epoch, epochs run)."""
    metrics = dict(info.metrics, val_accuracy=state.best["accuracy"],
                   best_epoch=state.best["epoch"], epochs=len(state.history))
    return replace(info, metrics=metrics)


def new_run_dir(root: Path, stem: str) -> Path:
    """``root/stem``, or ``root/stem-2``, ``-3``, ... whichever is free (never reused); checked
    (:func:`~convlens.outputs.check_out_dir`), not yet made."""
    candidate = root / stem
    number = 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        number += 1
        candidate = root / f"{stem}-{number}"
    check_out_dir(candidate)
    return candidate


def write_metrics(out_dir: Path, metrics: dict) -> Path:
    """``metrics.json`` (indented UTF-8 JSON)."""
    return write_text(out_dir / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")


__all__ = [
    "CONFUSION_FILE",
    "CURVES_FILE",
    "DEFAULT_RUNS_ROOT",
    "FILTERS_GIF",
    "METRICS_FILE",
    "TrainResult",
    "kept_info",
    "new_run_dir",
    "write_metrics",
]
