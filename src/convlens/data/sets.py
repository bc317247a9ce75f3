"""In-memory image sets: images ``(N, C, H, W)`` and labels, their memory budget, channel and
size conversion, and the channel statistics used to normalize a model's input."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import DataError
from ..images import match_channels, resize_exact
from ..limits import check_budget


@dataclass
class ImageSet:
    """Images ``(N, C, H, W)`` (uint8 0-255 or float32 in [0, 1]) and labels ``(N,)`` int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise DataError(f"images must be (N, C, H, W); got shape {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise DataError(f"{len(self.images)} images but {len(self.labels)} labels")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def to(self, device: torch.device | str) -> ImageSet:
        """The same set with its tensors on ``device``."""
        return ImageSet(self.images.to(device), self.labels.to(device))

    def subset(self, index: torch.Tensor) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index])

    def floats(self, index: torch.Tensor | slice | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Images ``index`` as floats ``(n, C, H, W)`` in [0, 1]."""
        batch = self.images if index is None else self.images[index]
        if batch.dtype == torch.uint8:
            return batch.to(dtype).div_(255.0)
        return batch.to(dtype)


def check_set_budget(count: int, channels: int, size: tuple[int, int], itemsize: int,
                     float_images: int) -> None:
    """Refuse, before any image is read or resized, a set of ``count`` images of ``channels`` x
    ``size`` (H, W) stored ``itemsize`` bytes a value that would pass the memory budget
    (:func:`convlens.limits.check_budget`): the images and their stacked copy, plus
    ``float_images`` of them as float32 while they are converted."""
    pixels = channels * size[0] * size[1]
    check_budget(2 * count * pixels * itemsize + 4 * float_images * pixels,
                 f"a set of {count} images of {channels}x{size[0]}x{size[1]}")


def conform(data: ImageSet, channels: int | None, size: tuple[int, int] | None,
            chunk: int = 4096) -> ImageSet:
    """Convert ``data`` to ``channels`` (gray <-> RGB) and resize to ``size`` (H, W); either
    ``None`` keeps it. Works in chunks so large sets need little extra memory."""
    if (channels is None or channels == data.channels) and (size is None or size == data.size):
        return data
    check_set_budget(len(data), channels or data.channels, size or data.size,
                     data.images.element_size(), min(chunk, len(data)))
    parts = []
    for start in range(0, len(data), chunk):
        batch = data.floats(slice(start, start + chunk))
        if channels is not None and channels != batch.shape[1]:
            batch = torch.stack([match_channels(image, channels) for image in batch])
        if size is not None:
            batch = resize_exact(batch, size)
        parts.append(store_as(batch, data.images.dtype))
    return ImageSet(torch.cat(parts), data.labels.clone())


def channel_stats(data: ImageSet, chunk: int = 8192) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of the images in [0, 1] (population std,
    float64 sums), for normalizing the model's input."""
    if len(data) == 0:
        raise DataError("cannot compute statistics of an empty image set")
    total = torch.zeros(data.channels, dtype=torch.float64)
    squares = torch.zeros(data.channels, dtype=torch.float64)
    count = 0
    for start in range(0, len(data), chunk):
        batch = data.floats(slice(start, start + chunk), torch.float64)
        total += batch.sum(dim=(0, 2, 3))
        squares += batch.square().sum(dim=(0, 2, 3))
        count += batch.shape[0] * batch.shape[2] * batch.shape[3]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    return mean.tolist(), [max(value, 1e-3) for value in std.tolist()]


def store_as(batch: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A float batch in [0, 1] in the dtype a set stores: uint8 (0-255, rounded) or
    ``dtype`` itself."""
    if dtype == torch.uint8:
        return batch.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return batch.to(dtype)
