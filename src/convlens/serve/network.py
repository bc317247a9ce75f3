"""The page's network view: every layer of the open model as a column of channel thumbnails,
and any cell of any column explained.

One forward pass of the model on the page's image (an
:class:`~convlens.activations.Explainer`, which records every layer's inputs and output) serves
both: the columns are drawn from its outputs and a clicked cell is worked out from its records
(:meth:`~convlens.activations.Explainer.explain`, the same numbers ``convlens explain`` prints).
The pass is cached per (model, image, working size), so a click costs one explanation.

* Columns are the layers in the order they ran; a network with more than
  :data:`MAX_COLUMNS` of them is collapsed into the model's top-level children (a resnet's
  ``layer1`` .. ``layer4``), each a column of its block's output. A block the page opens
  (``open``) is shown as the layers that ran inside it, each a column; closed again, it is
  one column.
* A wide layer shows its ``top`` most active channels (highest mean ``|value|``), and says so.
* Thumbnails are uint8 maps in the page's wire format (:mod:`.wire`), on one colour scale per
  layer (every channel comparable) or per channel; the header says which (``scale``).
* A column's thumbnails are sent when the page asks for that column (it asks for those that
  scroll into view), so a large network's view loads lazily; an opened block's columns are
  made when first asked for.
* A clicked cell is explained with the steps that made it from the nearest conv
  (:func:`~convlens.activations.explain_chain`: conv, batch norm, activation, pool), and the
  positions the conv's kernel takes to slide into place (:func:`slide_boxes`).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
import torch
import torch.nn as nn
from pydantic import BaseModel, ConfigDict, Field

from ..activations import INPUT, Explainer, explain_chain
from ..activations.conv import ConvExplanation
from ..activations.linear import LinearExplanation
from ..activations.pool import PoolExplanation
from ..config import PaddingMode
from ..defaults import DEFAULT_MAX_SIDE
from ..errors import ConfigError, ModelError
from ..explain.parts import six
from ..explain.patches import padding_source
from ..images import downsample_for_display
from ..limits import check_budget
from .cache import LRU
from .model_panel import ModelPanel
from .wire import pack, quantize_map, scale_for_display

MAX_COLUMNS = 48
"""Most layers shown one by one; a network with more is shown by its top-level children."""
NETWORK_TOP = 16
"""Channels shown per layer unless the page asks for another count: the most active ones."""
MAX_NETWORK_TOP = 64
"""Most channels the page may ask to see per layer."""
EXPLAINERS_KEPT = 2
"""Forward passes (one per model, image and working size) kept for clicks."""
SLIDE_STEPS = 24
"""Most positions the kernel takes on its way into place (down the first column, then
along the row)."""


class ScaleMode(str, Enum):
    """How thumbnails are coloured: one scale for all the channels of a layer, or each
    channel on its own."""

    LAYER = "layer"
    CHANNEL = "channel"

    @property
    def words(self) -> str:
        if self is ScaleMode.LAYER:
            return "one colour scale per layer: its channels compare"
        return "each channel on its own colour scale: shapes show, strengths do not compare"


class NetworkIn(BaseModel):
    """What the view shows: the page's image and working size, the ``columns`` whose
    thumbnails to send (None: all; ``[]``: only the list of columns), the collapsed blocks
    shown layer by layer (``open``), ``top`` channels per layer, ``display`` px a side at
    most, and the colour ``scale`` (``layer`` or ``channel``)."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(..., max_length=80)
    max_side: int | None = DEFAULT_MAX_SIDE
    columns: list[str] | None = Field(None, max_length=256)
    open: list[str] = Field([], max_length=64)
    top: int = Field(NETWORK_TOP, ge=1, le=MAX_NETWORK_TOP)
    display: int = Field(48, ge=8, le=256)
    scale: ScaleMode = ScaleMode.LAYER


