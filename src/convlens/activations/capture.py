"""Every layer's inputs and output for one image, and which layer made each input.

:func:`capture` runs the model once and returns a :class:`Capture`: per layer a
:class:`Record` with copies of its tensor inputs (taken as the layer starts, so an in-place
op cannot change them) and of its output, and for each input the layer that produced it
(``"input"`` for the image, ``None`` where no layer did).

* An eager model is traced with ``torch.fx`` where it can be: each module call and each
  function call (``x + y``, ``torch.cat``) is a layer, and the graph says exactly what fed
  what.
* Where fx cannot trace it (control flow, exported programs) and for containers, scoped
  forward hooks record the layers (pre-hooks copy the inputs); a tensor is known by identity.
* TorchScript takes no Python hooks: its layers' outputs and inputs are read off the compiled
  graph (:class:`convlens.inspect.ScriptTap`), and the graph names each input's producer.

Every hook is removed and the model's train/eval mode restored, also after an error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx
import torch.nn as nn

from ..errors import ModelError
from ..inspect import ScriptTap, layer_types
from ..inspect.hooks import node_path
from ..models import OpenedModel, eval_mode
from .ops import LayerOp, function_op, module_op

INPUT = "input"
"""The source name of the model's input (the prepared image)."""
NAMES_LISTED = 60
"""Layer names an unknown-layer error lists before it says how many there are in all."""


class UnknownLayer(ModelError):
    """A layer name the model does not have; the message lists the close ones and the
    layers (a surface adds where to look them up)."""


def unknown_layer(name: str, names: list[str]) -> UnknownLayer:
    """The one-line error for layer ``name``, not among ``names``: the closest names first,
    then the layers (the first :data:`NAMES_LISTED`)."""
    import difflib

    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    shown = ", ".join(names[:NAMES_LISTED]) or "(none)"
    if len(names) > NAMES_LISTED:
        shown += f", ... ({len(names)} in all)"
    return UnknownLayer(f"no layer named {name!r} in this model{hint}; the layers are: {shown}")


@dataclass
class Record:
    """One call of one layer: ``inputs`` (its tensor inputs, batch kept), ``output``,
    ``sources`` (per input: the layer that made it, ``"input"``, or ``None``) and ``op``."""

    name: str
    op: LayerOp
    inputs: list[torch.Tensor]
    output: Any
    sources: list[str | None]
    module: nn.Module | None = None
    children: list[str] = field(default_factory=list)


def _copy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_copy(item) for item in value)
    return value


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    return []


