"""CIFAR python batches (convlens.data.cifar), written here in the official layout: read
back, class names from the meta file, no code run from a file, and every damage a clear
error."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.data import cifar as cifar_module
from convlens.data import load_data, read_cifar_batch
from convlens.errors import DataError
from data_files import write_cifar10, write_cifar_batch


@pytest.mark.parametrize("byte_keys", [True, False])
def test_cifar10_batches_in_the_official_layout(tmp_path, byte_keys):
    written, names = write_cifar10(tmp_path, byte_keys=byte_keys)
    splits = load_data(f"cifar10:{tmp_path}")
    assert splits.class_names == names
    assert len(splits.train) == 16 and len(splits.val) == 5
    data, labels = written[0]
    image = splits.train.images[3]
    # row layout: 1024 red values, then green, then blue, each 32 rows of 32
    assert int(image[0, 0, 0]) == data[3, 0]
    assert int(image[1, 2, 5]) == data[3, 1024 + 2 * 32 + 5]
    assert int(image[2, 31, 31]) == data[3, 3071]
    assert torch.equal(splits.train.labels[:8], torch.tensor(labels))
    assert splits.augment.flip and splits.augment.crop_pad == 4
    # the folder itself works as well as its parent
    assert len(load_data(f"cifar10:{tmp_path / 'cifar-10-batches-py'}").val) == 5


def test_cifar100_uses_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    write_cifar_batch(folder / "train", rng.integers(0, 256, (6, 3072), dtype=np.uint8),
                      [0, 5, 99, 3, 3, 1], key="fine_labels")
    write_cifar_batch(folder / "test", rng.integers(0, 256, (2, 3072), dtype=np.uint8),
                      [99, 0], key="fine_labels")
    with open(folder / "meta", "wb") as stream:
        pickle.dump({b"fine_label_names": [f"n{i}".encode() for i in range(100)]}, stream)
    splits = load_data(f"cifar100:{tmp_path}")
    assert splits.num_classes == 100 and splits.class_names[99] == "n99"
    assert splits.train.labels.tolist() == [0, 5, 99, 3, 3, 1]


class _Boom:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_cifar_reader_never_runs_code_from_the_file(tmp_path, capsys):
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as stream:
        pickle.dump({"data": _Boom()}, stream)
    with pytest.raises(DataError, match=r"refusing to unpickle builtins\.print"):
        read_cifar_batch(path)
    assert "must never run" not in capsys.readouterr().out
    path.write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a CIFAR python batch"):
        read_cifar_batch(path)


def test_cifar_missing_batches(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DataError, match="lacks the cifar10 batches"):
        load_data(f"cifar10:{tmp_path}")


def _cifar_bytes(count: int = 3, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return pickle.dumps({b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
                         b"labels": list(range(count)), b"batch_label": b"test"}, protocol=2)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_damaged_cifar_batch_is_one_clear_error(tmp_path_factory, data):
    """Cut short or with bytes changed, a batch either still reads as a valid batch or raises
    DataError, never anything else."""
    whole = bytearray(_cifar_bytes())
    if data.draw(st.booleans(), "truncate"):
        damaged = whole[:data.draw(st.integers(0, len(whole) - 1), "length")]
    else:
        damaged = whole
        for _ in range(data.draw(st.integers(1, 6), "flips")):
            damaged[data.draw(st.integers(0, len(whole) - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path_factory.mktemp("cifar") / "test_batch"
    path.write_bytes(bytes(damaged))
    try:
        batch = cifar_module.read_cifar_set(path, "labels")
    except DataError as exc:
        assert "\n" not in str(exc) and "test_batch" in str(exc)
    else:
        assert batch.images.shape[1:] == (3, 32, 32) and len(batch) == len(batch.labels)


@pytest.mark.parametrize(("labels", "words"), [
    (["cat", "dog", "cow"], "whole-number class indices"),
    ([[0], [1], [2]], "whole-number class indices"),
    ([0, None, 1], "whole-number class indices"),
    ([0, 2**70, 1], "whole-number class indices"),
    ([0, 1], "3 images but 2 labels"),
    (7, "whole-number class indices"),
])
def test_cifar_labels_of_the_wrong_kind(tmp_path, labels, words):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": np.zeros((3, 3072), np.uint8), b"labels": labels}))
    with pytest.raises(DataError, match=words):
        cifar_module.read_cifar_set(path, "labels")


def test_cifar_codec_and_meta_damage(tmp_path):
    path = tmp_path / "batch"
    # a pickle asking the allowed codec function for an unknown encoding
    path.write_bytes(b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00aX\x04\x00\x00\x00nopeq"
                     b"\x01\x86q\x02Rq\x03.")
    with pytest.raises(DataError, match="not a CIFAR python batch or is damaged"):
        read_cifar_batch(path)
    write_cifar10(tmp_path / "c")
    with open(tmp_path / "c" / "cifar-10-batches-py" / "batches.meta", "wb") as stream:
        pickle.dump({"label_names": 12}, stream)  # not a list: the numbers stand in as names
    assert load_data(f"cifar10:{tmp_path / 'c'}").class_names == [str(i) for i in range(10)]
