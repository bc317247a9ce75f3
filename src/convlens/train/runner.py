"""The model on its device with its input pipeline: uint8/float batches -> augmented,
normalized (channels-last) floats -> (autocast) forward; one training step; counting a
confusion matrix. The learning-rate schedule lives here too."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import Augment, ImageSet, augment_batch


class Runner:
    """``model`` on ``device``: normalization by ``mean``/``std`` (one value per channel),
    optional augmentation and label smoothing for training steps, and with ``amp`` on CUDA
    autocast to bf16 (or fp16 with loss scaling where bf16 is missing).

    ``net`` is what runs forward: the model itself, or its DDP / compiled wrapper.
    """

    def __init__(self, model: nn.Module, device: torch.device, mean: Sequence[float],
                 std: Sequence[float], amp: bool = False, channels_last: bool = False,
                 augment: Augment | None = None, label_smoothing: float = 0.0) -> None:
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(device, memory_format=self.memory_format)  # type: ignore[call-overload]
        self.net: nn.Module = self.model
        self.mean = torch.tensor(list(mean), device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(list(std), device=device).view(1, -1, 1, 1)
        self.augment = augment or Augment()
        self.label_smoothing = label_smoothing
        self.autocast_dtype: torch.dtype | None = None
        if amp and device.type == "cuda":
            self.autocast_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported()
                                   else torch.float16)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)

    def inputs(self, data: ImageSet, index: torch.Tensor,
               generator: torch.Generator | None = None, train: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``(B, C, H, W)`` normalized on the device and their labels ``(B,)`` for the
        rows ``index`` of ``data``; augmented with ``generator``'s draws when ``train``."""
        index = index.to(data.labels.device)
        images = data.images[index].to(self.device, non_blocking=True)
        labels = data.labels[index].to(self.device, non_blocking=True)
        images = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
        if train:
            images = augment_batch(images, self.augment, generator)
        images = ((images - self.mean) / self.std).contiguous(memory_format=self.memory_format)
        return images, labels

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to the mixed-precision type, or nothing without ``amp`` on CUDA."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def train_step(self, data: ImageSet, index: torch.Tensor, optimizer: torch.optim.Optimizer,
                   generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on the batch ``index``; returns its summed loss and its count of
        correct predictions, as 0-d tensors on the device (reading them waits for it)."""
        images, labels = self.inputs(data, index, generator, train=True)
        with self.autocast():
            logits = self.net(images)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()
        with torch.no_grad():
            plain = F.cross_entropy(logits.float(), labels, reduction="sum")
            correct = (logits.argmax(1) == labels).sum()
        return plain, correct

    @torch.no_grad()
    def confusion(self, data: ImageSet, num_classes: int, batch_size: int
                  ) -> tuple[torch.Tensor, float]:
        """Counts ``(K, K)`` (rows true, columns predicted) and the summed loss over ``data``
        (the caller sets eval mode)."""
        counts = torch.zeros(num_classes * num_classes, dtype=torch.long, device=self.device)
        loss = torch.zeros((), dtype=sum_dtype(self.device), device=self.device)
        for start in range(0, len(data), batch_size):
            index = torch.arange(start, min(start + batch_size, len(data)))
            images, labels = self.inputs(data, index)
            with self.autocast():
                logits = self.net(images).float()
            loss += F.cross_entropy(logits, labels, reduction="sum").to(loss.dtype)
            counts += torch.bincount(labels * num_classes + logits.argmax(1),
                                     minlength=num_classes * num_classes)
        return counts.view(num_classes, num_classes).cpu(), float(loss)


def triangle(step: int, total: int, warmup: float, peak: float) -> float:
    """Learning rate at ``step`` (0-based) of ``total``: linear 0 -> ``peak`` over the first
    ``warmup`` share of steps, then linear to 0 at the end.

    >>> [round(triangle(step, 5, 0.4, 1.0), 3) for step in range(5)]
    [0.5, 1.0, 0.75, 0.5, 0.25]
    """
    rise = max(1, round(total * warmup))
    position = step + 1
    if position <= rise:
        return peak * position / rise
    return peak * max(0.0, (total - position + 1) / max(1, total - rise + 1))


def sum_dtype(device: torch.device) -> torch.dtype:
    """float64 for running sums, except on MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (the CPU for a model without any)."""
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def is_channels_last(model: nn.Module) -> bool:
    """Whether ``model``'s first 4-d weight is stored channels-last (NHWC)."""
    for tensor in model.parameters():
        if tensor.ndim == 4:
            return tensor.is_contiguous(memory_format=torch.channels_last) and not (
                tensor.is_contiguous())
    return False


__all__ = ["Runner", "is_channels_last", "model_device", "sum_dtype", "triangle"]
