"""Downloads (convlens.data.download), with the network replaced: offline and wrong-MD5
files are clear errors that leave nothing behind; files already there need no fetching."""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import pytest

from convlens.data import DataKind, download_dataset, load_data
from convlens.data import download as download_module
from convlens.errors import ConfigError, DataError


def test_download_offline_is_a_clear_error(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download_module, "urlopen", offline)
    with pytest.raises(DataError, match=r"could not download mnist .*are you offline"):
        download_dataset("mnist", tmp_path / "mnist")
    assert list((tmp_path / "mnist").iterdir()) == []  # no half files left behind
    with pytest.raises(DataError, match="could not download cifar10"):
        load_data(f"cifar10:{tmp_path / 'c'}", download=True)


def test_download_checks_the_official_md5(tmp_path, monkeypatch):
    class Response:
        def __init__(self):
            self.chunks = [b"not the real file", b""]

        def read(self, size):
            return self.chunks.pop(0)

        def __enter__(self):
            return self

        def __exit__(self, *args):
            return False

    monkeypatch.setattr(download_module, "urlopen", lambda url, timeout: Response())
    with pytest.raises(DataError, match="differs from the official"):
        download_dataset("fashion-mnist", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_download_with_everything_there_needs_no_writable_folder(tmp_path, monkeypatch):
    official = download_module.DOWNLOADS[DataKind.MNIST].files
    for name in official:
        (tmp_path / name).write_bytes(b"stands in for the real file")
    monkeypatch.setattr(download_module, "_md5", lambda path: official[Path(path).name])
    monkeypatch.setattr(download_module, "urlopen", lambda url, timeout: pytest.fail("fetched"))
    tmp_path.chmod(0o555)  # a shared, read-only copy of the data set
    try:
        assert download_dataset("mnist", tmp_path) == tmp_path
    finally:
        tmp_path.chmod(0o755)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()  # now one must be fetched: refused
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match="is read-only"):
            download_dataset("mnist", tmp_path)
    finally:
        tmp_path.chmod(0o755)
