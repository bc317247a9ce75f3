"""Plain weights: read a state dict from ``.safetensors`` or a ``torch.save`` file without
running code, and load it into a model or say in one line why it does not fit."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import ModelError
from ._text import few, first_line
from .handle import strip_wrapper_prefixes

NESTED_STATE_KEYS = ("state_dict", "model_state_dict", "model", "weights")
"""Keys a training script's file may nest its weights under."""


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read plain weights from ``.safetensors`` or a ``torch.save`` file, never running code.

    A dict nesting the weights under ``state_dict``/``model``/... is unwrapped, and the
    ``module.`` / ``_orig_mod.`` prefixes of DDP and ``torch.compile`` are stripped.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no such weights file: {path}")
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state: Any = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"{path} is not a readable safetensors file ({exc})") from None
    else:
        try:
            state = torch_load_plain(path)
        except PickleRefused:
            raise ModelError(f"{path} holds pickled Python objects, not plain weights, and "
                             "unpickling runs code; a weights file must be a state dict of "
                             "tensors (torch.save(model.state_dict(), ...) or .safetensors)"
                             ) from None
    return _clean_state(state, path)


class PickleRefused(Exception):
    """A file that holds pickled Python objects, which only the full unpickler (code) reads."""


def torch_load_plain(path: Path) -> Any:
    """What a ``torch.save`` file holds, read with the unpickler that runs no code; a file that
    needs the full one raises :class:`PickleRefused`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise PickleRefused from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path} is not a model or weights file torch can read: "
                         f"{first_line(exc)}") from None


def _clean_state(state: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(state, Mapping):
        for key in NESTED_STATE_KEYS:
            nested = state.get(key)
            if isinstance(nested, Mapping) and _all_tensors(nested):
                state = nested
                break
    if not isinstance(state, Mapping) or not state or not _all_tensors(state):
        kind = type(state).__name__
        raise ModelError(f"{path} does not hold a state dict (a mapping of names to tensors); "
                         f"it holds a {kind}")
    return strip_wrapper_prefixes(state)


def _all_tensors(mapping: Mapping) -> bool:
    return all(isinstance(key, str) and isinstance(value, torch.Tensor)
               for key, value in mapping.items())


def load_into(module: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load ``state`` into ``module`` exactly, or say in one line what does not fit."""
    problems = state_problems(module, state)
    if problems:
        raise ModelError(f"the weights in {path.name} do not fit the model: "
                         + "; ".join(problems))
    module.load_state_dict(state, strict=True)


def state_problems(module: nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """What keeps ``state`` from loading into ``module``: missing and unexpected keys, shapes
    that differ (empty when it fits exactly)."""
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong = [f"{key} {tuple(state[key].shape)} vs {tuple(value.shape)}"
             for key, value in expected.items()
             if key in state and tuple(state[key].shape) != tuple(value.shape)]
    problems = []
    if missing:
        problems.append(f"missing {few(missing)}")
    if unexpected:
        problems.append(f"unexpected {few(unexpected)}")
    if wrong:
        problems.append(f"shape (file vs model) {few(wrong)}")
    return problems


__all__ = ["PickleRefused", "load_into", "load_state_dict", "state_problems", "torch_load_plain"]
