"""The tutorial's conv -> activation -> pool layer, done right, and the size arithmetic.

:class:`LayerConfig` holds the settings (stride, padding, dilation, padding mode, activation,
pooling). :class:`FixedConvLayer` is an ``nn.Module`` whose ``nn.Conv2d`` carries the kernels as
fixed weights; one forward call returns every stage, named. :func:`compute_stages` runs an image
through it (or through a faster fused path that gives the same numbers) and returns
:class:`Stages`, the data every figure, file and explanation is made from.

Padding is always explicit ``(top, bottom, left, right)`` cells applied by ``F.pad``, so every
padding mode and the asymmetric 'same' padding of even kernels go through one code path.
"""

from __future__ import annotations

import enum
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .devices import resolve_device
from .errors import ConfigError
from .kernels import Kernel, kernel_bank, unique_names
from .limits import MAX_KERNELS, MAX_LAYER_NUMBER, bounded_int, check_at_most, check_budget

PaddingSpec = int | str | tuple[int, int, int, int]


class Activation(str, enum.Enum):
    """Activation applied to the conv stage."""

    RELU = "relu"
    LEAKY_RELU = "leaky-relu"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    ABS = "abs"
    NONE = "none"


class PoolType(str, enum.Enum):
    MAX = "max"
    AVG = "avg"


class PaddingMode(str, enum.Enum):
    ZEROS = "zeros"
    REFLECT = "reflect"
    REPLICATE = "replicate"
    CIRCULAR = "circular"


LEAKY_SLOPE = 0.01


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
        set_(self, "padding_mode", _enum(PaddingMode, self.padding_mode, "padding mode"))
        set_(self, "activation", _enum(Activation, self.activation, "activation"))
        set_(self, "pool_type", _enum(PoolType, self.pool_type, "pool type"))
        set_(self, "pool", parse_pool(self.pool))
        if self.bias is not None:
            set_(self, "bias", tuple(float(b) for b in self.bias))
        _positive("stride", self.stride, MAX_LAYER_NUMBER)
        _positive("dilation", self.dilation, MAX_LAYER_NUMBER)
        if self.pool_stride is not None:
            _positive("pool stride", self.pool_stride, MAX_LAYER_NUMBER)

    @property
    def effective_pool_stride(self) -> int | None:
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


def parse_padding(padding: PaddingSpec) -> int | str | tuple[int, int, int, int]:
    """``3``, ``"3"``, ``"valid"``, ``"same"`` or ``(top, bottom, left, right)``; else an error.

    Cells per side are whole numbers from 0 to :data:`~convlens.limits.MAX_LAYER_NUMBER`.
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
        return tuple(int(p) for p in padding)  # type: ignore[return-value]
    _cells(padding, "padding")
    return int(padding)


def _whole(text: str, label: str) -> int:
    """``text`` as a whole number, or a :class:`ConfigError` naming ``label``; a number too long
    to be a layer setting (a 5000-digit one) is refused without converting it."""
    try:
        return bounded_int(text, MAX_LAYER_NUMBER, label)
    except ValueError:
        raise ConfigError(f"{label} must be a number of cells, 'valid' or 'same'; got "
                          f"{text[:40]!r}") from None


def _cells(value, label: str) -> None:
    """Check a padding of ``value`` cells: a whole number from 0 to the layer-number limit."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{label} must be a number, 'valid' or 'same'; got {value!r}")
    if value < 0:
        raise ConfigError(f"{label} must be >= 0 cells; got {value}")
    check_at_most(value, MAX_LAYER_NUMBER, label)


def parse_pool(pool: int | str | None) -> int | None:
    """``2``, ``"2"``, ``"none"``/``0``/``None`` (no pooling); else an error."""
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
    _positive("pool size", pool, MAX_LAYER_NUMBER)
    return int(pool)


