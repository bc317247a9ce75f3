"""The model registry: ``@register_model`` on a factory, ``list_models``, ``create_model``.

Shaped like timm's registry: a factory is ``factory(in_channels, num_classes, input_size, **kw)``
returning a plain ``nn.Module``; the data decide the first three, ``kw`` tunes the architecture
(``width=...``). Names are looked up exactly; an unknown name gets the close ones in its error.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..errors import ConfigError, ConvlensError, ModelError
from ..limits import check_budget
from ..numbers import format_count
from ..wording import clipped, whole_number

ModelFactory = Callable[..., nn.Module]

TRAINING_BYTES_PER_PARAMETER = 16
"""Bytes one float32 parameter takes while training: the weight, its gradient, the optimizer's
momentum and the best epoch's copy (activations come on top, per batch)."""


@dataclass(frozen=True)
class ModelEntry:
    """One registered architecture: its name, factory and the first line of its docstring."""

    name: str
    factory: ModelFactory
    summary: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: register ``factory(in_channels, num_classes, input_size, **kw)`` as ``name``.

    >>> @register_model("my-net")                                   # doctest: +SKIP
    ... def my_net(in_channels, num_classes, input_size): ...
    """
    key = name.strip().lower()
    if not key:
        raise ConfigError("a model name must not be empty")

    def decorate(factory: ModelFactory) -> ModelFactory:
        if key in _REGISTRY and _REGISTRY[key].factory is not factory:
            raise ConfigError(f"model {key!r} is already registered")
        doc = (factory.__doc__ or "").strip().splitlines()
        _REGISTRY[key] = ModelEntry(key, factory, doc[0] if doc else "")
        return factory

    return decorate


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered architectures matching the fnmatch ``pattern``."""
    return sorted(name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern.lower()))


def get_model_entry(name: str) -> ModelEntry:
    """The :class:`ModelEntry` for ``name``, or a :class:`ModelError` naming the close ones."""
    key = str(name).strip().lower()
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(key, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ModelError(
        f"unknown model {name!r}{hint} (registered: {', '.join(list_models()) or 'none'})"
    )


def create_model(
    name: str,
    in_channels: int,
    num_classes: int,
    input_size: tuple[int, int] | int,
    **kwargs,
) -> nn.Module:
    """Build architecture ``name`` for ``in_channels`` x ``input_size`` (H, W) images and
    ``num_classes`` outputs (logits). Unknown names raise :class:`ModelError`; sizes or settings
    the architecture cannot take raise :class:`ConfigError`.
    """
    entry = get_model_entry(name)
    if in_channels < 1:
        raise ConfigError(f"in_channels must be at least 1; got {in_channels}")
    if num_classes < 2:
        raise ConfigError(f"a classifier needs at least 2 classes; got {num_classes}")
    size = _as_size(input_size)
    kwargs = check_settings(entry, kwargs)
    check_model_budget(entry, int(in_channels), int(num_classes), size, kwargs)
    try:
        return entry.factory(int(in_channels), int(num_classes), size, **kwargs)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise ConfigError(f"model {entry.name!r}: {exc}") from None
        raise


def check_model_budget(
    entry: ModelEntry, in_channels: int, num_classes: int, size: tuple[int, int], kwargs: dict
) -> None:
    """Refuse a model whose parameters would take more than the memory budget to train
    (:data:`TRAINING_BYTES_PER_PARAMETER` each), counted on a copy built on PyTorch's ``meta``
    device, which allocates nothing. A factory that cannot build there is not estimated."""
    try:
        with torch.device("meta"):
            probe = entry.factory(in_channels, num_classes, size, **kwargs)
        count = sum(parameter.numel() for parameter in probe.parameters())
    except ConvlensError:
        raise
    except Exception:  # a factory that meta tensors do not suit: build it for real
        return
    check_budget(count * TRAINING_BYTES_PER_PARAMETER,
                 f"model {entry.name!r} ({format_count(count)} parameters)")


def check_settings(entry: ModelEntry, settings: dict) -> dict:
    """``settings`` (``width=64``, from ``--model-arg`` or a checkpoint's ``model.json``) checked
    against the factory's signature: each must be one of its parameters and of its default's
    kind (a whole number for an int, a finite number for a float, true/false for a bool).
    Returns them with whole floats (``64.0``) made ints; anything else is a
    :class:`ConfigError` naming the setting."""
    parameters = inspect.signature(entry.factory).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    known = {name: p.default for name, p in list(parameters.items())[3:]
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    checked = {}
    for key, value in settings.items():
        if key not in known:
            if takes_any:
                checked[key] = value
                continue
            raise ConfigError(f"model {entry.name!r} got an unexpected keyword argument "
                              f"{key!r}; its settings are {', '.join(known) or 'none'}")
        default = known[key]
        whole = (isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63
                 ) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, kind = whole, "a whole number"
            value = int(value) if ok else value
        elif isinstance(default, float):
            ok = whole or (isinstance(value, float) and math.isfinite(value))
            kind = "a finite number"
        else:
            ok, kind = True, ""
        if not ok:
            shown = (whole_number(value) if isinstance(value, int) and not isinstance(value, bool)
                     else clipped(value, 37, quote=True) if isinstance(value, str)
                     else clipped(repr(value), 40))
            raise ConfigError(f"model {entry.name!r}: setting {key!r} must be {kind}; got {shown}")
        checked[key] = value
    return checked


def _as_size(input_size: tuple[int, int] | int) -> tuple[int, int]:
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    height, width = (int(side) for side in input_size)
    if height < 1 or width < 1:
        raise ConfigError(f"input size must be positive (H, W); got {input_size}")
    return height, width
