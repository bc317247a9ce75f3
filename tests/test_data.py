"""Data loaders against small files written here in each real format, the split, the
statistics and the tensor augmentation."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from convlens.data import (
    Augment,
    DataKind,
    ImageSet,
    augment_batch,
    channel_stats,
    download_dataset,
    load_data,
    load_eval_set,
    parse_data_spec,
    read_cifar_batch,
    read_idx,
    stratified_split,
)
from convlens.data import cifar as cifar_module
from convlens.data import download as download_module
from convlens.errors import ConfigError, DataError

# --- writers for the real formats -------------------------------------------------------------

def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    """IDX as LeCun's page describes it: 0, 0, type 0x08 (ubyte), ndim, big-endian dims."""
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def write_mnist(folder: Path, n_train=30, n_test=20, gz=True, test=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    sets = {"train": n_train, "t10k": n_test} if test else {"train": n_train}
    arrays = {}
    for prefix, count in sets.items():
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = np.arange(count) % 10
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz)
        arrays[prefix] = (images, labels)
    return arrays


def write_cifar_batch(path: Path, data: np.ndarray, labels, key="labels", byte_keys=True):
    """The python-version CIFAR layout: a pickled dict of 'batch_label', labels, 'data'
    (N, 3072) uint8 rows (1024 R, 1024 G, 1024 B, each row-major) and 'filenames'."""
    batch = {"batch_label": "testing batch 1 of 1", key: list(labels), "data": data,
             "filenames": [f"img_{i}.png" for i in range(len(data))]}
    if byte_keys:  # how Python 3 sees the Python 2 pickles with encoding="bytes"
        batch = {k.encode(): v for k, v in batch.items()}
    with open(path, "wb") as stream:
        pickle.dump(batch, stream, protocol=2)


