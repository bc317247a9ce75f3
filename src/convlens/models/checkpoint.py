"""Checkpoints: ``model.safetensors`` (weights, never pickle) + ``model.json`` (what they are).

``model.json`` holds a :class:`ModelInfo`: the registry architecture and its settings, the
input the model expects (channels, ``(H, W)`` size, per-channel mean/std of its training set),
class names and metrics. With it, :func:`load_checkpoint` rebuilds the exact model and
:func:`preprocess` turns any image into the tensor the model wants.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..errors import ConvlensError, ModelError
from ..images import to_gray
from .registry import create_model

WEIGHTS_FILE = "model.safetensors"
INFO_FILE = "model.json"
FORMAT = "convlens-model"
FORMAT_VERSION = 1
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
"""Key prefixes that DDP (``module.``) and ``torch.compile`` (``_orig_mod.``) add."""


@dataclass
class ModelInfo:
    """What a checkpoint's weights are and what input they expect.

    ``input_size`` is ``(H, W)`` in pixels; ``mean``/``std`` hold one value per input channel,
    computed on the training images in [0, 1]; ``arch_kwargs`` are passed to the registry
    factory (``width=...``); ``metrics`` are the training results (``val_accuracy``, ...).
    """

    architecture: str
    in_channels: int
    input_size: tuple[int, int]
    class_names: list[str]
    mean: list[float]
    std: list[float]
    arch_kwargs: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    convlens_version: str = __version__

    def __post_init__(self) -> None:
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        self.class_names = [str(name) for name in self.class_names]
        self.mean = [float(value) for value in self.mean]
        self.std = [float(value) for value in self.std]
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ModelError(f"mean and std need one value per channel ({self.in_channels}); "
                             f"got {len(self.mean)} and {len(self.std)}")
        if any(value <= 0 for value in self.std):
            raise ModelError(f"std values must be positive; got {self.std}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        """JSON-ready dict, tagged with the checkpoint format."""
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict, source: str = "model.json") -> ModelInfo:
        """Inverse of :meth:`to_dict`; anything else raises :class:`ModelError`."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelError(f"{source} is not a convlens model description "
                             f"(no \"format\": \"{FORMAT}\")")
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            raise ModelError(f"{source} has format version {data['format_version']}; this "
                             f"convlens reads up to {FORMAT_VERSION}: upgrade convlens")
        names = ("architecture", "in_channels", "input_size", "class_names", "mean", "std")
        missing = [name for name in names if name not in data]
        if missing:
            raise ModelError(f"{source} lacks {', '.join(missing)}")
        try:
            return cls(
                architecture=str(data["architecture"]),
                in_channels=int(data["in_channels"]),
                input_size=tuple(data["input_size"]),
                class_names=list(data["class_names"]),
                mean=list(data["mean"]),
                std=list(data["std"]),
                arch_kwargs=dict(data.get("arch_kwargs") or {}),
                metrics=dict(data.get("metrics") or {}),
                convlens_version=str(data.get("convlens_version", "unknown")),
            )
        except (TypeError, ValueError, IndexError) as exc:
            raise ModelError(f"{source} is malformed: {exc}") from None


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
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / WEIGHTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        _strip_prefixes(key): tensor.detach().to("cpu").contiguous().clone()
        for key, tensor in unwrap_model(model).state_dict().items()
    }
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
        data = json.loads(info_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{info_path} is not valid JSON ({exc})") from None
    return ModelInfo.from_dict(data, str(info_path))


def load_checkpoint(path: Path | str, device: str | torch.device = "cpu"
                    ) -> tuple[nn.Module, ModelInfo]:
    """Rebuild the model saved at ``path`` (the ``.safetensors`` file or its folder) on
    ``device``, in eval mode. Anything that is not a convlens checkpoint raises
    :class:`ModelError`.
    """
    weights = _weights_path(Path(path))
    info = read_info(weights)
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{weights} is not a readable safetensors file ({exc})") from None
    try:
        model = create_model(info.architecture, info.in_channels, info.num_classes,
                             info.input_size, **info.arch_kwargs)
    except ConvlensError as exc:
        raise ModelError(f"{weights}: cannot rebuild the model: {exc}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise ModelError(f"{weights} does not fit {info.architecture}: {detail}") from None
    return model.to(torch.device(device)).eval(), info


def preprocess(image: torch.Tensor, info: ModelInfo) -> torch.Tensor:
    """Image ``(C, H, W)`` in [0, 1] -> model input ``(1, C', H', W')``: channels matched,
    resized to ``info.input_size``, normalized with the training mean/std.

    Gray <-> RGB conversion is automatic (BT.601 luma, or gray repeated); other channel counts
    raise :class:`ModelError`.
    """
    image = match_channels(image, info.in_channels)
    image = resize_exact(image, info.input_size)
    mean = torch.tensor(info.mean, dtype=image.dtype, device=image.device).view(-1, 1, 1)
    std = torch.tensor(info.std, dtype=image.dtype, device=image.device).view(-1, 1, 1)
    return ((image - mean) / std)[None]


def match_channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    """Image ``(C, H, W)`` -> ``(channels, H, W)``: RGB to gray by BT.601 luma, gray to RGB by
    repeating, RGBA loses alpha; anything ambiguous raises :class:`ModelError`."""
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise ModelError(f"expected an image (C, H, W); got shape {tuple(image.shape)}")
    have = image.shape[0]
    if have == 4:
        image, have = image[:3], 3
    if have == channels:
        return image
    if have == 3 and channels == 1:
        return to_gray(image)
    if have == 1 and channels == 3:
        return image.expand(3, -1, -1)
    raise ModelError(f"the model expects {channels}-channel images; this image has {have} "
                     "channels and there is no unambiguous conversion")


def resize_exact(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``(C, H, W)`` or ``(N, C, H, W)`` to ``size`` (H, W) pixels: antialiased
    bilinear when shrinking, bilinear when enlarging; the same size is returned unchanged."""
    size = (int(size[0]), int(size[1]))
    if tuple(image.shape[-2:]) == size:
        return image
    batch = image if image.ndim == 4 else image[None]
    shrinking = batch.shape[-2] > size[0] or batch.shape[-1] > size[1]
    out = F.interpolate(batch.float(), size=size, mode="bilinear", align_corners=False,
                        antialias=shrinking).clamp_(0.0, 1.0)
    return out if image.ndim == 4 else out[0]


def _weights_path(path: Path) -> Path:
    if path.is_dir():
        path = path / WEIGHTS_FILE
    elif path.name == INFO_FILE:
        path = path.parent / WEIGHTS_FILE
    if not path.exists():
        raise ModelError(f"no such checkpoint: {path}")
    return path


def _strip_prefixes(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key
