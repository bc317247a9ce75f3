"""The settings of one conv -> activation -> pool layer, shared by every backend.

:class:`LayerConfig` and its enums (:class:`Activation`, :class:`PoolType`,
:class:`PaddingMode`) live here, below both the torch reference (:mod:`convlens.layers`) and
the fused CPU kernel (:mod:`convlens.fused`), so each imports them without importing the other.
The arithmetic of sizes that follows from a configuration is :mod:`convlens.sizes`.

Standard library and NumPy only (no torch): the arithmetic-only commands (``convlens size``,
``convlens kernels``, ``convlens explain --values``) parse layer settings without paying for
torch. :class:`StageOutputs`, the three stages every backend returns, is here for the same
reason: the backends share it without importing each other.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np

from .errors import ConfigError, Option
from .limits import MAX_LAYER_NUMBER, bounded_int, check_at_most

if TYPE_CHECKING:
    import torch

PaddingSpec = int | str | tuple[int, int, int, int]
"""A padding as given: cells per side, ``"valid"``, ``"same"`` or ``(top, bottom, left, right)``."""


class Activation(str, enum.Enum):
    """Activation applied to the conv stage."""

    RELU = "relu"
    LEAKY_RELU = "leaky-relu"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    ABS = "abs"
    NONE = "none"


class PoolType(str, enum.Enum):
    """How a pool window is reduced: its maximum or its mean."""

    MAX = "max"
    AVG = "avg"


class PaddingMode(str, enum.Enum):
    """What fills the padding: zeros, a mirror without the edge, the edge repeated, a wrap."""

    ZEROS = "zeros"
    REFLECT = "reflect"
    REPLICATE = "replicate"
    CIRCULAR = "circular"


LEAKY_SLOPE = 0.01
"""Slope of the leaky ReLU below zero (PyTorch's default)."""


@dataclass(frozen=True)
class LayerConfig:
    """Settings of one conv -> activation -> pool layer. Sizes are in pixels.

    ``padding`` is a number of cells on every side, ``"valid"`` (0) or ``"same"`` (``D (F - 1)``
    cells, centred, the odd one at the bottom/right as PyTorch does: output ``ceil(I / stride)``).
    ``pool=None`` means no pooling; ``pool_stride=None`` means the pool size. Stride,
    padding, dilation, pool and pool stride are at most
    :data:`~convlens.limits.MAX_LAYER_NUMBER`.
    """

    stride: int = 1
    padding: PaddingSpec = 0
    padding_mode: PaddingMode = PaddingMode.ZEROS
    dilation: int = 1
    activation: Activation = Activation.RELU
    pool: int | None = 2
    pool_type: PoolType = PoolType.MAX
    pool_stride: int | None = None
    bias: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "padding", parse_padding(self.padding))
        set_(self, "padding_mode", parse_enum(PaddingMode, self.padding_mode, "padding mode"))
        set_(self, "activation", parse_enum(Activation, self.activation, "activation"))
        set_(self, "pool_type", parse_enum(PoolType, self.pool_type, "pool type"))
        set_(self, "pool", parse_pool(self.pool))
        if self.bias is not None:
            set_(self, "bias", tuple(float(b) for b in self.bias))
        check_positive("stride", self.stride, MAX_LAYER_NUMBER)
        check_positive("dilation", self.dilation, MAX_LAYER_NUMBER)
        if self.pool_stride is not None:
            check_positive("pool stride", self.pool_stride, MAX_LAYER_NUMBER)

    @property
    def effective_pool_stride(self) -> int | None:
        """The pool's stride in conv-map pixels: as given, else the pool size (None: no pool)."""
        return None if self.pool is None else (self.pool_stride or self.pool)

    def describe(self) -> str:
        """The layer in one line, for titles.

        >>> LayerConfig().describe()
        'conv (stride 1, padding 0) -> relu -> max pool 2x2, stride 2'
        >>> LayerConfig(stride=2, padding="same", dilation=2, pool=None).describe()
        'conv (stride 2, padding same, dilation 2) -> relu -> no pooling'
        """
        padding = self.padding
        if isinstance(padding, tuple):
            padding = "top/bottom/left/right " + "/".join(map(str, padding))
        conv = [f"stride {self.stride}", f"padding {padding}"]
        if padding != 0 and self.padding_mode is not PaddingMode.ZEROS:
            conv.append(f"{self.padding_mode.value} padding")
        if self.dilation > 1:
            conv.append(f"dilation {self.dilation}")
        pool = ("no pooling" if self.pool is None else
                f"{self.pool_type.value} pool {self.pool}x{self.pool}, stride "
                f"{self.effective_pool_stride}")
        return f"conv ({', '.join(conv)}) -> {self.activation.value} -> {pool}"

    def to_dict(self) -> dict:
        """JSON-ready settings (enums as their strings)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, enum.Enum):
                data[key] = value.value
        return data


class StageOutputs(NamedTuple):
    """Every stage of one forward pass, each ``(N, K, H', W')``: what every backend returns."""

    conv: torch.Tensor
    activated: torch.Tensor
    pooled: torch.Tensor


def parse_padding(padding: PaddingSpec) -> int | str | tuple[int, int, int, int]:
    """``3``, ``"3"``, ``"valid"``, ``"same"`` or ``(top, bottom, left, right)``; else an error.

    Cells per side are whole numbers from 0 to :data:`~convlens.limits.MAX_LAYER_NUMBER`.

    >>> parse_padding("valid"), parse_padding(" SAME "), parse_padding("2")
    (0, 'same', 2)
    >>> parse_padding([0, 1, 0, 1])
    (0, 1, 0, 1)
    """
    if isinstance(padding, str):
        text = padding.strip().lower()
        if text == "valid":
            return 0
        if text == "same":
            return "same"
        padding = _whole(text, "padding")
    if isinstance(padding, (tuple, list)):
        if len(padding) != 4:
            raise ConfigError(f"padding tuple must be 4 cells >= 0; got {padding!r}")
        for cell in padding:
            _cells(cell, "padding tuple")
        top, bottom, left, right = (int(p) for p in padding)
        return top, bottom, left, right
    _cells(padding, "padding")
    return int(padding)


def parse_pool(pool: int | str | None) -> int | None:
    """``2``, ``"2"``, ``"none"``/``0``/``None`` (no pooling); else an error.

    >>> parse_pool("3"), parse_pool("none"), parse_pool(0)
    (3, None, None)
    """
    if pool is None:
        return None
    if isinstance(pool, str):
        text = pool.strip().lower()
        if text in ("none", "off", "0", ""):
            return None
        try:
            pool = bounded_int(text, MAX_LAYER_NUMBER, "pool size")
        except ValueError:
            raise ConfigError(f"pool must be a window size or 'none'; got {pool!r}") from None
    if pool == 0:
        return None
    check_positive("pool size", pool, MAX_LAYER_NUMBER)
    return int(pool)


E = TypeVar("E", bound=enum.Enum)


def parse_enum(kind: type[E], value: Any, label: str, options: Sequence[Option] = ()) -> E:
    """``value`` as a member of ``kind`` (a member or its string), else a :class:`ConfigError`
    naming ``label`` and the choices (``options``: how other surfaces name ``label``).

    >>> parse_enum(PoolType, "avg", "pool type")
    <PoolType.AVG: 'avg'>
    """
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(str(member.value) for member in kind)
        raise ConfigError(f"{label} must be one of {choices}; got {value!r}",
                          options=options) from None


def check_positive(label: str, value: Any, limit: int | None = None) -> None:
    """Refuse anything but a whole number from 1 to ``limit`` (no bound when None), naming
    ``label`` in the one-line :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{label} must be a whole number; got {value!r}")
    if value < 1:
        raise ConfigError(f"{label} must be at least 1; got {value}")
    if limit is not None:
        check_at_most(int(value), limit, label)


def _whole(text: str, label: str) -> int:
    """``text`` as a whole number, or a :class:`ConfigError` naming ``label``; a number too long
    to be a layer setting (a 5000-digit one) is refused without converting it."""
    try:
        return bounded_int(text, MAX_LAYER_NUMBER, label)
    except ValueError:
        raise ConfigError(f"{label} must be a number of cells, 'valid' or 'same'; got "
                          f"{text[:40]!r}") from None


def _cells(value: Any, label: str) -> None:
    """Check a padding of ``value`` cells: a whole number from 0 to the layer-number limit."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{label} must be a number, 'valid' or 'same'; got {value!r}")
    if value < 0:
        raise ConfigError(f"{label} must be >= 0 cells; got {value}")
    check_at_most(int(value), MAX_LAYER_NUMBER, label)


__all__ = [
    "LEAKY_SLOPE",
    "Activation",
    "LayerConfig",
    "PaddingMode",
    "PaddingSpec",
    "PoolType",
    "StageOutputs",
    "check_positive",
    "parse_enum",
    "parse_padding",
    "parse_pool",
]
