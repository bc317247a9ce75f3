"""The request bodies the page sends, and their translation into the library's objects.

The page holds the state (image id, kernels, layer settings) and sends it whole with every
request, so any request can be answered on its own. Pydantic checks types and bounds (answered
``400`` with one line, see :mod:`.app`); the names and weights are checked by the library
(:class:`~convlens.config.LayerConfig`, :func:`~convlens.kernels.parse_kernel`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..config import Activation, LayerConfig, PaddingMode, PoolType, parse_enum
from ..defaults import DEFAULT_MAX_SIDE
from ..errors import ConfigError
from ..kernels import Kernel, parse_kernel
from .limits import (
    DISPLAY_SIDES,
    MAX_DILATION,
    MAX_KERNELS,
    MAX_LAYER_NUMBER,
)


class LayerIn(BaseModel):
    """The layer settings as the page sends them; the library validates the names."""

    model_config = ConfigDict(extra="forbid")

    stride: int = Field(default=1, ge=1, le=MAX_LAYER_NUMBER)
    padding: int | Literal["same", "valid"] = 0
    padding_mode: str = "zeros"
    dilation: int = Field(default=1, ge=1, le=MAX_DILATION)
    activation: str = "relu"
    pool: int | None = Field(default=2, ge=0, le=MAX_LAYER_NUMBER)
    pool_type: str = "max"
    pool_stride: int | None = Field(default=None, ge=1, le=MAX_LAYER_NUMBER)

    def config(self) -> LayerConfig:
        """The settings as a :class:`~convlens.config.LayerConfig` (pool 0 means no pooling)."""
        if isinstance(self.padding, int) and not 0 <= self.padding <= MAX_LAYER_NUMBER:
            raise ConfigError(f"padding must be 0..{MAX_LAYER_NUMBER} cells, 'same' or "
                              f"'valid'; got {self.padding}")
        return LayerConfig(
            stride=self.stride, padding=self.padding,
            padding_mode=parse_enum(PaddingMode, self.padding_mode, "padding mode"),
            dilation=self.dilation,
            activation=parse_enum(Activation, self.activation, "activation"),
            pool=self.pool or None, pool_type=parse_enum(PoolType, self.pool_type, "pool type"),
            pool_stride=self.pool_stride)


class KernelIn(BaseModel):
    """One kernel: its name and its weights, rows of numbers ``(kh, kw)`` for a kernel shared
    by every channel, or one such grid per channel ``(3, kh, kw)`` (R, G, B) for an RGB one."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("custom", max_length=40)
    weights: list[list[Any]]  # numbers, checked by to_kernels to name the bad cell


class StateIn(BaseModel):
    """Everything the stages depend on: image, colour mode, working size (``max_side``, the
    longer side in px; None: full size, the default of the CLI too), kernels, layer."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(..., max_length=80)
    mode: Literal["gray", "rgb"] = "gray"
    max_side: int | None = DEFAULT_MAX_SIDE
    kernels: list[KernelIn] = Field(..., min_length=1, max_length=MAX_KERNELS)
    layer: LayerIn = LayerIn()


class StagesIn(StateIn):
    """The state plus how to send the maps: ``display`` px a side at most, ``have`` the key of
    the maps the page already shows in each row (those are not sent again), ``client`` and
    ``seq`` for latest-edit-wins, and ``input``: px a side at most of the input image to send
    along (None: not sent), so a new image's first drawing takes one request."""

    display: int = Field(384, ge=DISPLAY_SIDES[0], le=DISPLAY_SIDES[1])
    input: int | None = Field(None, ge=DISPLAY_SIDES[0], le=DISPLAY_SIDES[1])
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
    max_side: int | None = DEFAULT_MAX_SIDE
    layer: str | None = Field(None, max_length=200)
    cam_layer: str | None = Field(None, max_length=200)
    target: str | None = Field(None, max_length=100)
    top: int = Field(16, ge=1, le=64)
    display: int = Field(96, ge=16, le=256)


def to_kernels(items: list[KernelIn]) -> list[Kernel]:
    """The page's kernels as :class:`~convlens.kernels.Kernel` objects, checked by the library
    (:func:`~convlens.kernels.parse_kernel` names a bad cell: ``kernel 2 (blur), row 1,
    column 3: NaN is not a finite number``; sides up to :data:`.limits.MAX_KERNEL_SIDE`)."""
    kernels = []
    for number, item in enumerate(items, start=1):
        name = " ".join(item.name.split()) or "custom"  # one line, whatever was sent
        label = f"kernel {number} ({name})"
        parsed = parse_kernel(item.weights, label=label)
        kernels.append(dataclasses.replace(parsed, name=name,
                                           description="edited in convlens serve"))
    return kernels
