"""Explain any number of any layer: :class:`Explainer` turns a capture
(:mod:`.capture`) into one explanation per layer kind, the receptive field in the input image
and the trace back to the input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..config import PaddingMode
from ..errors import ConfigError, ModelError, Option
from ..explain.parts import Column, Heading, Part, Sentence, Span, TextTable, six
from ..explain.patches import padding_source
from ..models import ModelInfo, ModelKind, OpenedModel, PreparedInput, prepare_input
from ..sizes import effective_size
from .base import TOP_DEFAULT, close_enough
from .capture import INPUT, Capture, Record
from .conv import ConvExplanation, conv_explanation
from .elementwise import ActivationFunctionExplanation, activation_explanation
from .linear import LinearExplanation, linear_explanation
from .merge import AddExplanation, ConcatExplanation, FlattenExplanation, MulExplanation
from .norm import BatchNormExplanation, batchnorm_explanation
from .other import OtherExplanation
from .pool import PoolExplanation, pool_explanation

ActivationExplanation = (ConvExplanation | BatchNormExplanation | ActivationFunctionExplanation
                         | PoolExplanation | LinearExplanation | AddExplanation | MulExplanation
                         | ConcatExplanation | FlattenExplanation | OtherExplanation)
"""One explanation per layer kind; each has ``parts()``, ``to_dict()``, ``total`` and
``value`` (the hooked number)."""

CHANNEL = Option("channel", "--channel", "channel")
AT = Option("y, x", "--at Y,X", "y, x")
TOP = Option("top", "--top", "top")
MAX_TRACE = 200


def opened_of(model: OpenedModel | nn.Module) -> OpenedModel:
    """An :class:`OpenedModel` for a bare module (its input taken as it comes)."""
    if isinstance(model, OpenedModel):
        return model
    if isinstance(model, nn.Module):
        return OpenedModel(model, ModelKind.FACTORY, type(model).__name__, ModelInfo())
    raise ModelError(f"expected an opened model or a torch nn.Module; got {type(model).__name__}")


def batch_of(image: Any, opened: OpenedModel) -> torch.Tensor:
    """The model's input: an image ``(C, H, W)`` in [0, 1] is prepared
    (:func:`convlens.models.prepare_input`); a :class:`PreparedInput` or a ``(1, C, H, W)``
    batch is used as it is."""
    if isinstance(image, PreparedInput):
        return image.batch
    if isinstance(image, torch.Tensor) and image.ndim == 4:
        if image.shape[0] != 1:
            raise ModelError(f"explain one image at a time; got a batch of {image.shape[0]}")
        return image.to(opened.device)
    if isinstance(image, torch.Tensor):
        return prepare_input(image, opened).batch
    raise ModelError(f"expected an image tensor (C, H, W); got {type(image).__name__}")


def _first(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first(item)
            if found is not None:
                return found
    return None


def _numbers(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float64).numpy()


@dataclass(frozen=True)
class TraceStep:
    """One layer of a trace: the number at ``position`` of ``layer`` and where it came from
    most (``because``); ``next`` the layer and position the trace goes to."""

    layer: str
    kind: str
    position: tuple[int, ...]
    value: float
    because: str


@dataclass(frozen=True)
class Trace:
    """A walk from one number back to the input, strongest contributor first, one step per
    layer; ``end`` says why it stopped."""

    steps: tuple[TraceStep, ...]
    end: str

    def parts(self) -> tuple[Part, ...]:
        columns = (Column("layer"), Column("kind"), Column("at"), Column("value", "right"),
                   Column("strongest contributor"))
        rows = tuple((s.layer, s.kind, str(s.position), six(s.value), s.because)
                     for s in self.steps)
        return (Heading("trace back to the input, strongest contributor first", 2),
                TextTable("trace", "one line per layer", columns, rows),
                Sentence((Span(self.end),), "trace_end"))

    def to_dict(self) -> dict:
        return {"steps": [{"layer": s.layer, "kind": s.kind, "at": list(s.position),
                           "value": s.value, "because": s.because} for s in self.steps],
                "end": self.end}


class Explainer:
    """The layers of one forward pass of a model on one image, explained on demand."""

    def __init__(self, model: OpenedModel | nn.Module, image: Any) -> None:
        self.opened = opened_of(model)
        self.batch = batch_of(image, self.opened)
        self.capture = Capture(self.opened, self.batch)
        self._boxes: dict[tuple, tuple[int, int, int, int] | None] = {}

    @property
    def input_size(self) -> tuple[int, int]:
        return int(self.batch.shape[-2]), int(self.batch.shape[-1])

    def layers(self) -> list[str]:
        return self.capture.names()

    def output(self, name: str) -> torch.Tensor:
        record = self.capture.get(name)
        tensor = _first(record.output)
        if tensor is None:
            raise ModelError(f"layer {name!r} gives no tensor to explain")
        return tensor

    # ---- one number
    def explain(self, name: str, channel: int, y: int | None = None, x: int | None = None,
                *, top: int = TOP_DEFAULT, field: bool = True) -> ActivationExplanation:
        """The explanation of number ``(channel, y, x)`` (``y``/``x`` ``None`` for an output
        ``(N, features)``) of layer ``name``."""
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ConfigError(f"top must be at least 1; got {top!r}", options=[TOP])
        record = self.capture.get(name)
        out = self.output(name)
        position = check_position(name, tuple(out.shape[1:]), channel, y, x)
        value = float(out[0][position])
        where = {"layer": name, "kind": record.op.name, "channel": channel,
                 "y": y if out.ndim == 4 else None, "x": x if out.ndim == 4 else None,
                 "shape": tuple(int(s) for s in out.shape[1:]), "value": value,
                 "field": self.field(name, position) if field else None}
        explanation, terms = self._work_out(record, where, top)
        if not close_enough(explanation.total, value, terms):
            why = (f"convlens' arithmetic for a {record.op.name} gives "
                   f"{six(explanation.total)}, not the {six(value)} the layer gave")
            return self._other(record, where, why)
        return explanation

    def _work_out(self, record: Record, where: dict, top: int
                  ) -> tuple[ActivationExplanation, list]:
        op, kind = record.op, record.op.kind
        e: ActivationExplanation
        data = [_numbers(t[0]) for t in record.inputs]
        shape = where["shape"]
        same = [d for d in data if d.shape == tuple(shape)]
        spatial = len(shape) == 3
        if kind == "conv" and spatial and data and data[0].ndim == 3:
            e = conv_explanation(where, op, data[0], top)
            return e, [*e.products.ravel(), e.bias]
        if kind == "batchnorm" and spatial and same:
            conv = self._conv_source(record)
            e = batchnorm_explanation(where, op, data[0], conv, top)
            return e, [e.input, e.mean, e.bias]
        if kind == "act" and len(data) == 1 and same:
            e = activation_explanation(where, op, data[0])
            return e, [e.input]
        if kind in ("maxpool", "avgpool", "adaptive_avg", "adaptive_max") and spatial and data \
                and data[0].ndim == 3:
            e = pool_explanation(where, op, data[0])
            return e, list(e.values.ravel())
        if kind == "linear" and len(shape) == 1 and data and data[0].ndim == 1:
            shares, share = self._shares(record, where["channel"])
            shape_, made_by = self.flattened_from(record)
            e = linear_explanation(where, op.params["weight"], op.params["bias"], data[0],
                                   shape_, top, shares, share, made_by)
            return e, [*e.products, e.bias]
        if kind == "flatten" and len(shape) == 1 and len(data) == 1 and data[0].ndim >= 1:
            at = tuple(int(v) for v in np.unravel_index(where["channel"], data[0].shape))
            e = FlattenExplanation(**where, at=at, input_shape=data[0].shape,
                                   total=float(data[0][at]))
            return e, [e.total]
        if kind == "add" and len(data) == 2:
            index = _position(where)
            terms = tuple(float(_broadcast(d, shape)[index]) for d in data)
            e = AddExplanation(**where, branches=tuple(record.sources), terms=terms,
                               total=float(sum(terms)))
            return e, list(terms)
        if kind == "mul" and len(data) == 2:
            index = _position(where)
            factors = tuple(float(_broadcast(d, shape)[index]) for d in data)
            e = MulExplanation(**where, branches=tuple(record.sources), factors=factors,
                               total=float(factors[0] * factors[1]))
            return e, [e.total]
        if kind == "cat" and spatial and op.params["dim"] in (1, -3) and data and all(
                d.ndim == 3 for d in data):
            sizes = tuple(d.shape[0] for d in data)
            part, offset = 0, where["channel"]
            while offset >= sizes[part]:
                offset -= sizes[part]
                part += 1
            e = ConcatExplanation(**where, part=part, source=record.sources[part],
                                  source_channel=offset, sizes=sizes,
                                  total=float(data[part][offset, where["y"], where["x"]]))
            return e, [e.total]
        why = op.params.get("why", "convlens works out conv, batch norm, activation, pool, "
                            "linear, flatten, add, multiply and concatenation layers")
        e = self._other(record, where, why)
        return e, [e.value]

    def _other(self, record: Record, where: dict, why: str) -> OtherExplanation:
        index = _position(where)
        values = []
        for tensor in record.inputs:
            data = tensor[0]
            values.append(float(data[index]) if tuple(data.shape) == where["shape"] else None)
        return OtherExplanation(**where, inputs=tuple(values), sources=tuple(record.sources),
                                why=why, children=tuple(record.children))

    def passes_through(self, record: Record) -> bool:
        """Whether a layer convlens does not work out gave exactly its one input (Dropout and
        Identity in eval mode, stochastic depth): checked on the numbers, not assumed."""
        out = _first(record.output)
        return (record.op.kind == "other" and len(record.inputs) == 1 and out is not None
                and record.inputs[0].shape == out.shape and torch.equal(record.inputs[0], out))

    def _source_record(self, name: str | None) -> Record | None:
        if name is None or name == INPUT:
            return None
        try:
            return self.capture.get(name)
        except ModelError:
            return None

    def _conv_source(self, record: Record):
        source = self._source_record(record.sources[0] if record.sources else None)
        if source is None or source.op.kind != "conv" or not source.inputs:
            return None
        return source.name, source.op, _numbers(source.inputs[0][0])

    def flattened_from(self, record: Record) -> tuple[tuple[int, int, int] | None, str | None]:
        """The ``(C, H, W)`` map a dense layer's inputs were flattened from, and the layer
        that made that map: the flatten that fed it, else (where no layer made its input: a
        ``torch.flatten`` in ``forward``) the last layer whose output flattened is exactly
        these inputs. ``(None, None)`` when neither holds."""
        data = _numbers(record.inputs[0][0]) if record.inputs else np.zeros(0)
        source = self._source_record(record.sources[0] if record.sources else None)
        if source is not None and source.op.kind == "flatten" and source.inputs:
            shape = tuple(int(s) for s in source.inputs[0].shape[1:])
            if len(shape) == 3 and int(np.prod(shape)) == data.size:
                return (shape[0], shape[1], shape[2]), (source.sources[0] if source.sources
                                                        else None)
            return None, None
        if source is not None or not record.sources or record.sources[0] == INPUT:
            return None, None
        for other in reversed(list(self.capture.records.values())):
            tensor = _first(other.output)
            if (tensor is not None and tensor.ndim == 4 and tensor[0].numel() == data.size
                    and np.array_equal(_numbers(tensor[0]).ravel(), data.ravel())):
                _, c, h, w = (int(s) for s in tensor.shape)
                return (c, h, w), other.name
        return None, None

    def _shares(self, record: Record, index: int):
        """Softmax shares when this layer's output is the model's output."""
        model_out = _first(self.capture.output)
        out = _first(record.output)
        if model_out is None or out is None or model_out.shape != out.shape or \
                not torch.equal(model_out, out) or out.ndim != 2:
            return (), None
        logits = _numbers(out[0])
        shares = np.exp(logits - logits.max())
        shares /= shares.sum()
        order = np.argsort(-shares, kind="stable")[:5]
        return (tuple((int(k), self.opened.class_name(int(k)), float(shares[k]))
                      for k in order), float(shares[index]))

    # ---- the receptive field
    def field(self, name: str, position: tuple[int, ...]) -> dict | None:
        """Input image rows/cols (inclusive) that number ``position`` of layer ``name``
        depends on, followed back through the layers that ran (only the channels that feed
        it: a concatenation's other inputs and the other groups of a grouped conv are left
        out); ``None`` where a layer on the way does not say how its output depends on its
        input."""
        box = (position[1], position[1], position[2], position[2]) if len(position) == 3 \
            else None
        found = self._box(name, box, frozenset({position[0]}), 0)
        if found is None:
            return None
        top, bottom, left, right = found
        return {"top": top, "bottom": bottom, "left": left, "right": right}

    def _box(self, name: str, box, channels: frozenset[int] | None, depth: int):
        """The input image box that ``box`` (``None``: the whole map) of ``channels``
        (``None``: all) of layer ``name``'s output depends on (remembered: branches that meet
        again, as in a residual or dense network, are followed once)."""
        key = (name, box, channels)
        if key not in self._boxes:
            self._boxes[key] = self._box_of(name, box, channels, depth)
        return self._boxes[key]

    def _box_of(self, name: str, box, channels: frozenset[int] | None, depth: int):
        if depth > MAX_TRACE:
            return None
        height, width = self.input_size
        if name == INPUT:
            if box is None:
                return 0, height - 1, 0, width - 1
            return (max(box[0], 0), min(box[1], height - 1), max(box[2], 0),
                    min(box[3], width - 1))
        record = self._source_record(name)
        if record is None or not record.sources:
            return None
        op, kind = record.op, record.op.kind
        boxes = []
        offset = 0
        sources = list(record.sources)
        if kind == "linear" and sources and sources[0] is None:
            sources[0] = self.flattened_from(record)[1]
        for tensor, source in zip((t[0] for t in record.inputs), sources):
            spatial = tensor.ndim == 3
            wanted = channels
            if kind == "cat":
                size = int(tensor.shape[0]) if spatial else 0
                wanted = None if channels is None else frozenset(
                    c - offset for c in channels if offset <= c < offset + size)
                offset += size
                if wanted is not None and not wanted:
                    continue
            elif kind == "conv" and channels is not None and op.params["groups"] > 1:
                out_channels, per_group = op.params["weight"].shape[:2]
                groups = {c // (out_channels // op.params["groups"]) for c in channels}
                wanted = frozenset(g * per_group + i for g in groups for i in range(per_group))
            elif kind == "conv":
                wanted = None  # every input channel
            elif kind in ("linear", "flatten") or not spatial:
                wanted = None
            elif kind in ("add", "mul") and spatial and tensor.shape[0] == 1:
                wanted = frozenset({0})
            if source is None:
                return None
            if box is None or not spatial or kind in ("linear", "flatten"):
                inner = None  # all of that map
            elif kind in ("batchnorm", "act", "add", "mul", "cat") or self.passes_through(record):
                inner = box
            elif kind in ("conv", "maxpool", "avgpool"):
                inner = _window_box(op, box, (int(tensor.shape[1]), int(tensor.shape[2])))
                if inner is None:  # the window lies wholly in the padding: no input pixel
                    return None
            elif kind in ("adaptive_avg", "adaptive_max"):
                out = _first(record.output)
                assert out is not None
                inner = _adaptive_box(box, tensor.shape[1:], out.shape[2:])
            else:
                return None
            if inner is not None:  # inside the map (a side of 1 is broadcast)
                h, w = tensor.shape[1:]
                inner = ((0, 0) if h == 1 else (max(inner[0], 0), min(inner[1], h - 1))) + (
                    (0, 0) if w == 1 else (max(inner[2], 0), min(inner[3], w - 1)))
            found = self._box(source, inner, wanted, depth + 1)
            if found is None:
                return None
            boxes.append(found)
        if not boxes:
            return None
        return (min(b[0] for b in boxes), max(b[1] for b in boxes),
                min(b[2] for b in boxes), max(b[3] for b in boxes))

    # ---- the trace
    def trace(self, name: str, channel: int, y: int | None = None, x: int | None = None
              ) -> Trace:
        """Walk from number ``(channel, y, x)`` of layer ``name`` back to the input: at each
        layer the input that contributes most (the strongest product of a conv or dense
        layer, the max's winner, the larger branch of an add), one step per layer."""
        steps: list[TraceStep] = []
        position: tuple[int, ...] = (channel,) if y is None or x is None else (channel, y, x)
        current: str | None = name
        end = ""
        while current is not None and len(steps) < MAX_TRACE:
            if current == INPUT:
                value = float(self.batch[0][position]) if len(position) == 3 else float("nan")
                end = (f"the input image at {position} (as the model sees it: prepared) holds "
                       f"{six(value)}")
                break
            e = self.explain(current, *_split(position), top=1, field=False)
            record = self.capture.get(current)
            because, nxt = _strongest(e, record, self.passes_through(record))
            steps.append(TraceStep(current, e.kind, position, e.value, because))
            if nxt is None:
                end = f"the trace stops at {current}: {because}"
                break
            current, position = nxt
        return Trace(tuple(steps), end or "the trace is too long; it stops here")


def _split(position: tuple[int, ...]) -> tuple[int, int | None, int | None]:
    if len(position) == 3:
        return position[0], position[1], position[2]
    return position[0], None, None


def _strongest(e: ActivationExplanation, record: Record, passes: bool = False):
    """Why this number is what it is (one phrase) and the ``(layer, position)`` to go to;
    ``passes``: the layer gave its input unchanged."""
    src = record.sources[0] if record.sources else None
    if isinstance(e, ConvExplanation):
        c, r, q = e.strongest()
        shown, _ = e.ranked()
        part = e.partial[shown[0]]
        return (f"input channel {e.in_channels[shown[0]]} (partial sum {six(float(part))}); "
                f"strongest tap ({c}, {r}, {q})", (src, (c, r, q)) if src else None)
    if isinstance(e, BatchNormExplanation | ActivationFunctionExplanation):
        return f"its input {six(e.input)} at the same place", (src, _position_of(e)) \
            if src else None
    if isinstance(e, PoolExplanation):
        if e.winner is not None:
            r, q = e.winner
            return f"the max, at ({e.channel}, {r}, {q})", (src, (e.channel, r, q)) \
                if src else None
        i, j = np.unravel_index(int(np.argmax(np.abs(e.values))), e.values.shape)
        r, q = e.rows[i], e.cols[j]
        return (f"the {e.pool} of {e.values.size} values, the largest at ({e.channel}, {r}, "
                f"{q})", (src, (e.channel, r, q)) if src else None)
    if isinstance(e, LinearExplanation):
        index = int(np.argmax(np.abs(e.products)))
        product = six(float(e.products[index]))
        if src is not None:
            return f"input {e.place(index)} × weight = {product}", (src, (index,))
        if e.map_source is not None:
            return (f"input {e.place(index)} × weight = {product}",
                    (e.map_source, e.position_of(index)))
        return f"input {e.place(index)} × weight = {product}", None
    if isinstance(e, FlattenExplanation):
        return f"the input at {e.at}", (src, e.at) if src else None
    if isinstance(e, AddExplanation):
        strongest = e.strongest()
        branch = e.branches[strongest]
        pos = _position_of(e)
        data = record.inputs[strongest][0]
        pos = tuple(0 if data.shape[k] == 1 else v for k, v in enumerate(pos))
        return (f"branch {branch or '(no layer)'} gives {six(e.terms[strongest])}",
                (branch, pos) if branch else None)
    if isinstance(e, MulExplanation):
        out_shape = tuple(e.shape)
        index = next((i for i, t in enumerate(record.inputs) if tuple(t.shape[1:]) == out_shape),
                     0)
        branch = e.branches[index]
        others = " × ".join(six(v) for i, v in enumerate(e.factors) if i != index)
        return (f"{branch or '(no layer)'} gives {six(e.factors[index])}, times {others}",
                (branch, _position_of(e)) if branch else None)
    if isinstance(e, OtherExplanation) and passes:
        return ("its input, passed through unchanged (checked)",
                (src, _position_of(e)) if src else None)
    if isinstance(e, ConcatExplanation):
        return (f"channel {e.source_channel} of {e.source}",
                (e.source, (e.source_channel, e.y, e.x)) if e.source else None)
    return f"convlens does not follow a {e.kind} back", None


def _position_of(e) -> tuple[int, ...]:
    return (e.channel,) if e.y is None else (e.channel, e.y, e.x)


def _position(where: dict) -> tuple[int, ...]:
    if where["y"] is None:
        return (where["channel"],)
    return (where["channel"], where["y"], where["x"])


def _broadcast(data: np.ndarray, shape) -> np.ndarray:
    return np.broadcast_to(data, shape)


def _window_box(op, box, size: tuple[int, int]):
    """The input rows/cols a box of a conv's or pool's output reads: the taps' span, and for
    a padding mode that copies pixels from elsewhere (reflect, circular) the pixels copied;
    None where every tap lies in zero padding (a 1x1 kernel on a padded border)."""
    p = op.params
    mode = PaddingMode.ZEROS
    if op.kind == "conv":
        (sh, sw), (dh, dw) = p["stride"], p["dilation"]
        top, _, left, _ = p["pads"]
        kh, kw = p["weight"].shape[2:]
        mode = p["padding_mode"]
    else:
        (kh, kw), (sh, sw) = p["kernel"], p["stride"]
        top, left = p["padding"]
        dh, dw = p.get("dilation", (1, 1))
    rows = np.arange(box[0] * sh - top, box[1] * sh - top + effective_size(kh, dh))
    cols = np.arange(box[2] * sw - left, box[3] * sw - left + effective_size(kw, dw))
    rows, _ = padding_source(rows, size[0], mode)
    cols, _ = padding_source(cols, size[1], mode)
    rows, cols = rows[rows >= 0], cols[cols >= 0]
    if not rows.size or not cols.size:
        return None
    return int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())


