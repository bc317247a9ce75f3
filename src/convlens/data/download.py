"""Downloads of MNIST, Fashion-MNIST and CIFAR from their official addresses, checked by MD5.
Nothing is downloaded unless asked."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from ..errors import DataError
from .cifar import CIFAR_FOLDERS
from .specs import DOWNLOAD, DataKind


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
                            "without download=True", options=[DOWNLOAD])
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
