"""What a layer computes, read from the layer itself: :class:`LayerOp`.

The same conv reads the same whether it is an ``nn.Conv2d``, a TorchScript ``Conv2d`` (its
attributes) or a layer of an unflattened ``torch.export`` program (its graph's one ``conv2d``
call, with a ``pad`` before it for a padding mode other than zeros). A function a traced
``forward`` calls is read the same way: ``F.batch_norm`` with the module's running statistics
(timm's ``BatchNormAct2d``), ``F.linear``, a spatial ``mean`` that keeps its dims (a global
average pool). A layer convlens cannot read with certainty is ``other``: it is shown as it
is, never guessed.

Kinds: ``conv``, ``batchnorm``, ``act`` (elementwise activation, ``function`` names it),
``maxpool``, ``avgpool``, ``adaptive_avg``, ``adaptive_max``, ``linear``, ``flatten``, ``add``,
``cat``, ``other``. Arrays are float64 NumPy; sizes are ``(rows, cols)`` pairs.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import PaddingMode
from ..sizes import same_padding

ACTIVATIONS = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "GELU": "gelu", "SiLU": "silu",
               "Hardswish": "hardswish", "Sigmoid": "sigmoid", "Tanh": "tanh",
               "ReLU6": "relu6", "Hardsigmoid": "hardsigmoid"}
"""Activation layer classes convlens works out, and the function each computes."""
_OP_ACTIVATIONS = {"relu": "relu", "relu_": "relu", "leaky_relu": "leaky_relu",
                   "leaky_relu_": "leaky_relu", "gelu": "gelu", "silu": "silu", "silu_": "silu",
                   "hardswish": "hardswish", "hardswish_": "hardswish", "sigmoid": "sigmoid",
                   "sigmoid_": "sigmoid", "tanh": "tanh", "tanh_": "tanh",
                   "hardsigmoid": "hardsigmoid", "hardsigmoid_": "hardsigmoid",
                   "relu6": "relu6", "relu6_": "relu6"}


@dataclass(frozen=True)
class LayerOp:
    """What one layer computes: ``kind`` (see the module), ``name`` as the user knows it
    (``Conv2d``, ``add``) and ``params`` (weights as float64 arrays, settings as numbers)."""

    kind: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)


def _np(tensor) -> np.ndarray | None:
    if tensor is None:
        return None
    return tensor.detach().to("cpu", torch.float64).numpy()


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    values = [int(v) for v in value]
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


def conv_pads(padding, kernel: tuple[int, int], dilation: tuple[int, int]
              ) -> tuple[int, int, int, int]:
    """A conv's ``padding`` (cells, ``(rows, cols)``, ``'same'``, ``'valid'``) as
    ``(top, bottom, left, right)`` cells, as PyTorch pads (the odd 'same' cell after)."""
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        top, bottom = same_padding(kernel[0], dilation[0])
        left, right = same_padding(kernel[1], dilation[1])
        return top, bottom, left, right
    rows, cols = _pair(padding)
    return rows, rows, cols, cols


def _conv(name: str, weight, bias, stride, padding, dilation, groups, mode: str) -> LayerOp:
    w = _np(weight)
    assert w is not None
    kernel = (int(w.shape[2]), int(w.shape[3]))
    dil = _pair(dilation)
    pads = padding if isinstance(padding, tuple) and len(padding) == 4 else conv_pads(
        padding, kernel, dil)
    return LayerOp("conv", name, {
        "weight": w, "bias": _np(bias), "stride": _pair(stride), "pads": pads,
        "dilation": dil, "groups": int(groups), "padding_mode": PaddingMode(mode)})


def _batchnorm(name: str, weight, bias, mean, var, eps) -> LayerOp:
    m = _np(mean)
    assert m is not None
    return LayerOp("batchnorm", name, {
        "mean": m, "var": _np(var), "eps": float(eps),
        "weight": _np(weight) if weight is not None else np.ones_like(m),
        "bias": _np(bias) if bias is not None else np.zeros_like(m)})


def _class_name(module: nn.Module) -> str:
    if isinstance(module, torch.jit.ScriptModule):
        return str(module.original_name)
    return type(module).__name__


def module_op(module: nn.Module, kind_name: str | None = None) -> LayerOp:
    """The :class:`LayerOp` of a layer (eager, TorchScript or unflattened ``torch.export``);
    ``kind_name`` is the class name where the module does not tell (exported programs)."""
    name = kind_name or _class_name(module)
    m: Any = module  # TorchScript modules hold the same attributes, untyped
    scripted = isinstance(module, torch.jit.ScriptModule)
    if (isinstance(module, nn.Conv2d) or (scripted and name == "Conv2d")):
        return _conv(name, m.weight, m.bias, m.stride, m.padding,
                     m.dilation, m.groups, m.padding_mode)
    if isinstance(module, nn.BatchNorm2d) or (scripted and name == "BatchNorm2d"):
        if getattr(module, "running_mean", None) is None:
            return LayerOp("other", name, {"why": "it normalizes with each batch's own "
                                                  "statistics (no running statistics)"})
        return _batchnorm(name, m.weight, m.bias, m.running_mean,
                          m.running_var, m.eps)
    if isinstance(module, tuple(getattr(nn, n) for n in ACTIVATIONS)) or (
            scripted and name in ACTIVATIONS):
        return LayerOp("act", name, {"function": ACTIVATIONS[name] if name in ACTIVATIONS else
                                     ACTIVATIONS[type(module).__name__],
                                     "slope": float(getattr(module, "negative_slope", 0.01)),
                                     "approximate": str(getattr(module, "approximate", "none"))})
    if isinstance(module, nn.MaxPool2d) or (scripted and name == "MaxPool2d"):
        kernel = _pair(m.kernel_size)
        return LayerOp("maxpool", name, {
            "kernel": kernel, "stride": _pair(m.stride or kernel),
            "padding": _pair(m.padding), "dilation": _pair(m.dilation)})
    if isinstance(module, nn.AvgPool2d) or (scripted and name == "AvgPool2d"):
        kernel = _pair(m.kernel_size)
        return LayerOp("avgpool", name, {
            "kernel": kernel, "stride": _pair(m.stride or kernel),
            "padding": _pair(m.padding), "count_include_pad": bool(m.count_include_pad),
            "divisor": m.divisor_override})
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) or (
            scripted and name in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d")):
        kind = "adaptive_avg" if "Avg" in name or isinstance(module, nn.AdaptiveAvgPool2d) \
            else "adaptive_max"
        return LayerOp(kind, name, {"output_size": m.output_size})
    if isinstance(module, nn.Linear) or (scripted and name == "Linear"):
        return LayerOp("linear", name, {"weight": _np(m.weight), "bias": _np(m.bias)})
    if isinstance(module, nn.Flatten) or (scripted and name == "Flatten"):
        return LayerOp("flatten", name, {"start": int(m.start_dim),
                                         "end": int(m.end_dim)})
    graph = getattr(module, "graph", None)
    if not scripted and graph is not None and hasattr(graph, "nodes"):
        return graph_op(module, name)
    return LayerOp("other", name)


# --------------------------------------------------------------------------- exported layers

_CONV_DEFAULTS = (None, None, None, [1, 1], [0, 0], [1, 1], 1)


def graph_op(module: nn.Module, name: str) -> LayerOp:
    """The :class:`LayerOp` of an unflattened ``torch.export`` layer: its graph must hold one
    op convlens knows (a conv may have a ``pad`` before it), else ``other``."""
    graph: Any = module.graph
    calls = [node for node in graph.nodes if node.op == "call_function"]
    ops = [_op_name(node.target) for node in calls]

    def attr(arg):
        if isinstance(arg, torch.fx.Node) and arg.op == "get_attr":
            return module.get_parameter(arg.target) if arg.target in dict(
                module.named_parameters()) else module.get_buffer(arg.target)
        return arg

    if ops == ["pad", "conv2d"] or ops == ["conv2d"]:
        conv = calls[-1]
        args = [*conv.args, *_CONV_DEFAULTS[len(conv.args):]]
        mode, padding = "zeros", args[4]
        if len(calls) == 2:
            pad = calls[0]
            if conv.args[0] is not pad or any(_pair(args[4])):
                return LayerOp("other", name)
            sides = list(pad.args[1])  # (left, right, top, bottom)
            mode = pad.args[2] if len(pad.args) > 2 else pad.kwargs.get("mode", "constant")
            if mode == "constant" or len(sides) != 4:
                return LayerOp("other", name)
            padding = (sides[2], sides[3], sides[0], sides[1])
        return _conv(name, attr(args[1]), attr(args[2]), args[3], padding, args[5], args[6],
                     mode)
    if len(calls) != 1:
        return LayerOp("other", name)
    node, op = calls[0], ops[0]
    if op == "batch_norm" and len(node.args) >= 8 and not node.args[5]:
        a = node.args
        return _batchnorm(name, attr(a[1]), attr(a[2]), attr(a[3]), attr(a[4]), a[7])
    if op == "_native_batch_norm_legit_no_training":
        a = node.args
        return _batchnorm(name, attr(a[1]), attr(a[2]), attr(a[3]), attr(a[4]), a[6])
    if op in _OP_ACTIVATIONS:
        slope = node.args[1] if op.startswith("leaky") and len(node.args) > 1 else 0.01
        return LayerOp("act", name, {"function": _OP_ACTIVATIONS[op], "slope": float(slope),
                                     "approximate": node.kwargs.get("approximate", "none")})
    if op == "max_pool2d":
        a = [*node.args, *(None, None, [], 0, 1)[len(node.args):]]
        kernel = _pair(a[1])
        return LayerOp("maxpool", name, {"kernel": kernel, "stride": _pair(a[2] or kernel),
                                         "padding": _pair(a[3]), "dilation": _pair(a[4])})
    if op == "avg_pool2d":
        a = [*node.args, *(None, None, [], 0, False, True, None)[len(node.args):]]
        kernel = _pair(a[1])
        return LayerOp("avgpool", name, {"kernel": kernel, "stride": _pair(a[2] or kernel),
                                         "padding": _pair(a[3]), "count_include_pad": bool(a[5]),
                                         "divisor": a[6]})
    if op == "adaptive_avg_pool2d":
        return LayerOp("adaptive_avg", name, {"output_size": node.args[1]})
    if op == "linear":
        return LayerOp("linear", name, {"weight": _np(attr(node.args[1])),
                                        "bias": _np(attr(node.args[2])) if len(node.args) > 2
                                        else None})
    if op == "flatten":
        a = [*node.args, *(None, 0, -1)[len(node.args):]]
        return LayerOp("flatten", name, {"start": int(a[1]), "end": int(a[2])})
    return LayerOp("other", name)


def _op_name(target) -> str:
    """``torch.ops.aten.conv2d.default`` -> ``conv2d``; ``operator.add`` -> ``add``."""
    text = getattr(target, "__name__", str(target))
    return text.split(".")[0]


# --------------------------------------------------------------------------- functions (fx)

_ADDS = {operator.add, operator.iadd, torch.add}
_CATS = {torch.cat, getattr(torch, "concat", torch.cat)}
_FUNCTION_ACTS = {F.relu: "relu", torch.relu: "relu", F.gelu: "gelu", F.silu: "silu",
                  F.hardswish: "hardswish", torch.sigmoid: "sigmoid", torch.tanh: "tanh",
                  F.leaky_relu: "leaky_relu", F.relu6: "relu6", F.hardsigmoid: "hardsigmoid"}
_MULS = {operator.mul, operator.imul, torch.mul}


def function_op(node: torch.fx.Node) -> LayerOp:
    """The :class:`LayerOp` of a traced function call (``x + y``, ``torch.cat``, ``F.relu``,
    ``torch.flatten``, ``x.flatten(1)``)."""
    target: Any = node.target
    name = node.name
    args: list[Any] = list(node.args)
    kwargs: dict[str, Any] = dict(node.kwargs)
    aten = _op_name(target) if isinstance(target, torch._ops.OpOverload) else ""
    if aten in ("add", "add_") and len(args) == 2 and kwargs.get("alpha", 1) == 1:
        return LayerOp("add", name)
    if aten == "cat":
        return LayerOp("cat", name, {"dim": int(args[1]) if len(args) > 1 else 0})
    if aten in ("mul", "mul_") or (node.op == "call_function" and target in _MULS) or (
            node.op == "call_method" and target in ("mul", "mul_", "__mul__")):
        return LayerOp("mul", name)
    if node.op == "call_function" and target is F.adaptive_avg_pool2d:
        return LayerOp("adaptive_avg", name, {"output_size": args[1] if len(args) > 1
                                              else kwargs.get("output_size")})
    if (node.op == "call_function" and target in _ADDS) or (
            node.op == "call_method" and target in ("add", "add_", "__add__")):
        if kwargs.get("alpha", 1) != 1:
            return LayerOp("other", name)
        return LayerOp("add", name)
    if node.op == "call_function" and target in _CATS:
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        return LayerOp("cat", name, {"dim": int(dim)})
    if node.op == "call_function" and target in _FUNCTION_ACTS:
        slope = args[1] if len(args) > 1 else kwargs.get("negative_slope", 0.01)
        return LayerOp("act", name, {"function": _FUNCTION_ACTS[target],
                                     "slope": float(slope) if target is F.leaky_relu else 0.01,
                                     "approximate": kwargs.get("approximate", "none")})
    if node.op == "call_function" and target is F.batch_norm:
        return _function_batchnorm(node, args, kwargs)
    if node.op == "call_function" and target is F.linear:
        weight, bias = _get_attr(node, args[1] if len(args) > 1 else kwargs.get("weight")), \
            _get_attr(node, args[2] if len(args) > 2 else kwargs.get("bias"))
        if isinstance(weight, torch.Tensor) and (bias is None or isinstance(bias, torch.Tensor)):
            return LayerOp("linear", name, {"weight": _np(weight), "bias": _np(bias)})
        return LayerOp("other", name)
    if _is_spatial_mean(node, target, args, kwargs):
        return LayerOp("adaptive_avg", name, {"output_size": 1})
    if (node.op == "call_function" and target is torch.flatten) or (
            node.op == "call_method" and target == "flatten"):
        full = [*args, *(None, 0, -1)[len(args):]]
        return LayerOp("flatten", name, {"start": int(kwargs.get("start_dim", full[1])),
                                         "end": int(kwargs.get("end_dim", full[2]))})
    return LayerOp("other", name)


_NOT_READ = object()
"""An argument :func:`_get_attr` cannot read as a fixed tensor (another layer's output)."""


def _get_attr(node: torch.fx.Node, arg: Any) -> Any:
    """A call's argument as the traced module holds it: a ``get_attr`` node's parameter or
    buffer (``self.running_mean`` in a ``forward``), None as None, anything else
    :data:`_NOT_READ`."""
    if arg is None:
        return None
    owner = node.graph.owning_module
    if isinstance(arg, torch.fx.Node) and arg.op == "get_attr" and owner is not None:
        value: Any = owner
        for part in str(arg.target).split("."):
            value = getattr(value, part, None)
        return value if isinstance(value, torch.Tensor) else _NOT_READ
    return _NOT_READ


def _function_batchnorm(node: torch.fx.Node, args: list, kwargs: dict) -> LayerOp:
    """``F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)``
    in a ``forward`` (timm's ``BatchNormAct2d``): a batch norm where it uses the module's
    running statistics (not training) and its weights are the module's."""
    names = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum",
             "eps")
    given = dict(zip(names, args)) | kwargs
    if given.get("training", False) is not False:
        return LayerOp("other", node.name, {"why": "it normalizes with each batch's own "
                                                   "statistics (training)"})
    read = {key: _get_attr(node, given.get(key)) for key in names[1:5]}
    eps = given.get("eps", 1e-5)
    if any(value is _NOT_READ for value in read.values()) or read["running_mean"] is None or \
            read["running_var"] is None or not isinstance(eps, (int, float)):
        return LayerOp("other", node.name)
    return _batchnorm(node.name, read["weight"], read["bias"], read["running_mean"],
                      read["running_var"], eps)


def _is_spatial_mean(node: torch.fx.Node, target: Any, args: list, kwargs: dict) -> bool:
    """``x.mean((2, 3), keepdim=True)`` (or ``torch.mean``): a global average pool that keeps
    the map's shape ``(N, C, 1, 1)``."""
    if not ((node.op == "call_method" and target == "mean") or (
            node.op == "call_function" and target is torch.mean)):
        return False
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    keep = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    if not isinstance(dims, (tuple, list)) or keep is not True or "dtype" in kwargs:
        return False
    return sorted(int(d) for d in dims) in ([2, 3], [-2, -1])
