"""MNIST and Fashion-MNIST IDX files (convlens.data.idx), written here as LeCun's page
describes them: read back exactly, split, resized, and every damage a clear error."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from convlens.data import load_data, read_idx
from convlens.errors import DataError
from data_files import write_idx, write_mnist


@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_read_back_exactly(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz=gz)
    images, labels = arrays["train"]
    suffix = ".gz" if gz else ""
    np.testing.assert_array_equal(read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}"), images)
    splits = load_data(f"mnist:{tmp_path}")
    assert splits.val_from == "the t10k test files"
    assert torch.equal(splits.train.images[:, 0], torch.from_numpy(images))
    assert torch.equal(splits.train.labels, torch.from_numpy(labels))
    assert len(splits.val) == 20 and splits.class_names == [str(d) for d in range(10)]


def test_mnist_without_test_files_is_split(tmp_path):
    write_mnist(tmp_path, n_train=40, test=False)
    splits = load_data(f"mnist:{tmp_path}", val_fraction=0.25)
    assert len(splits.val) == 10 and len(splits.train) == 30
    assert "held-out" in splits.val_from


def test_fashion_mnist_names_and_resize(tmp_path):
    write_mnist(tmp_path)
    splits = load_data(f"fashion-mnist:{tmp_path}", size=32, mode="rgb")
    assert splits.class_names[0] == "T-shirt/top" and splits.class_names[9] == "Ankle boot"
    assert splits.input_size == (32, 32) and splits.in_channels == 3
    assert splits.train.images.dtype == torch.uint8


def test_broken_idx_files_are_clear_errors(tmp_path):
    arrays = write_mnist(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match="needs"):
        read_idx(path)
    path.write_bytes(b"\x12\x34\x56\x78")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)
    write_idx(path, arrays["train"][0][:5], gz=False)  # 5 images, 30 labels
    with pytest.raises(DataError, match="labels for 5 images"):
        load_data(f"mnist:{tmp_path}")
    with pytest.raises(DataError, match="add download=True") as refused:
        load_data(f"mnist:{tmp_path / 'nowhere'}")
    assert "add --download" in refused.value.worded("cli")  # the CLI's words for it


def test_idx_files_of_the_wrong_kind(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((4, 5, 5)), gz=False)
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros((4, 5, 5)), gz=False)  # images
    with pytest.raises(DataError, match="should hold one whole-number label per image"):
        load_data(f"mnist:{folder}")
    write_idx(folder / "train-labels-idx1-ubyte", np.array([1, 2, 3, 12]), gz=False)
    with pytest.raises(DataError, match="has label 12; MNIST labels are 0-9"):
        load_data(f"mnist:{folder}")
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((0, 5, 5)), gz=False)
    with pytest.raises(DataError, match="holds no images"):
        load_data(f"mnist:{folder}")
    cut = gzip.compress(bytes(100))[:-9]
    (folder / "train-images-idx3-ubyte").unlink()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(cut)
    with pytest.raises(DataError, match="damaged gzip file"):
        load_data(f"mnist:{folder}")
    huge = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(huge))
    with pytest.raises(DataError, match="its header 4294967295x4294967295x4294967295 needs"):
        load_data(f"mnist:{folder}")


def test_an_idx_gzip_bomb_stops_at_the_limit(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 64, 1024, 1024)
    path.write_bytes(gzip.compress(header + bytes(64 * 1024 * 1024)))  # 64 MiB of zeros
    assert path.stat().st_size < 200_000
    with pytest.raises(DataError, match="holds over 16 MiB"):
        read_idx(path, max_bytes=16 * 2**20)
    assert read_idx(path).shape == (64, 1024, 1024)  # under the default limit it reads
