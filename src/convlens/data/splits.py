"""A data set split into train and val, and the seeded, stratified split that makes one: each
class split in the same proportion, so the val images never change with the training seed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .augment import Augment
from .sets import ImageSet
from .specs import DataKind


@dataclass
class DataSplits:
    """A data set ready to train on: train and val sets, class names and what it came from."""

    kind: DataKind
    source: str
    train: ImageSet
    val: ImageSet
    class_names: list[str]
    augment: Augment
    val_from: str
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def in_channels(self) -> int:
        return self.train.channels

    @property
    def input_size(self) -> tuple[int, int]:
        return self.train.size

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> str:
        height, width = self.input_size
        return (f"{self.source}: {len(self.train)} train / {len(self.val)} val images "
                f"({self.val_from}), {self.in_channels}x{height}x{width}, "
                f"{self.num_classes} classes")


def stratified_split(labels: torch.Tensor | np.ndarray, val_fraction: float, seed: int,
                     names: Sequence[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded split of sample indices into (train, val), each class in the same proportion:
    ``round(n * val_fraction)`` of a class's ``n`` images (at least 1, at most ``n - 1``) go
    to val. ``names`` label the classes in errors."""
    labels = torch.as_tensor(labels).long()
    generator = torch.Generator().manual_seed(int(seed))
    train, val = [], []
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()
        if len(members) < 2:
            name = repr(names[label]) if names is not None else label
            raise DataError(f"class {name} has {len(members)} image; at least 2 are needed to "
                            "split it into train and val")
        members = members[torch.randperm(len(members), generator=generator)]
        count = min(len(members) - 1, max(1, round(len(members) * val_fraction)))
        val.append(members[:count])
        train.append(members[count:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values
