"""One handle on any model: :class:`OpenedModel`, the module with its
:class:`~convlens.models.info.ModelInfo`, and what every way of running it shares: one input
preparation (:func:`prepare_input`), one eval-mode guard (:func:`eval_mode`) and one rule for the
key prefixes that DDP and ``torch.compile`` add to weights (:func:`strip_wrapper_prefixes`).

>>> strip_wrapper_prefixes({"module._orig_mod.conv.weight": 1, "module._orig_mod.fc.bias": 2})
{'conv.weight': 1, 'fc.bias': 2}
>>> strip_wrapper_prefixes({"module.weight": 1, "head.weight": 2})  # a real submodule
{'module.weight': 1, 'head.weight': 2}
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

import torch
import torch.nn as nn

from ..errors import ModelError
from ..images import match_channels, resize_exact
from ..wording import plural
from .heads import OutputChoice
from .info import ModelInfo


class ModelKind(str, enum.Enum):
    """What a model spec turned out to be."""

    CONVLENS = "convlens checkpoint"
    TORCHSCRIPT = "TorchScript"
    EXPORT = "torch.export program"
    FACTORY = "factory"
    REGISTRY = "registry architecture"
    TORCHVISION = "torchvision"
    PICKLE = "pickled module"


@dataclass
class OpenedModel:
    """A model ready to run, in eval mode, with what is known about it.

    ``info`` says what input it takes and what its outputs are; where the file does not say
    (``None``), images keep their own size and channels are not converted. ``source`` names
    where it came from, for messages. ``fixed_input`` is true for an exported program, traced
    at one input shape. ``layer_types`` maps layer names to class names where the modules
    themselves do not tell (exported programs). ``notes`` are things the user should know
    (random weights). ``output`` picks which output holds the class scores of a model that
    returns several (its place or name; ``None``: :func:`~convlens.models.heads.choose_output`
    picks and says why).

    >>> opened = OpenedModel(nn.Conv2d(1, 2, 3), ModelKind.FACTORY, "net", ModelInfo(in_channels=1))
    >>> opened.describe()
    'net (factory; input 1 channel, any size)'
    """

    module: nn.Module
    kind: ModelKind
    source: str
    info: ModelInfo = field(default_factory=ModelInfo)
    fixed_input: bool = False
    layer_types: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    output: OutputChoice = None

    @property
    def in_channels(self) -> int | None:
        """Image channels the model takes (``None``: unknown)."""
        return self.info.in_channels

    @property
    def input_size(self) -> tuple[int, int] | None:
        """``(H, W)`` pixels images are resized to (``None``: they keep their own size)."""
        return self.info.input_size

    @property
    def class_names(self) -> list[str] | None:
        """The names of the model's outputs (``None``: named by number, ``"class 3"``)."""
        return self.info.class_names

    @class_names.setter
    def class_names(self, names: list[str] | None) -> None:
        self.info = replace(self.info, class_names=names)

    @property
    def mean(self) -> list[float] | None:
        return self.info.mean

    @property
    def std(self) -> list[float] | None:
        return self.info.std

    @property
    def scripted(self) -> bool:
        """True for TorchScript, whose submodules take no Python hooks."""
        return isinstance(self.module, torch.jit.ScriptModule)

    @property
    def device(self) -> torch.device:
        for tensor in self.module.parameters():
            return tensor.device
        for buffer in self.module.buffers():
            return buffer.device
        return torch.device("cpu")

    def class_name(self, index: int) -> str:
        """The name of output ``index`` (``"class 3"`` where the model has no class names)."""
        names = self.info.class_names
        if names is not None and 0 <= index < len(names):
            return names[index]
        return f"class {index}"

    def describe(self) -> str:
        """One line: source, kind, input it expects."""
        channels = ("? channels" if self.in_channels is None
                    else plural(self.in_channels, "channel"))
        size = "any size" if self.input_size is None else "x".join(map(str, self.input_size))
        return f"{self.source} ({self.kind.value}; input {channels}, {size})"


def with_input_size(opened: OpenedModel, size: tuple[int, int] | None) -> OpenedModel:
    """A copy of ``opened`` that resizes images to ``size`` (``None``: keep their own size)."""
    return replace(opened, info=replace(opened.info, input_size=size))


WRAPPER_PREFIXES = ("module.", "_orig_mod.")
"""Prefixes DDP (``module.``) and ``torch.compile`` (``_orig_mod.``) add to every weight name."""

_Value = TypeVar("_Value")


def strip_wrapper_prefixes(state: Mapping[str, _Value]) -> dict[str, _Value]:
    """``state`` with the DDP/compile prefixes taken off its keys, as a new dict.

    A prefix comes off only when every key has it (so a model whose own submodule is named
    ``module`` among others keeps its names), and again while one is left, in any order: DDP
    around ``torch.compile`` (``module._orig_mod.``) and the other way round both come off.
    """
    cleaned = dict(state)
    changed = bool(cleaned)
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(key.startswith(prefix) and len(key) > len(prefix) for key in cleaned):
                cleaned = {key[len(prefix):]: value for key, value in cleaned.items()}
                changed = True
    return cleaned


_Module = TypeVar("_Module", bound=nn.Module)


@contextlib.contextmanager
def eval_mode(module: _Module) -> Iterator[_Module]:
    """``module`` in eval mode for the block; its train/eval mode is restored after, also after
    an error (looking at a model must not change its batch-norm statistics or its mode)."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


@dataclass
class PreparedInput:
    """One image ready for the model: ``batch`` ``(1, C, H, W)`` normalized on the model's
    device, and ``display`` ``(C, H, W)`` in [0, 1] on the CPU: what the model sees, for figures.
    """

    batch: torch.Tensor
    display: torch.Tensor


def prepare_input(image: torch.Tensor, opened: OpenedModel) -> PreparedInput:
    """Turn an image ``(C, H, W)`` in [0, 1] into the model's input ``(1, C', H', W')``.

    The one way any model's input is made: gray <-> RGB follows the model's channel count
    (BT.601 luma one way, repeated the other; :func:`convlens.images.match_channels`), the image
    is resized to the model's input size when it has one (antialiased when shrinking;
    :func:`convlens.images.resize_exact`), and normalized with the model's mean/std when it has
    them.
    """
    if image.ndim != 3:
        raise ModelError(f"expected an image (C, H, W); got shape {tuple(image.shape)}")
    data = image.detach().to("cpu", torch.float32)
    if opened.in_channels is not None:
        data = match_channels(data, opened.in_channels)
    if opened.input_size is not None:
        data = resize_exact(data, opened.input_size)
    display = data.contiguous()
    batch = display[None]
    if opened.mean is not None and opened.std is not None:
        if len(opened.mean) != batch.shape[1]:
            raise ModelError(f"normalization has {len(opened.mean)} values but the input has "
                             f"{batch.shape[1]} channels")
        mean = torch.tensor(opened.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(opened.std, dtype=torch.float32).view(1, -1, 1, 1)
        batch = (batch - mean) / std
    return PreparedInput(batch.to(opened.device), display)


__all__ = [
    "WRAPPER_PREFIXES",
    "ModelKind",
    "OpenedModel",
    "PreparedInput",
    "eval_mode",
    "prepare_input",
    "strip_wrapper_prefixes",
    "with_input_size",
]
