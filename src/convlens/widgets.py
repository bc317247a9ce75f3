"""A live explorer inside Jupyter: edit a kernel cell, watch every stage change.

>>> from convlens.widgets import explore
>>> explorer = explore()                      # the bundled photo, the tutorial's three kernels
>>> explorer                  # doctest: +ELLIPSIS
<convlens explorer: sample: chelsea; kernels sobel-h, laplacian, sobel-v...>

As the last line of a notebook cell, the explorer shows its controls.

The controls are the web page's (``convlens serve``) in notebook form: an image (a bundled
sample or an upload; gray or rgb; a display size), a grid of editable cells per kernel with a
preset picker and a text box for rows (``1 0 -1; 2 0 -2; 1 0 -1``), and the layer's stride,
padding, padding mode, dilation, activation and pooling. Every change recomputes the stages with
:func:`convlens.compute_stages` and redraws :func:`convlens.plot.plot_overview`. The probe (a
kernel, conv pixel or pooled cell, row and column) shows the arithmetic of that one number from
:func:`convlens.explain.explain_pixel` / :func:`~convlens.explain.explain_pooled`, the numbers
``convlens explain`` prints, and outlines where it comes from on the input. As on the web
page, hovering or clicking a pixel of a conv, activated or pooled map in the drawn stages points
the probe at it (that kernel, that pixel); this needs the small ``ipyevents`` package, since
ipywidgets images take no mouse events by themselves. Without it the row and column sliders, or
the "strongest" button, do the same. Nothing is computed here: every number comes from the
library.

Everything is reachable from code too (``explorer.editors[0].cells[0][1][1].value = 8``,
``explorer.stride.value = 2``), and ``explorer.stages`` / ``explorer.explanation`` hold what is
shown. Needs the ``widgets`` extra: ``pip install 'convlens[widgets]'``.

:func:`explore_network` does the same for any layer of a model (:class:`NetworkExplorer`):
pick a layer, a channel and a cell, or click the channel's map, and read how that number was
made (:func:`convlens.activations.explain_activation`'s words), after a conv step by step from
that conv (:func:`convlens.activations.explain_chain`), as the page and the CLI show it.
"""

from __future__ import annotations

import contextlib
import io
import math
import struct
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import ipywidgets as widgets
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "convlens.widgets needs ipywidgets, an optional extra: pip install 'convlens[widgets]'"
    ) from exc

try:  # optional: mouse events on the drawn maps; without it the sliders do the pointing
    from ipyevents import Event as DomEvent
except ImportError:  # pragma: no cover - depends on the environment
    DomEvent = None

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .config import Activation, LayerConfig, PaddingMode, PoolType
from .defaults import DEFAULT_MAX_SIDE, SCREEN_DPI, WORKING_SIDES
from .display import (
    esc,
    figure_png,
    pixel_explanation_html,
    pooled_explanation_html,
    stages_html,
)
from .errors import ConvlensError, ImageError
from .explain import PixelExplanation, PooledExplanation, explain_pixel, explain_pooled
from .images import (
    SAMPLES,
    ColorMode,
    ImageSource,
    display_factor,
    downsample_for_display,
    load_image,
    resize_max_side,
)
from .kernels import TUTORIAL_KERNELS, Kernel, get_kernel, list_kernels, parse_kernel
from .layers import Stages, compute_stages
from .plot import plot_overview
from .plot.stages import OVERVIEW_COLUMNS, OVERVIEW_MAX_SIDE, display_norm

if TYPE_CHECKING:
    from .activations import ActivationExplanation, Chain

GRID_MAX_SIDE = 11
"""Largest kernel side the grid editor offers (larger kernels given in code still show)."""


MAX_STEP = 8
MAX_PADDING = 8
MAX_DILATION = 6
POOL_SIZES = (2, 3, 4, 5, 6)

HOVER_WAIT_MS = 120
"""Hover events reach Python at most once per this many milliseconds (each one redraws the
probe); clicks are never throttled."""

_GIVEN = "__given__"
_UPLOADED = "__uploaded__"
_CUSTOM = "(custom)"
_CELL_WIDTH = "4.6em"


