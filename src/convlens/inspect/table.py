"""Every layer of a model with its output shape, parameters and receptive field, for one input
size; and when the model fails on that input, the layers up to the failing one and what
mismatched (``'flatten' (Flatten) gives 1280 features, but 'classifier' (Linear) expects 640``),
with the input size to use: of the square sides that fit, the model's declared one, else one
that leaves no pixel uncovered and is a common size
(:func:`convlens.models.fitting.preferred_side`).
Of a model that returns several outputs, the table's output is the one holding the class scores
(:func:`convlens.models.heads.choose_output`), and the table lists the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn as nn

from ..errors import ModelError
from ..models import OpenedModel, eval_mode
from ..models.fitting import preferred_side
from ..models.heads import ChosenOutput, choose_output
from ..models.opening import INPUT_SIZE
from ..sizes import LayerSpec
from ..wording import plural
from .fields import DENSE_TYPES, FieldTracker, module_spec, script_fields, sees_everything
from .hooks import LayerCapture, ScriptTap, output_shape
from .names import layer_types

SIZE_SEARCH_LIMIT = 1024
"""Largest square input side tried when working out which input size a model expects."""
MAX_SIDES_TRIED = 4
"""Most sides the whole model is run at to check the one suggested (the next preferred one is
tried when it fails after the dense layer)."""


@dataclass
class LayerRow:
    """One layer of :func:`layer_table`. Shapes include the batch dimension.

    ``params`` counts the layer's own parameters (its children's are in their rows),
    ``subtree_params`` its own and all its children's;
    ``receptive_field`` is ``(rows, cols)`` input pixels one output value sees, for conv and
    pool layers (``None`` where it is not known); ``failed`` marks the layer that failed.
    """

    name: str
    layer_type: str
    depth: int
    output_shape: tuple[int, ...] | None
    params: int
    trainable: int
    receptive_field: tuple[int, int] | None = None
    geometry: str = ""
    input_shape: tuple[int, ...] | None = None
    failed: bool = False
    subtree_params: int = 0


@dataclass(frozen=True)
class SizeHint:
    """The square input side to suggest (pixels), why (``"the size the model declares"``, ...)
    and every side from ``smallest`` to ``largest`` that the model fits."""

    side: int
    reason: str
    smallest: int
    largest: int

    def sentence(self) -> str:
        """``it takes 42x42 to 49x49 inputs, and 48x48 is a common input size`` (or ``it takes
        only 32x32 inputs``)."""
        low, high, side = self.smallest, self.largest, self.side
        if low == high:
            return f"it takes only {low}x{low} inputs"
        return f"it takes {low}x{low} to {high}x{high} inputs, and {side}x{side} is {self.reason}"


@dataclass
class LayerTable:
    """Every layer for one input shape, the totals, and the failure if the model failed.

    ``output_shape`` is the shape of the output holding the class scores; ``outputs`` says
    which that is when the model returns several (``None`` when it failed). ``size_hint`` is
    the input size to use instead where a dense layer got the wrong number of features.
    """

    input_shape: tuple[int, ...]
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    output_shape: tuple[int, ...] | None = None
    failure: str | None = None
    size_hint: SizeHint | None = None
    notes: list[str] = field(default_factory=list)
    outputs: ChosenOutput | None = None

    @property
    def suggested_size(self) -> int | None:
        """The square side :attr:`size_hint` suggests (``None``: no hint)."""
        return None if self.size_hint is None else self.size_hint.side

    def to_dict(self) -> dict:
        hint = self.size_hint
        return {
            "input_shape": list(self.input_shape),
            "output_shape": None if self.output_shape is None else list(self.output_shape),
            "total_params": self.total_params, "trainable_params": self.trainable_params,
            "failure": self.failure, "suggested_size": self.suggested_size,
            "size_hint": None if hint is None else {
                "side": hint.side, "reason": hint.reason, "fits": [hint.smallest, hint.largest]},
            "outputs": outputs_dict(self.outputs),
            "layers": [{"name": r.name, "type": r.layer_type, "depth": r.depth,
                        "output_shape": None if r.output_shape is None else list(r.output_shape),
                        "params": r.params, "subtree_params": r.subtree_params,
                        "receptive_field": r.receptive_field,
                        "geometry": r.geometry, "failed": r.failed} for r in self.rows],
        }


def outputs_dict(chosen: ChosenOutput | None) -> dict | None:
    """Which output of a model that returns several holds the class scores, JSON-ready:
    ``{"used": index, "reason", "outputs": [{"index", "name", "shape"}]}`` (``None`` for a
    model with one output)."""
    if chosen is None or not chosen.several or chosen.part is None:
        return None
    return {"used": chosen.part.index, "reason": chosen.reason,
            "outputs": [{"index": part.index, "name": part.name, "shape": list(part.shape)}
                        for part in chosen.parts]}


def model_outputs(output: Any, opened: OpenedModel) -> ChosenOutput:
    """The output of ``output`` that holds the class scores (``opened.output``, else the one
    :func:`~convlens.models.heads.choose_output` picks), kept without its tensor."""
    return replace(choose_output(output, opened.output), tensor=None)


class LayerTableError(ModelError):
    """The model failed on the table's input; ``table`` holds the rows up to the failure."""

    def __init__(self, table: LayerTable) -> None:
        super().__init__(table.failure or "the model failed")
        self.table = table