class NetworkExplainIn(BaseModel):
    """One cell to explain: ``channel`` and ``(y, x)`` of ``layer``'s output (``y``, ``x``
    left out for a layer of features), ``top`` input channels shown one by one."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(..., max_length=80)
    max_side: int | None = DEFAULT_MAX_SIDE
    layer: str = Field(..., max_length=200)
    channel: int = Field(..., ge=0)
    y: int | None = Field(None, ge=0)
    x: int | None = Field(None, ge=0)
    top: int = Field(8, ge=1, le=MAX_NETWORK_TOP)


@dataclass(frozen=True)
class Column:
    """One column of the view: layer ``name`` (``"input"`` for the image as the model sees
    it), its ``kind`` (``Conv2d``, ``add``, ...), the output ``shape`` without the batch
    (``(C, H, W)``, or ``(F,)`` for a layer of features, drawn as ``F`` one-cell maps),
    ``order``: every channel, most active (highest mean ``|value|``) first; ``block`` the
    collapsed block it is inside (shown when that block is open), ``inner`` how many columns
    a collapsed block's column opens into (0: a layer)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    order: tuple[int, ...]
    block: str | None = None
    inner: int = 0

    def describe(self, top: int, blocks: list[str] | None = None) -> dict:
        """The column for the page; ``blocks`` the blocks it is inside, outermost first."""
        return {"name": self.name, "kind": self.kind, "shape": list(self.shape),
                "channels": len(self.order), "shown": min(top, len(self.order)),
                "explainable": self.name != INPUT, "block": self.block, "inner": self.inner,
                "blocks": blocks or []}


@dataclass
class Pass:
    """One forward pass of one model on one image, and the columns drawn from it; ``made_by``
    names, for a collapsed block's column, the layer inside it that gave the block's output
    (a click there is explained as that layer's number: the same number, worked out);
    ``inner`` what each collapsed block met so far shows when opened, in order: the layers
    that ran inside it, or, where they are more than :data:`MAX_COLUMNS`, its children (each
    a block of its own where it holds layers). A block's columns and maps are made when first
    asked for."""

    explainer: Explainer
    columns: list[Column]
    collapsed: bool
    maps: dict[str, torch.Tensor]
    made_by: dict[str, str]
    inner: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    containers: set[str] = dataclasses.field(default_factory=set)
    _made: dict[str, Column] = dataclasses.field(default_factory=dict)

    def column(self, name: str) -> Column:
        """Column ``name``: shown, or inside a block (whose columns are made to find it)."""
        for column in self.columns:
            if column.name == name:
                return column
        searched: set[str] = set()
        while name not in self._made:
            waiting = [block for block in self.inner if block not in searched]
            if not waiting:
                raise ModelError(f"no column named {name!r} in the network view; the columns "
                                 f"are: {', '.join(c.name for c in self.columns[:40])}")
            for block in waiting:
                searched.add(block)
                self.block_columns(block)
        return self._made[name]

    def block_columns(self, block: str) -> list[Column]:
        """The columns collapsed block ``block`` shows when opened (made, with their maps, the
        first time; a block among them gets its own ``inner``)."""
        if block not in self.inner:
            blocks = ", ".join(self.inner) or "(none: the network is shown layer by layer)"
            raise ModelError(f"no collapsed block named {block!r} to open; the blocks are: "
                             f"{blocks}")
        made = []
        for name in self.inner[block]:
            if name not in self._made:
                found = _layer_maps(self.explainer, name)
                assert found is not None  # inner lists only layers that give maps
                self._made[name] = self._column(name, found, block)
            made.append(self._made[name])
        return made

    def _column(self, name: str, found: tuple[torch.Tensor, bool, str], block: str | None
                ) -> Column:
        """The column of layer or block ``name`` (its maps ``found``), inside ``block``; a
        container is a collapsed block: what it holds, and the layer that gave its output."""
        data, features, kind = found
        self.maps[name] = data
        count = 0
        if name in self.containers:
            self.inner[name] = _contents(self.explainer, name, self.containers)
            count = len(self.inner[name])
            by = _made_by(self.explainer, name, self.explainer.output(name), self.containers)
            if by is not None:
                self.made_by[name] = by
        return _column(name, kind, data, features, block=block, inner=count)

    def blocks_of(self, column: Column) -> list[str]:
        """The blocks ``column`` is inside, outermost first."""
        chain: list[str] = []
        block = column.block
        while block is not None:
            chain.insert(0, block)
            block = self._made[block].block if block in self._made else None
        return chain

    def shown(self, opened: list[str]) -> list[Column]:
        """The columns in order, each block named in ``opened`` as what it holds (a block
        inside it that is named too, opened as well)."""
        for block in opened:
            try:
                known = self.column(block).inner > 0
            except ModelError:
                known = False
            if not known:
                self.block_columns(block)  # raises: no such block
        wanted = set(opened)

        def expand(columns: list[Column]) -> list[Column]:
            out: list[Column] = []
            for column in columns:
                out += expand(self.block_columns(column.name)) if column.name in wanted \
                    and column.inner else [column]
            return out

        return expand(self.columns)


