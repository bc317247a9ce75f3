"""The tutorial's conv -> activation -> pool layer, done right, and the dispatcher between its
backends.

The settings are a :class:`~convlens.config.LayerConfig`; the sizes they give are
:mod:`convlens.sizes`. :class:`FixedConvLayer` is an ``nn.Module`` whose ``nn.Conv2d`` carries
the kernels as fixed weights; one forward call returns every stage, named: it is the reference
(torch) backend. :func:`run_layer` is the one dispatcher: it runs the reference or the fused CPU
kernel of :mod:`convlens.fused` (same numbers, faster on large work), importing the latter only
when asked or when the work pays for it. :func:`compute_stages` runs an image through it and
returns :class:`Stages`, the data every figure, file and explanation is made from.

Padding is always explicit ``(top, bottom, left, right)`` cells applied by ``F.pad``, so every
padding mode and the asymmetric 'same' padding of even kernels go through one code path.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

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
from .devices import resolve_device
from .errors import ConfigError
from .kernels import Kernel, kernel_bank, unique_names
from .limits import MAX_KERNELS, check_at_most, check_budget
from .sizes import SizeStep, check_fits, resolve_padding
from .stages import StageArrays, Stages, StageSummary


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


FLOAT_BYTES = 4
"""Bytes of one float32 value: every stage is float32."""

STAGE_COPIES = (5, 4)
"""How many times the outputs are held at the peak of one layer run, as a fraction: 5/4 where
PyTorch's result is kept as it is (gray images on the CPU; the fused kernel), 2 where a
channels-last result is copied to a contiguous one (colour images, GPUs). Measured peaks on the
CPU are 1.15-1.25x the outputs for gray images and 2.0-2.2x for RGB."""


@dataclass(frozen=True)
class LayerEstimate:
    """What one layer run costs, from shapes alone (nothing allocated). Bytes of float32.

    ``input_bytes`` is the batch, ``padded_bytes`` its padded copy (0 without padding),
    ``output_bytes`` the conv, activated and pooled stages once, ``memory`` the estimated peak
    (input, padded copy and the outputs :data:`STAGE_COPIES` times), ``work`` the multiply-adds
    ``N K C kh kw H' W'``, ``sizes`` the :func:`check_fits` steps.
    """

    input_bytes: int
    padded_bytes: int
    output_bytes: int
    memory: int
    work: int
    sizes: list[SizeStep]


def estimate_layer(
    input_shape: Sequence[int], kernel_shape: Sequence[int], config: LayerConfig,
    copied: bool | None = None,
) -> LayerEstimate:
    """The memory and work of running ``config`` with kernels ``kernel_shape`` ``(K, C, kh, kw)``
    over ``input_shape`` ``(C, H, W)`` or ``(N, C, H, W)``, from the size arithmetic of
    :func:`check_fits` (which also refuses a layer that does not fit). ``copied`` says the
    outputs are copied once more (channels-last on a GPU or for colour; default: C > 1).

    >>> e = estimate_layer((1, 100, 100), (2, 1, 3, 3), LayerConfig(pool=2))
    >>> e.sizes[0].outputs, e.output_bytes, e.work        # conv 98x98, pooled 49x49
    ((98, 98), 172872, 172872)
    """
    *batch, channels, height, width = (int(side) for side in input_shape)
    count = math.prod(batch)
    kernels, _, kh, kw = (int(side) for side in kernel_shape)
    sizes = check_fits(config, height, width, (kh, kw))
    top, bottom, left, right = sizes[0].padding
    conv_h, conv_w = sizes[0].outputs
    pooled_h, pooled_w = sizes[-1].outputs if config.pool is not None else (0, 0)
    input_bytes = FLOAT_BYTES * count * channels * height * width
    padded_bytes = 0 if not any(sizes[0].padding) else (
        FLOAT_BYTES * count * channels * (height + top + bottom) * (width + left + right))
    output_bytes = FLOAT_BYTES * count * kernels * (2 * conv_h * conv_w + pooled_h * pooled_w)
    copies, per = STAGE_COPIES if not (channels > 1 if copied is None else copied) else (2, 1)
    memory = input_bytes + padded_bytes + copies * output_bytes // per
    work = count * kernels * channels * kh * kw * conv_h * conv_w
    return LayerEstimate(input_bytes, padded_bytes, output_bytes, memory, work, sizes)


def check_layer_budget(
    input_shape: Sequence[int], kernel_shape: Sequence[int], config: LayerConfig,
    extra_bytes: int = 0, what: str = "", copied: bool | None = None,
) -> LayerEstimate:
    """Refuse, before anything is allocated, a layer run over the kernel-count limit or whose
    :func:`estimate_layer` memory (plus ``extra_bytes``, e.g. figures) or work is over the
    budget (:func:`convlens.limits.check_budget`); ``what`` names the job in the message."""
    kernels = int(kernel_shape[0])
    check_at_most(kernels, MAX_KERNELS, "the number of kernels",
                  "run them in groups of at most that many")
    estimate = estimate_layer(input_shape, kernel_shape, config, copied)
    if not what:
        shape = "x".join(str(int(side)) for side in input_shape)
        kh, kw = (int(side) for side in kernel_shape[2:])
        what = (f"a {shape} input with {kernels} {kh}x{kw} kernel{'s' * (kernels != 1)} "
                f"({'x'.join(map(str, estimate.sizes[0].outputs))} maps)")
    check_budget(estimate.memory + extra_bytes, what, work=estimate.work)
    return estimate


def compute_stages(
    image: torch.Tensor,
    kernels: Sequence[Kernel],
    config: LayerConfig | None = None,
    device: str | torch.device = "auto",
    backend: str = "auto",
) -> Stages:
    """Run ``image`` ``(C, H, W)`` through conv -> activation -> pool with ``kernels``.

    ``backend`` is ``"torch"`` (the ``nn.Conv2d`` reference), ``"fused"`` (a single-pass CPU
    kernel giving the same numbers faster) or ``"auto"`` (fused on the CPU where it applies).
    """
    if image.ndim != 3:
        raise ConfigError(f"expected an image (C, H, W); got shape {tuple(image.shape)}")
    config = config or LayerConfig()
    weights = kernel_bank(kernels, image.shape[0])
    sizes = check_fits(config, image.shape[1], image.shape[2], tuple(weights.shape[2:]))
    target = resolve_device(device)
    outputs = run_layer(image[None], weights, config, target, backend)
    conv, activated, pooled = (t[0].to("cpu", torch.float32) for t in outputs)
    arrays = StageArrays(image.cpu().numpy(), weights.numpy(), conv.numpy(), activated.numpy(),
                         pooled.numpy())
    return Stages(arrays, config, unique_names(kernels), sizes)


FUSED_MIN_MACS = 300_000_000
"""Multiply-adds below which ``auto`` keeps the torch reference: importing numba and loading
its cached kernel costs about half a second, more than the whole torch run of a photo-sized
image (0.27 s against 0.68 s for the bundled sample), while a 4096x4096 image with the tutorial's
three kernels (450 M multiply-adds) runs 18x faster fused. The one-time compile after install
(about 10 s) is paid only by work of that size, and cached on disk for every later run."""

BACKENDS = ("auto", "torch", "fused")
"""What :func:`run_layer` may be asked to use: ``torch`` is :class:`FixedConvLayer`, the
reference; ``fused`` the single-pass CPU kernel of :mod:`convlens.fused`; ``auto`` chooses."""


def fused_backend() -> ModuleType:
    """The fused CPU backend, :mod:`convlens.fused`, imported on first use.

    The dispatcher imports it by name, not at module level: the backends sit side by side
    below it and neither imports the other. Importing it costs no numba: its kernel loads on
    its first run (:func:`convlens.fused.is_loaded`)."""
    return importlib.import_module(".fused", __package__)


def fused_pays(batch: torch.Tensor, weights: torch.Tensor) -> bool:
    """Whether the fused CPU kernel is worth using for this batch ``(N, C, H, W)`` and weights
    ``(K, C, kh, kw)``: always once it is loaded in this process, else above
    :data:`FUSED_MIN_MACS` multiply-adds (and only where numba is installed)."""
    fused = fused_backend()
    if not fused.is_available():
        return False
    if fused.is_loaded():
        return True
    return batch.shape[0] * batch.shape[2] * batch.shape[3] * weights.numel() >= FUSED_MIN_MACS


def run_layer(
    batch: torch.Tensor,
    weights: torch.Tensor,
    config: LayerConfig,
    device: torch.device | str = "cpu",
    backend: str = "auto",
) -> StageOutputs:
    """Stages of a batch ``(N, C, H, W)`` for weights ``(K, C, kh, kw)``, each ``(N, K, H', W')``.

    The one dispatcher between the backends (:data:`BACKENDS`). Every backend gives the numbers
    of :class:`FixedConvLayer`, which is the reference. ``auto`` takes the fused CPU kernel
    where it applies (:func:`convlens.fused.supports`) and the work pays for loading it
    (:func:`fused_pays`). A run over the kernel-count limit or the budget is refused first
    (:func:`check_layer_budget`).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be {', '.join(BACKENDS[:-1])} or {BACKENDS[-1]}; got "
                          f"{backend!r}")
    device = resolve_device(device)
    check_layer_budget(tuple(batch.shape), tuple(weights.shape), config,
                       copied=device.type != "cpu" or batch.shape[1] > 1)
    if backend == "fused" or (
        backend == "auto" and device.type == "cpu" and fused_pays(batch, weights)
    ):
        fused = fused_backend()
        if backend == "fused" or fused.supports(batch, weights, config):
            return fused.run_layer(batch, weights, config)
    return run_reference(batch, weights, config, device)


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


__all__ = [
    "BACKENDS",
    "FUSED_MIN_MACS",
    "FixedConvLayer",
    "LayerEstimate",
    "StageSummary",
    "Stages",
    "check_layer_budget",
    "compute_stages",
    "estimate_layer",
    "fused_pays",
    "make_activation",
    "make_pool",
    "pad_input",
    "run_layer",
    "run_reference",
]