class KernelEditor:
    """One kernel: a preset picker, its size, a text box for rows and a grid of number cells.

    ``cells[channel][row][col]`` are ``FloatText`` widgets (one grid per channel: 1 for gray
    kernels, 3 for RGB ones). The exact weights live in :attr:`weights` ``(C, kh, kw)``; a cell
    shows its weight rounded to 6 digits and writes back only when the user edits it. Each
    change calls ``on_change``.
    """

    def __init__(
        self,
        kernel: Kernel,
        on_change: Callable[[], None],
        on_remove: Callable[[KernelEditor], None],
        on_error: Callable[[str], None],
    ) -> None:
        self._on_change = on_change
        self._on_error = on_error
        self._quiet = False
        self.weights = np.array(kernel.weights, dtype=np.float32)
        self._base = self.weights.copy()
        self.name = kernel.name
        presets = list_kernels()
        self.preset = widgets.Dropdown(
            options=[_CUSTOM, *presets],
            value=kernel.name if kernel.name in presets else _CUSTOM,
            description="kernel", layout=widgets.Layout(width="220px"),
            style={"description_width": "45px"},
        )
        side_options = list(range(1, max(GRID_MAX_SIDE, *kernel.size) + 1))
        self.rows = widgets.Dropdown(options=side_options, value=kernel.size[0],
                                     description="size", layout=widgets.Layout(width="110px"),
                                     style={"description_width": "32px"})
        self.cols = widgets.Dropdown(options=side_options, value=kernel.size[1],
                                     description="x", layout=widgets.Layout(width="85px"),
                                     style={"description_width": "12px"})
        self.text = widgets.Text(placeholder="or type rows: 1 0 -1; 2 0 -2; 1 0 -1",
                                 continuous_update=False, layout=widgets.Layout(width="300px"))
        self.remove = widgets.Button(description="remove", tooltip="remove this kernel",
                                     layout=widgets.Layout(width="80px"))
        self.grids = widgets.HBox()
        self.cells: list[list[list[widgets.FloatText]]] = []
        self.box = widgets.VBox(
            [widgets.HBox([self.preset, self.rows, self.cols, self.remove]), self.text,
             self.grids],
            layout=widgets.Layout(border="1px solid #ccc", padding="4px", margin="2px"),
        )
        self.preset.observe(self._preset_changed, "value")
        self.rows.observe(self._size_changed, "value")
        self.cols.observe(self._size_changed, "value")
        self.text.observe(self._text_entered, "value")
        self.remove.on_click(lambda _: on_remove(self))
        self._build_grid()

    def kernel(self) -> Kernel:
        """The kernel as the cells hold it (validated by the library's parser)."""
        parsed = parse_kernel(self.weights)
        description = get_kernel(self.name).description if self.name in list_kernels() else ""
        return Kernel(self.name, parsed.weights, description)

    def set_kernel(self, kernel: Kernel | str) -> None:
        """Show ``kernel`` (a :class:`Kernel` or any spec :func:`parse_kernel` takes)."""
        kernel = parse_kernel(kernel)
        self.weights = np.array(kernel.weights, dtype=np.float32)
        self._base = self.weights.copy()
        self.name = kernel.name
        with self._silent():
            self.preset.value = kernel.name if kernel.name in self.preset.options else _CUSTOM
            for picker, side in ((self.rows, kernel.size[0]), (self.cols, kernel.size[1])):
                if side not in picker.options:
                    picker.options = list(range(1, side + 1))
                picker.value = side
        self._build_grid()
        self._on_change()

    @contextlib.contextmanager
    def _silent(self) -> Iterator[None]:
        previous, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = previous

    def _build_grid(self) -> None:
        channels, height, width = self.weights.shape
        labels = ("R", "G", "B") if channels == 3 else ("",)
        self.cells = []
        boxes = []
        with self._silent():
            for channel in range(channels):
                grid = []
                for row in range(height):
                    line = []
                    for col in range(width):
                        cell = widgets.FloatText(
                            value=round(float(self.weights[channel, row, col]), 6),
                            layout=widgets.Layout(width=_CELL_WIDTH, margin="0"),
                        )
                        cell.observe(self._cell_edited(channel, row, col), "value")
                        line.append(cell)
                    grid.append(line)
                self.cells.append(grid)
                layout = widgets.Layout(grid_template_columns=f"repeat({width}, {_CELL_WIDTH})",
                                        grid_gap="1px")
                flat = [cell for line in grid for cell in line]
                title = widgets.HTML(f"<b>{labels[channel]}</b>") if labels[channel] else None
                boxes.append(widgets.VBox([*([title] if title else []),
                                           widgets.GridBox(flat, layout=layout)]))
        self.grids.children = boxes

    def _cell_edited(self, channel: int, row: int, col: int) -> Callable[[dict], None]:
        def handler(change: dict) -> None:
            if self._quiet:
                return
            self.weights[channel, row, col] = float(change["new"])
            self._base = self.weights.copy()
            if not self.name.endswith("(edited)"):
                self.name = f"{self.name} (edited)"
            with self._silent():
                self.preset.value = _CUSTOM
            self._on_change()

        return handler

    def _preset_changed(self, change: dict) -> None:
        if self._quiet or change["new"] == _CUSTOM:
            return
        self.set_kernel(get_kernel(change["new"]))

    def _size_changed(self, _change: dict) -> None:
        if self._quiet:
            return
        # resize the last kernel the user set (not the previous size), so 3 -> 4 -> 5 ends
        # with the 3x3 centred in the 5x5; crop or pad with zeros around the centre
        channels, height, width = self._base.shape
        new_h, new_w = self.rows.value, self.cols.value
        resized = np.zeros((channels, new_h, new_w), dtype=np.float32)
        top, left = (new_h - height) // 2, (new_w - width) // 2
        src_r = slice(max(0, -top), max(0, -top) + min(height, new_h))
        src_c = slice(max(0, -left), max(0, -left) + min(width, new_w))
        dst_r = slice(max(0, top), max(0, top) + min(height, new_h))
        dst_c = slice(max(0, left), max(0, left) + min(width, new_w))
        resized[:, dst_r, dst_c] = self._base[:, src_r, src_c]
        self.weights = resized
        self.name = f"custom {new_h}x{new_w}"
        with self._silent():
            self.preset.value = _CUSTOM
        self._build_grid()
        self._on_change()

    def _text_entered(self, change: dict) -> None:
        text = change["new"].strip()
        if self._quiet or not text:
            return
        try:
            kernel = parse_kernel(text)
        except ConvlensError as exc:
            self._on_error(str(exc))
            return
        self.set_kernel(kernel)