def write_cifar10(root: Path, per_batch=8, batches=2, byte_keys=True, seed=0):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    written = []
    for index in range(1, batches + 1):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch)
        write_cifar_batch(folder / f"data_batch_{index}", data, labels, byte_keys=byte_keys)
        written.append((data, labels))
    test = rng.integers(0, 256, (5, 3072), dtype=np.uint8)
    write_cifar_batch(folder / "test_batch", test, [0, 1, 2, 3, 9], byte_keys=byte_keys)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]
    meta = {"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}
    with open(folder / "batches.meta", "wb") as stream:
        pickle.dump(meta, stream, protocol=2)
    return written, names


def write_image_tree(root: Path, classes=("cat", "dog"), per_class=5, size=(12, 10),
                     colour=False, seed=0):
    """One sub-folder per class, PNG and JPEG files alternating."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            shape = (*size, 3) if colour else size
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            pixels[:, : size[1] // 2] = (40 + 90 * label) % 256  # classes differ on the left
            suffix = "png" if index % 2 == 0 else "jpg"
            Image.fromarray(pixels).save(folder / f"{index}.{suffix}")
    return root


# --- specs --------------------------------------------------------------------------------

def test_parse_data_spec():
    assert parse_data_spec("digits") == (DataKind.DIGITS, None)
    assert parse_data_spec("mnist:data/m") == (DataKind.MNIST, Path("data/m"))
    assert parse_data_spec("fashion-mnist:x") == (DataKind.FASHION_MNIST, Path("x"))
    assert parse_data_spec("cifar100:y") == (DataKind.CIFAR100, Path("y"))
    assert parse_data_spec("some/folder") == (DataKind.FOLDER, Path("some/folder"))
    assert parse_data_spec("folder:pets") == (DataKind.FOLDER, Path("pets"))
    with pytest.raises(DataError, match="needs a path"):
        parse_data_spec("cifar10:")


# --- digits -------------------------------------------------------------------------------

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


# --- MNIST IDX ----------------------------------------------------------------------------

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
    with pytest.raises(DataError, match="add --download"):
        load_data(f"mnist:{tmp_path / 'nowhere'}")


# --- CIFAR --------------------------------------------------------------------------------

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


# --- image folders ------------------------------------------------------------------------

def test_folder_with_png_and_jpeg_is_split_and_keeps_its_size(tmp_path):
    write_image_tree(tmp_path, per_class=5, size=(12, 10))
    splits = load_data(tmp_path)
    assert splits.class_names == ["cat", "dog"]
    assert splits.in_channels == 1 and splits.input_size == (12, 10)
    assert len(splits.train) == 8 and len(splits.val) == 2
    assert sorted(splits.val.labels.tolist()) == [0, 1]
    # the PNG pixels survive exactly (gray PNG -> uint8)
    png = np.asarray(Image.open(tmp_path / "cat" / "0.png"))
    every = torch.cat([splits.train.images, splits.val.images])[:, 0].numpy()
    assert any(np.array_equal(png, image) for image in every)


def test_folder_colour_big_images_default_to_64_and_rgb(tmp_path):
    write_image_tree(tmp_path, per_class=2, size=(80, 90), colour=True)
    splits = load_data(tmp_path)
    assert splits.in_channels == 3 and splits.input_size == (64, 64)
    sized = load_data(tmp_path, size="16x24", mode="gray")
    assert sized.in_channels == 1 and sized.input_size == (16, 24)


def test_folder_train_val_subtrees(tmp_path):
    write_image_tree(tmp_path / "train", per_class=3)
    write_image_tree(tmp_path / "val", per_class=2, seed=1)
    splits = load_data(tmp_path)
    assert len(splits.train) == 6 and len(splits.val) == 4
    assert splits.val_from == "the val/ sub-folder"


def test_corrupt_files_are_skipped_with_a_count_or_stop_with_strict(tmp_path):
    write_image_tree(tmp_path, per_class=4)
    (tmp_path / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "dog" / "notes.txt").write_text("ignored: not an image suffix")
    splits = load_data(tmp_path)
    assert len(splits.skipped) == 1 and splits.skipped[0][0].name == "broken.png"
    assert len(splits.train) + len(splits.val) == 8
    with pytest.raises(DataError, match=r"unreadable image .*broken\.png"):
        load_data(tmp_path, strict=True)


def test_empty_and_missing_classes_are_clear_errors(tmp_path):
    write_image_tree(tmp_path / "a", per_class=2)
    (tmp_path / "a" / "bird").mkdir()
    with pytest.raises(DataError, match="class 'bird' is empty"):
        load_data(tmp_path / "a")

    write_image_tree(tmp_path / "b" / "train", classes=("cat", "dog", "fox"), per_class=2)
    write_image_tree(tmp_path / "b" / "val", classes=("cat", "dog"), per_class=2)
    with pytest.raises(DataError, match="class 'fox' has no folder in"):
        load_data(tmp_path / "b")

    write_image_tree(tmp_path / "c" / "train", classes=("cat", "dog"), per_class=2)
    write_image_tree(tmp_path / "c" / "val", classes=("cat", "dog", "owl"), per_class=2)
    with pytest.raises(DataError, match="'owl' is in val/ but not in train/"):
        load_data(tmp_path / "c")

    write_image_tree(tmp_path / "d", classes=("cat",), per_class=2)
    with pytest.raises(DataError, match="at least 2 class sub-folders"):
        load_data(tmp_path / "d")

    (tmp_path / "e").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "e" / "x.png")
    with pytest.raises(DataError, match="no class sub-folders"):
        load_data(tmp_path / "e")

    with pytest.raises(DataError, match="no such data folder"):
        load_data(tmp_path / "nothing")

    write_image_tree(tmp_path / "f", per_class=2)
    for path in (tmp_path / "f" / "dog").iterdir():
        path.write_bytes(b"junk")
    with pytest.raises(DataError, match="'dog' has no readable images"):
        load_data(tmp_path / "f")


def test_eval_set_maps_classes_by_name_and_rejects_unknown_ones(tmp_path):
    write_image_tree(tmp_path / "test", classes=("dog",), per_class=2)
    write_image_tree(tmp_path / "test", classes=("cat",), per_class=1)
    data, skipped = load_eval_set(tmp_path / "test", ["zebra", "dog", "cat"], 3, (8, 8))
    assert data.labels.tolist() == [2, 1, 1] and data.images.shape == (3, 3, 8, 8)
    assert skipped == []
    with pytest.raises(DataError, match="'dog' in the data is not one the model knows"):
        load_eval_set(tmp_path / "test", ["cat", "cow"], 1, (8, 8))


def test_size_and_mode_errors():
    with pytest.raises(ConfigError, match="size must be"):
        load_data("digits", size="axb")
    with pytest.raises(ConfigError, match="mode must be"):
        load_data("digits", mode="cmyk")
    with pytest.raises(ConfigError, match="val fraction"):
        load_data("digits", val_fraction=1.5)


# --- statistics and augmentation ------------------------------------------------------------

def test_channel_stats_match_numpy():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (7, 3, 5, 4), dtype=np.uint8)
    mean, std = channel_stats(ImageSet(torch.from_numpy(pixels), torch.zeros(7)), chunk=3)
    values = pixels.astype(np.float64) / 255
    np.testing.assert_allclose(mean, values.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, values.std(axis=(0, 2, 3)), rtol=1e-9)


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


# --- downloads ----------------------------------------------------------------------------

def test_download_offline_is_a_clear_error(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download_module, "urlopen", offline)
    with pytest.raises(DataError, match=r"could not download mnist .*are you offline"):
        download_dataset("mnist", tmp_path / "mnist")
    assert list((tmp_path / "mnist").iterdir()) == []  # no half files left behind
    with pytest.raises(DataError, match="could not download cifar10"):
        load_data(f"cifar10:{tmp_path / 'c'}", download=True)


def test_download_checks_the_official_md5(tmp_path, monkeypatch):
    class Response:
        def __init__(self):
            self.chunks = [b"not the real file", b""]

        def read(self, size):
            return self.chunks.pop(0)

        def __enter__(self):
            return self

        def __exit__(self, *args):
            return False

    monkeypatch.setattr(download_module, "urlopen", lambda url, timeout: Response())
    with pytest.raises(DataError, match="differs from the official"):
        download_dataset("fashion-mnist", tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- damaged files and evaluation-only folders ---------------------------------------------

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


MNIST_NAMES = [str(digit) for digit in range(10)]


def test_an_idx_gzip_bomb_stops_at_the_limit(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 64, 1024, 1024)
    path.write_bytes(gzip.compress(header + bytes(64 * 1024 * 1024)))  # 64 MiB of zeros
    assert path.stat().st_size < 200_000
    with pytest.raises(DataError, match="holds over 16 MiB"):
        read_idx(path, max_bytes=16 * 2**20)
    assert read_idx(path).shape == (64, 1024, 1024)  # under the default limit it reads


def test_download_with_everything_there_needs_no_writable_folder(tmp_path, monkeypatch):
    official = download_module.DOWNLOADS[DataKind.MNIST].files
    for name in official:
        (tmp_path / name).write_bytes(b"stands in for the real file")
    monkeypatch.setattr(download_module, "_md5", lambda path: official[Path(path).name])
    monkeypatch.setattr(download_module, "urlopen", lambda url, timeout: pytest.fail("fetched"))
    tmp_path.chmod(0o555)  # a shared, read-only copy of the data set
    try:
        assert download_dataset("mnist", tmp_path) == tmp_path
    finally:
        tmp_path.chmod(0o755)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()  # now one must be fetched: refused
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match="is read-only"):
            download_dataset("mnist", tmp_path)
    finally:
        tmp_path.chmod(0o755)
