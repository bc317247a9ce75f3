"""The request bodies the page sends, and their translation into the library's objects.

The page holds the state (image id, kernels, layer settings) and sends it whole with every
request, so any request can be answered on its own. Pydantic checks types and bounds (answered
``400`` with one line, see :mod:`.app`); the names and weights are checked by the library
(:class:`~convlens.layers.LayerConfig`, :func:`~convlens.kernels.parse_kernel`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError, KernelError
from ..explain import CHANNEL_LABELS
from ..kernels import Kernel, parse_kernel
from ..layers import LayerConfig
from .limits import (
    DEFAULT_WORKING_SIDE,
    DISPLAY_SIDES,
    MAX_DILATION,
    MAX_KERNEL_SIDE,
    MAX_KERNELS,
    MAX_LAYER_NUMBER,
)


class LayerIn(BaseModel):
    """The layer settings as the page sends them; the library validates the names."""

    model_config = ConfigDict(extra="forbid")

    stride: int = Field(1, ge=1, le=MAX_LAYER_NUMBER)
    padding: int | Literal["same", "valid"] = 0
    padding_mode: str = "zeros"
    dilation: int = Field(1, ge=1, le=MAX_DILATION)
    activation: str = "relu"
    pool: int | None = Field(2, ge=0, le=MAX_LAYER_NUMBER)
    pool_type: str = "max"
    pool_stride: int | None = Field(None, ge=1, le=MAX_LAYER_NUMBER)

    def config(self) -> LayerConfig:
        """The settings as a :class:`~convlens.layers.LayerConfig` (pool 0 means no pooling)."""
        if isinstance(self.padding, int) and not 0 <= self.padding <= MAX_LAYER_NUMBER:
            raise ConfigError(f"padding must be 0..{MAX_LAYER_NUMBER} cells, 'same' or "
                              f"'valid'; got {self.padding}")
        return LayerConfig(stride=self.stride, padding=self.padding,
                           padding_mode=self.padding_mode, dilation=self.dilation,
                           activation=self.activation, pool=self.pool or None,
                           pool_type=self.pool_type, pool_stride=self.pool_stride)


class KernelIn(BaseModel):
    """One kernel: its name and its weights, rows of numbers ``(kh, kw)`` for a kernel shared
    by every channel, or one such grid per channel ``(3, kh, kw)`` (R, G, B) for an RGB one."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("custom", max_length=40)
    weights: list[list[Any]]  # numbers, checked by to_kernels to name the bad cell


class StateIn(BaseModel):
    """Everything the stages depend on: image, colour mode, working size, kernels, layer."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(..., max_length=80)
    mode: Literal["gray", "rgb"] = "gray"
    max_side: int = DEFAULT_WORKING_SIDE
    kernels: list[KernelIn] = Field(..., min_length=1, max_length=MAX_KERNELS)
    layer: LayerIn = LayerIn()


class StagesIn(StateIn):
    """The state plus how to send the maps: ``display`` px a side at most, ``have`` the key of
    the maps the page already shows in each row (those are not sent again), ``client`` and
    ``seq`` for latest-edit-wins."""

    display: int = Field(384, ge=DISPLAY_SIDES[0], le=DISPLAY_SIDES[1])
    have: list[str | None] = Field(default_factory=list, max_length=MAX_KERNELS)
    client: str = Field("", max_length=64)
    seq: int = 0


class ExplainIn(StateIn):
    """The state plus the hovered pixel: ``(row, col)`` of ``kernel``'s ``stage`` map."""

    stage: Literal["conv", "activated", "pooled"] = "conv"
    kernel: int = Field(0, ge=0)
    row: int
    col: int
    flip: bool = False


class ModelOpenIn(BaseModel):
    """A checkpoint to open, as one of the paths ``GET /api/model`` lists."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(..., max_length=500)


class ModelRunIn(BaseModel):
    """What the model panel shows: ``layer`` (default the first conv layer) for feature maps
    and filters, Grad-CAM of class ``target`` (index or name; default the top prediction) at
    ``cam_layer`` (default the last conv layer), the ``top`` most active channels."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(..., max_length=80)
    max_side: int = DEFAULT_WORKING_SIDE
    layer: str | None = Field(None, max_length=200)
    cam_layer: str | None = Field(None, max_length=200)
    target: str | None = Field(None, max_length=100)
    top: int = Field(16, ge=1, le=64)
    display: int = Field(96, ge=16, le=256)


def to_kernels(items: list[KernelIn]) -> list[Kernel]:
    """The page's kernels as :class:`~convlens.kernels.Kernel` objects, checked by the library."""
    kernels = []
    for number, item in enumerate(items, start=1):
        label = f"kernel {number} ({' '.join(item.name.split())})"  # one line, whatever sent
        weights = item.weights
        per_channel = bool(weights and weights[0] and isinstance(weights[0][0], list))
        planes = weights if per_channel else [weights]
        if len(planes) not in (1, 3):
            raise KernelError(f"{label} has {len(planes)} channel grids; give 1 (shared) or 3 "
                              "(R, G, B)")
        for channel, rows in enumerate(planes):
            where = f"{label}{f' channel {CHANNEL_LABELS[channel]}' if len(planes) == 3 else ''}"
            _check_grid(where, rows)  # type: ignore[arg-type]
        if len({(len(rows), len(rows[0])) for rows in planes}) != 1:
            raise KernelError(f"{label}: its R, G and B grids differ in size")
        parsed = parse_kernel(planes if per_channel else weights, label=label)
        kernels.append(dataclasses.replace(parsed, name=item.name.strip() or "custom",
                                           description="edited in convlens serve"))
    return kernels


def _check_grid(label: str, rows: list) -> None:
    """A clear error where one grid of weights is empty, too large, ragged or not numbers."""
    if not all(isinstance(row, list) for row in rows):
        raise KernelError(f"{label} must be rows of numbers")
    height, width = len(rows), len(rows[0]) if rows else 0
    if not (1 <= height <= MAX_KERNEL_SIDE and 1 <= width <= MAX_KERNEL_SIDE):
        raise KernelError(f"{label} is {height}x{width}; the page takes kernels of 1 to "
                          f"{MAX_KERNEL_SIDE} cells a side")
    if any(len(row) != width for row in rows):
        lengths = ", ".join(str(len(row)) for row in rows)
        raise KernelError(f"{label} is ragged: its rows have {lengths} numbers")
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            problem = _cell_problem(value)
            if problem:
                raise KernelError(f"{label}, row {r}, col {c}: {problem}")


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _cell_problem(value: object) -> str | None:
    """What is wrong with one weight as JSON delivered it (None if it is a usable number): not a
    number, NaN or infinite, or beyond float32, where it would silently become infinite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            shown = repr(value[:20] + ("..." if len(value) > 20 else ""))
        else:
            shown = {list: "a list", dict: "an object", type(None): "null"}.get(
                type(value), type(value).__name__)
        return f"{shown} is not a number"
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        return f"an integer of about {int(abs(value).bit_length() * 0.30103)} digits is beyond " \
            "float32 (largest 3.4e+38)"
    if not math.isfinite(number):
        return f"{number!r} is NaN or infinite; every weight must be a finite number"
    if abs(number) > FLOAT32_MAX:
        return f"{value:.3g} is beyond float32 (largest 3.4e+38)"
    return None
