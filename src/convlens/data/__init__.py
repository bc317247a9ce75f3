"""Image classification data sets as in-memory tensors, split into train and val.

Sources (a *data spec* string):

* ``digits``: scikit-learn's bundled 8x8 digits (1797 images, no download), split 80/20.
* ``PATH`` or ``folder:PATH``: an image-folder tree, one sub-folder per class, either with
  ``train/`` and ``val/`` (or ``valid``, ``validation``, ``test``) sub-trees or split 80/20.
* ``mnist:PATH`` / ``fashion-mnist:PATH``: the IDX files (gzipped or not); ``t10k`` is val.
* ``cifar10:PATH`` / ``cifar100:PATH``: the CIFAR python batches; the test batch is val.

Every split made here is seeded and stratified (each class split in the same proportion), so
the val images never change with the training seed. Images are kept as ``(N, C, H, W)`` uint8
(or float32 for digits, whose 17 gray levels are not bytes) and turned into floats in [0, 1] a
batch at a time. Nothing is downloaded unless asked (:func:`download_dataset`).
"""

from __future__ import annotations

import enum
import gzip
import hashlib
import io
import math
import os
import pickle
import shutil
import struct
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, ConvlensError, DataError
from ..explain import parse_size
from ..images import IMAGE_SUFFIXES, load_image
from ..limits import MAX_IDX_BYTES, check_budget
from ..models.checkpoint import match_channels, resize_exact

