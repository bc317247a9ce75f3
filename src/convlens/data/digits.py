"""scikit-learn's bundled 8x8 digits (1797 images, 17 gray levels, no download), kept as
float32 in [0, 1] and split 80/20 (stratified, seeded)."""

from __future__ import annotations

import numpy as np
import torch

from .augment import Augment
from .idx import MNIST_CLASSES
from .sets import ImageSet
from .specs import DataKind
from .splits import DataSplits, stratified_split


def load_digits(val_fraction: float, split_seed: int) -> DataSplits:
    """The digits as float32 ``(N, 1, 8, 8)`` in [0, 1], ``val_fraction`` of each class held
    out by the split seeded with ``split_seed``."""
    from sklearn.datasets import load_digits as bundled_digits

    bunch = bundled_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    train, val = stratified_split(labels, val_fraction, split_seed)
    data = ImageSet(images, labels)
    return DataSplits(
        DataKind.DIGITS, "digits (scikit-learn, 8x8, 17 gray levels)", data.subset(train),
        data.subset(val), MNIST_CLASSES, Augment(crop_pad=1, flip=False),
        f"held-out {val_fraction:.0%} stratified, split seed {split_seed}")
