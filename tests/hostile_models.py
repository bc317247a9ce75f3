"""Model files that run code or write files when loaded, built for the trust tests.

Each builder writes a real file of its kind whose loading, if it ran unguarded, would create
``marker``: a pickle whose ``__reduce__`` touches it, ``.pt2`` archives whose pickled weight or
sample inputs touch it, and TorchScript whose ``__setstate__`` writes it with
``aten::from_file(shared=True)``. A test then asserts that ``marker`` never appears.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import torch
import torch.nn as nn


class TouchOnUnpickle:
    """Unpickles to ``Path(marker).touch()``: proof of whether unpickling ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


class WritesOnLoad(nn.Module):
    """A module whose TorchScript ``__setstate__`` writes four bytes to ``path``."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.marker = torch.zeros(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @torch.jit.export
    def __getstate__(self) -> list[str]:
        return [self.path]

    @torch.jit.export
    def __setstate__(self, state: list[str]) -> None:
        self.path = state[0]
        self.training = False
        written = torch.from_file(self.path, True, 4, dtype=torch.uint8)
        written.fill_(65)
        self.marker = written


def pickle_with_reduce(path: Path, marker: Path) -> Path:
    """A ``torch.save`` file holding an object that touches ``marker`` when unpickled."""
    torch.save({"weights": TouchOnUnpickle(marker)}, path)
    return path


def torchscript_that_writes(path: Path, marker: Path) -> Path:
    """TorchScript that creates ``marker`` while ``torch.jit.load`` reads it."""
    torch.jit.script(WritesOnLoad(str(marker))).save(str(path))
    return path


def _plain_export(path: Path) -> Path:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()).eval()
    torch.export.save(torch.export.export(model, (torch.rand(1, 1, 8, 8),)), str(path))
    return path


def _rewrite_archive(path: Path, change) -> Path:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members = change(members)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _pickled(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def pt2_with_pickled_weight(path: Path, marker: Path) -> Path:
    """A ``.pt2`` whose weights config says ``use_pickle`` for a weight that touches ``marker``:
    ``torch.export.load`` unpickles it with ``weights_only=False``."""
    _plain_export(path)

    def change(members: dict[str, bytes]) -> dict[str, bytes]:
        config_name = next(name for name in members
                           if name.endswith("data/weights/model_weights_config.json"))
        config = json.loads(members[config_name])
        _fqn, entry = next(iter(config["config"].items()))
        entry["use_pickle"] = True
        folder = config_name.rsplit("/", 1)[0]
        members[f"{folder}/{entry['path_name']}"] = _pickled(TouchOnUnpickle(marker))
        members[config_name] = json.dumps(config).encode()
        return members

    return _rewrite_archive(path, change)


def pt2_with_pickled_sample_inputs(path: Path, marker: Path) -> Path:
    """A ``.pt2`` whose sample inputs fail the plain-tensor read, so torch falls back to the
    full unpickler, which touches ``marker``."""
    _plain_export(path)

    def change(members: dict[str, bytes]) -> dict[str, bytes]:
        name = next(name for name in members if "data/sample_inputs/" in name)
        members[name] = _pickled(((TouchOnUnpickle(marker),), {}))
        return members

    return _rewrite_archive(path, change)


HOSTILE_BUILDERS = {
    "pickle": (pickle_with_reduce, "evil.pt"),
    "torchscript": (torchscript_that_writes, "evil-script.pt"),
    "pt2-pickled-weight": (pt2_with_pickled_weight, "evil-weight.pt2"),
    "pt2-pickled-inputs": (pt2_with_pickled_sample_inputs, "evil-inputs.pt2"),
}
"""Every hostile kind: the builder and a file name for it."""


def build_hostile(kind: str, folder: Path, marker: Path) -> Path:
    """Write the hostile file of ``kind`` into ``folder``; its loading would create ``marker``."""
    builder, name = HOSTILE_BUILDERS[kind]
    return builder(folder / name, marker)
