"""CIFAR-10 and CIFAR-100 python batches, read with an unpickler that builds arrays and lists
only (a data file cannot run code); the test batch is val."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .augment import Augment
from .sets import ImageSet
from .specs import DOWNLOAD, DataKind
from .splits import DataSplits

CIFAR_FOLDERS = {DataKind.CIFAR10: "cifar-10-batches-py", DataKind.CIFAR100: "cifar-100-python"}


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


def read_cifar_set(path: Path, label_key: str) -> ImageSet:
    """The images ``(N, 3, 32, 32)`` uint8 and labels (under ``label_key``) of one CIFAR
    python batch file, checked for shape, type and count."""
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


def load_cifar(kind: DataKind, path: Path, val_only: bool = False) -> DataSplits:
    """The CIFAR python batches under ``path``; ``val_only`` (evaluation) needs only the test
    batch and leaves the train set empty."""
    folder = path / CIFAR_FOLDERS[kind] if (path / CIFAR_FOLDERS[kind]).is_dir() else path
    if not folder.is_dir():
        raise DataError(f"no such folder: {path} (expected {CIFAR_FOLDERS[kind]}/; add "
                        "download=True to fetch it)", options=[DOWNLOAD])
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
        raise DataError(f"{folder} lacks the {kind.value} batches ({wanted}); add "
                        "download=True to fetch them", options=[DOWNLOAD])
    val = read_cifar_set(folder / test_file, label_key)
    if val_only:
        train = val.subset(torch.arange(0))
    else:
        parts = [read_cifar_set(p, label_key) for p in train_files]
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