class Explorer:
    """The live explorer (see the module docstring). Display it as the last line of a cell.

    Attributes worth knowing: :attr:`stages` (the :class:`~convlens.layers.Stages` drawn now),
    :attr:`explanation` (the probe's :class:`~convlens.explain.PixelExplanation` or
    :class:`~convlens.explain.PooledExplanation`), :attr:`editors` (one
    :class:`KernelEditor` per kernel), :attr:`error` (the last problem shown, or ``""``),
    :attr:`panels` (where each map lies in the drawn PNG, one :class:`MapPanel` each),
    :attr:`map_events` (the ipyevents watchers on ``maps`` calling :meth:`point_at`; empty
    without ipyevents), and the widgets themselves: ``sample, upload, mode, max_side, stride,
    padding, padding_mode, dilation, activation, pool, pool_type, pool_stride, probe_kernel,
    probe_stage, probe_row, probe_col, maps, locator, readout, status``.

    ``max_side`` is the working size: the image is computed at its own size by default
    (:data:`convlens.defaults.DEFAULT_MAX_SIDE`, as the CLI and the page compute it, so a
    probed pixel's numbers are theirs): drawing the overview, at most
    :data:`~convlens.plot.stages.OVERVIEW_MAX_SIDE` px a map whatever the working size, takes
    most of an edit's time. A smaller longer side can be picked in
    the image controls; the status line then says both sizes. :attr:`image_size` is the
    image's own ``(H, W)``.
    """

    def __init__(
        self,
        image: ImageSource | None = None,
        kernels: Sequence[Kernel | str] = TUTORIAL_KERNELS,
        config: LayerConfig | None = None,
        *,
        mode: str | ColorMode = ColorMode.GRAY,
        max_side: int | None = DEFAULT_MAX_SIDE,
        device: str | torch.device = "auto",
    ) -> None:
        config = config or LayerConfig()
        self.device = device
        self.stages: Stages | None = None
        self.explanation: PixelExplanation | PooledExplanation | None = None
        self.error = ""
        self._failure: ConvlensError | None = None
        self._bias = config.bias
        self._hold = 0
        self._pending: set[str] = set()
        self._given = image
        self._upload: tuple[str, bytes] | None = None
        self._image_key: tuple | None = None
        self._image: torch.Tensor | None = None

        self._build_image_controls(image, mode, max_side)
        self._build_layer_controls(config)
        self.editors: list[KernelEditor] = []
        self.kernel_box = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.add = widgets.Button(description="add kernel", tooltip="add an identity kernel")
        self.add.on_click(lambda _: self.add_kernel())
        self._build_probe_controls()
        self.status = widgets.HTML()
        self.maps = widgets.Image(format="png")
        self.locator = widgets.Image(format="png")
        self.readout = widgets.HTML()
        self.panels: list[MapPanel] = []
        self._png_size = (0, 0)
        self.map_events = self._watch_maps()
        with self.batch():
            for spec in kernels:
                self.add_kernel(spec)
        self.ui = widgets.VBox([
            widgets.HBox([self._image_panel, self._layer_panel]),
            widgets.HTML("<b>Kernels</b> (edit any cell; a preset or typed rows replace it)"),
            widgets.VBox([self.kernel_box, self.add]),
            self.status,
            self.maps,
            widgets.HTML(_PROBE_HELP if DomEvent is not None else _PROBE_HELP_NO_EVENTS),
            self._probe_panel,
            widgets.HBox([self.readout, self.locator]),
        ])
        if self.stages is None and self._failure is not None:
            raise self._failure  # bad starting image, kernels or settings: say so at once

    # ----------------------------------------------------------------- public

    @property
    def kernels(self) -> list[Kernel]:
        """The kernels as the grids hold them now."""
        return [editor.kernel() for editor in self.editors]

    @property
    def config(self) -> LayerConfig:
        """The layer settings the controls describe (validated by :class:`LayerConfig`)."""
        return LayerConfig(
            stride=self.stride.value, padding=self.padding.value,
            padding_mode=self.padding_mode.value, dilation=self.dilation.value,
            activation=self.activation.value, pool=self.pool.value,
            pool_type=self.pool_type.value, pool_stride=self.pool_stride.value,
            bias=self._bias,
        )

    @property
    def image(self) -> torch.Tensor:
        """The image ``(C, H, W)`` in [0, 1] as loaded with the current image settings."""
        source, key = self._source()
        if key != self._image_key or self._image is None:
            self._image = self._load(source)
            self._image_key = key
        return self._image

    def add_kernel(self, spec: Kernel | str = "identity") -> KernelEditor:
        """Add a kernel editor holding ``spec`` (a name, inline rows, or a :class:`Kernel`)."""
        editor = KernelEditor(parse_kernel(spec), self.refresh, self.remove_kernel,
                              self._show_error)
        self.editors.append(editor)
        self.kernel_box.children = [e.box for e in self.editors]
        self.refresh()
        return editor

    def remove_kernel(self, editor: KernelEditor | int) -> None:
        """Remove a kernel (by editor or index); the last one stays."""
        if isinstance(editor, int):
            editor = self.editors[editor]
        if len(self.editors) == 1:
            self._show_error("a layer needs at least one kernel")
            return
        self.editors.remove(editor)
        self.kernel_box.children = [e.box for e in self.editors]
        self.refresh()

    def probe(self, row: int, col: int, kernel: int | None = None, stage: str = "conv") -> None:
        """Point the probe at ``(row, col)`` of ``stage`` (``conv`` or ``pooled``)."""
        with self.batch():
            if kernel is not None:
                self.probe_kernel.value = kernel
            self.probe_stage.value = stage
            self.probe_row.value = row
            self.probe_col.value = col

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Change several controls, then recompute once (only the probe, if only it moved)."""
        self._hold += 1
        try:
            yield
        finally:
            self._hold -= 1
            if self._hold == 0:
                pending, self._pending = self._pending, set()
                if "refresh" in pending:
                    self.refresh()
                elif "explain" in pending:
                    self.explain()

    def refresh(self, _change: dict | None = None) -> None:
        """Recompute the stages and redraw everything (the controls call this on each change)."""
        if self._hold:
            self._pending.add("refresh")
            return
        try:
            image = self.image
            stages = compute_stages(image, self.kernels, self.config, self.device)
        except ConvlensError as exc:
            self._failure = exc
            self._show_error(str(exc))
            return
        self.error = ""
        self._failure = None
        self.stages = stages
        figure = plot_overview(stages, OVERVIEW_MAX_SIDE)
        figure.set_dpi(SCREEN_DPI)  # so axes extents are in the PNG's pixels
        # the PNG must be the whole figure for map_panels' coordinates: no tight cropping
        with matplotlib.rc_context({"savefig.bbox": "standard"}):
            png = figure_png(figure, SCREEN_DPI)
        self.maps.value = png
        self._png_size = struct.unpack(">II", png[16:24])  # width, height from the IHDR chunk
        self.panels = map_panels(figure, stages, OVERVIEW_MAX_SIDE)
        self.status.value = f"<div>{self._sizes_html(image)}{stages_html(stages)}</div>"
        self._sync_probe_controls()
        self.explain()

    def explain(self, _change: dict | None = None) -> None:
        """Redo the probe's explanation for the current stages (the probe controls call this)."""
        if self._hold:
            self._pending.add("explain")
            return
        stages = self.stages
        if stages is None:
            return
        kernel = self.probe_kernel.value
        row, col = self.probe_row.value, self.probe_col.value
        name = stages.kernel_names[kernel]
        try:
            if self.probe_stage.value == "pooled":
                pooled = explain_pooled(stages.input, stages.kernels, stages.config, kernel,
                                        row, col, kernel_name=name)
                self.readout.value = pooled_explanation_html(pooled)
                explanation: PixelExplanation | PooledExplanation = pooled
            else:
                explanation = explain_pixel(stages.input, stages.kernels, stages.config, kernel,
                                            row, col, kernel_name=name)
                self.readout.value = pixel_explanation_html(explanation)
        except ConvlensError as exc:
            self.readout.value = _error_html(str(exc))
            return
        self.explanation = explanation
        self.locator.value = figure_png(plot_probe(stages, explanation))

    def point_at(self, event: dict) -> tuple[int, str, int, int] | None:
        """Point the probe at the map pixel under a mouse event on the drawn maps.

        ``event`` is what ipyevents sends (``type``, ``relativeX``/``relativeY`` in screen pixels
        from the image's top left corner with ``boundingRectWidth``/``boundingRectHeight``, the
        image's size on screen, and for images ``dataX``/``dataY``, the same point in the PNG's
        own pixels). Over a conv or activated map this selects that kernel and conv pixel; over
        a pooled map, that pooled cell (the conv pixel when there is no pooling). Returns
        ``(kernel, stage, row, col)``, or None (and changes nothing) anywhere else.
        """
        point = self._png_point(event)
        if point is None:
            return None
        for panel in self.panels:
            cell = panel.cell(*point)
            if cell is not None:
                self.probe(cell[0], cell[1], kernel=panel.kernel, stage=panel.stage)
                return panel.kernel, panel.stage, cell[0], cell[1]
        return None

    def _repr_mimebundle_(self, **kwargs) -> dict:
        bundle = self.ui._repr_mimebundle_(**kwargs)
        # what a page without the widget front end (nbviewer, GitHub, a terminal) shows
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        names = ", ".join(self.stages.kernel_names) if self.stages is not None else "no stages"
        return (f"<convlens explorer: {self.sample.label}; kernels {names}; live controls need "
                "Jupyter with ipywidgets>")

    # ----------------------------------------------------------------- building

    def _build_image_controls(self, image, mode, max_side) -> None:
        options = [(f"sample: {name}", name) for name in SAMPLES]
        if image is not None:
            label = f"your image: {Path(image).name}" if isinstance(image, (str, Path)) else (
                "your image")
            options.insert(0, (label, _GIVEN))
        self.sample = widgets.Dropdown(options=options, value=options[0][1],
                                       description="image")
        self.upload = widgets.FileUpload(accept="image/*", multiple=False,
                                         description="upload")
        self.mode = widgets.ToggleButtons(options=[m.value for m in ColorMode],
                                          value=ColorMode(mode).value, description="mode",
                                          style={"button_width": "60px"})
        sides = sorted({*WORKING_SIDES, *([max_side] if max_side else [])})
        self.max_side = widgets.Dropdown(
            options=[(f"{side} px", side) for side in sides] + [("full size", None)],
            value=max_side, description="longer side",
        )
        for control in (self.sample, self.mode, self.max_side):
            control.observe(self.refresh, "value")
        self.upload.observe(self._uploaded, "value")
        self._image_panel = widgets.VBox([self.sample, self.upload, self.mode, self.max_side])

    def _build_layer_controls(self, config: LayerConfig) -> None:
        short = {"description_width": "90px"}
        self.stride = widgets.IntSlider(value=config.stride, min=1,
                                        max=max(MAX_STEP, config.stride), description="stride",
                                        continuous_update=False, style=short)
        padding_options: list = [("valid (0)", 0), ("same", "same")]
        padding_options += [(str(p), p) for p in range(1, MAX_PADDING + 1)]
        if config.padding not in [value for _, value in padding_options]:
            padding_options.append((str(config.padding), config.padding))
        self.padding = widgets.Dropdown(options=padding_options, value=config.padding,
                                        description="padding", style=short)
        self.padding_mode = widgets.Dropdown(options=[m.value for m in PaddingMode],
                                             value=config.padding_mode.value,
                                             description="padding mode", style=short)
        self.dilation = widgets.IntSlider(value=config.dilation, min=1,
                                          max=max(MAX_DILATION, config.dilation),
                                          description="dilation", continuous_update=False,
                                          style=short)
        self.activation = widgets.Dropdown(options=[a.value for a in Activation],
                                           value=config.activation.value,
                                           description="activation", style=short)
        pools = sorted({*POOL_SIZES, *([config.pool] if config.pool else [])})
        self.pool = widgets.Dropdown(options=[("none", None)] + [(f"{p}x{p}", p) for p in pools],
                                     value=config.pool, description="pool", style=short)
        self.pool_type = widgets.ToggleButtons(options=[p.value for p in PoolType],
                                               value=config.pool_type.value,
                                               description="pool type", style=short)
        strides = sorted({*range(1, MAX_STEP + 1), *([config.pool_stride] if config.pool_stride
                                                     else [])})
        self.pool_stride = widgets.Dropdown(
            options=[("= window", None)] + [(str(s), s) for s in strides],
            value=config.pool_stride, description="pool stride", style=short,
        )
        controls = (self.stride, self.padding, self.padding_mode, self.dilation,
                    self.activation, self.pool, self.pool_type, self.pool_stride)
        for control in controls:
            control.observe(self.refresh, "value")
        self._layer_panel = widgets.VBox(list(controls))

    def _build_probe_controls(self) -> None:
        self.probe_kernel = widgets.Dropdown(options=[("kernel 1", 0)], value=0,
                                             description="kernel")
        self.probe_stage = widgets.ToggleButtons(
            options=[("conv pixel", "conv"), ("pooled cell", "pooled")], value="conv",
            description="explain")
        self.probe_row = widgets.IntSlider(min=0, max=0, value=0, description="row",
                                           continuous_update=False)
        self.probe_col = widgets.IntSlider(min=0, max=0, value=0, description="col",
                                           continuous_update=False)
        self.strongest = widgets.Button(description="strongest",
                                        tooltip="jump to the largest value of this map")
        self.strongest.on_click(lambda _: self._jump_to_strongest())
        for control in (self.probe_kernel, self.probe_stage, self.probe_row, self.probe_col):
            control.observe(self._probe_changed, "value")
        self._probe_panel = widgets.VBox([
            widgets.HBox([self.probe_kernel, self.probe_stage, self.strongest]),
            widgets.HBox([self.probe_row, self.probe_col]),
        ])

    # ----------------------------------------------------------------- internals

    def _watch_maps(self) -> list:
        """ipyevents watchers on the maps image: clicks as they come, hovering throttled (two
        watchers, so a throttled hover can never swallow a click)."""
        if DomEvent is None:
            return []
        click = DomEvent(source=self.maps, watched_events=["click"])
        hover = DomEvent(source=self.maps, watched_events=["mousemove"],
                         throttle_or_debounce="throttle", wait=HOVER_WAIT_MS)
        for watcher in (click, hover):
            watcher.on_dom_event(self.point_at)
        return [click, hover]

    def _png_point(self, event: dict) -> tuple[float, float] | None:
        """The event's position in the maps PNG's pixels (x right, y down), or None."""
        png_w, png_h = self._png_size
        try:
            if event.get("dataX") is not None and event.get("dataY") is not None:
                return float(event["dataX"]), float(event["dataY"])
            shown_w, shown_h = float(event["boundingRectWidth"]), float(event["boundingRectHeight"])
            x, y = float(event["relativeX"]), float(event["relativeY"])
        except (KeyError, TypeError, ValueError):
            return None
        if shown_w <= 0 or shown_h <= 0 or not png_w:
            return None
        return x * png_w / shown_w, y * png_h / shown_h

    def _probe_changed(self, change: dict) -> None:
        if change["owner"] is self.probe_stage:
            self._sync_probe_controls()
        self.explain()

    def _sync_probe_controls(self) -> None:
        """Fit the probe's choices to the current stages without firing a refresh each."""
        stages = self.stages
        if stages is None:
            return
        pending, self._hold = set(self._pending), self._hold + 1
        try:
            options = [(name, index) for index, name in enumerate(stages.kernel_names)]
            if list(self.probe_kernel.options) != options:
                kernel = min(self.probe_kernel.value or 0, len(options) - 1)
                self.probe_kernel.options = options
                self.probe_kernel.value = kernel
            if stages.config.pool is None and self.probe_stage.value == "pooled":
                self.probe_stage.value = "conv"
            self.probe_stage.disabled = stages.config.pool is None
            shape = (stages.pooled if self.probe_stage.value == "pooled" else stages.conv).shape
            for slider, size in ((self.probe_row, shape[1]), (self.probe_col, shape[2])):
                slider.value = min(slider.value, size - 1)
                slider.max = size - 1
        finally:
            self._hold -= 1
            self._pending = pending

    def _jump_to_strongest(self) -> None:
        stages = self.stages
        if stages is None:
            return
        maps = stages.pooled if self.probe_stage.value == "pooled" else stages.conv
        data = maps[self.probe_kernel.value]
        row, col = divmod(int(torch.argmax(data.abs()).item()), data.shape[1])
        self.probe(row, col, stage=self.probe_stage.value)

    def _source(self) -> tuple[ImageSource | tuple[str, bytes], tuple]:
        choice = self.sample.value
        source: ImageSource | tuple[str, bytes]
        ident: tuple
        if choice == _GIVEN and self._given is not None:
            source, ident = self._given, ("given", id(self._given))
        elif choice == _UPLOADED and self._upload is not None:
            source, ident = self._upload, ("upload", self._upload[0], len(self._upload[1]))
        else:
            from .images import sample_path

            source, ident = sample_path(choice), ("sample", choice)
        return source, (*ident, self.mode.value, self.max_side.value)

    def _load(self, source) -> torch.Tensor:
        mode, max_side = self.mode.value, self.max_side.value
        if isinstance(source, tuple):
            name, content = source
            # through a file, so uploads get the same checks as files (bombs, truncation)
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / Path(name).name
                path.write_bytes(content)
                try:
                    return self._shrunk(load_image(path, mode), max_side)
                except ImageError as exc:
                    raise ImageError(str(exc).replace(str(path), path.name)) from None
        return self._shrunk(load_image(source, mode), max_side)

    def _shrunk(self, image: torch.Tensor, max_side: int | None) -> torch.Tensor:
        """``image`` at the working size, its own size kept in :attr:`image_size`."""
        height, width = image.shape[-2:]
        self.image_size = (int(height), int(width))
        return image if max_side is None else resize_max_side(image, max_side)

    def _uploaded(self, change: dict) -> None:
        files = change["new"]
        if not files:
            return
        item = files[0]
        self._upload = (str(item["name"]), bytes(item["content"]))
        label = f"uploaded: {item['name']}"
        options = [opt for opt in self.sample.options if opt[1] != _UPLOADED]
        with self.batch():
            self.sample.options = [(label, _UPLOADED), *options]
            self.sample.value = _UPLOADED
            self._image_key = None
            self.refresh()

    def _sizes_html(self, image: torch.Tensor) -> str:
        """The image's own size and the size it is computed at, as the page says them."""
        height, width = self.image_size
        own = f"image {width}x{height} px"
        if tuple(image.shape[-2:]) == (height, width):
            return f"<p>{own}, computed at its own size</p>"
        shrunk = f"{int(image.shape[-1])}x{int(image.shape[-2])}"
        return (f"<p>{own}, computed at {shrunk} (longer side {self.max_side.value} px); "
                "full size gives the image's own numbers</p>")

    def _show_error(self, message: str) -> None:
        self.error = message
        table = stages_html(self.stages) if self.stages is not None else ""
        self.status.value = _error_html(message + (" (the maps below are from the last "
                                                   "settings that worked)" if table else ""))


