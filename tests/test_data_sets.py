"""Image sets (convlens.data.sets): the channel statistics against NumPy."""

from __future__ import annotations

import numpy as np
import torch

from convlens.data import ImageSet, channel_stats


def test_channel_stats_match_numpy():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (7, 3, 5, 4), dtype=np.uint8)
    mean, std = channel_stats(ImageSet(torch.from_numpy(pixels), torch.zeros(7)), chunk=3)
    values = pixels.astype(np.float64) / 255
    np.testing.assert_allclose(mean, values.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, values.std(axis=(0, 2, 3)), rtol=1e-9)