DEFAULT_VAL_FRACTION = 0.2
DEFAULT_SPLIT_SEED = 0
FOLDER_MAX_SIDE = 64
"""Default side (px) folder images are resized to, unless they all share a smaller size."""
TRAIN_NAMES = ("train", "training")
VAL_NAMES = ("val", "valid", "validation", "test")
MNIST_CLASSES = [str(digit) for digit in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
_GRAY_PIL_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class DataKind(str, enum.Enum):
    """Which loader a data spec names."""

    DIGITS = "digits"
    FOLDER = "folder"
    MNIST = "mnist"
    FASHION_MNIST = "fashion-mnist"
    CIFAR10 = "cifar10"
    CIFAR100 = "cifar100"


@dataclass(frozen=True)
class Download:
    """Where a data set officially lives: base URLs tried in order, file names and MD5s."""

    urls: tuple[str, ...]
    files: dict[str, str]
    archive: bool = False


DOWNLOADS: dict[DataKind, Download] = {
    # yann.lecun.com is MNIST's home; it often refuses scripted downloads, so PyTorch's mirror
    # of the same files (same MD5s) is tried next.
    DataKind.MNIST: Download(
        ("https://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
         "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
         "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
         "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}),
    DataKind.FASHION_MNIST: Download(
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
         "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
         "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
         "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}),
    DataKind.CIFAR10: Download(
        ("https://www.cs.toronto.edu/~kriz/",),
        {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"}, archive=True),
    DataKind.CIFAR100: Download(
        ("https://www.cs.toronto.edu/~kriz/",),
        {"cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85"}, archive=True),
}
CIFAR_FOLDERS = {DataKind.CIFAR10: "cifar-10-batches-py", DataKind.CIFAR100: "cifar-100-python"}


@dataclass
class ImageSet:
    """Images ``(N, C, H, W)`` (uint8 0-255 or float32 in [0, 1]) and labels ``(N,)`` int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise DataError(f"images must be (N, C, H, W); got shape {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise DataError(f"{len(self.images)} images but {len(self.labels)} labels")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def to(self, device: torch.device | str) -> ImageSet:
        """The same set with its tensors on ``device``."""
        return ImageSet(self.images.to(device), self.labels.to(device))

    def subset(self, index: torch.Tensor) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index])

    def floats(self, index: torch.Tensor | slice | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Images ``index`` as floats ``(n, C, H, W)`` in [0, 1]."""
        batch = self.images if index is None else self.images[index]
        if batch.dtype == torch.uint8:
            return batch.to(dtype).div_(255.0)
        return batch.to(dtype)


@dataclass(frozen=True)
class Augment:
    """Training augmentation on tensors: random crop after ``crop_pad`` px of padding on each
    side (``pad_mode`` ``zeros`` or ``reflect``), and a random horizontal flip if ``flip``."""

    crop_pad: int = 0
    flip: bool = False
    pad_mode: str = "zeros"

    @property
    def active(self) -> bool:
        return self.crop_pad > 0 or self.flip

    def describe(self) -> str:
        parts = []
        if self.crop_pad:
            parts.append(f"random crop (pad {self.crop_pad}, {self.pad_mode})")
        if self.flip:
            parts.append("horizontal flip")
        return ", ".join(parts) or "none"


@dataclass
class DataSplits:
    """A data set ready to train on: train and val sets, class names and what it came from."""

    kind: DataKind
    source: str
    train: ImageSet
    val: ImageSet
    class_names: list[str]
    augment: Augment
    val_from: str
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def in_channels(self) -> int:
        return self.train.channels

    @property
    def input_size(self) -> tuple[int, int]:
        return self.train.size

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> str:
        height, width = self.input_size
        return (f"{self.source}: {len(self.train)} train / {len(self.val)} val images "
                f"({self.val_from}), {self.in_channels}x{height}x{width}, "
                f"{self.num_classes} classes")


def parse_data_spec(spec: str | Path) -> tuple[DataKind, Path | None]:
    """``digits``, ``PATH``, ``folder:PATH``, ``mnist:PATH``, ... -> (kind, path)."""
    text = str(spec).strip()
    if text.lower() == DataKind.DIGITS.value:
        return DataKind.DIGITS, None
    head, sep, rest = text.partition(":")
    if sep and head.lower() in {kind.value for kind in DataKind} and not _is_drive(head):
        kind = DataKind(head.lower())
        if kind is DataKind.DIGITS:
            raise DataError("digits takes no path: use --data digits")
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
    channels = _parse_mode(mode)
    if kind is DataKind.DIGITS:
        splits = _load_digits(val_fraction, split_seed)
    elif kind is DataKind.FOLDER:
        splits = _load_folder(path, target, channels, val_fraction, split_seed, strict, workers)
    else:
        if download:
            download_dataset(kind, path, progress=notify)
        if kind in (DataKind.MNIST, DataKind.FASHION_MNIST):
            splits = _load_mnist(kind, path, val_fraction, split_seed)
        else:
            splits = _load_cifar(kind, path)
    if kind is not DataKind.FOLDER and (target or channels):
        splits.train = conform(splits.train, channels, target)
        splits.val = conform(splits.val, channels, target)
    return splits


def check_set_budget(count: int, channels: int, size: tuple[int, int], itemsize: int,
                     float_images: int) -> None:
    """Refuse, before any image is read or resized, a set of ``count`` images of ``channels`` x
    ``size`` (H, W) stored ``itemsize`` bytes a value that would pass the memory budget
    (:func:`convlens.limits.check_budget`): the images and their stacked copy, plus
    ``float_images`` of them as float32 while they are converted."""
    pixels = channels * size[0] * size[1]
    check_budget(2 * count * pixels * itemsize + 4 * float_images * pixels,
                 f"a set of {count} images of {channels}x{size[0]}x{size[1]}")


def conform(data: ImageSet, channels: int | None, size: tuple[int, int] | None,
            chunk: int = 4096) -> ImageSet:
    """Convert ``data`` to ``channels`` (gray <-> RGB) and resize to ``size`` (H, W); either
    ``None`` keeps it. Works in chunks so large sets need little extra memory."""
    if (channels is None or channels == data.channels) and (size is None or size == data.size):
        return data
    check_set_budget(len(data), channels or data.channels, size or data.size,
                     data.images.element_size(), min(chunk, len(data)))
    parts = []
    for start in range(0, len(data), chunk):
        batch = data.floats(slice(start, start + chunk))
        if channels is not None and channels != batch.shape[1]:
            batch = torch.stack([match_channels(image, channels) for image in batch])
        if size is not None:
            batch = resize_exact(batch, size)
        parts.append(_like(batch, data.images.dtype))
    return ImageSet(torch.cat(parts), data.labels.clone())


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
    if kind is DataKind.FOLDER:
        scan = scan_folder(path)
        files = scan.val if scan.val is not None else scan.train
        data_names = sorted(files)
        _check_known(data_names, class_names)
        data, skipped = _read_files(files, data_names, channels, size, strict, workers)
    else:
        if kind is DataKind.DIGITS:
            splits = load_data(spec, split_seed=split_seed, val_fraction=val_fraction)
        elif kind is DataKind.CIFAR10 or kind is DataKind.CIFAR100:
            splits = _load_cifar(kind, path, val_only=True)
        else:  # only the test files are needed (or the train files, split as in training)
            splits = _load_mnist(kind, path, val_fraction, split_seed, val_only=True)
        data_names, data, skipped = splits.class_names, splits.val, splits.skipped
        _check_known(data_names, class_names)
        data = conform(data, channels, size)
    lookup = torch.tensor([list(class_names).index(name) for name in data_names])
    return ImageSet(data.images, lookup[data.labels]), skipped


def channel_stats(data: ImageSet, chunk: int = 8192) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of the images in [0, 1] (population std,
    float64 sums), for normalizing the model's input."""
    if len(data) == 0:
        raise DataError("cannot compute statistics of an empty image set")
    total = torch.zeros(data.channels, dtype=torch.float64)
    squares = torch.zeros(data.channels, dtype=torch.float64)
    count = 0
    for start in range(0, len(data), chunk):
        batch = data.floats(slice(start, start + chunk), torch.float64)
        total += batch.sum(dim=(0, 2, 3))
        squares += batch.square().sum(dim=(0, 2, 3))
        count += batch.shape[0] * batch.shape[2] * batch.shape[3]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    return mean.tolist(), [max(value, 1e-3) for value in std.tolist()]


def augment_batch(images: torch.Tensor, augment: Augment,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply ``augment`` to a float batch ``(N, C, H, W)``: each image gets its own random
    shift (crop of the padded image) and flip. The random draws come from ``generator`` (a CPU
    generator), so a seeded run repeats exactly."""
    if not augment.active:
        return images
    count, channels, height, width = images.shape
    out = images
    if augment.crop_pad:
        pad = int(augment.crop_pad)
        mode = "reflect" if augment.pad_mode == "reflect" and pad < min(height, width) else (
            "constant")
        padded = F.pad(images, (pad, pad, pad, pad), mode=mode)
        shift_y = torch.randint(0, 2 * pad + 1, (count,), generator=generator)
        shift_x = torch.randint(0, 2 * pad + 1, (count,), generator=generator)
        rows = (torch.arange(height)[None] + shift_y[:, None]).to(images.device)
        cols = (torch.arange(width)[None] + shift_x[:, None]).to(images.device)
        sample = torch.arange(count, device=images.device)[:, None, None, None]
        channel = torch.arange(channels, device=images.device)[None, :, None, None]
        out = padded[sample, channel, rows[:, None, :, None], cols[:, None, None, :]]
    if augment.flip:
        flips = (torch.rand(count, generator=generator) < 0.5).to(images.device)
        out = torch.where(flips[:, None, None, None], out.flip(-1), out)
    return out


def stratified_split(labels: torch.Tensor | np.ndarray, val_fraction: float, seed: int,
                     names: Sequence[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded split of sample indices into (train, val), each class in the same proportion:
    ``round(n * val_fraction)`` of a class's ``n`` images (at least 1, at most ``n - 1``) go
    to val. ``names`` label the classes in errors."""
    labels = torch.as_tensor(labels).long()
    generator = torch.Generator().manual_seed(int(seed))
    train, val = [], []
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()
        if len(members) < 2:
            name = repr(names[label]) if names is not None else label
            raise DataError(f"class {name} has {len(members)} image; at least 2 are needed to "
                            "split it into train and val")
        members = members[torch.randperm(len(members), generator=generator)]
        count = min(len(members) - 1, max(1, round(len(members) * val_fraction)))
        val.append(members[:count])
        train.append(members[count:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


# --- digits -------------------------------------------------------------------------------

def _load_digits(val_fraction: float, split_seed: int) -> DataSplits:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    train, val = stratified_split(labels, val_fraction, split_seed)
    data = ImageSet(images, labels)
    return DataSplits(
        DataKind.DIGITS, "digits (scikit-learn, 8x8, 17 gray levels)", data.subset(train),
        data.subset(val), MNIST_CLASSES, Augment(crop_pad=1, flip=False),
        f"held-out {val_fraction:.0%} stratified, split seed {split_seed}")


# --- image folders ------------------------------------------------------------------------

@dataclass
class FolderScan:
    """The image files of a class-folder tree: ``train`` (and ``val`` where the tree has a
    val sub-tree) map class names to files."""

    root: Path
    train: dict[str, list[Path]]
    val: dict[str, list[Path]] | None
    val_dir: Path | None = None


def scan_folder(root: Path) -> FolderScan:
    """Find the classes and image files under ``root`` (see the module docstring)."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"no such data folder: {root} (give a folder with one sub-folder per "
                        "class, or digits, mnist:PATH, cifar10:PATH)")
    if not root.is_dir():
        raise DataError(f"{root} is a file; --data needs a folder with one sub-folder per class")
    subfolders = {p.name.lower(): p for p in _subfolders(root)}
    train_dir = next((subfolders[n] for n in TRAIN_NAMES if n in subfolders), None)
    val_dir = next((subfolders[n] for n in VAL_NAMES if n in subfolders), None)
    if train_dir is not None and val_dir is not None:
        train = _class_files(train_dir)
        val = _class_files(val_dir)
        missing = sorted(set(train) - set(val))
        if missing:
            raise DataError(f"class {missing[0]!r} has no folder in {val_dir} (every class in "
                            f"{train_dir.name}/ needs val images too; missing: "
                            f"{', '.join(missing)})")
        extra = sorted(set(val) - set(train))
        if extra:
            raise DataError(f"class {extra[0]!r} is in {val_dir.name}/ but not in "
                            f"{train_dir.name}/; the model could never learn it")
        return FolderScan(root, train, val, val_dir)
    return FolderScan(root, _class_files(root), None)


def _subfolders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_files(root: Path) -> dict[str, list[Path]]:
    classes = _subfolders(root)
    if not classes:
        loose = [p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        hint = f" (it holds {len(loose)} images directly)" if loose else ""
        raise DataError(f"{root} has no class sub-folders{hint}; put each class's images in "
                        "a sub-folder named after the class")
    files = {}
    for folder in classes:
        found = sorted(p for p in folder.rglob("*") if p.is_file()
                       and p.suffix.lower() in IMAGE_SUFFIXES
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
        if not found:
            raise DataError(f"class {folder.name!r} is empty: {folder} holds no image files "
                            f"({', '.join(IMAGE_SUFFIXES)})")
        files[folder.name] = found
    if len(files) < 2:
        raise DataError(f"{root} has one class ({next(iter(files))}); a classifier needs at "
                        "least 2 class sub-folders")
    return files


def _load_folder(root: Path, size: tuple[int, int] | None, channels: int | None,
                 val_fraction: float, split_seed: int, strict: bool,
                 workers: int | None) -> DataSplits:
    scan = scan_folder(root)
    names = sorted(scan.train)
    all_files = [p for files in scan.train.values() for p in files]
    if scan.val is not None:
        all_files += [p for files in scan.val.values() for p in files]
    headers, bad = _read_headers(all_files, workers)
    if bad and strict:
        path, reason = bad[0]
        raise DataError(f"unreadable image {path}: {reason} ({len(bad)} unreadable in all; "
                        "without --strict they are skipped)")
    if size is None:
        sizes = {(h, w) for h, w, _ in headers.values()}
        only = next(iter(sizes)) if len(sizes) == 1 else None
        size = only if only and max(only) <= FOLDER_MAX_SIDE else (FOLDER_MAX_SIDE,) * 2
    if channels is None:
        colour = any(not gray for _, _, gray in headers.values())
        channels = 3 if colour else 1
    broken = dict(bad)
    train, skipped = _read_files(scan.train, names, channels, size, strict, workers,
                                 known_bad=broken)
    if scan.val is not None:
        val, more = _read_files(scan.val, names, channels, size, strict, workers, "val",
                                known_bad=broken)
        skipped += more
        splits = DataSplits(DataKind.FOLDER, str(root), train, val, names,
                            _folder_augment(size), f"the {scan.val_dir.name}/ sub-folder",
                            skipped)
    else:
        train_index, val_index = stratified_split(train.labels, val_fraction, split_seed,
                                                     names)
        splits = DataSplits(DataKind.FOLDER, str(root), train.subset(train_index),
                            train.subset(val_index), names, _folder_augment(size),
                            f"held-out {val_fraction:.0%} stratified, split seed {split_seed}",
                            skipped)
    return splits


def _folder_augment(size: tuple[int, int]) -> Augment:
    return Augment(crop_pad=max(1, min(size) // 8), flip=True, pad_mode="reflect")


def _read_headers(files: list[Path], workers: int | None
                  ) -> tuple[dict[Path, tuple[int, int, bool]], list[tuple[Path, str]]]:
    """(height, width, is_gray) of each file from its header, and the files Pillow rejects."""

    def header(path: Path):
        try:
            with Image.open(path) as image:
                width, height = image.size
                return path, (height, width, image.mode in _GRAY_PIL_MODES), None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            return path, None, f"not an image Pillow can read ({type(exc).__name__})"

    found, bad = {}, []
    with ThreadPoolExecutor(_workers(workers)) as pool:
        for path, info, reason in pool.map(header, files):
            if info is None:
                bad.append((path, reason))
            else:
                found[path] = info
    return found, bad


def _read_files(files: dict[str, list[Path]], names: list[str], channels: int,
                size: tuple[int, int], strict: bool, workers: int | None,
                part: str = "train", known_bad: dict[Path, str] | None = None,
                ) -> tuple[ImageSet, list[tuple[Path, str]]]:
    """Decode, convert and resize every file to uint8 ``(C, H, W)``; unreadable files (and
    those in ``known_bad``) are skipped (or raise with ``strict``); a class left with no
    images raises."""
    mode = "gray" if channels == 1 else "rgb"
    known_bad = known_bad or {}
    check_set_budget(sum(len(paths) for paths in files.values()), channels, size, 1,
                     workers or 8)

    def read(path: Path):
        if path in known_bad:
            return None, known_bad[path]
        try:
            image = load_image(path, mode=mode)
        except ConvlensError as exc:
            return None, str(exc)
        return _like(resize_exact(image, size), torch.uint8), None

    images, labels, skipped = [], [], []
    with ThreadPoolExecutor(_workers(workers)) as pool:
        for name in names:
            paths = files.get(name, [])
            kept = 0
            for path, (image, reason) in zip(paths, pool.map(read, paths)):
                if image is None:
                    if strict:
                        raise DataError(f"unreadable image {path}: {reason}")
                    skipped.append((path, reason))
                    continue
                images.append(image)
                labels.append(names.index(name))
                kept += 1
            if kept == 0 and paths:
                raise DataError(f"class {name!r} has no readable images in {part} "
                                f"({len(paths)} files, all unreadable)")
    if not images:
        raise DataError("no readable images found")
    return ImageSet(torch.stack(images), torch.tensor(labels)), skipped


def _check_known(data_names: Sequence[str], model_names: Sequence[str]) -> None:
    unknown = [name for name in data_names if name not in model_names]
    if unknown:
        raise DataError(f"class {unknown[0]!r} in the data is not one the model knows (model "
                        f"classes: {', '.join(model_names)})")


def _workers(workers: int | None) -> int:
    if workers is not None:
        if workers < 1:
            raise ConfigError(f"workers must be at least 1; got {workers}")
        return workers
    return max(1, min(8, os.cpu_count() or 1))


# --- MNIST and Fashion-MNIST IDX files ----------------------------------------------------

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (the MNIST format; gzipped or not, told by its first bytes), of at
    most ``max_bytes`` unpacked (a gzip bomb stops there, not in memory)."""
    try:
        with open(path, "rb") as stream:
            raw = stream.read(max_bytes + 1)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as unpacked:
                raw = unpacked.read(max_bytes + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path} is a damaged gzip file ({exc})") from None
        except MemoryError:
            raise DataError(f"{path} unpacks to more data than fits in memory") from None
    if len(raw) > max_bytes:
        raise DataError(f"{path} holds over {max_bytes / 2**20:.0f} MiB, more than an IDX data "
                        "set file this loader takes (MNIST's largest is 45 MiB)")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path} is a truncated IDX file (header)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path} holds {len(raw) - header} data bytes; its header "
                        f"{'x'.join(map(str, shape))} needs {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}-ubyte", stem.replace("-idx", ".idx") + "-ubyte"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _load_mnist(kind: DataKind, folder: Path, val_fraction: float, split_seed: int,
                val_only: bool = False) -> DataSplits:
    """MNIST-style IDX files in ``folder``: train and t10k (val), or train split when there
    are no t10k files. ``val_only`` (evaluation) needs only the t10k files and leaves the train
    set empty."""
    if not folder.is_dir():
        raise DataError(f"no such folder: {folder} (expected the {kind.value} IDX files there; "
                        "add --download to fetch them)")
    names = FASHION_CLASSES if kind is DataKind.FASHION_MNIST else MNIST_CLASSES
    augment = Augment(crop_pad=2, flip=kind is DataKind.FASHION_MNIST)
    source = f"{kind.value} {folder}"
    test_images = _find_idx(folder, "t10k-images-idx3")
    test_labels = _find_idx(folder, "t10k-labels-idx1")
    has_test = test_images is not None and test_labels is not None
    if val_only and has_test:
        val = _idx_set(test_images, test_labels)
        return DataSplits(kind, source, val.subset(torch.arange(0)), val, names, augment,
                          "the t10k test files")
    train_images = _find_idx(folder, "train-images-idx3")
    train_labels = _find_idx(folder, "train-labels-idx1")
    if train_images is None or train_labels is None:
        wanted = ("t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] (or the train "
                  "files, to split)" if val_only else
                  "train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]")
        raise DataError(f"{folder} lacks {wanted} (add --download to fetch them)")
    train = _idx_set(train_images, train_labels)
    if has_test:
        val = _idx_set(test_images, test_labels)
        if val.size != train.size:
            raise DataError(f"{test_images} holds {val.size[0]}x{val.size[1]} images but "
                            f"{train_images} {train.size[0]}x{train.size[1]}")
        return DataSplits(kind, source, train, val, names, augment, "the t10k test files")
    train_index, val_index = stratified_split(train.labels, val_fraction, split_seed)
    return DataSplits(kind, source, train.subset(train_index), train.subset(val_index), names,
                      augment, f"held-out {val_fraction:.0%} stratified (no t10k files), "
                      f"split seed {split_seed}")


def _idx_set(images_path: Path, labels_path: Path) -> ImageSet:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        hint = " (is it a labels file?)" if images.ndim == 1 else ""
        raise DataError(f"{images_path} should hold uint8 images (N, H, W); got "
                        f"{images.dtype} {'x'.join(map(str, images.shape))}{hint}")
    if len(images) == 0 or images.shape[1] == 0 or images.shape[2] == 0:
        raise DataError(f"{images_path} holds no images (shape "
                        f"{'x'.join(map(str, images.shape))})")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{labels_path} should hold one whole-number label per image; got "
                        f"{labels.dtype} {'x'.join(map(str, labels.shape))}")
    if len(labels) != len(images):
        raise DataError(f"{labels_path} holds {len(labels)} labels for {len(images)} images "
                        f"(in {images_path})")
    if labels.min() < 0 or labels.max() > 9:
        bad = int(labels.max()) if labels.max() > 9 else int(labels.min())
        raise DataError(f"{labels_path} has label {bad}; MNIST labels are 0-9")
    return ImageSet(torch.from_numpy(images.copy())[:, None],
                    torch.from_numpy(labels.astype(np.int64)))


# --- CIFAR python batches -----------------------------------------------------------------

class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only: a data file cannot run code."""

    _ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    })

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        shown = f"{module}.{name}"
        if not shown.isprintable() or len(shown) > 100:
            shown = repr(shown[:100])
        raise DataError(f"refusing to unpickle {shown}: a CIFAR batch holds only arrays and "
                        "lists")


def read_cifar_batch(path: Path) -> dict[str, object]:
    """A CIFAR python batch as a dict with str keys (``data``, ``labels``/``fine_labels``,
    ...), read with an unpickler that accepts arrays and lists only."""
    try:
        with open(path, "rb") as stream:
            data = _ArrayUnpickler(stream, encoding="latin1").load()
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    except MemoryError:
        raise DataError(f"{path} is not a CIFAR python batch (it asks for more memory than "
                        "there is)") from None
    except Exception as exc:  # the unpickler builds arrays and lists only: any failure is damage
        detail = str(exc).splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        detail = detail if detail.isprintable() else repr(detail)
        raise DataError(f"{path} is not a CIFAR python batch or is damaged ({detail})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} is not a CIFAR python batch (holds a {type(data).__name__})")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in data.items()}


def _cifar_set(path: Path, label_key: str) -> ImageSet:
    batch = read_cifar_batch(path)
    if "data" not in batch or label_key not in batch:
        raise DataError(f"{path} lacks 'data' or {label_key!r}")
    data = np.asarray(batch["data"]) if isinstance(batch["data"], np.ndarray) else None
    if data is None or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        got = (f"{data.dtype} {data.shape}" if data is not None
               else f"a {type(batch['data']).__name__}")
        raise DataError(f"{path}: 'data' should be a uint8 array (N, 3072); got {got}")
    labels = _int_labels(batch[label_key])
    if labels is None:
        raise DataError(f"{path}: {label_key!r} should be a list of whole-number class indices")
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels")
    if len(data) == 0:
        raise DataError(f"{path} holds no images")
    return ImageSet(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()),
                    torch.from_numpy(labels))


def _int_labels(value: object) -> np.ndarray | None:
    """``value`` as a 1-D int64 array of labels, or None when it is not a flat list of whole
    numbers that fit."""
    try:
        labels = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or labels.size == 0):
        return None
    if labels.size and (int(labels.min()) < np.iinfo(np.int64).min
                        or int(labels.max()) > np.iinfo(np.int64).max):
        return None
    return labels.astype(np.int64)


def _load_cifar(kind: DataKind, path: Path, val_only: bool = False) -> DataSplits:
    """The CIFAR python batches under ``path``; ``val_only`` (evaluation) needs only the test
    batch and leaves the train set empty."""
    folder = path / CIFAR_FOLDERS[kind] if (path / CIFAR_FOLDERS[kind]).is_dir() else path
    if not folder.is_dir():
        raise DataError(f"no such folder: {path} (expected {CIFAR_FOLDERS[kind]}/; add "
                        "--download to fetch it)")
    if kind is DataKind.CIFAR10:
        train_files = sorted(p for p in folder.glob("data_batch_*") if p.is_file())
        test_file, meta_file, meta_key, label_key = ("test_batch", "batches.meta",
                                                     "label_names", "labels")
    else:
        train_files = [folder / "train"] if (folder / "train").is_file() else []
        test_file, meta_file, meta_key, label_key = ("test", "meta", "fine_label_names",
                                                     "fine_labels")
    if not (folder / test_file).is_file() or (not train_files and not val_only):
        wanted = (test_file if val_only else
                  f"{'data_batch_1..5' if kind is DataKind.CIFAR10 else 'train'} and {test_file}")
        raise DataError(f"{folder} lacks the {kind.value} batches ({wanted}); add --download "
                        "to fetch them")
    val = _cifar_set(folder / test_file, label_key)
    if val_only:
        train = val.subset(torch.arange(0))
    else:
        parts = [_cifar_set(p, label_key) for p in train_files]
        train = ImageSet(torch.cat([p.images for p in parts]),
                         torch.cat([p.labels for p in parts]))
    count = 10 if kind is DataKind.CIFAR10 else 100
    names = [str(i) for i in range(count)]
    if (folder / meta_file).is_file():
        found = _label_names(read_cifar_batch(folder / meta_file).get(meta_key))
        if found is not None and len(found) == count:
            names = found
    labels = torch.cat([train.labels, val.labels])
    low, high = int(labels.min()), int(labels.max())
    if high >= count or low < 0:
        raise DataError(f"{folder}: labels run from {low} to {high}; {kind.value} has "
                        f"{count} classes (0-{count - 1})")
    return DataSplits(kind, f"{kind.value} {folder}", train, val, names,
                      Augment(crop_pad=4, flip=True, pad_mode="reflect"),
                      f"the {test_file} file")


def _label_names(value: object) -> list[str] | None:
    """Class names from a CIFAR meta file's list (bytes or text), or None if it is not one."""
    if not isinstance(value, (list, tuple)):
        return None
    names = []
    for item in value:
        if isinstance(item, bytes):
            names.append(item.decode("utf-8", "replace"))
        elif isinstance(item, str):
            names.append(item)
        else:
            return None
    return names


# --- downloads ----------------------------------------------------------------------------

def download_dataset(kind: DataKind | str, folder: Path, timeout: float = 30.0,
                     progress: Callable[[str], None] | None = None) -> Path:
    """Fetch a data set's files into ``folder`` from its official address (checked by MD5),
    skipping files already there. Offline or refused: :class:`DataError` saying what to do."""
    kind = DataKind(kind)
    if kind not in DOWNLOADS:
        raise DataError(f"{kind.value} has nothing to download")
    source = DOWNLOADS[kind]
    folder = Path(folder)
    if kind in CIFAR_FOLDERS and (folder / CIFAR_FOLDERS[kind]).is_dir():
        return folder
    missing = {name: md5 for name, md5 in source.files.items()
               if not ((folder / name).is_file() and _md5(folder / name) == md5)}
    if missing:
        from ..outputs import check_out_dir, create_folder

        check_out_dir(folder, force=True)  # a folder the files can go in, before any fetching
        create_folder(folder)
    for name, md5 in missing.items():
        target = folder / name
        errors = []
        for base in source.urls:
            url = base + name
            if progress is not None:
                progress(f"downloading {url}")
            try:
                _fetch(url, target, md5, timeout)
                break
            except (URLError, OSError, DataError) as exc:
                errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
        else:
            raise DataError(f"could not download {kind.value} ({'; '.join(errors)}); are you "
                            f"offline? Fetch {name} yourself into {folder} and run again "
                            "without --download")
        if source.archive:
            _extract(target, folder)
    return folder


def _fetch(url: str, target: Path, md5: str, timeout: float) -> None:
    digest = hashlib.md5(usedforsecurity=False)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        try:
            with urlopen(url, timeout=timeout) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    tmp.write(block)
        except BaseException:
            tmp.close()
            os.unlink(tmp.name)
            raise
    if digest.hexdigest() != md5:
        os.unlink(tmp.name)
        raise DataError(f"MD5 {digest.hexdigest()} differs from the official {md5}")
    shutil.move(tmp.name, target)


def _extract(archive: Path, folder: Path) -> None:
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"cannot unpack {archive}: {exc}") from None


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- small helpers ------------------------------------------------------------------------

def _parse_mode(mode: str) -> int | None:
    choices = {"auto": None, "gray": 1, "rgb": 3}
    key = str(mode).strip().lower()
    if key not in choices:
        raise ConfigError(f"mode must be auto, gray or rgb; got {mode!r}")
    return choices[key]


def _like(batch: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if dtype == torch.uint8:
        return batch.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return batch.to(dtype)


def _is_drive(head: str) -> bool:
    return len(head) == 1 and head.isalpha()


__all__ = [
    "Augment",
    "DataKind",
    "DataSplits",
    "FolderScan",
    "ImageSet",
    "absolute_spec",
    "augment_batch",
    "channel_stats",
    "conform",
    "download_dataset",
    "load_data",
    "load_eval_set",
    "parse_data_spec",
    "read_cifar_batch",
    "read_idx",
    "scan_folder",
    "stratified_split",
]