class Capture:
    """The layers of one forward pass of ``opened`` on ``batch`` (see the module)."""

    def __init__(self, opened: OpenedModel, batch: torch.Tensor) -> None:
        self.opened = opened
        self.batch = batch
        self.records: dict[str, Record] = {}
        self.output: Any = None
        self.how = ""
        self._script: ScriptTap | None = None
        self._hooked = False
        module = opened.module
        if opened.scripted:
            self.how = "TorchScript graph"
            self._script = ScriptTap(module, [])
            with eval_mode(module), torch.no_grad():
                self.output = _copy(module(batch))
        elif not self._trace():
            self._hook()

    # ---- names
    def names(self) -> list[str]:
        """Every layer name this capture can explain, in the order they ran."""
        if self._script is not None:
            return list(self._script.order())
        names = list(self.records)
        for name in dict(self.opened.module.named_modules()):
            if name and name not in self.records:
                names.append(name)
        return names

    def get(self, name: str) -> Record:
        """The record of layer ``name``; an unknown name is a :class:`ModelError` that lists
        the close ones."""
        if name in self.records:
            return self.records[name]
        if self._script is not None:
            return self._script_record(name)
        modules = dict(self.opened.module.named_modules())
        if name in modules and name and not self._hooked:
            self._hook()
            if name in self.records:
                return self.records[name]
        if name in modules and name:
            raise ModelError(f"layer {name!r} did not run for this input, so it has no output "
                             "to explain")
        known = list(self.records) + [n for n in layer_types(self.opened)
                                      if n not in self.records]
        raise unknown_layer(name, known)

    # ---- torch.fx
    def _trace(self) -> bool:
        module = self.opened.module
        graph_module: nn.Module
        graph = getattr(module, "graph", None)
        if type(module).__name__ == "UnflattenedModule" and graph is not None:
            # an exported program's own graph; used where its layers are not nested
            for node in graph.nodes:
                if node.op == "call_module" and next(
                        module.get_submodule(node.target).children(), None) is not None:
                    return False
            graph_module = module
        else:
            try:
                graph_module = torch.fx.symbolic_trace(module)
            except Exception:  # fx refuses many models (control flow, ...): hooks then
                return False
            graph = graph_module.graph
        values: dict[str, Any] = {}
        producers: dict[str, str] = {}
        calls: Counter[str] = Counter()
        records: dict[str, Record] = {}
        batch = self.batch
        types = self.opened.layer_types

        class Recorder(torch.fx.Interpreter):
            def run_node(self, node):
                result = super().run_node(node)
                if node.op == "placeholder":
                    values[node.name] = _copy(result)
                    producers[node.name] = INPUT
                    return result
                if node.op not in ("call_module", "call_function", "call_method"):
                    return result
                args: list[torch.fx.Node] = []
                torch.fx.node.map_arg((node.args, node.kwargs), args.append)
                inputs, sources = [], []
                for arg in args:
                    if arg.name in producers and isinstance(values.get(arg.name), torch.Tensor):
                        inputs.append(values[arg.name])
                        sources.append(producers[arg.name])
                if node.op == "call_module":
                    sub = graph_module.get_submodule(node.target)
                    calls[node.target] += 1
                    count = calls[node.target]
                    name = node.target if count == 1 else f"{node.target}#{count}"
                    op = module_op(sub, types.get(node.target))
                else:
                    sub, name, op = None, node.name, function_op(node)
                values[node.name] = _copy(result)
                producers[node.name] = name
                records[name] = Record(name, op, inputs, values[node.name], sources, sub)
                return result

        try:
            with eval_mode(module), torch.no_grad():
                self.output = _copy(Recorder(graph_module, graph=graph).run(batch))
        except Exception:
            return False
        self.records = records
        self.how = "torch.fx graph"
        return True

    # ---- hooks
    def _hook(self) -> None:
        module = self.opened.module
        self._hooked = True
        if not self.how:
            self.how = "forward hooks"
        made: dict[int, tuple[torch.Tensor, str]] = {id(self.batch): (self.batch, INPUT)}
        pending: dict[str, list] = {}
        calls: Counter[str] = Counter()
        records: dict[str, Record] = {}
        modules = {name: m for name, m in module.named_modules() if name}
        types = self.opened.layer_types

        def source(tensor: torch.Tensor) -> str | None:
            known = made.get(id(tensor))
            return known[1] if known is not None and known[0] is tensor else None

        def pre(name):
            def hook(_module, inputs):
                tensors = _tensors(inputs)
                count = calls[name] + 1
                known = (name if count == 1 else f"{name}#{count}") in self.records
                # a call torch.fx recorded already is only followed (which tensor it made)
                pending.setdefault(name, []).append(
                    ([] if known else [t.detach().clone() for t in tensors],
                     [source(t) for t in tensors]))
            return hook

        def post(name, sub):
            def hook(_module, _inputs, output):
                inputs, sources = pending[name].pop()
                calls[name] += 1
                key = name if calls[name] == 1 else f"{name}#{calls[name]}"
                leaf = next(sub.children(), None) is None
                if key not in self.records:
                    op = module_op(sub, types.get(name)) if leaf else LayerOp(
                        "other", types.get(name, type(sub).__name__))
                    records[key] = Record(
                        key, op, inputs, _copy(output), sources, sub,
                        [n for n in modules if n.startswith(name + ".")] if not leaf else [])
                for tensor in _tensors(output):
                    if leaf or source(tensor) is None:
                        made[id(tensor)] = (tensor, key)
            return hook

        handles = []
        try:
            with eval_mode(module), torch.no_grad():
                for name, sub in modules.items():
                    handles.append(sub.register_forward_pre_hook(pre(name)))
                    handles.append(sub.register_forward_hook(post(name, sub)))
                output = module(self.batch)
                if self.output is None:
                    self.output = _copy(output)
        finally:
            for handle in handles:
                handle.remove()
        for key, record in records.items():
            self.records.setdefault(key, record)

    # ---- TorchScript
    def _script_record(self, name: str) -> Record:
        tap = self._script
        assert tap is not None
        if name not in tap.outputs:
            if name not in layer_types(self.opened):
                raise unknown_layer(name, list(layer_types(self.opened)))
            raise ModelError(f"cannot read layer {name!r} of this TorchScript model: it gives "
                             "no tensor at the top level of the compiled forward")
        inputs = _script_inputs(tap, name)
        key = f"{name} (inputs)"
        tapped = [value for value, source in inputs if source != INPUT]
        tap.outputs[key] = tapped
        got: dict[str, list[torch.Tensor]] = {}
        try:
            with eval_mode(self.opened.module), torch.no_grad():
                tap.run(self.batch, lambda n, _i, v: got.setdefault(n, []).append(_copy(v)),
                        truncate=True, names=[name, key] if tapped else [name])
        finally:
            del tap.outputs[key]
        read = iter(got.get(key, []))
        values = [self.batch.detach().clone() if source == INPUT else next(read)
                  for _, source in inputs]
        sub = dict(self.opened.module.named_modules()).get(name)
        kind = tap_kind(sub)
        op = module_op(sub) if sub is not None and not any(True for _ in sub.children()) \
            else LayerOp("other", kind)
        record = Record(name, op, values, got[name][0],
                        [source for _, source in inputs], sub)
        self.records[name] = record
        return record


