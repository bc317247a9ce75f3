"""What every way of running a model shares: one input preparation, one eval-mode guard and one
rule for the key prefixes that DDP and ``torch.compile`` add to weights.

>>> strip_wrapper_prefixes({"module._orig_mod.conv.weight": 1, "module._orig_mod.fc.bias": 2})
{'conv.weight': 1, 'fc.bias': 2}
>>> strip_wrapper_prefixes({"module.weight": 1, "head.weight": 2})  # a real submodule
{'module.weight': 1, 'head.weight': 2}
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import torch
import torch.nn as nn

from ..errors import ModelError
from ..images import match_channels, resize_exact

if TYPE_CHECKING:  # the opened-model type imports this module
    from ..modelfiles import OpenedModel

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
    "PreparedInput",
    "eval_mode",
    "prepare_input",
    "strip_wrapper_prefixes",
]
