"""Hook ownership: every hook convlens puts on a model, and its removal, in one place.

:class:`LayerCapture` records what named layers output while the model runs; on exit it removes
its hooks and restores the model's train/eval mode whatever happened. TorchScript modules take
no Python hooks, so for them it reads the layers' outputs off the compiled graph instead
(:class:`ScriptTap`).
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn

from ..errors import ModelError
from ..models import OpenedModel, eval_mode

SCRIPT_TAP_GROUP = 8
"""TorchScript layers read per forward pass; a compiled graph hands back all it reads at once,
so reading many layers of a large image is split over several passes."""

Sink = Callable[[str, "tuple | None", Any], Any]


class _StopForward(Exception):
    """Raised by a hook to end a forward pass early, once the layers needed have run."""


class LayerCapture:
    """Record what named layers output while the model runs; a context manager.

    >>> with LayerCapture(opened, ["features.0"], sink) as capture:   # doctest: +SKIP
    ...     logits = capture(batch)

    ``sink(name, inputs, output)`` is called once per call of each layer (the second call of a
    layer used twice is named ``name#2``); ``inputs`` is ``None`` for TorchScript. A tensor the
    sink returns replaces the layer's output for the rest of the pass (not for TorchScript,
    whose tapped outputs are protected from later in-place ops anyway). With
    ``stop_after`` the forward pass ends once that layer has run (``__call__`` then returns
    ``None``); ``stop_before`` ends it as that layer is entered, after recording its inputs in
    :attr:`stopped_inputs`. ``track`` records every layer entered, so that after a failure
    :attr:`active` names the layers that had started and not finished, innermost last.

    On exit every hook is removed and the model's train/eval mode restored, also after an error.
    """

    def __init__(
        self,
        model: OpenedModel | nn.Module,
        names: Sequence[str],
        sink: Sink | None = None,
        *,
        stop_after: str | None = None,
        stop_before: str | None = None,
        track: bool = False,
    ) -> None:
        self.module = model.module if isinstance(model, OpenedModel) else model
        self.names = list(dict.fromkeys(names))
        self.sink = sink or (lambda name, inputs, output: None)
        self.stop_after = stop_after
        self.stop_before = stop_before
        self.track = track
        self.active: list[str] = []
        self.entered: dict[str, tuple] = {}
        self.stopped_inputs: tuple | None = None
        self._calls: Counter[str] = Counter()
        self._handles: list[Any] = []
        self._tap: ScriptTap | None = None
        self._cleanup: contextlib.ExitStack | None = None

    @property
    def scripted(self) -> bool:
        return isinstance(self.module, torch.jit.ScriptModule)

    def __enter__(self) -> LayerCapture:
        with contextlib.ExitStack() as cleanup:  # undoes what was done if a step here fails
            cleanup.enter_context(eval_mode(self.module))
            cleanup.callback(self._remove_hooks)
            if self.scripted:
                if self.stop_before is not None or self.track:
                    raise ModelError("TorchScript layers cannot be stopped at or traced")
                self._tap = ScriptTap(self.module, self.names)
            else:
                self._register()
            self._cleanup = cleanup.pop_all()
        return self

    def __exit__(self, *exc_info) -> None:
        cleanup, self._cleanup = self._cleanup, None
        if cleanup is not None:
            cleanup.close()

    def __call__(self, batch: torch.Tensor) -> Any:
        """Run the model on ``batch`` ``(N, C, H, W)``; returns its output (``None`` if stopped
        early). Outputs of the named layers go to the sink as they are produced."""
        self.active.clear()
        self._calls.clear()
        if self._tap is not None:
            return self._tap.run(batch, self._emit, truncate=self.stop_after is not None)
        try:
            return self.module(batch)
        except _StopForward:
            return None

    def _register(self) -> None:
        modules = dict(self.module.named_modules())
        wanted = set(self.names) | {n for n in (self.stop_after, self.stop_before) if n}
        for name in wanted:
            if name not in modules:
                raise ModelError(f"no layer named {name!r}")
        for name, module in modules.items():
            if not name or (name not in wanted and not self.track):
                continue
            self._handles.append(module.register_forward_pre_hook(self._pre_hook(name)))
            self._handles.append(module.register_forward_hook(self._post_hook(name)))

    def _pre_hook(self, name: str):
        def hook(module, inputs):
            if self.track:
                self.active.append(name)
                self.entered.setdefault(name, input_shapes(inputs))
            if name == self.stop_before:
                self.stopped_inputs = input_shapes(inputs)
                raise _StopForward
        return hook

    def _post_hook(self, name: str):
        def hook(module, inputs, output):
            if self.track and self.active and self.active[-1] == name:
                self.active.pop()
            replaced = None
            if name in self.names or self.track:
                replaced = self._emit(name, inputs, output)
            if name == self.stop_after:
                raise _StopForward
            return replaced
        return hook

    def _emit(self, name: str, inputs, output) -> Any:
        self._calls[name] += 1
        count = self._calls[name]
        return self.sink(name if count == 1 else f"{name}#{count}", inputs, output)

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._tap = None


# --------------------------------------------------------------------------- TorchScript taps

_SEGMENT = re.compile(r"([^.()]+)\(([^()]*)\)")


class ScriptTap:
    """Read the outputs of named submodules of a TorchScript module off its inlined graph.

    The compiled forward graph is inlined; every node knows the module path it came from, so a
    layer's output is the tensor its nodes produce and a node outside it uses. A copy of the
    graph returns those tensors as extra outputs (:meth:`run`); with ``truncate`` the original
    output is dropped and dead code removed, so the pass stops after the last layer read.
    Layers that run inside control flow (an ``if`` in ``forward``) cannot be read.
    """

    def __init__(self, module: nn.Module, names: Sequence[str]) -> None:
        self.module = module
        forward: Any = module.forward  # a ScriptMethod: its graph is what runs
        graph = forward.graph.copy()
        torch._C._jit_pass_inline(graph)
        self.graph = graph
        self.nodes = list(graph.nodes())
        self.paths = [node_path(node) for node in self.nodes]
        self.outputs = self._layer_outputs()
        self.names = list(names)
        for name in self.names:
            if name not in self.outputs:
                raise ModelError(f"cannot read layer {name!r} of this TorchScript model: it gives "
                                 "no tensor at the top level of the compiled forward")

    def order(self) -> list[str]:
        """Layer paths in the order their outputs are produced."""
        return list(self.outputs)

    def run(self, batch: torch.Tensor, emit: Sink, truncate: bool = False,
            names: Sequence[str] | None = None) -> Any:
        """Run the model; ``emit(name, None, tensor)`` for each output of each named layer."""
        names = list(self.names if names is None else names)
        pairs = [(name, value) for name in names for value in self.outputs[name]]
        groups = [pairs[i:i + SCRIPT_TAP_GROUP]
                  for i in range(0, len(pairs), SCRIPT_TAP_GROUP)] or [[]]
        result = None
        for index, group in enumerate(groups):
            keep_output = not truncate and index == len(groups) - 1
            function = self._function([value for _, value in group], keep_output)
            values = function(self.module._c, batch)
            values = values if isinstance(values, tuple) else (values,)
            if keep_output:
                result, values = values[0], values[1:]
            for (name, _), value in zip(group, values):
                emit(name, None, value)
            del values
        return result

    def _function(self, taps: list, keep_output: bool):
        graph = self.graph.copy()
        mapping = {}
        for old, new in zip(self.graph.nodes(), graph.nodes()):
            for old_value, new_value in zip(old.outputs(), new.outputs()):
                mapping[old_value.debugName()] = new_value
        if not keep_output:
            while len(list(graph.outputs())):
                graph.eraseOutput(0)
        for name in dict.fromkeys(value.debugName() for value in taps):
            _protect(graph, mapping[name])
        for value in taps:
            graph.registerOutput(mapping[value.debugName()])
        if len(list(graph.outputs())) > 1:
            graph.makeMultiOutputIntoTuple()
        torch._C._jit_pass_dce(graph)
        return torch._C._create_function_from_graph("convlens_tap", graph)

    def _layer_outputs(self) -> dict[str, list]:
        outputs: dict[str, list] = {}
        top = self.graph.block() if hasattr(self.graph, "block") else None
        for node, path in zip(self.nodes, self.paths):
            if not path:
                continue
            for value in node.outputs():
                if not isinstance(value.type(), torch._C.TensorType):
                    continue
                users = [_top_node(use.user, top) for use in value.uses()]
                user_paths = [None if user.kind() == "prim::Return" else node_path(user)
                              for user in users]
                parts = path.split(".")
                # the innermost layer first: its output is made before its block's (the same
                # tensor), so a run cut after the block's name also stops at that layer
                for depth in range(len(parts), 0, -1):
                    layer = ".".join(parts[:depth])
                    if any(p is None or not _inside(p, layer) for p in user_paths):
                        found = outputs.setdefault(layer, [])
                        if value not in found:
                            found.append(value)
        return outputs


def node_path(node) -> str:
    """The dotted path of the submodule a TorchScript graph node came from (``""``: the root)."""
    hierarchy = node.getModuleHierarchy()
    return ".".join(name for name, _ in _SEGMENT.findall(hierarchy)
                    if name not in ("SELF", "UNKNOWN_INSTANCE"))


def _protect(graph, value) -> None:
    """Give every later use of ``value`` a clone of it, so an in-place op further on (a
    ``ReLU(inplace=True)``) changes the clone and the tapped tensor keeps the layer's output;
    gradients still flow back through the clone to it."""
    none = graph.create("prim::Constant")
    none.output().setType(torch._C.NoneType.get())
    none.insertAfter(value.node())
    clone = graph.create("aten::clone", [value, none.output()])
    clone.output().setType(value.type())
    clone.insertAfter(none)
    value.replaceAllUsesAfterNodeWith(clone, clone.output())


def _top_node(node, top_block):
    while top_block is not None and node.owningBlock() != top_block:
        owner = node.owningBlock().owningNode()
        if owner is None:
            break
        node = owner
    return node


def _inside(path: str, layer: str) -> bool:
    return path == layer or path.startswith(layer + ".")


# --------------------------------------------------------------------------- shapes hooks see


def output_shape(value: Any) -> tuple[int, ...] | None:
    """Shape of a layer's output (of its first tensor, for a tuple), ``None`` if no tensor."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return tuple(value[0].shape)
    return None


def input_shapes(inputs: tuple) -> tuple:
    """Shapes of the tensors among a layer's positional inputs."""
    return tuple(tuple(item.shape) for item in inputs if isinstance(item, torch.Tensor))
