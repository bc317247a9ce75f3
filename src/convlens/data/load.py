"""The two ways in: :func:`load_data` (a data set to train on, split into train and val) and
:func:`load_eval_set` (the images to evaluate a model on, fitted to its input and classes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ..errors import ConfigError, DataError
from ..sizes import parse_size
from .cifar import load_cifar
from .digits import load_digits
from .download import download_dataset
from .folders import load_folder, read_files, scan_folder
from .idx import load_mnist
from .sets import ImageSet, conform
from .specs import DEFAULT_SPLIT_SEED, DEFAULT_VAL_FRACTION, DataKind, parse_data_spec, parse_mode
from .splits import DataSplits


def load_data(
    spec: str | Path = "digits",
    *,
    size: int | tuple[int, int] | None = None,
    mode: str = "auto",
    val_fraction: float = DEFAULT_VAL_FRACTION,
    split_seed: int = DEFAULT_SPLIT_SEED,
    strict: bool = False,
    download: bool = False,
    workers: int | None = None,
    notify: Callable[[str], None] | None = None,
) -> DataSplits:
    """Load the data set ``spec`` names, split into train and val.

    ``size`` ``(H, W)`` (or one side) resizes every image; ``mode`` ``gray``/``rgb`` converts
    channels (``auto`` keeps them). ``val_fraction`` and ``split_seed`` shape the seeded,
    stratified split used where the data has no val part of its own. ``strict`` turns
    unreadable image files into an error instead of skipping them. ``download`` fetches MNIST,
    Fashion-MNIST or CIFAR from their official address into the given folder if missing.
    ``workers`` threads decode image folders (default: up to 8, one per CPU). ``notify``
    receives progress lines (downloads).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val fraction must lie between 0 and 1; got {val_fraction}")
    kind, path = parse_data_spec(spec)
    target = None if size is None else parse_size(size, "size")
    channels = parse_mode(mode)
    if path is None:  # digits, the one source without a path
        splits = load_digits(val_fraction, split_seed)
    elif kind is DataKind.FOLDER:
        splits = load_folder(path, target, channels, val_fraction, split_seed, strict, workers)
    else:
        if download:
            download_dataset(kind, path, progress=notify)
        if kind in (DataKind.MNIST, DataKind.FASHION_MNIST):
            splits = load_mnist(kind, path, val_fraction, split_seed)
        else:
            splits = load_cifar(kind, path)
    if kind is not DataKind.FOLDER and (target or channels):
        splits.train = conform(splits.train, channels, target)
        splits.val = conform(splits.val, channels, target)
    return splits


def load_eval_set(
    spec: str | Path,
    class_names: Sequence[str],
    channels: int,
    size: tuple[int, int],
    *,
    split_seed: int = DEFAULT_SPLIT_SEED,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    strict: bool = False,
    workers: int | None = None,
) -> tuple[ImageSet, list[tuple[Path, str]]]:
    """The images to evaluate a model on, fitted to its input and labelled by its classes.

    A plain class-folder tree is used whole (a test folder); a tree with ``val/`` uses that;
    ``digits`` uses the same held-out split as training; MNIST and CIFAR their test files
    (a folder holding only those is enough; MNIST without them is split as in training).
    A class the model does not know raises :class:`DataError`. Returns the set and the files
    skipped as unreadable.
    """
    kind, path = parse_data_spec(spec)
    if kind is DataKind.FOLDER and path is not None:
        scan = scan_folder(path)
        files = scan.val if scan.val is not None else scan.train
        data_names = sorted(files)
        _check_known(data_names, class_names)
        data, skipped = read_files(files, data_names, channels, size, strict, workers)
    else:
        if path is None:  # digits: the same held-out split as training
            splits = load_data(spec, split_seed=split_seed, val_fraction=val_fraction)
        elif kind is DataKind.CIFAR10 or kind is DataKind.CIFAR100:
            splits = load_cifar(kind, path, val_only=True)
        else:  # only the test files are needed (or the train files, split as in training)
            splits = load_mnist(kind, path, val_fraction, split_seed, val_only=True)
        data_names, data, skipped = splits.class_names, splits.val, splits.skipped
        _check_known(data_names, class_names)
        data = conform(data, channels, size)
    lookup = torch.tensor([list(class_names).index(name) for name in data_names])
    return ImageSet(data.images, lookup[data.labels]), skipped


def _check_known(data_names: Sequence[str], model_names: Sequence[str]) -> None:
    unknown = [name for name in data_names if name not in model_names]
    if unknown:
        raise DataError(f"class {unknown[0]!r} in the data is not one the model knows (model "
                        f"classes: {', '.join(model_names)})")
