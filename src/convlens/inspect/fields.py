"""Receptive fields of a model's conv and pool layers: how many input pixels one output value
sees, following which layer fed which.

Each layer's geometry becomes a :class:`convlens.sizes.LayerSpec`, read from an ``nn.Module``,
from a ``torch.export`` layer's graph or from a compiled TorchScript op; a layer's field is
:func:`convlens.sizes.size_chain` over the chain of conv/pool layers behind it plus itself.
Dense layers on flattened maps and global pools see the whole input.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..sizes import LayerSpec, size_chain
from .hooks import node_path, output_shape

GLOBAL_POOLS = ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d")
DENSE_TYPES = ("Linear", "LazyLinear")

Chain = tuple[LayerSpec, ...]


def sees_everything(kind: str, shape: tuple[int, ...] | None) -> bool:
    """Layers each of whose outputs depends on the whole input: a dense layer on flattened
    maps, a global (1x1) adaptive pool."""
    if kind in DENSE_TYPES:
        return True
    return kind in GLOBAL_POOLS and shape is not None and tuple(shape[-2:]) == (1, 1)


class FieldTracker:
    """Receptive fields of the layers of an eager model, recorded as forward hooks see them.

    Each tensor a layer outputs remembers the chain of conv/pool layers behind it. A tensor
    made outside any layer (``x + y`` in a residual block) inherits the widest chain among
    earlier outputs of the same height and width. ``fields`` maps layer names to ``(rows,
    cols)`` input pixels, ``geometry`` to a short text (``conv3 p1``, ``whole input``).
    """

    def __init__(self, input_size: tuple[int, int], batch: torch.Tensor) -> None:
        self.input_size = input_size
        self.chains: dict[int, tuple[Any, Chain, int]] = {}
        self.recent: list[tuple[tuple[int, ...], Chain, int]] = []
        self.fields: dict[str, tuple[int, int]] = {}
        self.geometry: dict[str, str] = {}
        self._remember(batch, ())

    def record(self, name: str, module, kind: str, inputs, output) -> None:
        source = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        if next(module.children(), None) is not None:
            # a container: its children recorded what they made; a tensor it made itself
            # (x + body(x)) takes the widest chain its children left at that size
            if isinstance(output, torch.Tensor) and not self._known(output):
                self._remember(output, self._chain_of(output))
            return
        chain = self._chain_of(source)
        spec = module_spec(module)
        dense_on_maps = kind in DENSE_TYPES and source is not None and source.ndim == 4
        if sees_everything(kind, output_shape(output)) and not dense_on_maps:
            self.fields[name] = self.input_size
            self.geometry[name] = "whole input"
        if spec is not None:
            self.geometry[name] = spec.describe()
            chain = (*chain, spec)
            with contextlib.suppress(ConfigError):
                self.fields[name] = size_chain(self.input_size, list(chain)).receptive_field
        if isinstance(output, torch.Tensor):
            self._remember(output, chain)

    def _remember(self, tensor: torch.Tensor, chain: Chain) -> None:
        width = _chain_width(chain)
        self.chains[id(tensor)] = (_weak(tensor), chain, width)
        if tensor.ndim >= 2:
            self.recent.append((tuple(tensor.shape[-2:]), chain, width))

    def _known(self, tensor: torch.Tensor) -> bool:
        known = self.chains.get(id(tensor))
        return known is not None and known[0]() is tensor

    def _chain_of(self, tensor: torch.Tensor | None) -> Chain:
        if tensor is None:
            return ()
        if self._known(tensor):
            return self.chains[id(tensor)][1]
        same = [item for item in self.recent if item[0] == tuple(tensor.shape[-2:])]
        if not same:
            return self.recent[-1][1] if self.recent else ()
        return max(same, key=lambda item: item[2])[1]


def script_fields(graph, modules: dict, input_size: tuple[int, int]
                  ) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """Receptive fields and geometry of the conv and pool layers of a TorchScript model, from
    its inlined forward ``graph``: each value carries the chain of conv/pool ops behind it (the
    widest of its inputs' chains), and a layer's field is :func:`size_chain` over its chain."""
    chains: dict[str, Chain] = {}
    inputs = list(graph.inputs())
    if len(inputs) > 1:
        chains[inputs[1].debugName()] = ()
    fields: dict[str, tuple[int, int]] = {}
    geometry: dict[str, str] = {}

    def widest(values) -> Chain | None:
        found = [chains[v.debugName()] for v in values if v.debugName() in chains]
        return max(found, key=_chain_width) if found else None

    def visit(block) -> None:
        for node in block.nodes():
            used = list(node.inputs())
            for inner in node.blocks():
                visit(inner)
                used += list(inner.outputs())
            chain = widest(used)
            if chain is None:
                continue
            path = node_path(node)
            spec = _script_spec(node, modules.get(path))
            if spec is not None:
                chain = (*chain, spec)
                geometry[path] = spec.describe()
                with contextlib.suppress(ConfigError):
                    fields[path] = size_chain(input_size, list(chain)).receptive_field
            for value in node.outputs():
                chains[value.debugName()] = chain

    visit(graph.block() if hasattr(graph, "block") else graph)
    return fields, geometry


# --------------------------------------------------------------------------- layer geometry

_OP_DEFAULTS: dict[str, tuple] = {
    # the aten signatures, for the arguments a graph may leave out
    "conv2d": (None, None, None, [1, 1], [0, 0], [1, 1], 1),
    "_convolution": (None, None, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1),
    "max_pool2d": (None, None, [], [0, 0], [1, 1], False),
    "max_pool2d_with_indices": (None, None, [], [0, 0], [1, 1], False),
    "avg_pool2d": (None, None, [], [0, 0], False, True, None),
}


def module_spec(module) -> LayerSpec | None:
    """The :class:`LayerSpec` of a conv or pool layer, as the aten op it runs would be called
    (``None`` for other layers, and for geometry a LayerSpec cannot describe)."""
    if isinstance(module, nn.Conv2d):
        return _op_spec("conv2d", [None, None, None, module.stride, module.padding,
                                   module.dilation], module)
    if isinstance(module, nn.MaxPool2d):
        return _op_spec("max_pool2d", [None, _pair(module.kernel_size), module.stride,
                                       module.padding, module.dilation, module.ceil_mode], module)
    if isinstance(module, nn.AvgPool2d):
        return _op_spec("avg_pool2d", [None, _pair(module.kernel_size), module.stride,
                                       module.padding, module.ceil_mode], module)
    return _fx_spec(module)


def _script_spec(node, module) -> LayerSpec | None:
    """The :class:`LayerSpec` of a compiled conv or pool op, read from its constant inputs."""
    kind = node.kind().split("::")[-1]
    if kind not in _OP_DEFAULTS:
        return None
    return _op_spec(kind, [_constant(value) for value in node.inputs()], module)


def _fx_spec(module) -> LayerSpec | None:
    """The :class:`LayerSpec` of a layer of an unflattened ``torch.export`` program: the one
    conv or pool op in its graph, defaults filled in from the op's signature."""
    graph = getattr(module, "graph", None)
    if graph is None or not hasattr(graph, "nodes"):
        return None
    specs = []
    for node in graph.nodes:
        kind = getattr(node.target, "__name__", str(node.target)).split(".")[0]
        if node.op == "call_function" and kind in _OP_DEFAULTS:
            args = [*node.args, *_OP_DEFAULTS[kind][len(node.args):]]
            specs.append(_op_spec(kind, args, module))
    return specs[0] if len(specs) == 1 else None


def _op_spec(kind: str, args: list, module) -> LayerSpec | None:
    """The :class:`LayerSpec` of aten op ``kind`` called with ``args`` (the kernel size of a
    conv read from ``module``'s weight)."""
    try:
        if kind in ("conv2d", "_convolution"):
            weight = getattr(module, "weight", None)
            if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
                return None
            if kind == "_convolution" and args[6]:
                return None  # transposed convolution
            stride, padding, dilation = _single(args[3]), _padding(args[4]), _single(args[5])
            if stride is None or dilation is None or padding is None:
                return None
            return LayerSpec("conv", (weight.shape[2], weight.shape[3]),
                             stride if stride != 1 else None,
                             padding, dilation)
        kernel = tuple(args[1]) if args[1] is not None else None
        if kernel is None or len(kernel) != 2:
            return None
        stride = _single(args[2]) if args[2] else _single(kernel)
        average = kind == "avg_pool2d"
        dilation = 1 if average else _single(args[4])
        ceil = args[4] if average else args[5]
        if stride is None or dilation != 1 or args[3] is None:
            return None
        return LayerSpec("pool", kernel, None if (stride, stride) == kernel else stride,
                         _padding(args[3]), ceil_mode=bool(ceil),
                         pool_type="avg" if average else "max")
    except (ConfigError, TypeError, IndexError):
        return None


def _constant(value):
    """A graph value's constant: a number, a list built of constants, or ``None``."""
    node = value.node()
    if node.kind() == "prim::Constant":
        return value.toIValue()
    if node.kind() == "prim::ListConstruct":
        items = [_constant(item) for item in node.inputs()]
        return None if any(item is None for item in items) else items
    return None


def _padding(padding):
    """Conv/pool padding (a number, ``(rows, cols)``, ``'same'``, ``'valid'``) -> a
    :class:`LayerSpec` padding (cells, ``'same'`` or 4 sides)."""
    if padding is None:
        return None
    if padding == "valid":
        return 0
    if isinstance(padding, (tuple, list)):
        if padding[0] == padding[1]:
            return int(padding[0])
        return (padding[0], padding[0], padding[1], padding[1])
    return padding


def _single(value) -> int | None:
    """One number for both axes (``None`` where the axes differ)."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    values = tuple(value)
    return int(values[0]) if len(set(values)) == 1 else None


def _pair(value) -> tuple:
    return (value, value) if isinstance(value, int) else tuple(value)


def _chain_width(chain: Chain) -> int:
    """Receptive field along the rows of a chain (which of two chains sees more)."""
    field, jump = 1, 1
    for spec in chain:
        field += (spec.dilation * (spec.kernel[0] - 1)) * jump
        jump *= spec.axis_stride(0)
    return field


def _weak(tensor: torch.Tensor):
    try:
        return weakref.ref(tensor)
    except TypeError:
        return lambda: None