def _adaptive_box(box, size, out):
    h, w = size
    oh, ow = out
    return (box[0] * h // oh, -(-(box[1] + 1) * h // oh) - 1,
            box[2] * w // ow, -(-(box[3] + 1) * w // ow) - 1)


def check_position(name: str, shape: tuple[int, ...], channel: Any, y: Any, x: Any
                   ) -> tuple[int, ...]:
    """The index of ``(channel, y, x)`` in a layer output of ``shape`` (batch left out);
    out of range is a :class:`ConfigError` that gives the range."""
    for value in (channel, y, x):
        if value is not None and (isinstance(value, bool) or not isinstance(
                value, (int, np.integer))):
            raise ConfigError(f"channel and position must be whole numbers; got {value!r}")
    if len(shape) not in (1, 3):
        raise ModelError(f"layer {name!r} gives a {len(shape) + 1}-D output "
                         f"{(1, *shape)}; convlens explains (N, C, H, W) and (N, features)")
    if not 0 <= channel < shape[0]:
        raise ConfigError(f"channel {channel} is outside the {shape[0]} channels of layer "
                          f"{name!r}: channel must be 0..{shape[0] - 1}", options=[CHANNEL])
    if len(shape) == 1:
        if y is not None or x is not None:
            raise ConfigError(f"layer {name!r} gives {shape[0]} numbers, not a map: give no "
                              "y, x", options=[AT])
        return (channel,)
    if y is None or x is None:
        raise ConfigError(f"layer {name!r} gives {shape[1]}x{shape[2]} maps: give y, x",
                          options=[AT])
    if not (0 <= y < shape[1] and 0 <= x < shape[2]):
        raise ConfigError(f"position ({y}, {x}) is outside the {shape[1]}x{shape[2]} maps of "
                          f"layer {name!r}: y must be 0..{shape[1] - 1} and x 0.."
                          f"{shape[2] - 1}", options=[AT])
    return (channel, y, x)


def explain_activation(model: OpenedModel | nn.Module, image: Any, layer: str, channel: int,
                       y: int | None = None, x: int | None = None, *, top: int = TOP_DEFAULT
                       ) -> ActivationExplanation:
    """Explain the number at ``(channel, y, x)`` of layer ``layer``'s output when ``model``
    looks at ``image``.

    ``model`` is an :class:`~convlens.models.OpenedModel` (:func:`convlens.models.open_model`:
    checkpoints, TorchScript, ``.pt2``, ...) or an ``nn.Module``; ``image`` an image ``(C, H,
    W)`` in [0, 1] (prepared as the model wants, :func:`convlens.models.prepare_input`), a
    :class:`~convlens.models.PreparedInput` or a prepared batch ``(1, C, H, W)``. ``layer``
    is a module name (``features.3``) or, where ``torch.fx`` traces the model, a function's
    node name (``add``, ``cat``). ``y``/``x`` are left out for an output ``(N, features)``.
    ``top`` input channels (or dense inputs) are shown one by one, the rest summed; the
    total is always exact. Coordinates of the receptive field are in the prepared input.

    >>> import torch, torch.nn as nn
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    >>> e = explain_activation(net, torch.rand(1, 5, 5), "0", 1, 0, 0)
    >>> abs(e.total - e.value) < 1e-5, e.field
    (True, {'top': 0, 'bottom': 2, 'left': 0, 'right': 2})
    """
    return Explainer(model, image).explain(layer, channel, y, x, top=top)