def _contents(explainer: Explainer, block: str, containers: set[str]) -> list[str]:
    """What block ``block`` shows when opened: the layers that ran inside it
    (:func:`_inside`), or where they are more than :data:`MAX_COLUMNS` its children that
    give maps, in the order they were registered."""
    layers = _inside(explainer, block, containers)
    if len(layers) <= MAX_COLUMNS:
        return layers
    module = explainer.opened.module.get_submodule(block)
    children = [f"{block}.{child}" for child, _ in module.named_children()]
    children = [name for name in children if _layer_maps(explainer, name) is not None]
    return children or layers


def _maps_of(output: torch.Tensor) -> tuple[torch.Tensor, bool] | None:
    """A layer's output ``(1, C, H, W)`` or ``(1, F)`` as maps ``(C, H, W)`` (features as
    ``(F, 1, 1)``) and whether it is features; None for any other shape."""
    if output.ndim == 4 and output.shape[0] == 1:
        return output[0].detach().to("cpu", torch.float32), False
    if output.ndim == 2 and output.shape[0] == 1:
        return output[0].detach().to("cpu", torch.float32)[:, None, None], True
    return None


def _layer_maps(explainer: Explainer, name: str) -> tuple[torch.Tensor, bool, str] | None:
    """Layer ``name``'s output as maps (:func:`_maps_of`), whether it is features, and the
    layer's kind; None where it did not run, gives no tensor or gives another shape."""
    try:
        output = explainer.output(name)
        kind = explainer.capture.get(name).op.name
    except ModelError:  # did not run for this input, or gives no tensor
        return None
    found = _maps_of(output)
    return None if found is None else (found[0], found[1], kind)


def _column(name: str, kind: str, data: torch.Tensor, features: bool,
            block: str | None = None, inner: int = 0) -> Column:
    """The column of maps ``data`` ``(C, H, W)``: channels most active first (the input's in
    their order)."""
    strength = data.abs().mean(dim=(1, 2))
    order = torch.argsort(strength, descending=True, stable=True).tolist()
    if name == INPUT:
        order = list(range(data.shape[0]))  # the image's channels in their order
    shape = tuple(int(s) for s in data.shape)
    return Column(name, kind, shape[:1] if features else shape, tuple(order), block, inner)


def _made_by(explainer: Explainer, block: str, output: torch.Tensor, containers: set[str]
             ) -> str | None:
    """The last layer (not a container) inside ``block`` (its name starts with ``block.``)
    whose output is exactly the block's ``output``: the layer that gave it (a resnet block's
    final ReLU)."""
    for name in reversed(list(explainer.capture.records)):
        if not name.startswith(block + ".") or name.split("#")[0] in containers:
            continue
        try:
            out = explainer.output(name)
        except ModelError:
            continue
        if out.shape == output.shape and torch.equal(out, output):
            return name
    return None


def _inside(explainer: Explainer, block: str, containers: set[str]) -> list[str]:
    """The layers that ran inside ``block``, in order: every record from the first to the
    last whose name is inside it (a function between them, such as a resnet block's ``add``,
    ran inside it too), containers and layers that give no maps left out."""
    ran = [name for name in explainer.capture.records if name.split("#")[0] not in containers]
    places = [i for i, name in enumerate(ran) if name.startswith(block + ".")]
    if not places:
        return []
    return [name for name in ran[places[0]:places[-1] + 1]
            if _layer_maps(explainer, name) is not None]


def _containers(module: nn.Module) -> set[str]:
    return {name for name, sub in module.named_modules() if next(sub.children(), None)}


