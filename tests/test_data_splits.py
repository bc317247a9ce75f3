"""The seeded, stratified train/val split (convlens.data.splits), on scikit-learn's digits
(convlens.data.digits) and on drawn class counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.data import load_data, stratified_split
from convlens.errors import DataError


def test_digits_split_is_stratified_seeded_and_disjoint():
    from sklearn.datasets import load_digits

    splits = load_data("digits")
    bunch = load_digits()
    assert splits.in_channels == 1 and splits.input_size == (8, 8)
    assert len(splits.train) + len(splits.val) == len(bunch.target)
    assert 0.19 < len(splits.val) / len(bunch.target) < 0.21
    counts = np.bincount(splits.val.labels.numpy()) / np.bincount(bunch.target)
    assert np.all(np.abs(counts - 0.2) < 0.02)
    again = load_data("digits")
    assert torch.equal(again.val.images, splits.val.images)
    assert not splits.augment.flip  # a mirrored 2 is not a 2
    other = load_data("digits", split_seed=1)
    assert not torch.equal(other.val.labels, splits.val.labels) or not torch.equal(
        other.val.images, splits.val.images)
    # values are the 0..16 counts divided by 16
    train_rows = {tuple(row) for row in (splits.train.images.flatten(1) * 16).round().numpy()}
    assert tuple(bunch.data[0]) in train_rows or tuple(bunch.data[0]) in {
        tuple(row) for row in (splits.val.images.flatten(1) * 16).round().numpy()}


@settings(max_examples=25, deadline=None)
@given(counts=st.lists(st.integers(2, 30), min_size=2, max_size=6),
       fraction=st.floats(0.05, 0.6), seed=st.integers(0, 1000))
def test_stratified_split_properties(counts, fraction, seed):
    labels = torch.tensor([label for label, n in enumerate(counts) for _ in range(n)])
    train, val = stratified_split(labels, fraction, seed)
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(len(labels)))
    for label, n in enumerate(counts):
        in_val = int((labels[val] == label).sum())
        assert in_val == min(n - 1, max(1, round(n * fraction)))
    again = stratified_split(labels, fraction, seed)
    assert torch.equal(again[0], train) and torch.equal(again[1], val)


def test_a_class_of_one_cannot_be_split():
    with pytest.raises(DataError, match="at least 2"):
        stratified_split(torch.tensor([0, 0, 1]), 0.2, 0)