def effective_size(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel in input pixels: ``D * (F - 1) + 1``."""
    return dilation * (kernel - 1) + 1


def output_size(
    size: int,
    kernel: int,
    padding: int | tuple[int, int] = 0,
    stride: int = 1,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length along one axis: ``floor((I - F_eff + 2P) / S) + 1``.

    ``F_eff = D (F - 1) + 1`` is the dilated kernel span; ``padding`` is cells per side or a
    ``(before, after)`` pair. ``ceil_mode`` rounds up as PyTorch's pools do, dropping a last
    window that would start in the right padding. A configuration that leaves no output raises
    :class:`ConfigError` saying why.

    >>> output_size(5, 3)            # the tutorial: (5 - 3 + 0) / 1 + 1
    3
    >>> output_size(224, 3, padding=1, stride=2)
    112
    """
    for label, value in (("input size", size), ("kernel size", kernel), ("stride", stride),
                         ("dilation", dilation)):
        _positive(label, value)
    before, after = (padding, padding) if isinstance(padding, int) else padding
    if before < 0 or after < 0:
        raise ConfigError(f"padding must be >= 0; got {padding}")
    span = effective_size(kernel, dilation)
    room = size + before + after - span
    out = (room + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + before:
        out -= 1
    if out < 1:
        raise ConfigError(
            f"no output: the kernel spans {span} px (F={kernel}, dilation={dilation}) but the "
            f"padded input is only {size + before + after} px (I={size}, padding "
            f"{before}+{after}); use a smaller kernel, more padding or a larger image"
        )
    return out


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """``(before, after)`` cells of 'same' padding: ``D (F - 1)`` in all, the odd cell after.

    The kernel stays centred on input pixel ``(i * S)`` for output ``i``, and the output is
    ``ceil(I / S)`` long for any stride ``S`` (exactly ``I`` at stride 1, as PyTorch's 'same').
    """
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def resolve_padding(
    config: LayerConfig, height: int, width: int, kernel_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The explicit ``(top, bottom, left, right)`` padding of ``config`` for this input."""
    padding = config.padding
    if padding == "same":
        top, bottom = same_padding(kernel_size[0], config.dilation)
        left, right = same_padding(kernel_size[1], config.dilation)
        return top, bottom, left, right
    if isinstance(padding, tuple):
        return padding
    return (padding,) * 4  # type: ignore[return-value]


@dataclass(frozen=True)
class SizeStep:
    """How one stage's size follows from ``(I - F + 2P) / S + 1``, per axis ``(H, W)``."""

    stage: str
    inputs: tuple[int, int]
    kernel: tuple[int, int]
    padding: tuple[int, int, int, int]
    stride: int
    dilation: int
    outputs: tuple[int, int]

    def formula(self, separator: str = ";  ") -> str:
        """E.g. ``H: (300 - 3 + 2*0)/1 + 1 = 298;  W: ...``, noting where the division floors."""
        parts = []
        pads = ((self.padding[0], self.padding[1]), (self.padding[2], self.padding[3]))
        for axis, size, kern, (before, after), out in zip(
            "HW", self.inputs, self.kernel, pads, self.outputs
        ):
            span = effective_size(kern, self.dilation)
            pad = f"2*{before}" if before == after else f"{before}+{after}"
            exact = (size - span + before + after) % self.stride == 0
            parts.append(
                f"{axis}: ({size} - {span} + {pad})/{self.stride} + 1 = {out}"
                + ("" if exact else " (floored)")
            )
        return separator.join(parts)


class StageOutputs(NamedTuple):
    """Every stage of one forward pass, each ``(N, K, H', W')``."""

    conv: torch.Tensor
    activated: torch.Tensor
    pooled: torch.Tensor


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
            self.conv.bias.copy_(torch.tensor(config.bias))
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
    kind = _enum(Activation, activation, "activation")
    return {
        Activation.RELU: nn.ReLU,
        Activation.LEAKY_RELU: lambda: nn.LeakyReLU(LEAKY_SLOPE),
        Activation.TANH: nn.Tanh,
        Activation.SIGMOID: nn.Sigmoid,
        Activation.ABS: _Abs,
        Activation.NONE: nn.Identity,
    }[kind]()


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


def check_fits(
    config: LayerConfig, height: int, width: int, kernel_size: tuple[int, int]
) -> list[SizeStep]:
    """Check the layer fits a ``height x width`` input and return the size of every stage.

    Raises :class:`ConfigError` naming the problem (no output left, reflect padding wider than
    the image, a pool window larger than the map) instead of letting PyTorch fail deep inside.
    """
    pads = resolve_padding(config, height, width, kernel_size)
    if config.padding_mode is PaddingMode.REFLECT and (
        max(pads[:2]) >= height or max(pads[2:]) >= width
    ):
        raise ConfigError(
            f"reflect padding of {max(pads)} cells needs an image larger than that on each side; "
            f"got {height}x{width} (use replicate or zeros padding)"
        )
    if config.padding_mode is PaddingMode.CIRCULAR and (
        max(pads[:2]) > height or max(pads[2:]) > width
    ):
        raise ConfigError(
            f"circular padding of {max(pads)} cells cannot exceed the image size {height}x{width}"
        )
    conv_h = output_size(height, kernel_size[0], pads[:2], config.stride, config.dilation)
    conv_w = output_size(width, kernel_size[1], pads[2:], config.stride, config.dilation)
    steps = [SizeStep("conv", (height, width), kernel_size, pads, config.stride,
                      config.dilation, (conv_h, conv_w))]
    if config.pool is not None:
        stride = config.effective_pool_stride or config.pool
        if config.pool > min(conv_h, conv_w):
            raise ConfigError(
                f"pool window {config.pool}x{config.pool} is larger than the {conv_h}x{conv_w} "
                "conv map; use a smaller --pool or none"
            )
        pooled = (output_size(conv_h, config.pool, 0, stride),
                  output_size(conv_w, config.pool, 0, stride))
        steps.append(SizeStep("pooled", (conv_h, conv_w), (config.pool, config.pool),
                              (0, 0, 0, 0), stride, 1, pooled))
    return steps


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


@dataclass
class Stages:
    """Every stage of one image through one layer.

    ``input`` is ``(C, H, W)``, ``kernels`` ``(K, C, kh, kw)``, and ``conv``, ``activated``,
    ``pooled`` are ``(K, H', W')`` float32 on the CPU. ``kernel_names`` label the K maps.
    """

    input: torch.Tensor
    kernels: torch.Tensor
    conv: torch.Tensor
    activated: torch.Tensor
    pooled: torch.Tensor
    config: LayerConfig
    kernel_names: list[str]
    sizes: list[SizeStep] = field(default_factory=list)

    STAGE_NAMES = ("input", "kernels", "conv", "activated", "pooled")

    def to_numpy(self) -> dict[str, np.ndarray]:
        """The public npz contract: float32 arrays keyed ``input, kernels, conv, activated,
        pooled``."""
        return {name: getattr(self, name).numpy().astype(np.float32, copy=False)
                for name in self.STAGE_NAMES}

    def __repr__(self) -> str:
        def shape(tensor: torch.Tensor) -> str:
            return "x".join(map(str, tensor.shape))

        return (f"Stages({', '.join(self.kernel_names)}: input {shape(self.input)}, kernels "
                f"{shape(self.kernels)}, conv/activated {shape(self.conv)}, pooled "
                f"{shape(self.pooled)})")

    def _repr_png_(self) -> bytes:
        """Notebook display: the overview figure (input, kernels and every stage)."""
        from .display import figure_png
        from .plot import plot_overview

        return figure_png(plot_overview(self))

    def summary(self, separator: str = ";  ") -> list[StageSummary]:
        """Shape, range and share of zeros per stage, with the size formula that produced it."""
        formulas = {step.stage: step.formula(separator) for step in self.sizes}
        rows = [StageSummary.of("input", self.input, "")]
        rows.append(StageSummary.of("conv", self.conv, formulas.get("conv", "")))
        activated = StageSummary.of("activated", self.activated, "same size as conv")
        activated.zeroed = float(((self.conv != 0) & (self.activated == 0)).float().mean())
        rows.append(activated)
        pool_note = formulas.get("pooled", "no pooling: same as activated")
        rows.append(StageSummary.of("pooled", self.pooled, pool_note))
        return rows


@dataclass
class StageSummary:
    """One row of the stage table."""

    stage: str
    shape: tuple[int, ...]
    minimum: float
    maximum: float
    size_formula: str
    zeroed: float | None = None

    @classmethod
    def of(cls, stage: str, tensor: torch.Tensor, formula: str) -> StageSummary:
        return cls(stage, tuple(tensor.shape), float(tensor.min()), float(tensor.max()), formula)


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
    return Stages(image.cpu(), weights, conv, activated, pooled, config,
                  unique_names(kernels), sizes)


FUSED_MIN_MACS = 300_000_000
"""Multiply-adds below which ``auto`` keeps the torch reference: importing numba and loading
its cached kernel costs about half a second, more than the whole torch run of a photo-sized
image (0.27 s against 0.68 s for the bundled sample), while a 4096x4096 image with the tutorial's
three kernels (450 M multiply-adds) runs 18x faster fused. The one-time compile after install
(about 10 s) is paid only by work of that size, and cached on disk for every later run."""


def fused_pays(batch: torch.Tensor, weights: torch.Tensor) -> bool:
    """Whether the fused CPU kernel is worth loading for this batch ``(N, C, H, W)`` and weights
    ``(K, C, kh, kw)``: always once it is loaded in this process, else above
    :data:`FUSED_MIN_MACS` multiply-adds."""
    fused = sys.modules.get("convlens.fused")
    # a module another thread is still importing is in sys.modules but not READY
    if fused is not None and getattr(fused, "READY", False) and fused.is_loaded():
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

    Every backend gives the numbers of :class:`FixedConvLayer`, which is the reference. ``auto``
    takes the fused CPU kernel when the work pays for loading it (see :func:`fused_pays`).
    A run over the kernel-count limit or the budget is refused first
    (:func:`check_layer_budget`).
    """
    if backend not in ("auto", "torch", "fused"):
        raise ConfigError(f"backend must be auto, torch or fused; got {backend!r}")
    device = resolve_device(device)
    check_layer_budget(tuple(batch.shape), tuple(weights.shape), config,
                       copied=device.type != "cpu" or batch.shape[1] > 1)
    use_fused = backend == "fused" or (
        backend == "auto" and device.type == "cpu" and fused_pays(batch, weights)
    )
    if use_fused:
        from . import fused

        if backend == "fused" or fused.supports(batch, weights, config):
            return fused.run_layer(batch, weights, config)
    layer = FixedConvLayer(weights, config).to(device)
    with torch.inference_mode():
        x = batch.to(device)
        if device.type != "cpu" or batch.shape[1] > 1:
            x = x.contiguous(memory_format=torch.channels_last)
            layer = layer.to(memory_format=torch.channels_last)
        outputs = layer(x)
        return StageOutputs(*(t.contiguous() for t in outputs))


class _Abs(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs()


def _enum(kind: type[enum.Enum], value, label: str):
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)  # type: ignore[attr-defined]
        raise ConfigError(f"{label} must be one of {choices}; got {value!r}") from None


def _positive(label: str, value, limit: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{label} must be a whole number; got {value!r}")
    if value < 1:
        raise ConfigError(f"{label} must be at least 1; got {value}")
    if limit is not None:
        check_at_most(value, limit, label)


__all__ = [
    "Activation",
    "FixedConvLayer",
    "LayerConfig",
    "LayerEstimate",
    "PaddingMode",
    "PoolType",
    "SizeStep",
    "StageOutputs",
    "StageSummary",
    "Stages",
    "check_fits",
    "check_layer_budget",
    "compute_stages",
    "effective_size",
    "estimate_layer",
    "make_activation",
    "make_pool",
    "output_size",
    "pad_input",
    "parse_padding",
    "parse_pool",
    "resolve_padding",
    "run_layer",
    "same_padding",
]

