"""The top-k classes of a classifier, with softmax probabilities: of one output already computed
(:func:`top_predictions`) or of images run through an opened model (:func:`predict`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ConfigError, ModelError
from .handle import OpenedModel, eval_mode, prepare_input


@dataclass(frozen=True)
class Prediction:
    """One class: its output index, its name and its softmax probability (0-1)."""

    index: int
    label: str
    probability: float


def top_predictions(output: Any, opened: OpenedModel, k: int = 5) -> list[Prediction] | None:
    """Top-``k`` classes of a classifier's output ``(1, K)`` (softmax probabilities, most likely
    first), or ``None`` when the output is not one row of class scores."""
    _check_k(k)
    if not isinstance(output, torch.Tensor) or output.ndim != 2 or output.shape[0] != 1:
        return None
    return _ranked(output, opened, k)[0]


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
        if not isinstance(output, torch.Tensor) or output.ndim != 2:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output)
            raise ModelError(f"{opened.source} does not output one row of class scores per "
                             f"image (it gives {shape}), so it has no classes to rank")
        ranked.extend(_ranked(output, opened, top_k))
    return ranked


def _ranked(output: torch.Tensor, opened: OpenedModel, k: int) -> list[list[Prediction]]:
    """Per row of ``output`` ``(N, K)``: the top-``k`` classes by softmax probability."""
    probabilities = torch.softmax(output.detach().to(torch.float32), dim=1).cpu()
    values, indices = probabilities.topk(min(k, probabilities.shape[1]), dim=1)
    return [[Prediction(int(i), opened.class_name(int(i)), float(p))
             for p, i in zip(row_p.tolist(), row_i.tolist())]
            for row_p, row_i in zip(values, indices)]


def _check_k(k: int) -> None:
    if k < 1:
        raise ConfigError(f"top-k must be at least 1; got {k}")


__all__ = ["Prediction", "predict", "top_predictions"]
