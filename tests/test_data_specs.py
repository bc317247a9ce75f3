"""Data specs (``digits``, ``PATH``, ``mnist:PATH``, ...) and the loader's option errors
(convlens.data.specs, convlens.data.load)."""

from __future__ import annotations

from pathlib import Path

import pytest

from convlens.data import DataKind, load_data, parse_data_spec
from convlens.errors import ConfigError, DataError


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