def tap_kind(module: nn.Module | None) -> str:
    if module is None:
        return "layer"
    return str(getattr(module, "original_name", type(module).__name__))


def _script_inputs(tap: ScriptTap, name: str) -> list[tuple[Any, str | None]]:
    """The tensors layer ``name`` of a TorchScript graph reads from outside itself, with the
    layer that made each (``"input"``: the model's input)."""
    graph_inputs = list(tap.graph.inputs())
    image = graph_inputs[1] if len(graph_inputs) > 1 else None
    found: list[tuple[Any, str | None]] = []
    seen: set[str] = set()
    for node, path in zip(tap.nodes, tap.paths):
        if not _inside(path, name):
            continue
        for value in node.inputs():
            if value.debugName() in seen or not isinstance(value.type(), torch._C.TensorType):
                continue
            producer = value.node()
            if producer.kind() in ("prim::GetAttr", "prim::Constant"):
                continue
            origin = node_path(producer) if producer.kind() != "prim::Param" else ""
            if origin and _inside(origin, name):
                continue
            seen.add(value.debugName())
            found.append((value, INPUT if value is image else _producer(tap, value, origin)))
    return found


def _producer(tap: ScriptTap, value, path: str) -> str | None:
    parts = path.split(".") if path else []
    for depth in range(len(parts), 0, -1):
        layer = ".".join(parts[:depth])
        if value in tap.outputs.get(layer, []):
            return layer
    return None


def _inside(path: str, layer: str) -> bool:
    return path == layer or path.startswith(layer + ".")


def capture(opened: OpenedModel, batch: torch.Tensor) -> Capture:
    """Run ``opened`` on ``batch`` ``(1, C, H, W)`` once and record its layers."""
    return Capture(opened, batch)
