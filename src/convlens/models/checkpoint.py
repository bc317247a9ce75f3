"""Checkpoints: ``model.safetensors`` (weights, never pickle) + ``model.json`` (what they are).

``model.json`` holds a :class:`~convlens.models.info.ModelInfo`: the registry architecture and
its settings, the input the model expects (channels, ``(H, W)`` size, per-channel mean/std of
its training set), class names and metrics. With it, :func:`load_checkpoint` rebuilds the exact
model as an :class:`~convlens.models.handle.OpenedModel`, and
:func:`~convlens.models.handle.prepare_input` turns any image into the tensor it wants.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import ConvlensError, ModelError
from .handle import ModelKind, OpenedModel, strip_wrapper_prefixes
from .info import FORMAT, ModelInfo
from .registry import create_model

WEIGHTS_FILE = "model.safetensors"
INFO_FILE = "model.json"
MAX_INFO_BYTES = 64 * 2**20
"""Largest ``model.json`` read, in bytes (class names of a 100 000-class model fit)."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside DDP (``.module``) and ``torch.compile`` (``._orig_mod``)."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def save_checkpoint(model: nn.Module, info: ModelInfo, path: Path | str) -> Path:
    """Write the weights to ``path`` (``.../model.safetensors``; a folder gets that name inside)
    and ``model.json`` beside it. Both files are written whole or not at all. Returns the path.
    """
    missing = info.missing()
    if missing:
        raise ModelError(f"a checkpoint must say what its model is; this ModelInfo lacks "
                         f"{', '.join(missing)}")
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / WEIGHTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    state = strip_wrapper_prefixes({
        key: tensor.detach().to("cpu").contiguous().clone()
        for key, tensor in unwrap_model(model).state_dict().items()
    })
    weights_tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(weights_tmp), metadata={"format": FORMAT})
    info_path = path.parent / INFO_FILE
    info_tmp = info_path.with_name(INFO_FILE + ".tmp")
    info_tmp.write_text(json.dumps(info.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(weights_tmp, path)
    os.replace(info_tmp, info_path)
    return path


def read_info(path: Path | str) -> ModelInfo:
    """The :class:`ModelInfo` of a checkpoint (its ``.safetensors`` file, folder or json)."""
    weights = _weights_path(Path(path))
    info_path = weights.parent / INFO_FILE
    if not info_path.is_file():
        raise ModelError(f"{weights} is not a convlens checkpoint: no {INFO_FILE} beside it")
    try:
        with info_path.open("rb") as handle:
            raw = handle.read(MAX_INFO_BYTES + 1)
    except OSError as exc:
        raise ModelError(f"cannot read {info_path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_INFO_BYTES:
        raise ModelError(f"{info_path} is over {MAX_INFO_BYTES // 2**20} MiB; a model "
                         "description is a few KiB")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{info_path} is not valid JSON ({exc})") from None
    except RecursionError:
        raise ModelError(f"{info_path} is JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ModelError(f"{info_path} is not usable JSON: {str(exc).splitlines()[0]}") from None
    return ModelInfo.from_dict(data, str(info_path))


def load_checkpoint(path: Path | str, device: str | torch.device = "cpu") -> OpenedModel:
    """Rebuild the model saved at ``path`` (the ``.safetensors`` file, its folder or its
    ``model.json``) on ``device``, in eval mode, with its :class:`ModelInfo`. Anything that is
    not a convlens checkpoint raises :class:`ModelError`.
    """
    weights = _weights_path(Path(path))
    info = read_info(weights)
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{weights} is not a readable safetensors file ({exc})") from None
    architecture, channels, classes, size = (info.architecture, info.in_channels,
                                             info.num_classes, info.input_size)
    if architecture is None or channels is None or classes is None or size is None:
        raise ModelError(f"{weights}: {INFO_FILE} lacks {', '.join(info.missing())}")
    try:
        model = create_model(architecture, channels, classes, size, **info.arch_kwargs)
    except ConvlensError as exc:
        raise ModelError(f"{weights}: cannot rebuild the model: {exc}") from None
    except (TypeError, ValueError, OverflowError, RuntimeError) as exc:  # a setting it cannot take
        detail = " ".join(str(exc).split())[:200]
        raise ModelError(f"{weights}: cannot rebuild {info.architecture} with the "
                         f"'arch_kwargs' of {INFO_FILE} ({detail})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise ModelError(f"{weights} does not fit {info.architecture}: {detail}") from None
    module = model.to(torch.device(device)).eval()
    return OpenedModel(module, ModelKind.CONVLENS, str(weights), info)


def _weights_path(path: Path) -> Path:
    if path.is_dir():
        path = path / WEIGHTS_FILE
    elif path.name == INFO_FILE:
        path = path.parent / WEIGHTS_FILE
    if not path.exists():
        raise ModelError(f"no such checkpoint: {path}")
    return path