def explore(image: ImageSource | None = None,
            kernels: Sequence[Kernel | str] = TUTORIAL_KERNELS,
            config: LayerConfig | None = None, **options: Any) -> Explorer:
    """Build an :class:`Explorer` on ``image`` (default: the bundled photo) and ``kernels``.

    ``image`` is anything :func:`convlens.load_image` takes (path, array, PIL image, tensor);
    ``kernels`` any specs :func:`convlens.parse_kernel` takes; ``config`` the starting layer
    settings; ``options`` the explorer's own: ``mode``, ``max_side`` (pixels, or None: full
    size, the default, as everywhere in convlens) and ``device``.
    """
    return Explorer(image, kernels, config, **options)


@dataclass(frozen=True)
class MapPanel:
    """Where one map of the overview PNG lies, to turn a point on the image into a map pixel.

    ``left, top, right, bottom`` bound the drawn map in PNG pixels (x right, y down);
    ``shape`` is the full map's ``(H, W)``; ``factor`` the display downsampling (one drawn
    pixel covers ``factor x factor`` map pixels, fewer at the right and bottom edges).
    ``stage`` is what the probe explains there: ``conv`` or ``pooled``.
    """

    kernel: int
    stage: str
    left: float
    top: float
    right: float
    bottom: float
    shape: tuple[int, int]
    factor: int

    def cell(self, x: float, y: float) -> tuple[int, int] | None:
        """The map pixel ``(row, col)`` under PNG point ``(x, y)``, or None outside the map."""
        if not (self.left <= x < self.right and self.top <= y < self.bottom):
            return None
        height, width = self.shape
        drawn_h, drawn_w = math.ceil(height / self.factor), math.ceil(width / self.factor)
        col = int((x - self.left) / (self.right - self.left) * drawn_w * self.factor)
        row = int((y - self.top) / (self.bottom - self.top) * drawn_h * self.factor)
        return min(row, height - 1), min(col, width - 1)