def build_pass(opened, image: torch.Tensor) -> Pass:
    """Run the model once on ``image`` ``(C, H, W)`` and pick the columns (see the module).
    The recorded tensors are measured against the memory budget
    (:func:`convlens.limits.check_budget`): past it the view is refused in one line."""
    explainer = Explainer(opened, image)
    held = sum(t.numel() * t.element_size() for record in explainer.capture.records.values()
               for t in record.inputs)
    check_budget(2 * held, "the network view of this model on this image (every layer's "
                 "inputs and output, kept for clicks)")
    module = explainer.opened.module
    containers = _containers(module) if isinstance(module, nn.Module) else set()
    leaves = [name for name in explainer.layers() if name not in containers]
    collapsed = len(leaves) > MAX_COLUMNS
    names = leaves
    if collapsed:
        names = [name for name, _ in module.named_children()]
    maps: dict[str, torch.Tensor] = {INPUT: explainer.batch[0].detach().to("cpu", torch.float32)}
    made = Pass(explainer, [_column(INPUT, "input", maps[INPUT], False)], collapsed, maps, {},
                containers=containers if collapsed else set())
    for name in names:
        found = _layer_maps(explainer, name)
        if found is not None:
            made.columns.append(made._column(name, found, None))
    return made


def column_thumbnails(data: torch.Tensor, channels: list[int], display: int,
                      scale: ScaleMode) -> tuple[np.ndarray, list[dict], dict]:
    """The ``channels`` of maps ``data`` ``(C, H, W)`` as uint8 ``(k, h, w)`` (area-averaged to
    ``display`` px a side at most), each channel's numbers (:func:`.wire.quantize_map`'s), and
    the scale: per channel each map its own (:func:`.wire.quantize_map`), per layer one
    :func:`~convlens.plot.stages.display_norm` over the layer's shown maps (signed when any
    value of the layer is below 0)."""
    if scale is ScaleMode.CHANNEL:
        quantized = [quantize_map(data[c], display) for c in channels]
        stats = [{"channel": c, **s, "mean": float(data[c].mean())}
                 for c, (_, s) in zip(channels, quantized)]
        return np.stack([q for q, _ in quantized]), stats, {"mode": scale.value}
    full = data.numpy()
    signed = bool(full.min() < 0)
    shown, factor = downsample_for_display(full[channels], display)
    drawn, vmin, vmax = scale_for_display(shown, signed)
    stats = [{"channel": c, "shape": list(full.shape[1:]), "min": float(full[c].min()),
              "max": float(full[c].max()), "mean": float(full[c].mean()), "vmin": vmin,
              "vmax": vmax, "signed": signed, "cmap": "signed" if signed else "unsigned",
              "factor": factor} for c in channels]
    return drawn, stats, {"mode": scale.value, "vmin": vmin, "vmax": vmax, "signed": signed}


def read_cells(taps, size: int, mode: str) -> list[int]:
    """The cells of a map ``size`` long that a conv's ``taps`` (positions along one axis,
    outside ``[0, size)`` in the padding) read: a tap in zero padding reads none, in reflect,
    replicate or circular padding the cell the mode copies."""
    source, _ = padding_source(np.asarray(taps), size, PaddingMode(mode))
    return sorted({int(s) for s in source if s >= 0})


def previous_box(explanation, source: str | None) -> dict | None:
    """The cells of the layer ``source`` (the clicked layer's input) that the explained
    number reads, ``{"layer", "top", "bottom", "left", "right"}`` (inclusive, inside the map),
    or None where the layer does not read a window (a dense layer reads all of its input)."""
    if source is None:
        return None
    if isinstance(explanation, ConvExplanation):
        _, h, w = explanation.input_shape
        rows = read_cells(explanation.input_rows, h, explanation.padding_mode)
        cols = read_cells(explanation.input_cols, w, explanation.padding_mode)
    elif isinstance(explanation, PoolExplanation):
        rows, cols = list(explanation.rows), list(explanation.cols)
    elif isinstance(explanation, LinearExplanation) or explanation.y is None:
        return None
    else:  # the same place: batch norm, activations, adds, products, concatenations, ...
        rows, cols = [explanation.y], [explanation.x]
    if not rows or not cols:
        return None
    return {"layer": source, "top": min(rows), "bottom": max(rows), "left": min(cols),
            "right": max(cols)}


