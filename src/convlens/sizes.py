"""The arithmetic of sizes: how big each stage is, and why, in one place.

Everything here follows from one formula, along each axis::

    output = floor((I - F_eff + P_before + P_after) / S) + 1,    F_eff = D (F - 1) + 1

for an input of ``I`` pixels, a kernel of ``F`` taps dilated by ``D`` (spanning ``F_eff``
pixels), padding ``P`` cells on each side and stride ``S`` (pools may round up instead:
``ceil_mode``). :func:`output_size` computes it, :func:`same_padding` and
:func:`resolve_padding` turn a padding setting into cells, :func:`check_fits` sizes the stages of
one :class:`~convlens.config.LayerConfig` (refusing one that does not fit), and
:func:`size_chain` follows the formula through a chain of conv and pool layers
(``"conv3 p1, pool2, conv3 s2 p1 d2, pool3 s2 ceil"``) with the receptive field of one output
pixel. :func:`size_formula` writes the formula with the numbers put in, the one text every
surface prints (``run``, ``explain``, ``size``, the page, the report)::

    (224 - 3 + 2×1)/2 + 1 = floor(223/2) + 1 = 112

Standard library and NumPy only (no torch, no matplotlib): ``convlens size`` runs without them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import LayerConfig, PaddingMode, PaddingSpec, check_positive, parse_padding
from .errors import ConfigError
from .limits import MAX_IMAGE_SIDE, MAX_LAYER_NUMBER, bounded_int, check_at_most
from .wording import verb

# --------------------------------------------------------------------------- one axis


def effective_size(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel in input pixels: ``D * (F - 1) + 1``.

    >>> effective_size(3), effective_size(3, dilation=2)
    (3, 5)
    """
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
        check_positive(label, value)
    before, after = (padding, padding) if isinstance(padding, (int, np.integer)) else padding
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