def map_panels(figure: Figure, stages: Stages, max_side: int = OVERVIEW_MAX_SIDE
               ) -> list[MapPanel]:
    """The conv, activated and pooled panels of ``figure``, a :func:`plot_overview` of
    ``stages`` drawn with ``max_side``, in pixels of the figure as last saved (its dpi).

    Call after the figure is drawn (saved): constrained layout and the equal aspect of the
    images place the axes only then.
    """
    height = figure.bbox.height
    pooled_stage = "pooled" if stages.config.pool is not None else "conv"
    panels = []
    for kernel in range(len(stages.kernel_names)):
        for name, stage in (("conv", "conv"), ("activated", "conv"), ("pooled", pooled_stage)):
            index = kernel * len(OVERVIEW_COLUMNS) + OVERVIEW_COLUMNS.index(name)
            box = figure.axes[index].images[0].get_window_extent()  # the map, not its frame
            shape = tuple(getattr(stages, name).shape[1:])
            panels.append(MapPanel(kernel, stage, box.x0, height - box.y1, box.x1,
                                   height - box.y0, shape, display_factor(shape, max_side)))
    return panels


def plot_probe(stages: Stages, explanation: PixelExplanation | PooledExplanation) -> Figure:
    """Where a probed number comes from: the input with the kernel's footprint outlined, and the
    conv (or pooled) map with the probed position marked. Coordinates are those of the full
    maps; large maps are drawn shrunk, the outlines stay in place."""
    pooled = isinstance(explanation, PooledExplanation)
    name = "pooled" if pooled else "conv"
    maps = stages.pooled if pooled else stages.conv
    kernel = explanation.kernel
    field = explanation.receptive_field
    figure = Figure(figsize=(6.4, 3.0), layout="constrained")
    left, right = figure.subplots(1, 2)
    image = stages.input.numpy()
    shown, _ = downsample_for_display(image, 320)
    height, width = image.shape[1:]
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    if image.shape[0] == 1:
        left.imshow(shown[0], cmap="gray", vmin=0, vmax=1, extent=extent,
                    interpolation="nearest")
    else:
        left.imshow(np.clip(shown.transpose(1, 2, 0), 0, 1), extent=extent,
                    interpolation="nearest")
    _outline(left, field["top"], field["left"], field["bottom"], field["right"], width, height)
    left.set_title(f"input {height}x{width}: rows {field['top']}..{field['bottom']}, "
                   f"cols {field['left']}..{field['right']}", fontsize=8)
    data = maps[kernel].numpy()
    map_h, map_w = data.shape
    drawn, _ = downsample_for_display(data[None], 320)
    norm, cmap = display_norm(drawn[0], signed=name == "conv" or bool(data.min() < 0))
    right.imshow(drawn[0], cmap=cmap, norm=norm, interpolation="nearest",
                 extent=(-0.5, map_w - 0.5, map_h - 0.5, -0.5))
    row, col = explanation.row, explanation.col
    _outline(right, row, col, row, col, map_w, map_h)
    right.set_title(f"{name} of {stages.kernel_names[kernel]} {map_h}x{map_w}: ({row}, {col}) = "
                    f"{explanation.value:.4g}", fontsize=8)
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    return figure