def layer_table(
    opened: OpenedModel,
    input_size: tuple[int, int] | None = None,
    *,
    in_channels: int | None = None,
    strict: bool = True,
) -> LayerTable:
    """Run one blank image of ``input_size`` (default: the model's) through the model and list
    every layer that ran, in the order it was entered, with its output shape and parameters.

    If the model fails, the table holds every layer up to the failing one and
    :attr:`LayerTable.failure` says what mismatched; with ``strict`` that is raised as a
    :class:`ModelError` after the table is built (see :class:`LayerTableError`).
    """
    size = tuple(input_size) if input_size is not None else opened.input_size
    if size is None:
        raise ModelError(f"{opened.source} does not say what input size it takes; pass "
                         f"{INPUT_SIZE.python}", options=[INPUT_SIZE])
    channels = in_channels or opened.in_channels
    notes = []
    if channels is None:
        channels = 3
        notes.append("the model does not say its input channels; assumed 3")
    shape = (1, channels, int(size[0]), int(size[1]))
    batch = torch.zeros(shape, device=opened.device)
    table = _script_table(opened, batch) if opened.scripted else _hooked_table(opened, batch)
    table.notes = notes + table.notes
    if strict and table.failure:
        raise LayerTableError(table)
    return table


def error_text(exc: BaseException | None) -> str:
    """The line of an error message that says what went wrong (TorchScript puts it last)."""
    if exc is None:
        return ""
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


# --------------------------------------------------------------------------- eager models


def _hooked_table(opened: OpenedModel, batch: torch.Tensor) -> LayerTable:
    modules = dict(opened.module.named_modules())
    types = layer_types(opened)
    finished: dict[str, tuple[int, ...] | None] = {}
    fields = FieldTracker((batch.shape[-2], batch.shape[-1]), batch)

    def sink(name: str, inputs, output) -> None:
        if "#" in name:
            return
        finished[name] = output_shape(output)
        fields.record(name, modules[name], types[name], inputs, output)

    failure_exc: BaseException | None = None
    output = None
    with LayerCapture(opened, [], sink, track=True) as capture, torch.no_grad():
        try:
            output = capture(batch)
        except Exception as exc:  # any failure inside the user's model is reported, not raised
            failure_exc = exc
        active = list(capture.active)
        entered = dict(capture.entered)
    rows = [_row(name, types[name], modules[name], finished.get(name), fields.fields.get(name),
                 fields.geometry.get(name, ""), next(iter(entered[name]), None),
                 failed=name in active) for name in entered]
    table = LayerTable(tuple(batch.shape), rows, *_param_counts(opened.module),
                       output_shape(output))
    if failure_exc is None:
        _read_outputs(table, output, opened)
        return table
    failing = active[-1] if active else None
    if failing is None:
        table.failure = f"the model failed outside its layers: {error_text(failure_exc)}"
        return table
    got = next(iter(entered[failing]), None)
    source = next((name for name, shape in reversed(finished.items()) if shape == got), None)
    if source is None and finished:
        source = list(finished)[-1]
    table.failure = _mismatch(failing, types[failing], modules[failing], got,
                              (source, types[source], finished[source]) if source else None,
                              failure_exc)
    if types[failing] in DENSE_TYPES:

        def features(blank: torch.Tensor) -> int | None:
            with LayerCapture(opened, [], stop_before=failing) as capture, torch.no_grad():
                try:
                    capture(blank)
                except Exception:
                    return None
                shapes = capture.stopped_inputs
            return int(shapes[0][-1]) if shapes else None

        chain = [modules[name] for name in entered if name != failing]
        table.size_hint = _suggest_size(opened, modules[failing], batch, features, chain)
    return table


