"""The images to evaluate a model on (convlens.data.load.load_eval_set): classes mapped by
name, and only the test files needed."""

from __future__ import annotations

import pytest
import torch

from convlens.data import load_data, load_eval_set
from convlens.errors import DataError
from data_files import write_cifar10, write_image_tree, write_mnist

MNIST_NAMES = [str(digit) for digit in range(10)]


def test_eval_set_maps_classes_by_name_and_rejects_unknown_ones(tmp_path):
    write_image_tree(tmp_path / "test", classes=("dog",), per_class=2)
    write_image_tree(tmp_path / "test", classes=("cat",), per_class=1)
    data, skipped = load_eval_set(tmp_path / "test", ["zebra", "dog", "cat"], 3, (8, 8))
    assert data.labels.tolist() == [2, 1, 1] and data.images.shape == (3, 3, 8, 8)
    assert skipped == []
    with pytest.raises(DataError, match="'dog' in the data is not one the model knows"):
        load_eval_set(tmp_path / "test", ["cat", "cow"], 1, (8, 8))


def test_eval_set_needs_only_the_test_files(tmp_path):
    arrays = write_mnist(tmp_path / "full", gz=False)
    only = tmp_path / "only"
    only.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (only / name).write_bytes((tmp_path / "full" / name).read_bytes())
    data, skipped = load_eval_set(f"mnist:{only}", MNIST_NAMES, 1, (28, 28))
    assert skipped == []
    images, labels = arrays["t10k"]
    assert torch.equal(data.images[:, 0], torch.from_numpy(images))
    assert data.labels.tolist() == labels.tolist()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"lacks t10k-images-idx3-ubyte\[\.gz\]"):
        load_eval_set(f"mnist:{tmp_path / 'empty'}", MNIST_NAMES, 1, (28, 28))
    # CIFAR: the test batch alone
    _, names = write_cifar10(tmp_path / "c")
    folder = tmp_path / "c" / "cifar-10-batches-py"
    for path in folder.glob("data_batch_*"):
        path.unlink()
    data, _ = load_eval_set(f"cifar10:{tmp_path / 'c'}", names, 3, (32, 32))
    assert data.labels.tolist() == [0, 1, 2, 3, 9] and data.images.shape == (5, 3, 32, 32)
    with pytest.raises(DataError, match="lacks the cifar10 batches"):
        load_data(f"cifar10:{tmp_path / 'c'}")  # training still needs its batches