def _outline(ax, top: int, left: int, bottom: int, right: int, width: int, height: int) -> None:
    """A box around cells ``top..bottom`` x ``left..right`` that stays visible when tiny."""
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1,
                           fill=False, edgecolor="#ffcc00", linewidth=1.5))
    # crosshair so a box of a few pixels on a large image can still be found
    centre_r, centre_c = (top + bottom) / 2, (left + right) / 2
    ax.axhline(centre_r, color="#ffcc00", linewidth=0.6, alpha=0.6)
    ax.axvline(centre_c, color="#ffcc00", linewidth=0.6, alpha=0.6)
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)


_PROBE_HELP = ("<b>Probe one number</b>: hover or click a pixel of a conv, activated or pooled "
               "map above, or pick a kernel and a pixel of its conv map or a cell of its pooled "
               "map here")
_PROBE_HELP_NO_EVENTS = ("<b>Probe one number</b>: pick a kernel and a pixel of its conv map or "
                         "a cell of its pooled map (<code>pip install ipyevents</code> lets you "
                         "click and hover the maps above instead)")


def _error_html(message: str) -> str:
    return (f'<div class="convlens-error" title="error" style="color: #c00; font-weight: bold">'
            f"{esc(message)}</div>")


# --------------------------------------------------------------------------- the network view

