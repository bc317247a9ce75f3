"""Checkpoints: ``model.safetensors`` (weights, never pickle) + ``model.json`` (what they are).

``model.json`` holds a :class:`ModelInfo`: the registry architecture and its settings, the
input the model expects (channels, ``(H, W)`` size, per-channel mean/std of its training set),
class names and metrics. With it, :func:`load_checkpoint` rebuilds the exact model and
:func:`preprocess` turns any image into the tensor the model wants.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..errors import ConvlensError, ModelError
from ..images import match_channels, resize_exact
from ..limits import MAX_MODEL_WIDTH
from ..wording import plural
from .handle import strip_wrapper_prefixes
from .registry import create_model

WEIGHTS_FILE = "model.safetensors"
INFO_FILE = "model.json"
FORMAT = "convlens-model"
FORMAT_VERSION = 1
MAX_INFO_BYTES = 64 * 2**20
"""Largest ``model.json`` read, in bytes (class names of a 100 000-class model fit)."""
MAX_INPUT_CHANNELS = 16
"""Most input channels a checkpoint may declare (images have 1, 3 or 4)."""
MAX_INPUT_SIDE = 4096
"""Largest input side, in pixels, a checkpoint may declare (its model is built and run on a
blank image of that size when it is opened)."""
MAX_CLASSES = 100_000
"""Most classes a checkpoint may name."""


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
        """Inverse of :meth:`to_dict`. Every field is checked, and anything else (a wrong type,
        null, a non-finite number, a width over :data:`~convlens.limits.MAX_MODEL_WIDTH`, nested
        junk) raises :class:`ModelError` naming the field: ``"model.json: 'input_size' must be
        two positive whole numbers; got null"``."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelError(f"{source} is not a convlens model description "
                             f"(no \"format\": \"{FORMAT}\")")
        version = _whole(data.get("format_version", 0), source, "format_version", 0, None)
        if version > FORMAT_VERSION:
            raise ModelError(f"{source} has format version {version}; this convlens reads up "
                             f"to {FORMAT_VERSION}: upgrade convlens")
        names = ("architecture", "in_channels", "input_size", "class_names", "mean", "std")
        missing = [name for name in names if name not in data]
        if missing:
            raise ModelError(f"{source} lacks {', '.join(missing)}")
        architecture = data["architecture"]
        if not isinstance(architecture, str) or not architecture.strip():
            raise ModelError(f"{source}: 'architecture' must be a model name; got "
                             f"{_show(architecture)}")
        channels = _whole(data["in_channels"], source, "in_channels", 1, MAX_INPUT_CHANNELS)
        size = data["input_size"]
        if (not isinstance(size, list) or len(size) != 2
                or not all(_is_whole(side) and 1 <= side <= MAX_INPUT_SIDE for side in size)):
            raise ModelError(f"{source}: 'input_size' must be two positive whole numbers (H, W) "
                             f"of at most {MAX_INPUT_SIDE}; got {_show(size)}")
        return cls(
            architecture=architecture,
            in_channels=channels,
            input_size=(int(size[0]), int(size[1])),
            class_names=_class_names(data["class_names"], source),
            mean=_numbers(data["mean"], source, "mean", channels),
            std=_numbers(data["std"], source, "std", channels, positive=True),
            arch_kwargs=_arch_kwargs(data.get("arch_kwargs"), source),
            metrics=_metrics(data.get("metrics"), source),
            convlens_version=_show(data.get("convlens_version", "unknown"), quote=False),
        )


