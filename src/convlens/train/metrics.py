"""Measuring a classifier on labelled images: the confusion matrix and what follows from it
(:class:`EvalResult`). The top classes of single images are
:func:`convlens.models.predict`'s."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch.nn as nn

from ..data import ImageSet
from ..errors import DataError, ModelError
from ..models import ModelInfo
from ..models.handle import eval_mode
from .runner import Runner, is_channels_last, model_device


@dataclass
class EvalResult:
    """Accuracy and per-class precision/recall of a model on a labelled image set.

    ``confusion`` ``(K, K)`` counts images, rows = true class, columns = predicted class;
    ``loss`` is the mean cross-entropy per image. Precision and recall of a class with nothing
    predicted / no images are 0.
    """

    class_names: list[str]
    confusion: np.ndarray
    loss: float

    @property
    def total(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / self.total) if self.total else 0.0

    @property
    def support(self) -> np.ndarray:
        return self.confusion.sum(axis=1)

    @property
    def precision(self) -> np.ndarray:
        predicted = self.confusion.sum(axis=0)
        return np.divide(np.diag(self.confusion), predicted, out=np.zeros(len(predicted)),
                         where=predicted > 0)

    @property
    def recall(self) -> np.ndarray:
        support = self.support
        return np.divide(np.diag(self.confusion), support, out=np.zeros(len(support)),
                         where=support > 0)

    def per_class(self) -> dict[str, dict]:
        """``{class name: {"precision", "recall", "support"}}``."""
        return {
            name: {"precision": float(p), "recall": float(r), "support": int(s)}
            for name, p, r, s in zip(self.class_names, self.precision, self.recall,
                                     self.support)
        }

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "images": self.total,
            "per_class": self.per_class(),
            "confusion": self.confusion.astype(int).tolist(),
        }


def evaluate(
    model: nn.Module,
    info: ModelInfo,
    data: ImageSet,
    batch_size: int = 256,
    amp: bool = False,
) -> EvalResult:
    """Run ``model`` over ``data`` (images already at ``info``'s channels and size, labels in
    ``info.class_names``' order) and count the confusion matrix."""
    names, channels, size = info.class_names, info.in_channels, info.input_size
    if names is None or channels is None or size is None or info.mean is None or (
            info.std is None):
        raise ModelError(f"the model does not say its {', '.join(info.missing())}; evaluating "
                         "needs them, as a convlens checkpoint holds them")
    if data.channels != channels or data.size != tuple(size):
        raise DataError(f"images are {data.channels}x{data.size[0]}x{data.size[1]}; the model "
                        f"takes {channels}x{size[0]}x{size[1]}")
    runner = Runner(model, model_device(model), info.mean, info.std, amp=amp,
                    channels_last=is_channels_last(model))
    with eval_mode(model):
        confusion, loss_sum = runner.confusion(data, len(names), batch_size)
    return EvalResult(list(names), confusion.numpy(), loss_sum / max(1, len(data)))


__all__ = ["EvalResult", "evaluate"]
