"""Training augmentation on tensors (convlens.data.augment): every output a shifted crop (or
its mirror) of the padded input, repeatable with the seed."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.data import Augment, augment_batch


@settings(max_examples=20, deadline=None)
@given(pad=st.integers(1, 3), size=st.integers(4, 9), flip=st.booleans(),
       seed=st.integers(0, 10_000))
def test_augmented_images_are_shifted_crops_of_the_padded_input(pad, size, flip, seed):
    images = torch.rand(4, 2, size, size + 1)
    out = augment_batch(images, Augment(crop_pad=pad, flip=flip),
                        torch.Generator().manual_seed(seed))
    assert out.shape == images.shape
    padded = F.pad(images, (pad,) * 4)
    for index in range(len(images)):
        candidates = [padded[index, :, dy:dy + size, dx:dx + size + 1]
                      for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
        if flip:
            candidates += [c.flip(-1) for c in candidates]
        assert any(torch.equal(out[index], c) for c in candidates)


def test_augmentation_repeats_with_the_seed_and_is_off_when_inactive():
    images = torch.rand(16, 1, 8, 8)
    spec = Augment(crop_pad=2, flip=True, pad_mode="reflect")
    first = augment_batch(images, spec, torch.Generator().manual_seed(3))
    assert torch.equal(first, augment_batch(images, spec, torch.Generator().manual_seed(3)))
    assert not torch.equal(first, images)
    assert augment_batch(images, Augment()) is images