NETWORK_MAP_SIDE = 192
"""Screen pixels of the longer side of the network view's map (small maps are enlarged)."""


class NetworkExplorer:
    """Any number of any layer of a model, explained in a notebook: pick a layer, a channel and
    a cell (or click the channel's map, with ``ipyevents``) and read its arithmetic, worked out
    by :meth:`convlens.activations.Explainer.explain` (the words ``convlens explain MODEL
    IMAGE --layer ...`` prints). A number after a conv (batch norm, activation, max pool, ...)
    is shown step by step from that conv, as the page and the CLI show it
    (:func:`~convlens.activations.explain_chain`): ``steps`` holds the chain's words and the
    steps before the number, ``readout`` the number's own step. The model runs once on the
    image; each pick explains one number of that run.

    Attributes: :attr:`explainer`, :attr:`chain` (the steps to the number shown),
    :attr:`explanation` (the number shown, the chain's last step), :attr:`error`, and the
    widgets ``layer, channel, row, col, map, steps, readout``."""

    def __init__(self, model, image, layer: str | None = None, *, top: int = 8) -> None:
        from .activations import Explainer

        self.explainer = Explainer(model, image)
        self.top = top
        self.shapes: dict[str, tuple[int, ...]] = {}
        for name in self.explainer.layers():
            try:
                out = self.explainer.output(name)
            except ConvlensError:  # a container, or a layer that did not run
                continue
            if out.ndim in (2, 4) and out.shape[0] == 1:
                self.shapes[name] = tuple(int(v) for v in out.shape[1:])
        if not self.shapes:
            raise ImageError("this model gives no layer output (N, C, H, W) or (N, features) "
                             "to explain")
        first = layer or next((n for n, s in self.shapes.items() if len(s) == 3),
                              next(iter(self.shapes)))
        self.chain: Chain | None = None
        self.explanation: ActivationExplanation | None = None
        self.error = ""
        self.layer = widgets.Dropdown(options=list(self.shapes), value=first,
                                      description="layer")
        self.channel = widgets.BoundedIntText(0, min=0, max=0, description="channel")
        self.row = widgets.IntSlider(0, min=0, max=0, description="row (y)")
        self.col = widgets.IntSlider(0, min=0, max=0, description="col (x)")
        self.map = widgets.Image(format="png")
        self.steps = widgets.HTML()
        self.readout = widgets.HTML()
        self._hold = False
        self._limits()
        self.layer.observe(self._layer_changed, names="value")
        for control in (self.channel, self.row, self.col):
            control.observe(lambda _change: self.redraw(), names="value")
        self.map_events = []
        if DomEvent is not None:
            click = DomEvent(source=self.map, watched_events=["click"])
            click.on_dom_event(self.point_at)
            self.map_events = [click]
        self.ui = widgets.VBox([widgets.HBox([self.layer, self.channel]),
                                widgets.HBox([self.row, self.col]), self.map, self.steps,
                                self.readout])
        self.redraw()

    def select(self, layer: str, channel: int, y: int | None = None, x: int | None = None
               ) -> None:
        """Show number ``(channel, y, x)`` of ``layer`` (``y``/``x`` left out for features)."""
        self._hold = True
        try:
            self.layer.value = layer
            self.channel.value = channel
            if y is not None and x is not None:
                self.row.value, self.col.value = y, x
        finally:
            self._hold = False
        self.redraw()

    def point_at(self, event: dict) -> tuple[int, int] | None:
        """Select the map cell under a click (ipyevents' ``dataX``/``dataY``, the PNG's own
        pixels, or ``relativeX``/``relativeY`` with the shown size); None off the map."""
        shape = self.shapes[self.layer.value]
        if len(shape) != 3:
            return None
        height, width = shape[1:]
        scale = _network_scale(height, width)
        try:
            if event.get("dataX") is not None and event.get("dataY") is not None:
                px, py = float(event["dataX"]), float(event["dataY"])
            else:
                px = float(event["relativeX"]) * width * scale / float(event["boundingRectWidth"])
                py = (float(event["relativeY"]) * height * scale
                      / float(event["boundingRectHeight"]))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            return None
        y, x = int(py // scale), int(px // scale)
        if not (0 <= y < height and 0 <= x < width):
            return None
        self.select(self.layer.value, self.channel.value, y, x)
        return y, x

    def redraw(self) -> None:
        """Explain the number the controls point at, and draw its channel with the cell
        outlined."""
        if self._hold:
            return
        from .activations import explain_chain
        from .display import activation_explanation_html, chain_html

        name = self.layer.value
        spatial = len(self.shapes[name]) == 3
        y, x = (self.row.value, self.col.value) if spatial else (None, None)
        try:
            self.chain = explain_chain(self.explainer, name, self.channel.value, y, x,
                                       top=self.top)
        except ConvlensError as exc:
            self.error = str(exc)
            self.steps.value = ""
            self.readout.value = _error_html(self.error)
            return
        self.error = ""
        self.explanation = self.chain.last
        # the chain's words and the steps before the number; none for a conv (or a layer the
        # chain cannot walk back from), which is its own arithmetic
        self.steps.value = chain_html(self.chain, last=False) if len(self.chain.steps) > 1 \
            else ""
        self.readout.value = activation_explanation_html(self.explanation)
        out = self.explainer.output(name)[0]
        data = (out[self.channel.value] if spatial else out[:, None].T).detach()
        cell = (self.row.value, self.col.value) if spatial else (0, self.channel.value)
        self.map.value = _network_map_png(data.to("cpu", torch.float32).numpy(), cell)

    def _layer_changed(self, _change: dict) -> None:
        self._limits()
        self.redraw()

    def _limits(self) -> None:
        shape = self.shapes[self.layer.value]
        held, self._hold = self._hold, True
        try:
            self.channel.max = shape[0] - 1
            spatial = len(shape) == 3
            self.row.max = shape[1] - 1 if spatial else 0
            self.col.max = shape[2] - 1 if spatial else 0
            self.row.disabled = self.col.disabled = not spatial
        finally:
            self._hold = held

    def _repr_mimebundle_(self, **kwargs) -> dict:
        bundle = self.ui._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        if self.chain is not None:
            from .display import activation_explanation_html, chain_html

            bundle["text/html"] = chain_html(self.chain) if len(self.chain.steps) > 1 \
                else activation_explanation_html(self.chain.last)
        return bundle

    def __repr__(self) -> str:
        return (f"<convlens network view: {len(self.shapes)} layers; {self.layer.value} "
                f"channel {self.channel.value}>")


def explore_network(model, image, layer: str | None = None, *, top: int = 8
                    ) -> NetworkExplorer:
    """Build a :class:`NetworkExplorer`: ``model`` an :class:`~convlens.models.OpenedModel`
    or an ``nn.Module``, ``image`` an image ``(C, H, W)`` in [0, 1] (prepared as the model
    wants) or a prepared batch ``(1, C, H, W)``; ``layer`` the layer shown first (default the
    first with maps); ``top`` input channels shown one by one."""
    return NetworkExplorer(model, image, layer, top=top)


def _network_scale(height: int, width: int) -> int:
    """Screen pixels per map cell in the network view (whole, at least 1)."""
    return max(1, NETWORK_MAP_SIDE // max(height, width))


def _network_map_png(data: np.ndarray, cell: tuple[int, int]) -> bytes:
    """One channel ``(H, W)`` enlarged to about :data:`NETWORK_MAP_SIDE` px in the figures'
    colours (:func:`~convlens.plot.stages.display_norm`), ``cell`` ``(y, x)`` outlined."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    norm, cmap = display_norm(data, bool(data.min() < 0))
    rgb = (matplotlib.colormaps[cmap](norm(data))[..., :3] * 255).round().astype(np.uint8)
    scale = _network_scale(*data.shape)
    picture = PILImage.fromarray(rgb).resize((data.shape[1] * scale, data.shape[0] * scale),
                                             PILImage.Resampling.NEAREST)
    y, x = cell
    ImageDraw.Draw(picture).rectangle(
        (x * scale, y * scale, (x + 1) * scale - 1, (y + 1) * scale - 1), outline=(255, 179, 0),
        width=max(1, scale // 8))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


__all__ = ["Explorer", "KernelEditor", "MapPanel", "NetworkExplorer", "explore",
           "explore_network", "map_panels", "plot_probe"]
