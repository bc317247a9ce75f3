"""Data specs (``digits``, ``PATH``, ``mnist:PATH``, ...), the loader's option errors
(convlens.data.specs, convlens.data.load), and the settings data errors name: as the library
spells them, and as flags only when the CLI words them."""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import pytest

from convlens.data import DataKind, download_dataset, load_data, parse_data_spec
from convlens.data import download as download_module
from convlens.errors import ConfigError, DataError
from data_files import write_image_tree


def test_parse_data_spec():
    assert parse_data_spec("digits") == (DataKind.DIGITS, None)
    assert parse_data_spec("mnist:data/m") == (DataKind.MNIST, Path("data/m"))
    assert parse_data_spec("fashion-mnist:x") == (DataKind.FASHION_MNIST, Path("x"))
    assert parse_data_spec("cifar100:y") == (DataKind.CIFAR100, Path("y"))
    assert parse_data_spec("some/folder") == (DataKind.FOLDER, Path("some/folder"))
    assert parse_data_spec("folder:pets") == (DataKind.FOLDER, Path("pets"))
    with pytest.raises(DataError, match="needs a path"):
        parse_data_spec("cifar10:")


def test_size_and_mode_errors():
    with pytest.raises(ConfigError, match="size must be"):
        load_data("digits", size="axb")
    with pytest.raises(ConfigError, match="mode must be"):
        load_data("digits", mode="cmyk")
    with pytest.raises(ConfigError, match="val fraction"):
        load_data("digits", val_fraction=1.5)


def _offline(url, timeout):
    raise URLError("no network in this test")


def _unreadable_tree(root: Path) -> Path:
    write_image_tree(root, per_class=3)
    (root / "cat" / "broken.png").write_bytes(b"not a png")
    return root


@pytest.mark.parametrize(("make_error", "library", "cli"), [
    (lambda tmp: parse_data_spec("digits:x"),
     'use "digits" alone', "use --data digits"),
    (lambda tmp: load_data(Path(__file__)),
     "the data spec needs a folder", "--data needs a folder"),
    (lambda tmp: load_data(_unreadable_tree(tmp / "tree"), strict=True),
     "without strict=True they are skipped", "without --strict they are skipped"),
    (lambda tmp: load_data(f"mnist:{tmp / 'nowhere'}"),
     "add download=True to fetch them", "add --download to fetch them"),
    (lambda tmp: load_data(f"cifar10:{tmp / 'nowhere'}"),
     "add download=True to fetch it", "add --download to fetch it"),
    (lambda tmp: load_data(f"cifar100:{tmp}"),
     "add download=True to fetch them", "add --download to fetch them"),
    (lambda tmp: download_dataset("mnist", tmp / "m"),
     "run again without download=True", "run again without --download"),
])
def test_data_errors_name_settings_as_each_surface_spells_them(tmp_path, monkeypatch,
                                                              make_error, library, cli):
    monkeypatch.setattr(download_module, "urlopen", _offline)
    with pytest.raises(DataError) as refused:
        make_error(tmp_path)
    assert library in str(refused.value) and " --" not in str(refused.value)
    assert cli in refused.value.worded("cli")
