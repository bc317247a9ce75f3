"""Writers of small data sets in each real format (IDX, CIFAR python batches, image-folder
trees), for the tests of convlens.data."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


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