def _is_whole(value: object) -> bool:
    """True for an ``int`` (not a bool) or a finite float with no fraction (JSON ``3.0``)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _whole(value: object, source: str, name: str, low: int, high: int | None) -> int:
    """``value`` as an int in ``low..high`` (``high`` None: no upper bound), else an error naming
    the field."""
    if not _is_whole(value) or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ModelError(f"{source}: {name!r} must be a whole number {bound}; got {_show(value)}")
    return int(value)  # type: ignore[arg-type]


def _numbers(values: object, source: str, name: str, count: int, positive: bool = False
             ) -> list[float]:
    """A list of ``count`` finite numbers (each > 0 when ``positive``), else an error naming
    the field."""
    kind = "positive" if positive else "finite"
    if (not isinstance(values, list) or len(values) != count or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
            and (not positive or v > 0) for v in values)):
        raise ModelError(f"{source}: {name!r} must be {plural(count, kind + ' number')}, one "
                         f"per input channel; got {_show(values)}")
    return [float(v) for v in values]


def _class_names(names: object, source: str) -> list[str]:
    """At least two class names, each text (or a whole number, kept as text)."""
    if not isinstance(names, list) or not 2 <= len(names) <= MAX_CLASSES:
        raise ModelError(f"{source}: 'class_names' must be a list of 2 to {MAX_CLASSES} names; "
                         f"got {_show(names)}")
    for index, name in enumerate(names):
        if not (isinstance(name, str) or _is_whole(name)) or (
                isinstance(name, str) and not 1 <= len(name.strip()) <= len(name) <= 1000):
            raise ModelError(f"{source}: 'class_names' item {index} must be a name (text of 1 "
                             f"to 1000 characters); got {_show(name)}")
    return [str(int(name)) if not isinstance(name, str) else name for name in names]


def _arch_kwargs(values: object, source: str) -> dict:
    """Architecture settings: names mapped to a number, true/false or text; ``width`` a whole
    number up to :data:`~convlens.limits.MAX_MODEL_WIDTH`."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ModelError(f"{source}: 'arch_kwargs' must be an object of settings; got "
                         f"{_show(values)}")
    for key, value in values.items():
        where = f"'arch_kwargs.{_show(key, quote=False)}'"
        if not key.isidentifier():
            raise ModelError(f"{source}: {where} is not a setting name")
        if key == "width":
            if not _is_whole(value) or not 1 <= value <= MAX_MODEL_WIDTH:
                raise ModelError(f"{source}: {where} must be a whole number from 1 to "
                                 f"{MAX_MODEL_WIDTH}; got {_show(value)}")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ModelError(f"{source}: {where} must be a finite number; got {_show(value)}")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**31:
            raise ModelError(f"{source}: {where} is {_show(value)}, too large for a setting")
        elif not isinstance(value, (bool, int, float, str)) or (
                isinstance(value, str) and len(value) > 200):
            raise ModelError(f"{source}: {where} must be a number, true/false or a short text; "
                             f"got {_show(value)}")
    return {key: int(value) if key == "width" else value for key, value in values.items()}


def _metrics(values: object, source: str) -> dict:
    """The training results: an object; ``data`` (what the model was trained on) is text and
    ``split_seed`` a whole number where present, since ``evaluate`` uses them."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ModelError(f"{source}: 'metrics' must be an object; got {_show(values)}")
    if values.get("data") is not None and not isinstance(values["data"], str):
        raise ModelError(f"{source}: 'metrics.data' must be a data spec (text); got "
                         f"{_show(values['data'])}")
    if "split_seed" in values:
        _whole(values["split_seed"], source, "metrics.split_seed", 0, 2**32 - 1)
    return dict(values)


def _show(value: object, limit: int = 40, quote: bool = True) -> str:
    """What a field held, shortly, in JSON's words (null, true, a list of 3 items)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value.bit_length() > 100:
        return f"an integer of {int(value.bit_length() * math.log10(2)) + 1} digits"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return f"an object of {plural(len(value), 'entry', 'entries')}"
    if isinstance(value, list) and (len(value) > 4 or any(isinstance(v, (list, dict))
                                                           for v in value)):
        return f"a list of {plural(len(value), 'item')}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v, 12) for v in value) + "]"
    text = " ".join(str(value).split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return repr(text) if quote and isinstance(value, str) else text


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


def _weights_path(path: Path) -> Path:
    if path.is_dir():
        path = path / WEIGHTS_FILE
    elif path.name == INFO_FILE:
        path = path.parent / WEIGHTS_FILE
    if not path.exists():
        raise ModelError(f"no such checkpoint: {path}")
    return path
