"""The top-k classes of a classifier's output, with softmax probabilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ConfigError
from ..modelfiles import OpenedModel


@dataclass(frozen=True)
class Prediction:
    """One class: its output index, its name and its softmax probability (0-1)."""

    index: int
    label: str
    probability: float


def top_predictions(output: Any, opened: OpenedModel, k: int = 5) -> list[Prediction] | None:
    """Top-``k`` classes of a classifier's output ``(1, K)`` (softmax probabilities), or
    ``None`` when the output is not one row of class scores."""
    if k < 1:
        raise ConfigError(f"top-k must be at least 1; got {k}")
    if not isinstance(output, torch.Tensor) or output.ndim != 2 or output.shape[0] != 1:
        return None
    probabilities = torch.softmax(output.detach().to(torch.float32)[0], dim=0).cpu()
    values, indices = probabilities.topk(min(k, probabilities.numel()))
    return [Prediction(int(i), opened.class_name(int(i)), float(v))
            for v, i in zip(values, indices)]