# --------------------------------------------------------------------------- TorchScript


def _script_table(opened: OpenedModel, batch: torch.Tensor) -> LayerTable:
    """The table of a TorchScript model, its shapes read off the compiled graph. On a failure
    the longest run of layers that still works is found by bisection; the next one failed."""
    module = opened.module
    modules = dict(module.named_modules())
    types = layer_types(opened)
    tap = ScriptTap(module, [])
    order = tap.order()

    def shapes_of(count: int) -> dict[str, tuple[int, ...] | None] | None:
        found: dict[str, tuple[int, ...] | None] = {}
        try:
            with torch.no_grad():
                tap.run(batch, lambda name, _, out: found.setdefault(name, output_shape(out)),
                        truncate=True, names=order[:count])
        except RuntimeError:
            return None
        return found

    output = failure = failing = suggested = None
    try:
        with torch.no_grad():
            output = module(batch)
        shapes = shapes_of(len(order)) or {}
    except RuntimeError as exc:
        low, high = 0, len(order)
        while low < high:
            middle = (low + high + 1) // 2
            if shapes_of(middle) is not None:
                low = middle
            else:
                high = middle - 1
        shapes = shapes_of(low) or {}
        if low < len(order):
            failing = order[low]
            source = order[low - 1] if low else None
            failure = _mismatch(failing, types.get(failing, "?"), modules[failing], None,
                                (source, types.get(source, "?"), shapes.get(source))
                                if source else None,
                                exc)
            if source and types.get(failing) in DENSE_TYPES:

                def features(blank: torch.Tensor) -> int | None:
                    found: list[int] = []
                    try:
                        with torch.no_grad():
                            tap.run(blank, lambda n, _, out: found.append(out.shape[-1]),
                                    truncate=True, names=[source])
                    except RuntimeError:
                        return None
                    return int(found[0]) if found else None

                # (a compiled layer's geometry is in the graph, not its module: no chain)
                suggested = _suggest_size(opened, modules[failing], batch, features)
        else:
            failure = f"the model failed outside its layers: {error_text(exc)}"
    ranks = {name: index for index, name in enumerate(types)}
    # the failing layer and the blocks around it (which fail with it, as in the eager table)
    failed = set() if failing is None else {
        ".".join(failing.split(".")[:depth]) for depth in range(1, failing.count(".") + 2)}
    shown = sorted(dict.fromkeys([*shapes, *(name for name in failed if name in modules)]),
                   key=lambda n: ranks.get(n, 0))
    fields, geometry = script_fields(tap.graph, modules, (batch.shape[-2], batch.shape[-1]))
    rows = []
    for name in shown:
        kind = types.get(name, "?")
        field_ = fields.get(name)
        if sees_everything(kind, shapes.get(name)) and name not in failed:  # as eager
            field_, geometry[name] = (batch.shape[-2], batch.shape[-1]), "whole input"
        rows.append(_row(name, kind, modules[name], shapes.get(name), field_,
                         geometry.get(name, ""), failed=name in failed))
    table = LayerTable(tuple(batch.shape), rows, *_param_counts(module), output_shape(output),
                       failure, suggested)
    if failure is None:
        _read_outputs(table, output, opened)
    return table


# --------------------------------------------------------------------------- shared


def _read_outputs(table: LayerTable, output: Any, opened: OpenedModel) -> None:
    """The table's output: the one holding the class scores, of several."""
    table.outputs = model_outputs(output, opened)
    if table.outputs.part is not None:
        table.output_shape = table.outputs.part.shape


def _row(name: str, kind: str, module: nn.Module, shape: tuple[int, ...] | None,
         receptive_field: tuple[int, int] | None, geometry: str,
         input_shape: tuple[int, ...] | None = None, failed: bool = False) -> LayerRow:
    params, trainable = _param_counts(module, recurse=False)
    return LayerRow(name, kind, name.count(".") + 1, shape, params, trainable, receptive_field,
                    geometry, input_shape, failed, _param_counts(module)[0])


def _param_counts(module: nn.Module, recurse: bool = True) -> tuple[int, int]:
    """(all, trainable) parameters of ``module`` (without its children's unless ``recurse``);
    lazy parameters not yet made count 0."""
    params = [p for p in module.parameters(recurse=recurse) if not _lazy(p)]
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _lazy(parameter) -> bool:
    return isinstance(parameter, nn.parameter.UninitializedParameter)


