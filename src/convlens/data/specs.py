"""Data specs: the strings that name a data set (``digits``, ``PATH``, ``folder:PATH``,
``mnist:PATH``, ``fashion-mnist:PATH``, ``cifar10:PATH``, ``cifar100:PATH``), the split
defaults and the channel modes."""

from __future__ import annotations

import enum
from pathlib import Path

from ..errors import ConfigError, DataError, Option

DEFAULT_VAL_FRACTION = 0.2
DEFAULT_SPLIT_SEED = 0

# The settings data errors tell the user to change, as the library and the CLI spell them.
DOWNLOAD = Option("download=True", "--download")
STRICT = Option("strict=True", "--strict")
DATA_SPEC = Option("the data spec", "--data")
DIGITS_ALONE = Option('"digits" alone', "--data digits")


class DataKind(str, enum.Enum):
    """Which loader a data spec names."""

    DIGITS = "digits"
    FOLDER = "folder"
    MNIST = "mnist"
    FASHION_MNIST = "fashion-mnist"
    CIFAR10 = "cifar10"
    CIFAR100 = "cifar100"


def parse_data_spec(spec: str | Path) -> tuple[DataKind, Path | None]:
    """``digits``, ``PATH``, ``folder:PATH``, ``mnist:PATH``, ... -> (kind, path)."""
    text = str(spec).strip()
    if text.lower() == DataKind.DIGITS.value:
        return DataKind.DIGITS, None
    head, sep, rest = text.partition(":")
    if sep and head.lower() in {kind.value for kind in DataKind} and not _is_drive(head):
        kind = DataKind(head.lower())
        if kind is DataKind.DIGITS:
            raise DataError('digits takes no path: use "digits" alone', options=[DIGITS_ALONE])
        if not rest:
            raise DataError(f"{head}: needs a path after the colon, e.g. {head}:data/{head}")
        return kind, Path(rest).expanduser()
    if not text:
        raise DataError("empty data spec; use digits, a folder, mnist:PATH, cifar10:PATH, ...")
    return DataKind.FOLDER, Path(text).expanduser()


def absolute_spec(spec: str | Path) -> str:
    """``spec`` with its path made absolute, so it still names the data from another folder."""
    kind, path = parse_data_spec(spec)
    if path is None:
        return kind.value
    path = path.resolve()
    return str(path) if kind is DataKind.FOLDER else f"{kind.value}:{path}"


def parse_mode(mode: str) -> int | None:
    """``auto``/``gray``/``rgb`` -> the channel count to convert to (``None``: keep)."""
    choices = {"auto": None, "gray": 1, "rgb": 3}
    key = str(mode).strip().lower()
    if key not in choices:
        raise ConfigError(f"mode must be auto, gray or rgb; got {mode!r}")
    return choices[key]


def _is_drive(head: str) -> bool:
    return len(head) == 1 and head.isalpha()