def photo_box(field: dict | None, photo: tuple[int, int], seen: tuple[int, int]
              ) -> dict | None:
    """A receptive field in the image as the model sees it (``seen`` ``(h, w)``: the photo
    resized whole to the model's input size, :func:`convlens.models.prepare_input`) as the
    photo's rows and cols (``photo`` ``(H, W)``, inclusive): the part of the photo those
    pixels cover (an antialiased resize's filter reaches a pixel or so past it)."""
    if field is None:
        return None
    (height, width), (h, w) = photo, seen
    return {"top": field["top"] * height // h,
            "bottom": -(-(field["bottom"] + 1) * height // h) - 1,
            "left": field["left"] * width // w,
            "right": -(-(field["right"] + 1) * width // w) - 1}


def _path(row: int, col: int) -> list[tuple[int, int]]:
    """Output positions from ``(0, 0)`` down to ``(row, 0)``, then along to ``(row, col)``:
    :data:`SLIDE_STEPS` at most, evenly spread, the last ``(row, col)``."""
    total = row + col
    count = min(SLIDE_STEPS, total + 1)
    path = []
    for i in range(count):
        step = total if count == 1 else round(i * total / (count - 1))
        path.append((step, 0) if step <= row else (row, step - row))
    return path


def slide_boxes(conv: ConvExplanation, source: str | None) -> dict | None:
    """The windows ``conv``'s kernel covers on its input map (layer ``source``) on its way to
    the explained number: ``{"layer", "boxes": [[top, bottom, left, right], ...]}``, one box
    per position of :func:`_path` (the cells its taps read, :func:`read_cells`, inclusive; a
    position whose taps all lie in zero padding is left out), the last the number's own window (as
    :func:`previous_box` gives it). None where the conv's input is not a map of a layer."""
    if source is None or conv.y is None or conv.x is None:
        return None
    _, h, w = conv.input_shape
    (sh, sw), (dh, dw) = conv.stride, conv.dilation
    top, _, left, _ = conv.pads
    kh, kw = conv.kernel.shape[1:]
    boxes = []
    for r, c in _path(conv.y, conv.x):
        rows = read_cells([r * sh - top + i * dh for i in range(kh)], h, conv.padding_mode)
        cols = read_cells([c * sw - left + j * dw for j in range(kw)], w, conv.padding_mode)
        if rows and cols:
            boxes.append([min(rows), max(rows), min(cols), max(cols)])
    return {"layer": source, "boxes": boxes} if boxes else None


class NetworkView:
    """The network view of the model open in ``models`` (:class:`.ModelPanel`): forward passes
    cached per (model, image id, working size); passes and explanations are serialized with
    the model panel's runs (hooks on one module are not re-entrant)."""

    def __init__(self, models: ModelPanel) -> None:
        self.models = models
        self._passes = LRU(EXPLAINERS_KEPT)
        self._lock = threading.Lock()
        self.passes_run = 0

    def _pass(self, image: torch.Tensor, key: tuple) -> Pass:
        opened = self.models.opened
        if opened is None:
            raise ModelError("no model is open: start with --model CKPT, or open one in the "
                             "model panel")
        cached = self._passes.get((id(opened), *key))
        if cached is not None and cached.explainer.opened is opened:
            return cached
        with self.models._lock:  # the panel's lock: one forward pass with hooks at a time
            made = build_pass(opened, image)
        self.passes_run += 1
        self._passes.put((id(opened), *key), made)
        return made

    def render(self, image: torch.Tensor, key: tuple, wanted: list[str] | None, top: int,
               display: int, scale: ScaleMode, opened: Sequence[str] = ()) -> bytes:
        """The packed view: ``header["layers"]`` every column (name, kind, shape, channels
        shown, the block it is in, how many layers a collapsed block holds), the blocks in
        ``opened`` shown as their layers, ``header["columns"]`` the thumbnails' numbers of
        the ``wanted`` columns (all shown when None, none when empty), array ``"maps:NAME"``
        uint8 ``(k, h, w)`` each."""
        check_top(top)
        made = self._pass(image, key)
        with self._lock:  # an opened block's columns are made once
            shown = made.shown(list(opened))
            if wanted is not None:
                for name in wanted:
                    made.column(name)
        header: dict = {
            "model": self.models.source, "collapsed": made.collapsed,
            "collapsed_words": (f"more than {MAX_COLUMNS} layers: each column is one of the "
                                "model's top-level blocks (open one to see its layers)"
                                if made.collapsed else ""),
            "open": [name for name in opened],
            "scale": scale.value, "scale_words": scale.words, "top": top,
            "top_words": f"the {top} most active channels of each layer (highest mean |value|)",
            "layers": [c.describe(top, made.blocks_of(c)) for c in shown], "columns": {}}
        arrays: dict[str, np.ndarray] = {}
        names = [c.name for c in shown] if wanted is None else wanted
        for name in names:
            column = made.column(name)
            channels = list(column.order[:top])
            tiles, stats, scaled = column_thumbnails(made.maps[name], channels, display, scale)
            header["columns"][name] = {"channels": stats, "scale": scaled}
            arrays[f"maps:{name}"] = tiles
        return pack(header, arrays)

    def explain(self, image: torch.Tensor, key: tuple, layer: str, channel: int,
                y: int | None, x: int | None, top: int) -> dict:
        """One number explained (:meth:`~convlens.activations.Explainer.explain`'s
        ``to_dict()``), with ``column`` (the column clicked: a collapsed block's number is
        explained as the number of the layer inside that gave it, ``layer``), ``image_shape``
        (the image as the model sees it, ``(C, H, W)``; ``receptive_field`` is in it),
        ``previous`` (:func:`previous_box`), ``photo_field`` (the receptive field on the
        page's photo, :func:`photo_box`), ``chain`` (the steps from the nearest conv,
        :func:`~convlens.activations.explain_chain`'s ``to_dict()``), ``slide`` (that
        conv's kernel on its way into place, :func:`slide_boxes`) and ``selected`` (the line
        that says so, :func:`selected_words`)."""
        made = self._pass(image, key)
        column = made.column(layer)
        if len(column.shape) == 1:
            y = x = None
        if layer == INPUT:
            raise ModelError("the input image is what the model reads: click a layer's cell")
        layer = made.made_by.get(layer, layer)  # a collapsed block: the layer that gave it
        with self._lock:
            chain = explain_chain(made.explainer, layer, channel, y, x, top=top)
            record = made.explainer.capture.get(layer)
            conv = chain.conv
            conv_sources = made.explainer.capture.get(conv.layer).sources if conv else []
        explanation = chain.last
        source = record.sources[0] if record.sources else None
        result = explanation.to_dict()
        result["chain"] = chain.to_dict()
        result["slide"] = slide_boxes(conv, conv_sources[0]) if conv and conv_sources \
            else None
        result["column"] = column.name
        result["image_shape"] = [int(s) for s in made.explainer.batch.shape[1:]]
        result["previous"] = previous_box(explanation, source)
        seen = made.explainer.input_size
        result["photo_field"] = photo_box(explanation.field,
                                          (int(image.shape[-2]), int(image.shape[-1])), seen)
        result["selected"] = selected_words(result)
        return result


def selected_words(result: dict) -> str:
    """The line under the view that says which number is chosen, what it reads in the layer
    before and its receptive field in the input, from :meth:`NetworkView.explain`'s
    ``result``."""
    column, layer = result["column"], result["layer"]
    named = layer if column == layer else f"{column} (given by {layer})"
    at = f"[{result['channel']}]" if result["y"] is None else \
        f"({result['channel']}, {result['y']}, {result['x']})"
    words = f"{named} ({result['kind']}) at {at} = {six(result['value'])}"
    field, previous = result["receptive_field"], result["previous"]
    if field:
        words += (f"; receptive field in the input: rows {field['top']}..{field['bottom']}, "
                  f"cols {field['left']}..{field['right']}")
    if previous:
        words += (f"; reads {previous['layer']} rows {previous['top']}..{previous['bottom']}, "
                  f"cols {previous['left']}..{previous['right']}")
    return words


def check_top(top: int) -> None:
    if not 1 <= top <= MAX_NETWORK_TOP:
        raise ConfigError(f"top must be 1..{MAX_NETWORK_TOP} channels per layer; got {top}")
