"""MNIST and Fashion-MNIST as IDX files (gzipped or not): train and ``t10k`` (val), or the
train files split when there are no ``t10k`` files."""

from __future__ import annotations

import gzip
import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..limits import MAX_IDX_BYTES
from .augment import Augment
from .sets import ImageSet
from .specs import DOWNLOAD, DataKind
from .splits import DataSplits, stratified_split

MNIST_CLASSES = [str(digit) for digit in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


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


def _find_pair(folder: Path, prefix: str) -> tuple[Path, Path] | None:
    """The images and labels files ``prefix`` (``train``, ``t10k``) in ``folder``, if both
    are there."""
    images = _find_idx(folder, f"{prefix}-images-idx3")
    labels = _find_idx(folder, f"{prefix}-labels-idx1")
    return None if images is None or labels is None else (images, labels)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}-ubyte", stem.replace("-idx", ".idx") + "-ubyte"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def load_mnist(kind: DataKind, folder: Path, val_fraction: float, split_seed: int,
               val_only: bool = False) -> DataSplits:
    """MNIST-style IDX files in ``folder``: train and t10k (val), or train split when there
    are no t10k files. ``val_only`` (evaluation) needs only the t10k files and leaves the train
    set empty."""
    if not folder.is_dir():
        raise DataError(f"no such folder: {folder} (expected the {kind.value} IDX files there; "
                        "add download=True to fetch them)", options=[DOWNLOAD])
    names = FASHION_CLASSES if kind is DataKind.FASHION_MNIST else MNIST_CLASSES
    augment = Augment(crop_pad=2, flip=kind is DataKind.FASHION_MNIST)
    source = f"{kind.value} {folder}"
    test = _find_pair(folder, "t10k")
    if val_only and test is not None:
        val = _idx_set(*test)
        return DataSplits(kind, source, val.subset(torch.arange(0)), val, names, augment,
                          "the t10k test files")
    pair = _find_pair(folder, "train")
    if pair is None:
        wanted = ("t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] (or the train "
                  "files, to split)" if val_only else
                  "train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]")
        raise DataError(f"{folder} lacks {wanted} (add download=True to fetch them)",
                        options=[DOWNLOAD])
    train = _idx_set(*pair)
    if test is not None:
        val = _idx_set(*test)
        if val.size != train.size:
            raise DataError(f"{test[0]} holds {val.size[0]}x{val.size[1]} images but "
                            f"{pair[0]} {train.size[0]}x{train.size[1]}")
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
