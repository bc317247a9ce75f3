"""The audit of a ``torch.export`` archive (``.pt2``) before anything loads it: which of its
members would run code or build arbitrary objects on load."""

from __future__ import annotations

import io
import json
import re
import zipfile

import torch

from ..errors import ModelError
from ._text import first_line

_EXPORT_TEXT_MEMBERS = ("archive_format", "archive_version", "version", "byteorder",
                        "serialization_id")
_EXPORT_PROGRAM = re.compile(r"(^|/)(models/[^/]+\.json|serialized_exported_program\.json)$")
_EXPORT_CODE_PARTS = ("aotinductor/", ".so", ".dll", ".dylib", ".cpp")


def audit_export_archive(data: bytes) -> list[str]:
    """What in a torch.export archive (the bytes of a ``.pt2`` file) would run code or build
    arbitrary objects on load; empty when it holds only JSON, raw tensor bytes and plain-tensor
    pickles.

    ``torch.export.load`` unpickles with ``weights_only=False`` any payload its config marks
    ``use_pickle`` (and custom or opaque objects), falls back to a full unpickler when a
    plain-tensor read fails, and loads compiled AOTInductor libraries. So every member is
    sorted: JSON and the format's few text files are data; a payload a config names as raw
    tensor bytes is data; a config entry that is pickled or an object is refused; compiled code is
    refused; any other member must load with ``torch.load(weights_only=True)``, which runs no
    code, or it is refused.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = {info.filename: info for info in archive.infolist() if not info.is_dir()}
            if not any(_EXPORT_PROGRAM.search(name) for name in members):
                # e.g. a truncated file, where zipfile finds an inner archive's directory
                raise ModelError("not a readable torch.export archive: it holds no exported "
                                 "program (truncated or not a .pt2)")
            opaque: list[str] = []
            raw: set[str] = set()
            for name in members:
                if name.endswith("_config.json") and "/data/" in f"/{name}":
                    raw |= _audit_payload_config(archive.read(name), name, opaque)
            for name in members:
                inner = name.split("/", 1)[-1]
                if any(part in inner for part in _EXPORT_CODE_PARTS):
                    opaque.append(f"compiled code {inner}")
                elif (name in raw or inner.endswith(".json") or inner.startswith("extra/")
                      or inner.rsplit("/", 1)[-1] in _EXPORT_TEXT_MEMBERS):
                    continue
                elif not _plain_tensors(archive.read(name)):
                    opaque.append(f"{inner} is not plain tensors")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise ModelError(f"not a readable torch.export archive: {first_line(exc)}") from None
    return opaque


def _audit_payload_config(text: bytes, name: str, opaque: list[str]) -> set[str]:
    """The members a weights/constants config names as raw tensor bytes; what it would unpickle
    goes to ``opaque``."""
    try:
        entries = json.loads(text)["config"]
        items = list(entries.items())
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        opaque.append(f"{name.split('/', 1)[-1]} cannot be read")
        return set()
    folder = name.rsplit("/", 1)[0]
    raw: set[str] = set()
    for fqn, meta in items:
        path_name = meta.get("path_name") if isinstance(meta, dict) else None
        if not isinstance(path_name, str):
            opaque.append(f"{fqn!r} has no payload")
        elif meta.get("use_pickle") or not meta.get("tensor_meta"):
            opaque.append(f"{fqn!r} is pickled")
        else:
            raw.add(f"{folder}/{path_name}")
    return raw


def _plain_tensors(payload: bytes) -> bool:
    """Whether ``payload`` loads with the safe unpickler (tensors and containers only)."""
    try:
        torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception:  # any failure means torch would fall back to the full unpickler
        return False
    return True


__all__ = ["audit_export_archive"]