def _mismatch(
    failing: str,
    kind: str,
    module,
    got: tuple[int, ...] | None,
    source: tuple[str, str, tuple[int, ...] | None] | None,
    exc: BaseException,
) -> str:
    """``'flatten' (Flatten) gives 1280 features, but 'classifier' (Linear) expects 640``.

    ``got`` is the failing layer's input shape (``None``: take the source's output shape);
    ``source`` is ``(name, type, output shape)`` of the layer that fed it, if known.
    """
    given = f"{source[0]!r} ({source[1]})" if source else "the input"
    if got is None and source is not None:
        got = source[2]
    what = _expectation(kind, module)
    if what is not None and got:
        unit, expected, axis = what
        if len(got) > abs(axis) and got[axis] != expected:
            return (f"{given} gives {plural(got[axis], unit.rstrip('s'))}, but {failing!r} "
                    f"({kind}) expects {expected}")
    shape = "x".join(map(str, got)) if got else "its"
    return f"{failing!r} ({kind}) failed on a {shape} input: {error_text(exc)}"


def _expectation(kind: str, module) -> tuple[str, int, int] | None:
    """(unit, expected size, axis of the input it is read from) for layers with a fixed input."""
    weight = getattr(module, "weight", None)
    shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) and not _lazy(weight) else ()
    if kind == "Linear" and len(shape) == 2:
        return "features", int(shape[1]), -1
    if kind in ("Conv2d", "Conv1d", "Conv3d") and len(shape) >= 3:
        groups = int(getattr(module, "groups", 1) or 1)
        return "channels", int(shape[1]) * groups, 1
    if kind.startswith("BatchNorm") and len(shape) == 1:
        return "channels", int(shape[0]), 1
    return None


def _suggest_size(
    opened: OpenedModel,
    dense: nn.Module,
    batch: torch.Tensor,
    features: Callable[[torch.Tensor], int | None],
    chain: list[nn.Module] | None = None,
) -> SizeHint | None:
    """The square input side to use where the failing ``dense`` layer gets the wrong number of
    features: ``features(blank)`` is what it gets for a blank input (``None``: the model fails
    before it), growing with the side, so bisection finds the smallest and the largest side at
    which it gets what it expects; of those the whole model must run at, the model's declared
    side is preferred, else one at which the conv and pool layers of ``chain`` (the layers that
    ran before it) leave no pixel uncovered, a common size first
    (:func:`~convlens.models.fitting.preferred_side`)."""
    what = _expectation("Linear", dense)
    if what is None:
        return None
    expected = what[1]

    def blank(side: int) -> torch.Tensor:
        return torch.zeros(1, batch.shape[1], side, side, device=batch.device)

    def below(side: int, limit: int) -> bool:
        got = features(blank(side))
        return got is None or got < limit

    top = features(blank(SIZE_SEARCH_LIMIT))
    if top is None or top < expected:
        return None
    smallest = _first_side(lambda side: not below(side, expected))
    if features(blank(smallest)) != expected:
        return None
    largest = _first_side(lambda side: not below(side, expected + 1)) - 1
    specs: list[LayerSpec] = [spec for spec in map(module_spec, chain or []) if spec is not None]
    sides = list(range(smallest, largest + 1))
    for _ in range(MAX_SIDES_TRIED):  # the dense layer fits them all; the rest must run too
        side, reason = preferred_side(sides, declared=opened.input_size, layers=specs or None)
        if _runs(opened, blank(side)):
            return SizeHint(side, reason, smallest, largest)
        sides.remove(side)
        if not sides:
            break
    return None


def _first_side(reached: Callable[[int], bool]) -> int:
    """The smallest side from 1 to :data:`SIZE_SEARCH_LIMIT` + 1 at which ``reached`` (true
    from some side on) holds, by bisection."""
    low, high = 1, SIZE_SEARCH_LIMIT + 1
    while low < high:
        middle = (low + high) // 2
        if middle <= SIZE_SEARCH_LIMIT and reached(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _runs(opened: OpenedModel, blank: torch.Tensor) -> bool:
    """Whether the whole model runs on ``blank``."""
    with eval_mode(opened.module), torch.no_grad():
        try:
            opened.module(blank)
        except Exception:
            return False
    return True