def size_formula(
    size_in: int, span: int, before: int, after: int, stride: int, size_out: int,
    ceil_mode: bool = False,
) -> str:
    """The output-size formula with the numbers put in, and its result: the one way convlens
    writes it. The rounding is shown where the division is not whole.

    >>> size_formula(5, 3, 0, 0, 1, 3)
    '(5 - 3 + 2×0)/1 + 1 = 3'
    >>> size_formula(224, 2, 0, 0, 2, 112)
    '(224 - 2 + 2×0)/2 + 1 = 111 + 1 = 112'
    >>> size_formula(30, 3, 1, 1, 2, 15)
    '(30 - 3 + 2×1)/2 + 1 = floor(29/2) + 1 = 15'
    """
    pad = f"2×{before}" if before == after else f"{before}+{after}"
    head = f"({size_in} - {span} + {pad})/{stride} + 1"
    numerator = size_in - span + before + after
    if numerator % stride == 0:
        if stride == 1:
            return f"{head} = {size_out}"
        return f"{head} = {numerator // stride} + 1 = {size_out}"
    rounding = "ceil" if ceil_mode else "floor"
    text = f"{head} = {rounding}({numerator}/{stride}) + 1"
    if ceil_mode and -(-numerator // stride) + 1 != size_out:
        return (f"{text} - 1 = {size_out} (the last window would start in the right "
                "padding, so PyTorch drops it)")
    return f"{text} = {size_out}"


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """``(before, after)`` cells of 'same' padding: ``D (F - 1)`` in all, the odd cell after.

    The kernel stays centred on input pixel ``(i * S)`` for output ``i``, and the output is
    ``ceil(I / S)`` long for any stride ``S`` (exactly ``I`` at stride 1, as PyTorch's 'same').

    >>> same_padding(3), same_padding(4), same_padding(3, dilation=2)
    ((1, 1), (1, 2), (2, 2))
    """
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def resolve_padding(
    config: LayerConfig, height: int, width: int, kernel_size: Sequence[int]
) -> tuple[int, int, int, int]:
    """The explicit ``(top, bottom, left, right)`` padding of ``config`` for this input.

    >>> resolve_padding(LayerConfig(padding="same"), 10, 10, (3, 4))
    (1, 1, 1, 2)
    """
    padding = config.padding
    if padding == "same":
        top, bottom = same_padding(kernel_size[0], config.dilation)
        left, right = same_padding(kernel_size[1], config.dilation)
        return top, bottom, left, right
    if isinstance(padding, tuple):
        return padding
    cells = int(padding)
    return cells, cells, cells, cells


def chain_field(layers: Sequence[LayerSpec], axis: int = 0) -> int:
    """Receptive field, in input pixels along ``axis`` (0 rows, 1 cols), of one output pixel of
    ``layers``: each layer adds ``D (F - 1)`` times the distance between its inputs. Needs no
    input size (:attr:`SizeChain.receptive_field` gives the same number for a sized chain).

    >>> chain_field(parse_layers("conv3, pool2, conv3, pool2"))
    10
    """
    field, jump = 1, 1
    for layer in layers:
        field += (effective_size(layer.kernel[axis], layer.dilation) - 1) * jump
        jump *= layer.axis_stride(axis)
    return field


# --------------------------------------------------------------------------- one layer config


@dataclass(frozen=True)
class SizeStep:
    """How one stage's size follows from ``(I - F + 2P) / S + 1``, per axis ``(H, W)``.

    ``padding`` is ``(top, bottom, left, right)`` cells; ``kernel`` the window ``(kh, kw)``.
    """

    stage: str
    inputs: tuple[int, int]
    kernel: tuple[int, int]
    padding: tuple[int, int, int, int]
    stride: int
    dilation: int
    outputs: tuple[int, int]

    def axis_formula(self, axis: int) -> str:
        """:func:`size_formula` along ``axis`` (0 rows, 1 cols)."""
        before, after = self.padding[2 * axis], self.padding[2 * axis + 1]
        return size_formula(self.inputs[axis], effective_size(self.kernel[axis], self.dilation),
                            before, after, self.stride, self.outputs[axis])

    def formula(self, separator: str = ";  ") -> str:
        """Both axes, e.g. ``H: (300 - 3 + 2×0)/1 + 1 = 298;  W: ...``.

        >>> check_fits(LayerConfig(pool=None), 300, 451, (3, 3))[0].formula()
        'H: (300 - 3 + 2×0)/1 + 1 = 298;  W: (451 - 3 + 2×0)/1 + 1 = 449'
        """
        return separator.join(f"{axis}: {self.axis_formula(index)}"
                              for index, axis in enumerate("HW"))


def check_fits(
    config: LayerConfig, height: int, width: int, kernel_size: Sequence[int]
) -> list[SizeStep]:
    """Check the layer fits a ``height x width`` input and return the size of every stage.

    Raises :class:`ConfigError` naming the problem (no output left, reflect padding wider than
    the image, a pool window larger than the map) instead of letting PyTorch fail deep inside.

    >>> [step.outputs for step in check_fits(LayerConfig(pool=2), 30, 41, (3, 3))]
    [(28, 39), (14, 19)]
    """
    height, width = int(height), int(width)
    kernel = (int(kernel_size[0]), int(kernel_size[1]))
    pads = resolve_padding(config, height, width, kernel)
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
    conv_h = output_size(height, kernel[0], pads[:2], config.stride, config.dilation)
    conv_w = output_size(width, kernel[1], pads[2:], config.stride, config.dilation)
    steps = [SizeStep("conv", (height, width), kernel, pads, config.stride,
                      config.dilation, (conv_h, conv_w))]
    if config.pool is not None:
        stride = config.effective_pool_stride or config.pool
        if config.pool > min(conv_h, conv_w):
            raise ConfigError(
                f"pool window {config.pool}x{config.pool} is larger than the {conv_h}x{conv_w} "
                "conv map; use a smaller pool or none"
            )
        pooled = (output_size(conv_h, config.pool, 0, stride),
                  output_size(conv_w, config.pool, 0, stride))
        steps.append(SizeStep("pooled", (conv_h, conv_w), (config.pool, config.pool),
                              (0, 0, 0, 0), stride, 1, pooled))
    return steps


# --------------------------------------------------------------------------- chains of layers


@dataclass(frozen=True)
class LayerSpec:
    """One conv or pool layer of a size chain. Sizes in pixels; ``kernel`` is ``(kh, kw)``.

    ``stride=None`` means 1 for conv and the window size for pool (PyTorch's defaults).
    ``padding`` is cells per side, ``"same"`` (conv only) or ``(top, bottom, left, right)``.
    """

    kind: str
    kernel: tuple[int, int]
    stride: int | None = None
    padding: PaddingSpec = 0
    dilation: int = 1
    ceil_mode: bool = False
    pool_type: str = "max"

    def __post_init__(self) -> None:
        if self.kind not in ("conv", "pool"):
            raise ConfigError(f"layer kind must be conv or pool; got {self.kind!r}")
        set_ = object.__setattr__
        kernel: Any = self.kernel
        if isinstance(kernel, (int, np.integer)):
            kernel = (int(kernel), int(kernel))
        if not isinstance(kernel, (tuple, list)) or len(kernel) != 2:
            raise ConfigError(f"{self.kind} kernel must be F or (F, G) pixels; got {kernel!r}")
        set_(self, "kernel", tuple(kernel))
        set_(self, "padding", parse_padding(self.padding))
        label = self.describe()
        for name, value in (("kernel", self.kernel[0]), ("kernel", self.kernel[1]),
                            ("stride", self.axis_stride(0)), ("dilation", self.dilation)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{label}: {name} must be a whole number >= 1; got {value!r}")
            check_at_most(value, MAX_LAYER_NUMBER, f"{label}: {name}")
        if self.kind == "pool":
            if self.padding == "same":
                raise ConfigError(f"{label}: 'same' padding applies to conv layers only")
            if self.dilation != 1:
                raise ConfigError(f"{label}: dilation applies to conv layers only")
        elif self.ceil_mode:
            raise ConfigError(f"{label}: ceil mode applies to pool layers only (conv floors)")

    def axis_stride(self, axis: int) -> int:
        """Stride along axis 0 (rows) or 1 (cols): as given, else 1 (conv) or the window (pool)."""
        if self.stride is not None:
            return self.stride
        return self.kernel[axis] if self.kind == "pool" else 1

    def axis_padding(self, axis: int) -> tuple[int, int]:
        """``(before, after)`` padding along axis 0 (rows) or 1 (cols)."""
        if self.padding == "same":
            return same_padding(self.kernel[axis], self.dilation)
        if isinstance(self.padding, tuple):
            return self.padding[2 * axis], self.padding[2 * axis + 1]
        cells = int(self.padding)
        return cells, cells

    def describe(self) -> str:
        """The spec back as text, e.g. ``conv3 s2 p1 d2`` or ``pool3 s2 ceil``."""
        kh, kw = self.kernel
        name = ("avgpool" if self.pool_type == "avg" else "pool") if self.kind == "pool" else "conv"
        text = f"{name}{kh}" if kh == kw else f"{name}{kh}x{kw}"
        if self.stride is not None:
            text += f" s{self.stride}"
        if self.padding == "same":
            text += " same"
        elif isinstance(self.padding, tuple):
            text += " p" + ",".join(map(str, self.padding))
        elif self.padding:
            text += f" p{self.padding}"
        if self.dilation != 1:
            text += f" d{self.dilation}"
        if self.ceil_mode:
            text += " ceil"
        return text


LAYER_SYNTAX = (
    "layers are comma-separated, each `conv<F>` or `pool<F>` (also maxpool/avgpool, F or FxG) "
    "then options: s<N> stride, p<N> padding, same, valid, d<N> dilation, ceil; "
    "e.g. 'conv3 p1, pool2, conv3 s2 p1 d2, pool3 s2 ceil'"
)
_HEAD = re.compile(r"^(conv|pool|maxpool|avgpool)(\d+)(?:x(\d+))?$")
_OPTION = re.compile(r"^(s|stride|p|pad|padding|d|dilation)=?(\d+)$")


def parse_layers(text: str) -> list[LayerSpec]:
    """``"conv3 p1, pool2, conv3 s2 p1 d2, pool3 s2 ceil"`` -> a list of :class:`LayerSpec`.

    >>> [layer.describe() for layer in parse_layers("conv3 p1, pool2")]
    ['conv3 p1', 'pool2']
    """
    layers = []
    parts = [part.strip() for part in str(text).split(",")]
    if not any(parts):
        raise ConfigError(f"no layers given; {LAYER_SYNTAX}")
    for number, part in enumerate(parts, start=1):
        if not part:
            raise ConfigError(f"layer {number} is empty in {text!r}; {LAYER_SYNTAX}")
        tokens = part.lower().split()
        head = _HEAD.match(tokens[0])
        if not head:
            raise ConfigError(f"layer {number} {part!r} must start with conv<F> or pool<F>; "
                              f"{LAYER_SYNTAX}")
        kind = "conv" if head.group(1) == "conv" else "pool"
        label = f"layer {number} ({part[:40]})"
        size = bounded_int(head.group(2), MAX_LAYER_NUMBER, f"{label}: the {kind} window")
        width = bounded_int(head.group(3) or head.group(2), MAX_LAYER_NUMBER,
                            f"{label}: the {kind} window")
        options: dict = {"kind": kind, "kernel": (size, width),
                         "pool_type": "avg" if head.group(1) == "avgpool" else "max"}
        for token in tokens[1:]:
            option = _OPTION.match(token)
            if token in ("same", "psame"):
                options["padding"] = "same"
            elif token in ("valid", "pvalid"):
                options["padding"] = 0
            elif token == "ceil":
                options["ceil_mode"] = True
            elif option:
                key = {"s": "stride", "p": "padding", "pad": "padding", "d": "dilation"}.get(
                    option.group(1), option.group(1))
                options[key] = bounded_int(option.group(2), MAX_LAYER_NUMBER, f"{label}: {key}")
            else:
                raise ConfigError(f"layer {number} {part!r}: unknown option {token!r}; "
                                  f"{LAYER_SYNTAX}")
        try:
            layers.append(LayerSpec(**options))
        except ConfigError as exc:
            raise ConfigError(f"layer {number} {exc}") from None
    return layers


def layer_specs(config: LayerConfig, kernel_size: tuple[int, int]) -> list[LayerSpec]:
    """The conv (and pool) layer of a :class:`LayerConfig` as a size chain."""
    specs = [LayerSpec("conv", kernel_size, config.stride, config.padding, config.dilation)]
    if config.pool is not None:
        specs.append(LayerSpec("pool", (config.pool, config.pool), config.effective_pool_stride,
                               pool_type=config.pool_type.value))
    return specs


@dataclass(frozen=True)
class AxisStep:
    """One layer along one axis: the formula with the numbers put in, and what it gives.

    ``field`` is the receptive field of one output pixel in input pixels, ``jump`` the input
    distance between neighbouring outputs, ``start`` the input coordinate where output 0's
    field begins (negative: it starts in the padding).
    """

    size_in: int
    kernel: int
    span: int
    before: int
    after: int
    stride: int
    dilation: int
    ceil_mode: bool
    size_out: int
    field: int
    jump: int
    start: int

    @property
    def numerator(self) -> int:
        return self.size_in - self.span + self.before + self.after

    @property
    def exact(self) -> bool:
        return self.numerator % self.stride == 0

    def formula(self) -> str:
        """:func:`size_formula` for this step: ``(224 - 3 + 2×1)/2 + 1 = floor(223/2) + 1 =
        112`` (``= 111 + 1 = 112`` where the division is exact, just ``= 224`` at stride 1)."""
        return size_formula(self.size_in, self.span, self.before, self.after, self.stride,
                            self.size_out, self.ceil_mode)

    def rounding_note(self) -> str:
        """Empty when the division is exact; else what PyTorch does with the remainder."""
        if self.exact:
            return ""
        left = self.numerator % self.stride
        if self.ceil_mode and -(-self.numerator // self.stride) + 1 != self.size_out:
            return (f"{self.numerator}/{self.stride} is not whole: ceil mode would add a last "
                    "window, but it would start in the right padding, so PyTorch drops it")
        if self.ceil_mode:
            return (f"{self.numerator}/{self.stride} is not whole: ceil mode rounds up, adding a "
                    f"last, partial window over the final {left} px")
        return (f"{self.numerator}/{self.stride} is not whole: PyTorch floors, so the last {left} "
                f"px (padding included) {verb(left, 'is', 'are')} never covered")


@dataclass(frozen=True)
class ChainStep:
    """One layer of a :class:`SizeChain`: its spec and the (rows, cols) arithmetic."""

    index: int
    layer: LayerSpec
    rows: AxisStep
    cols: AxisStep

    @property
    def size_in(self) -> tuple[int, int]:
        return self.rows.size_in, self.cols.size_in

    @property
    def size_out(self) -> tuple[int, int]:
        return self.rows.size_out, self.cols.size_out

    def same_padding(self) -> str:
        """The padding that keeps this layer's size at stride 1, as text."""
        if self.layer.kind != "conv":
            return ""
        parts = []
        for axis in (0, 1):
            before, after = same_padding(self.layer.kernel[axis], self.layer.dilation)
            parts.append(str(before) if before == after else f"{before}+{after}")
        return parts[0] if parts[0] == parts[1] else f"{parts[0]} (rows), {parts[1]} (cols)"

    def axes(self) -> list[tuple[str, AxisStep]]:
        """``[("H", rows), ("W", cols)]``, or one ``("H=W", rows)`` where both are the same."""
        if self.rows == self.cols:
            return [("H=W" if self.rows.size_in == self.cols.size_in else "H", self.rows)]
        return [("H", self.rows), ("W", self.cols)]

    def to_dict(self) -> dict:
        data = {"index": self.index, "layer": self.layer.describe(), "kind": self.layer.kind,
                "input": list(self.size_in), "output": list(self.size_out),
                "same_padding": self.same_padding()}
        for name, step in (("rows", self.rows), ("cols", self.cols)):
            data[name] = {
                "formula": step.formula(), "exact": step.exact, "note": step.rounding_note(),
                "input": step.size_in, "kernel": step.kernel, "span": step.span,
                "padding": [step.before, step.after], "stride": step.stride,
                "dilation": step.dilation, "ceil_mode": step.ceil_mode,
                "output": step.size_out, "receptive_field": step.field, "jump": step.jump,
                "start": step.start,
            }
        return data


@dataclass(frozen=True)
class SizeChain:
    """Every layer's output size for one input, with receptive fields (:func:`size_chain`).

    Notebooks draw it as a table: :func:`convlens.display.enable_notebook_display` registers
    :func:`~convlens.display.size_chain_html` for it (this module imports no renderer)."""

    input_size: tuple[int, int]
    steps: tuple[ChainStep, ...]

    @property
    def output_size(self) -> tuple[int, int]:
        return self.steps[-1].size_out if self.steps else self.input_size

    @property
    def receptive_field(self) -> tuple[int, int]:
        """Input pixels (rows, cols) one final output pixel depends on."""
        if not self.steps:
            return 1, 1
        return self.steps[-1].rows.field, self.steps[-1].cols.field

    def field_of(self, row: int, col: int) -> dict[str, int]:
        """Input box (inclusive, may reach into padding) of final output pixel ``(row, col)``."""
        height, width = self.output_size
        check_at("output pixel", row, col, (height, width), "output")
        if not self.steps:
            return {"top": row, "bottom": row, "left": col, "right": col}
        rows, cols = self.steps[-1].rows, self.steps[-1].cols
        top, left = rows.start + row * rows.jump, cols.start + col * cols.jump
        return {"top": top, "bottom": top + rows.field - 1,
                "left": left, "right": left + cols.field - 1}

    def warnings(self) -> list[str]:
        """One line per layer and axis where the division is not exact."""
        lines = []
        for step in self.steps:
            for axis, item in step.axes():
                note = item.rounding_note()
                if note:
                    lines.append(f"layer {step.index} ({step.layer.describe()}), {axis}: {note}")
        return lines

    def to_dict(self) -> dict:
        """JSON-ready, for the web page's live formula."""
        return {"input": list(self.input_size), "output": list(self.output_size),
                "receptive_field": list(self.receptive_field),
                "layers": [step.to_dict() for step in self.steps],
                "warnings": self.warnings()}


def size_chain(
    input_size: int | tuple[int, int], layers: str | Sequence[LayerSpec]
) -> SizeChain:
    """Follow ``(I - F + 2P)/S + 1`` through ``layers`` for an input of ``input_size`` pixels.

    ``input_size`` is one side (square) or ``(height, width)``; ``layers`` is text for
    :func:`parse_layers` or a list of :class:`LayerSpec`. A layer that leaves no output raises
    :class:`ConfigError` naming the layer and why.

    >>> size_chain(5, "conv3").output_size
    (3, 3)
    >>> size_chain(224, "conv3 p1, pool2").steps[1].rows.formula()
    '(224 - 2 + 2×0)/2 + 1 = 111 + 1 = 112'
    """
    specs = parse_layers(layers) if isinstance(layers, str) else list(layers)
    size = parse_size(input_size)
    steps = []
    fields = [(1, 1, 0), (1, 1, 0)]  # (field, jump, start) per axis
    current = size
    for index, layer in enumerate(specs, start=1):
        axes = []
        for axis in (0, 1):
            field_, jump, start = fields[axis]
            before, after = layer.axis_padding(axis)
            kernel, stride = layer.kernel[axis], layer.axis_stride(axis)
            label = f"layer {index} ({layer.describe()})"
            if layer.kind == "pool" and max(before, after) > kernel // 2:
                raise ConfigError(f"{label}: pool padding {max(before, after)} is more than half "
                                  f"the window {kernel}; PyTorch refuses it")
            try:
                out = output_size(current[axis], kernel, (before, after), stride,
                                  layer.dilation, layer.ceil_mode)
            except ConfigError as exc:
                raise ConfigError(f"{label}: {exc}") from None
            span = effective_size(kernel, layer.dilation)
            axes.append(AxisStep(current[axis], kernel, span, before, after, stride,
                                 layer.dilation, layer.ceil_mode, out,
                                 field_ + (span - 1) * jump, jump * stride,
                                 start - before * jump))
            fields[axis] = (axes[-1].field, axes[-1].jump, axes[-1].start)
        steps.append(ChainStep(index, layer, axes[0], axes[1]))
        current = (axes[0].size_out, axes[1].size_out)
    return SizeChain(size, tuple(steps))


def config_chain(
    config: LayerConfig, input_size: int | tuple[int, int], kernel_size: int | tuple[int, int]
) -> SizeChain:
    """The size chain of a run's layer (conv, then pool if any) for an input and kernel size."""
    if isinstance(kernel_size, (int, np.integer)):
        kernel_size = (int(kernel_size), int(kernel_size))
    kh, kw = kernel_size
    return size_chain(input_size, layer_specs(config, (int(kh), int(kw))))


# --------------------------------------------------------------------------- parsing sizes


def parse_size(value: str | int | Sequence[int], what: str = "input size") -> tuple[int, int]:
    """``"32"``, ``"224x224"`` (also ``224X224``, ``224×224``, ``224,224``), ``32`` or ``(H, W)`` ->
    ``(H, W)`` whole pixels, each at least 1; anything else a clear :class:`ConfigError` naming
    ``what`` (``"input size"``, ``"the crop"``).

    >>> parse_size("300x451"), parse_size(5)
    ((300, 451), (5, 5))
    """
    sides: Any = value
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*(?:[xX×,]\s*(\d+))?\s*", value)
        if not match:
            raise ConfigError(f"{what} must be N or HxW pixels; got {value!r}")
        sides = (bounded_int(match.group(1), MAX_IMAGE_SIDE, what),
                 bounded_int(match.group(2) or match.group(1), MAX_IMAGE_SIDE, what))
    elif isinstance(value, (int, np.integer)):
        sides = (value, value)
    if (not isinstance(sides, (tuple, list)) or len(sides) != 2 or any(
            isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in sides)):
        raise ConfigError(f"{what} must be a positive number of pixels or (H, W); got {value!r}")
    for side in sides:
        check_at_most(int(side), MAX_IMAGE_SIDE, f"{what} (a side, in pixels)")
    return int(sides[0]), int(sides[1])


def parse_at(text: str, what: str = "a position") -> tuple[int, int]:
    """``"120,45"`` -> ``(120, 45)``; anything else (a 5000-digit number too) a clear error
    naming ``what`` (the CLI passes its flag, ``"--at"``).

    >>> parse_at("120, 45")
    (120, 45)
    """
    match = re.fullmatch(r"\s*(-?\d{1,18})\s*[, ]\s*(-?\d{1,18})\s*", str(text))
    if not match:
        shown = str(text) if len(str(text)) <= 40 else f"{str(text)[:37]}..."
        raise ConfigError(f"{what} must be ROW,COL (two whole numbers); got {shown!r}")
    return int(match.group(1)), int(match.group(2))


def check_at(what: str, row: Any, col: Any, shape: tuple[int, int], map_name: str) -> None:
    """Refuse a ``(row, col)`` that is not whole numbers inside a ``shape`` ``(H, W)`` map,
    naming ``what`` (``"conv pixel"``), the map (``"conv map"``) and the valid range."""
    height, width = shape
    for value in (row, col):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ConfigError(f"{what} coordinates must be whole numbers; got {row!r},{col!r}")
    if not (0 <= row < height and 0 <= col < width):
        raise ConfigError(
            f"{what} ({row}, {col}) is outside the {height}x{width} {map_name}: row must be "
            f"0..{height - 1} and col 0..{width - 1}"
        )


__all__ = [
    "LAYER_SYNTAX",
    "AxisStep",
    "ChainStep",
    "LayerSpec",
    "SizeChain",
    "SizeStep",
    "chain_field",
    "check_at",
    "check_fits",
    "config_chain",
    "effective_size",
    "layer_specs",
    "output_size",
    "parse_at",
    "parse_layers",
    "parse_size",
    "resolve_padding",
    "same_padding",
    "size_chain",
    "size_formula",
]
