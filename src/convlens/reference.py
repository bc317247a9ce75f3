"""The torch backend of the layer, which is the reference every other backend is checked
against: :class:`FixedConvLayer`, an ``nn.Module`` whose ``nn.Conv2d`` carries the kernels as
fixed weights; one forward call returns every stage, named.

Only the dispatcher (:func:`convlens.layers.run_layer`) runs it, for what the NumPy backends do
not take (GPUs, tensors that track gradients) or when asked for by name, and code that wants
the ``nn.Module`` itself imports it from here: importing :mod:`convlens.layers` costs no torch.

Padding is always explicit ``(top, bottom, left, right)`` cells applied by ``F.pad``, so every
padding mode and the asymmetric 'same' padding of even kernels go through one code path.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import (
    LEAKY_SLOPE,
    Activation,
    LayerConfig,
    PaddingMode,
    PoolType,
    StageOutputs,
    parse_enum,
)
from .errors import ConfigError
from .sizes import check_fits, resolve_padding


class FixedConvLayer(nn.Module):
    """``nn.Conv2d`` with fixed kernel weights, then activation, then pooling.

    ``weights`` is ``(K, C, kh, kw)``; the forward pass takes ``(N, C, H, W)`` and returns
    :class:`StageOutputs`. With ``pool=None`` the pooled stage is the activated map itself.
    """

    def __init__(self, weights: torch.Tensor, config: LayerConfig | None = None) -> None:
        super().__init__()
        config = config or LayerConfig()
        out_channels, in_channels, kh, kw = weights.shape
        self.config = config
        self.conv = nn.Conv2d(
            in_channels, out_channels, (kh, kw), stride=config.stride, padding=0,
            dilation=config.dilation, bias=config.bias is not None,
        )
        self.conv.requires_grad_(False)
        self.conv.weight.copy_(weights)
        if config.bias is not None:
            if len(config.bias) != out_channels:
                raise ConfigError(
                    f"bias needs one value per kernel ({out_channels}); got {len(config.bias)}"
                )
            bias = self.conv.bias
            if bias is not None:  # made above: the config has a bias
                bias.copy_(torch.tensor(config.bias))
        self.activation = make_activation(config.activation)
        self.pool = make_pool(config)

    def forward(self, x: torch.Tensor) -> StageOutputs:
        height, width = x.shape[-2:]
        check_fits(self.config, height, width, tuple(self.conv.kernel_size))
        pads = resolve_padding(self.config, height, width, tuple(self.conv.kernel_size))
        conv = self.conv(pad_input(x, pads, self.config.padding_mode))
        activated = self.activation(conv)
        return StageOutputs(conv, activated, self.pool(activated))


def make_activation(activation: Activation | str) -> nn.Module:
    """The ``nn.Module`` for an :class:`Activation` name."""
    kind = parse_enum(Activation, activation, "activation")
    factories: dict[Activation, Callable[[], nn.Module]] = {
        Activation.RELU: nn.ReLU,
        Activation.LEAKY_RELU: lambda: nn.LeakyReLU(LEAKY_SLOPE),
        Activation.TANH: nn.Tanh,
        Activation.SIGMOID: nn.Sigmoid,
        Activation.ABS: _Abs,
        Activation.NONE: nn.Identity,
    }
    return factories[kind]()


def make_pool(config: LayerConfig) -> nn.Module:
    if config.pool is None:
        return nn.Identity()
    pool_class = nn.MaxPool2d if config.pool_type is PoolType.MAX else nn.AvgPool2d
    return pool_class(config.pool, config.effective_pool_stride)


def pad_input(x: torch.Tensor, pads: tuple[int, int, int, int], mode: PaddingMode) -> torch.Tensor:
    """Pad ``(N, C, H, W)`` by ``(top, bottom, left, right)`` cells in the given mode."""
    if not any(pads):
        return x
    top, bottom, left, right = pads
    torch_mode = "constant" if mode is PaddingMode.ZEROS else mode.value
    return F.pad(x, (left, right, top, bottom), mode=torch_mode)


def run_reference(
    batch: torch.Tensor, weights: torch.Tensor, config: LayerConfig, device: torch.device
) -> StageOutputs:
    """The torch backend: :class:`FixedConvLayer` on ``device`` (channels-last for colour and
    on GPUs), each stage made contiguous."""
    layer = FixedConvLayer(weights, config).to(device)
    with torch.inference_mode():
        x = batch.to(device)
        if device.type != "cpu" or batch.shape[1] > 1:
            x = x.contiguous(memory_format=torch.channels_last)
            layer = layer.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        outputs = layer(x)
        return StageOutputs(*(t.contiguous() for t in outputs))


class _Abs(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs()


__all__ = ["FixedConvLayer", "make_activation", "make_pool", "pad_input", "run_reference"]
