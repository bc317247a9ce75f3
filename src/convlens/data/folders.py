"""Image-folder trees: one sub-folder per class, either with ``train/`` and ``val/`` (or
``valid``, ``validation``, ``test``) sub-trees or split 80/20 (stratified, seeded). Files are
decoded in threads, converted and resized to one size, and kept as uint8; unreadable files are
skipped (or refused with ``strict``)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, ConvlensError, DataError
from ..images import IMAGE_SUFFIXES, load_image, resize_exact
from .augment import Augment
from .sets import ImageSet, check_set_budget, store_as
from .specs import DATA_SPEC, STRICT, DataKind
from .splits import DataSplits, stratified_split

FOLDER_MAX_SIDE = 64
"""Default side (px) folder images are resized to, unless they all share a smaller size."""
TRAIN_NAMES = ("train", "training")
VAL_NAMES = ("val", "valid", "validation", "test")
_GRAY_PIL_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


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
        raise DataError(f"{root} is a file; the data spec needs a folder with one sub-folder per "
                        "class", options=[DATA_SPEC])
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


def load_folder(root: Path, size: tuple[int, int] | None, channels: int | None,
                val_fraction: float, split_seed: int, strict: bool,
                workers: int | None) -> DataSplits:
    """The class-folder tree at ``root`` as uint8 sets of ``size`` (H, W; default: the one
    size all images share if no side exceeds ``FOLDER_MAX_SIDE``, else that side square) and
    ``channels`` (default: 3 if any image has colour, else 1), split by its val sub-tree or
    by ``val_fraction`` and ``split_seed``."""
    scan = scan_folder(root)
    names = sorted(scan.train)
    all_files = [p for files in scan.train.values() for p in files]
    if scan.val is not None:
        all_files += [p for files in scan.val.values() for p in files]
    headers, bad = _read_headers(all_files, workers)
    if bad and strict:
        path, reason = bad[0]
        raise DataError(f"unreadable image {path}: {reason} ({len(bad)} unreadable in all; "
                        "without strict=True they are skipped)", options=[STRICT])
    if size is None:
        sizes = {(h, w) for h, w, _ in headers.values()}
        only = next(iter(sizes)) if len(sizes) == 1 else None
        size = only if only and max(only) <= FOLDER_MAX_SIDE else (FOLDER_MAX_SIDE,) * 2
    if channels is None:
        colour = any(not gray for _, _, gray in headers.values())
        channels = 3 if colour else 1
    broken = dict(bad)
    train, skipped = read_files(scan.train, names, channels, size, strict, workers,
                                known_bad=broken)
    if scan.val is not None and scan.val_dir is not None:
        val, more = read_files(scan.val, names, channels, size, strict, workers, "val",
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


def read_files(files: dict[str, list[Path]], names: list[str], channels: int,
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
        return store_as(resize_exact(image, size), torch.uint8), None

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


def _workers(workers: int | None) -> int:
    if workers is not None:
        if workers < 1:
            raise ConfigError(f"workers must be at least 1; got {workers}")
        return workers
    return max(1, min(8, os.cpu_count() or 1))
