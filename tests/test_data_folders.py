"""Image-folder trees (convlens.data.folders): split or with a val sub-tree, sizes and
channels chosen from the files, unreadable files skipped or refused, empty classes refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from convlens.data import load_data
from convlens.errors import DataError
from data_files import write_image_tree


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
