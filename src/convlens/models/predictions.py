"""The top-k classes of a classifier, with their probabilities: of one output already computed
(:func:`top_predictions`) or of images run through an opened model (:func:`predict`).

Of a model that returns several outputs, the one named by ``opened.output`` is read, else the
one :func:`~convlens.models.heads.choose_output` picks. Scores become probabilities by softmax;
an output that already holds probabilities (a softmax inside the model) is read as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ConfigError, ModelError
from .handle import OpenedModel, eval_mode, prepare_input
from .heads import choose_output


@dataclass(frozen=True)
class Prediction:
    """One class: its output index, its name and its softmax probability (0-1)."""

    index: int
    label: str
    probability: float


def top_predictions(output: Any, opened: OpenedModel, k: int = 5) -> list[Prediction] | None:
    """Top-``k`` classes of a classifier's output ``(1, K)`` (most likely first), or ``None``
    when the output (the chosen one, of several) is not one row of class scores."""
    _check_k(k)
    chosen = choose_output(output, opened.output)
    scores = chosen.tensor
    if scores is None or scores.ndim != 2 or scores.shape[0] != 1 or chosen.part is None:
        return None
    return _ranked(scores, opened, k, chosen.part.probabilities)[0]


@torch.no_grad()
def predict(opened: OpenedModel, images: Sequence[torch.Tensor], top_k: int = 5
            ) -> list[list[Prediction]]:
    """Top-``top_k`` classes, most likely first, of each image ``(C, H, W)`` in [0, 1] (any
    size, gray or RGB: each is made the model's input by
    :func:`~convlens.models.handle.prepare_input`). Images of one size run as one batch."""
    _check_k(top_k)
    if not images:
        return []
    batches = [prepare_input(image, opened).batch for image in images]
    with eval_mode(opened.module):
        if len({tuple(batch.shape) for batch in batches}) == 1:
            outputs = [opened.module(torch.cat(batches))]
        else:
            outputs = [opened.module(batch) for batch in batches]
    ranked: list[list[Prediction]] = []
    for output in outputs:
        chosen = choose_output(output, opened.output)
        scores = chosen.tensor
        if scores is None or scores.ndim != 2 or chosen.part is None:
            shape = "no tensor" if scores is None else tuple(scores.shape)
            raise ModelError(f"{opened.source} does not output one row of class scores per "
                             f"image (it gives {shape}), so it has no classes to rank")
        ranked.extend(_ranked(scores, opened, top_k, chosen.part.probabilities))
    return ranked


def _ranked(output: torch.Tensor, opened: OpenedModel, k: int, already: bool = False
            ) -> list[list[Prediction]]:
    """Per row of ``output`` ``(N, K)``: the top-``k`` classes by probability (softmax of the
    scores, or the rows themselves where they are probabilities ``already``)."""
    scores = output.detach().to(torch.float32)
    probabilities = (scores if already else torch.softmax(scores, dim=1)).cpu()
    values, indices = probabilities.topk(min(k, probabilities.shape[1]), dim=1)
    return [[Prediction(int(i), opened.class_name(int(i)), float(p))
             for p, i in zip(row_p.tolist(), row_i.tolist())]
            for row_p, row_i in zip(values, indices)]


def _check_k(k: int) -> None:
    if k < 1:
        raise ConfigError(f"top-k must be at least 1; got {k}")


__all__ = ["Prediction", "predict", "top_predictions"]
