"""Figures: kernels with their numbers, and stage maps one labelled panel per kernel.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot (no global state, no
``plt.show()``), so the CLI saves it, a notebook displays it, and nothing leaks. Maps larger than
``max_side`` pixels are shrunk for display by area averaging; the panel title says so, and the
value range printed is always that of the full-resolution data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from ..errors import ConfigError
from ..images import downsample_for_display
from ..kernels import common_denominator
from ..limits import MAX_FIGURE_INCHES, MAX_PANEL_ASPECT
from ..numbers import format_number
from .layout import (
    COLORBAR_ASPECT,
    COLORBAR_PAD,
    COLORBAR_SHRINK,
    PAD,
    POINT,
    TICK_ROOM,
    Grid,
    colorbar_labels,
    fit_text,
    place_suptitle,
    suptitle_room,
    text_extent,
    tick_fontsize,
    tick_labels_room,
)

if TYPE_CHECKING:  # tensors are accepted (read through NumPy); torch is not imported for them
    import torch

    from ..stages import Stages

DISPLAY_MAX_SIDE = 768
"""Longest side, in pixels, at which a map is drawn; larger maps are area-averaged down."""

DISPLAY_PERCENTILE = 99.5
"""Colour scales end at this percentile of the magnitudes, so a few extreme pixels do not turn
the rest of the map flat; the printed ranges are always the true minimum and maximum."""

KERNEL_COLUMNS = 16
"""Most kernels :func:`plot_kernels` puts side by side; more wrap onto further rows."""

SIGNED_CMAP = "RdBu_r"
UNSIGNED_CMAP = "gray"
CHANNEL_LABELS = ("R", "G", "B")


def bounded_figsize(width: float, height: float) -> tuple[float, float]:
    """``(width, height)`` in inches, scaled down whole so neither side passes
    :data:`~convlens.limits.MAX_FIGURE_INCHES` (the canvas, not the layout, is what costs
    memory: a 20000x3 map must not ask for a figure a mile tall)."""
    scale = min(1.0, MAX_FIGURE_INCHES / max(width, height, 1e-9))
    return width * scale, height * scale


def _no_ticks(ax) -> None:
    """No ticks or tick labels on either axis of ``ax`` (the frame stays). The axes are hidden,
    not just emptied, so the drawing skips them."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.xaxis.set_visible(False)
    ax.yaxis.set_visible(False)


def panel_aspect(height: int, width: int) -> tuple[float, bool]:
    """The height/width ratio a ``height x width`` map's panel gets, held within
    :data:`~convlens.limits.MAX_PANEL_ASPECT` either way, and whether it was held (the map is
    then drawn stretched to the panel, and its title says so)."""
    aspect = height / width
    held = min(max(aspect, 1 / MAX_PANEL_ASPECT), MAX_PANEL_ASPECT)
    return held, held != aspect


def plot_kernels(
    kernels: torch.Tensor | np.ndarray,
    names: Sequence[str] | None = None,
    title: str | None = "Kernels (the conv layer's fixed weights)",
) -> Figure:
    """Draw kernels ``(K, C, kh, kw)`` as heatmaps centred on 0 with each weight written in.

    One column per kernel (at most :data:`KERNEL_COLUMNS`, then a further row of kernels), one
    row per input channel (R, G, B for RGB kernels). Kernels whose
    weights share a small denominator (1/16 for a Gaussian) are written as whole numbers with
    the factor in the title, the way textbooks print them.
    """
    weights = as_array(kernels)
    if weights.ndim == 2:
        weights = weights[None, None]
    elif weights.ndim == 3:
        weights = weights[:, None]
    if weights.ndim != 4:
        raise ConfigError(f"expected kernels (K, C, kh, kw); got shape {tuple(weights.shape)}")
    count, channels, kh, kw = weights.shape
    names = list(names) if names is not None else [f"kernel {i + 1}" for i in range(count)]
    cell = 0.42 if max(kh, kw) <= 7 else 0.22
    panel_w = max(2.2, kw * cell + 0.6)
    panel_h = max(2.0, kh * cell + 0.9)
    per_row = min(count, KERNEL_COLUMNS)
    blocks = math.ceil(count / per_row)
    size = bounded_figsize(panel_w * per_row,
                           panel_h * channels * blocks + (0.5 if title else 0))
    figure = Figure(figsize=size)
    title = fit_text(title or "", 12, size[0] - 2 * PAD)
    grid = Grid(*size, channels * blocks, per_row, top=suptitle_room(title, 12))
    show_numbers = max(kh, kw) <= 11
    font = 11 if max(kh, kw) <= 5 else 7
    panels = []
    for index in range(count):
        denominator = common_denominator(weights[index])
        block, column = divmod(index, per_row)
        for channel in range(channels):
            label = names[index]
            if denominator > 1:
                label += f"  (x 1/{denominator})"
            if channels > 1:
                label = f"{label} [{CHANNEL_LABELS[channel] if channels == 3 else channel}]"
            row = block * channels + channel
            label = fit_text(label, 10, size[0] / per_row - 2 * PAD)
            grid.reserve_title(row, column, label, 10)
            panels.append((row, column, index, channel, denominator, label))
    for row, column, index, channel, denominator, label in sorted(panels):  # row by row
        ax = figure.add_axes(grid.rect(row, column))
        grid_values = weights[index, channel]
        limit = float(np.abs(weights[index]).max()) or 1.0
        ax.imshow(grid_values, cmap=SIGNED_CMAP, vmin=-limit, vmax=limit,
                  interpolation="nearest")
        _no_ticks(ax)
        if show_numbers:
            for (r, c), value in np.ndenumerate(grid_values):
                shade = abs(value) / limit
                ax.text(c, r, format_number(value * denominator), ha="center", va="center",
                        fontsize=font, color="white" if shade > 0.6 else "black")
        ax.set_title(label, fontsize=10)
    place_suptitle(figure, title, 12, size[1])
    return figure


def plot_maps(
    maps: torch.Tensor | np.ndarray,
    names: Sequence[str] | None = None,
    title: str = "",
    signed: bool | None = None,
    max_side: int = DISPLAY_MAX_SIDE,
    columns: int | None = None,
    dpi: float | None = None,
) -> Figure:
    """Draw feature maps ``(K, H, W)`` one labelled panel each, with a colour bar.

    Signed data (``signed=None`` decides from the values) uses a diverging map centred on 0,
    non-negative data a gray ramp from 0. Each panel's title gives its name, shape and range.
    Maps more elongated than :data:`~convlens.limits.MAX_PANEL_ASPECT` are drawn stretched.
    With ``dpi`` (dots per inch the figure will be saved at), maps are also area-averaged down
    to the pixels their panel has at that resolution, so nothing is drawn that the saved
    picture cannot show.
    """
    data = as_array(maps)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ConfigError(f"expected maps (K, H, W); got shape {tuple(data.shape)}")
    count, height, width = data.shape
    names = list(names) if names is not None else [f"map {i + 1}" for i in range(count)]
    lows, highs = _map_ranges(data)
    if signed is None:
        signed = bool(lows.min(initial=0.0) < 0)
    columns = columns or min(count, 4)
    rows = math.ceil(count / columns)
    aspect, stretched = panel_aspect(height, width)
    panel_w = 4.2 if columns > 1 else 6.0
    size = bounded_figsize(panel_w * columns, panel_w * aspect * rows + 0.9)
    if dpi is not None:
        max_side = min(max_side, panel_pixels(panel_w, panel_w * aspect, size[0] / (
            panel_w * columns), dpi))
    display, factor = downsample_for_display(data, max_side)
    figure = Figure(figsize=size)
    title = fit_text(title, 12, size[0] - 2 * PAD)
    grid = Grid(*size, rows, columns, top=suptitle_room(title, 12))
    panels = []
    for index in range(count):
        low, high = float(lows[index]), float(highs[index])
        norm, cmap = display_norm(display[index], signed)
        label = (f"{names[index]}  {height}x{width}\n"
                 f"range [{format_number(low)}, {format_number(high)}]")
        if factor > 1:
            label += f"  (drawn at 1/{factor})"
        if stretched:
            label += "  (stretched)"
        cut = _clip_note(norm, (low, high))
        label = fit_text(label + cut.replace("\n", "; "), 9, size[0] / columns - 2 * PAD)
        grid.reserve_title(*divmod(index, columns), label, 9)
        panels.append((norm, cmap, label, cut))
    row_spans = grid.rows_spans()  # the rows first: a colour bar's ticks depend on its length
    images, bars = [], []
    for index, (norm, cmap, label, _) in enumerate(panels):
        ax = figure.add_axes(grid.rect(*divmod(index, columns)))
        images.append(ax.imshow(display[index], cmap=cmap, norm=norm, interpolation="nearest",
                                aspect="auto" if stretched else "equal"))
        _no_ticks(ax)
        ax.set_title(label, fontsize=9)
    labels_font = tick_fontsize()
    for index, (image, (_, _, _, cut)) in enumerate(zip(images, panels)):
        row, column = divmod(index, columns)
        top, box_h = row_spans[row]
        bar_h = box_h * COLORBAR_SHRINK
        bar_w = bar_h / COLORBAR_ASPECT
        bar_top = top + (box_h - bar_h) / 2
        bar = figure.colorbar(image, cax=figure.add_axes(grid.fractions(0, bar_top, bar_w,
                                                                        bar_h)),
                              extend=("both" if signed else "max") if cut else "neither")
        bar.ax.yaxis.set_label_coords(1.0, 0.5)  # it has no label: measure no ticks for one
        room = tick_labels_room(colorbar_labels(bar), labels_font, across=True)
        grid.reserve(row, column, right=COLORBAR_PAD + bar_w + room)
        bars.append((bar, bar_top, bar_w, bar_h))
    column_spans = grid.columns_spans()  # now with the colour bars' room: place everything
    for index, (image, (bar, bar_top, bar_w, bar_h)) in enumerate(zip(images, bars)):
        row, column = divmod(index, columns)
        left, box_w = column_spans[column]
        image.axes.set_position(grid.rect(row, column))
        bar.ax.set_position(grid.fractions(left + box_w + COLORBAR_PAD, bar_top, bar_w, bar_h))
    place_suptitle(figure, title, 12, size[1])
    return figure


def plot_image(image: torch.Tensor | np.ndarray, title: str = "input",
               max_side: int = DISPLAY_MAX_SIDE, dpi: float | None = None) -> Figure:
    """Draw an image ``(C, H, W)`` in [0, 1] (gray or RGB) with its size in the title; with
    ``dpi``, no larger than the figure's pixels at that resolution (see :func:`plot_maps`)."""
    data = as_array(image)
    if data.ndim != 3 or data.shape[0] not in (1, 3) or 0 in data.shape:
        raise ConfigError(f"expected an image (C, H, W) with 1 or 3 channels; got shape "
                          f"{tuple(data.shape)}")
    channels, height, width = data.shape
    aspect, stretched = panel_aspect(height, width)
    size = bounded_figsize(6, 6 * aspect + 0.6)
    if dpi is not None:
        max_side = min(max_side, panel_pixels(6, 6 * aspect, size[0] / 6, dpi))
    display, factor = downsample_for_display(data, max_side)
    suffix = f"  (drawn at 1/{factor})" if factor > 1 else ""
    suffix += "  (stretched)" if stretched else ""
    label = fit_text(f"{title}  {channels}x{height}x{width}{suffix}", 10, size[0] - 2 * PAD)
    figure = Figure(figsize=size)
    grid = Grid(*size, 1, 1)
    grid.reserve_title(0, 0, label, 10)
    ax = figure.add_axes(grid.rect(0, 0))
    fit: Literal["auto", "equal"] = "auto" if stretched else "equal"
    if channels == 1:
        ax.imshow(display[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest", aspect=fit)
    else:
        ax.imshow(np.clip(display.transpose(1, 2, 0), 0, 1), interpolation="nearest",
                  aspect=fit)
    _no_ticks(ax)
    ax.set_title(label, fontsize=10)
    return figure


class SymmetricNorm(TwoSlopeNorm):
    """Colours centred on 0 from ``-bound`` to ``bound``: a :class:`TwoSlopeNorm` whose two
    slopes are equal, so the straight line of :class:`Normalize`, and computed as that. (A
    general two-slope norm interpolates every pixel through masked arrays, and its colour bar
    runs the norm for every tick: a third of a signed stage figure's drawing.)"""

    def __init__(self, bound: float) -> None:
        super().__init__(vcenter=0.0, vmin=-bound, vmax=bound)
        self._scale = "linear"  # the colour bar's axis: the line this norm is

    def __call__(self, value, clip=None):
        return Normalize.__call__(self, value, clip)

    def inverse(self, value):
        return Normalize.inverse(self, value)


def display_norm(data: np.ndarray, signed: bool) -> tuple[Normalize, str]:
    """Colour normalization and map name for one panel.

    Signed data: a diverging map centred on 0, symmetric at the :data:`DISPLAY_PERCENTILE` of
    ``|data|``. Non-negative data: gray from 0 to that percentile.
    """
    sample = _percentile_sample(data)
    magnitude = np.abs(sample) if signed else sample
    top = float(np.percentile(magnitude, DISPLAY_PERCENTILE)) if magnitude.size else 0.0
    if not top:
        top = float(np.abs(data).max(initial=0.0) if signed else data.max(initial=0.0)) or 1.0
    if signed:
        return SymmetricNorm(top), SIGNED_CMAP
    return Normalize(vmin=min(float(data.min(initial=0.0)), 0.0), vmax=top), UNSIGNED_CMAP


PERCENTILE_SAMPLE = 1 << 22
"""Most values :func:`display_norm` takes its percentile over: larger data is read at an even
stride (every n-th value), which moves a 99.5th percentile by far less than a colour step and
spares sorting a whole 12 MP stage."""


def _percentile_sample(data: np.ndarray) -> np.ndarray:
    """``data`` flattened, or every n-th value of it when it holds more than
    :data:`PERCENTILE_SAMPLE`."""
    flat = data.reshape(-1)
    step = -(-flat.size // PERCENTILE_SAMPLE)
    return flat if step <= 1 else flat[::step]


def _map_ranges(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-map minimum and maximum of ``(K, H, W)`` maps, each ``(K,)``."""
    flat = data.reshape(data.shape[0], -1)
    if flat.shape[1] == 0:
        zeros = np.zeros(data.shape[0], np.float32)
        return zeros, zeros
    return flat.min(axis=1), flat.max(axis=1)


def panel_pixels(width: float, height: float, scale: float, dpi: float) -> int:
    """Pixels along the longer side of a ``width x height``-inch panel drawn at ``scale``
    (the factor :func:`bounded_figsize` shrank its figure by) and ``dpi``: the most a map in it
    can show."""
    return max(1, math.ceil(max(width, height) * scale * dpi))


def as_array(data: torch.Tensor | np.ndarray) -> np.ndarray:
    """``data`` as a float32 NumPy array: arrays as they are (no copy when already float32),
    tensors through their own NumPy view (detached and on the CPU first), so this module never
    needs torch itself."""
    if hasattr(data, "detach"):  # a tensor: no torch import to recognise it
        data = data.detach().cpu()
    return np.asarray(data, dtype=np.float32)


def stage_array(stages: Stages, name: str) -> np.ndarray:
    """Stage ``name`` (``input``, ``kernels``, ``conv``, ``activated``, ``pooled``) of
    ``stages`` as a float32 NumPy array, read from its arrays (no tensor, and so no torch, is
    made for a figure)."""
    return as_array(getattr(stages.arrays, name))


OVERVIEW_COLUMNS = ("input", "kernel", "conv", "activated", "pooled")
"""The panels of one row of :func:`plot_overview`, left to right."""
OVERVIEW_MAX_SIDE = 320
"""Maps in :func:`plot_overview` are area-averaged to at most this many pixels a side."""
OVERVIEW_SCALES = ("stage", "map")
"""Colour scales of :func:`plot_overview`: one per stage, shared by every kernel's map (the
strengths compare), or one per map (each map's own contrast)."""
OVERVIEW_STAGES = ("conv", "activated", "pooled")


def kernel_strip(weights: np.ndarray) -> np.ndarray:
    """A kernel ``(C, kh, kw)`` as one 2-D picture: its channels side by side, split by a
    column of NaN (drawn blank), so an RGB kernel shows all three grids, never their mean."""
    channels, height, _ = weights.shape
    gap = np.full((height, 1), np.nan, dtype=np.float64)
    parts: list[np.ndarray] = []
    for channel in range(channels):
        if channel:
            parts.append(gap)
        parts.append(weights[channel].astype(np.float64))
    return np.concatenate(parts, axis=1)


OVERVIEW_PANEL = 2.6
"""Inches a side of one panel of :func:`plot_overview`."""
OVERVIEW_BAR_ASPECT = 30
"""Length over thickness of the overview's colour bars, one under each stage's column."""


def plot_overview(stages: Stages, max_side: int = OVERVIEW_MAX_SIDE,
                  scale: str = "stage") -> Figure:
    """One figure of a whole run: the input, then per kernel its weights, conv, activated and
    pooled maps side by side, each titled with its shape and true value range.

    ``stages`` is a :class:`convlens.stages.Stages`. Every map is drawn in the input's pixel
    frame, so a stride-2 or pooled map takes the room its values do (a 2x2 pool: a quarter).
    ``scale="stage"`` (default) gives each stage one colour scale, shared by all kernels and
    spanning the largest value, with its colour bar; ``"map"`` gives each map its own scale,
    cut at the :data:`DISPLAY_PERCENTILE` of its magnitudes, and a title saying where when it
    cuts. An RGB kernel is drawn as its three channel grids (:func:`kernel_strip`).
    """
    if scale not in OVERVIEW_SCALES:
        raise ConfigError(f"overview scale must be one of {', '.join(OVERVIEW_SCALES)}; "
                          f"got {scale!r}")
    kernels = stage_array(stages, "kernels")
    count = kernels.shape[0]
    source = stage_array(stages, "input")
    height, width = source.shape[-2:]
    panel = OVERVIEW_PANEL
    aspect, stretched = panel_aspect(height, width)
    fit: Literal["auto", "equal"] = "auto" if stretched else "equal"
    size = bounded_figsize(panel * len(OVERVIEW_COLUMNS), panel * max(aspect, 0.5) * count + 1.6)
    figure = Figure(figsize=size)
    how = ("one colour scale per stage, shared by the kernels" if scale == "stage" else
           "each map its own colour scale")
    suptitle = fit_text(f"input -> kernel -> {stages.config.describe()}\n"
                        f"maps drawn at their true size against the input; {how}\n"
                        f"colours cut at the {DISPLAY_PERCENTILE:g}th percentile of |values| "
                        "where a title says so (values beyond get the end colours)", 10,
                        size[0] - 2 * PAD)
    grid = Grid(*size, count, len(OVERVIEW_COLUMNS), top=suptitle_room(suptitle, 10))
    titles: dict[tuple[int, int], tuple[str, float]] = {}
    titles[0, 0] = (f"input {'x'.join(map(str, source.shape))}"
                    + ("\n(stretched: maps too long to draw to scale)" if stretched else ""), 9)
    for row in range(count):
        titles[row, 1] = (_kernel_label(kernels[row], stages.kernel_names[row]), 9)
    data = {name: stage_array(stages, name) for name in OVERVIEW_STAGES}
    ranges = {name: _map_ranges(values) for name, values in data.items()}
    shared = {name: _stage_norm(values, name) for name, values in data.items()}
    reduced = {name: downsample_for_display(values, max_side)[0]
               for name, values in data.items()}
    norms: dict[tuple[int, int], tuple[Normalize, str]] = {}
    for name in OVERVIEW_STAGES:
        column = OVERVIEW_COLUMNS.index(name)
        lows, highs = ranges[name]
        for row in range(count):
            low, high = float(lows[row]), float(highs[row])
            if scale == "stage":
                norm, cmap = shared[name]
            else:
                norm, cmap = display_norm(reduced[name][row], signed=name == "conv" or low < 0)
            norms[row, column] = (norm, cmap)
            map_h, map_w = data[name][row].shape
            share = map_h * map_w / (height * width)
            shape = f"{map_h}x{map_w}" + (f" ({share:.0%} of input px)" if share < 0.9 else "")
            titles[row, column] = (f"{name} {shape}\nrange [{format_number(low)}, "
                                   f"{format_number(high)}]{_clip_note(norm, (low, high))}", 8)
    titles = {place: (fit_text(text, fontsize, size[0] / len(OVERVIEW_COLUMNS) - 2 * PAD),
                      fontsize) for place, (text, fontsize) in titles.items()}
    for (row, column), (text, fontsize) in titles.items():
        grid.reserve_title(row, column, text, fontsize)
    # the columns first: a colour bar under a column is as long as the column is wide
    column_spans = grid.columns_spans()
    bars = {}
    if scale == "stage":
        label_h = text_extent("0", 7)[1] + TICK_ROOM + text_extent("scale", 8)[1] + 4 * POINT
        thickness = max(COLORBAR_SHRINK * column_spans[2][1] / OVERVIEW_BAR_ASPECT, 2 * POINT)
        grid.bottom = 0.15 + thickness + label_h
        bars = {name: thickness for name in OVERVIEW_STAGES}
    row_spans = grid.rows_spans()
    axes = [[figure.add_axes(grid.rect(row, column)) for column in range(len(OVERVIEW_COLUMNS))]
            for row in range(count)]
    for row_axes in axes:
        for ax in row_axes:
            _no_ticks(ax)
    image, _ = downsample_for_display(source, max_side)
    shown = image[0] if image.shape[0] == 1 else np.clip(image.transpose(1, 2, 0), 0, 1)
    axes[0][0].imshow(shown, cmap="gray", vmin=0, vmax=1, interpolation="nearest", aspect=fit,
                      extent=(0, width, height, 0))
    for row in range(1, count):
        axes[row][0].set_axis_off()
    for row in range(count):
        _overview_kernel(axes[row][1], kernels[row])
    for (row, column), (text, fontsize) in titles.items():
        axes[row][column].set_title(text, fontsize=fontsize)
    for name in OVERVIEW_STAGES:
        column = OVERVIEW_COLUMNS.index(name)
        drawn = None
        for row in range(count):
            norm, cmap = norms[row, column]
            map_h, map_w = data[name][row].shape
            top, left = (height - map_h) / 2, (width - map_w) / 2  # centred in the input frame
            ax = axes[row][column]
            drawn = ax.imshow(reduced[name][row], cmap=cmap, norm=norm, interpolation="nearest",
                              aspect=fit, extent=(left, left + map_w, top + map_h, top))
            ax.set_xlim(0, width)
            ax.set_ylim(height, 0)
        if name in bars and drawn is not None:
            lows, highs = ranges[name]
            norm = shared[name][0]
            cut = bool(_clip_note(norm, (float(lows.min()), float(highs.max()))))
            below_zero = norm.vmin is not None and norm.vmin < 0
            extend = ("both" if below_zero else "max") if cut else "neither"
            left, box_w = column_spans[column]
            length = box_w * COLORBAR_SHRINK
            last_top, last_h = row_spans[-1]
            cax = figure.add_axes(grid.fractions(left + (box_w - length) / 2,
                                                 last_top + last_h + 0.15, length, bars[name]))
            bar = figure.colorbar(drawn, cax=cax, orientation="horizontal", extend=extend)
            bar.set_label(f"{name} scale" + (" (cut: arrows)" if cut else ""), fontsize=8)
            bar.ax.tick_params(labelsize=7)
    place_suptitle(figure, suptitle, 10, size[1])
    return figure


def _kernel_label(weights: np.ndarray, name: str) -> str:
    """The overview's title of one kernel ``(C, kh, kw)``: its name, the channels of an RGB
    kernel, and the factor its written whole numbers are scaled by."""
    label = name + ("  (R | G | B)" if weights.shape[0] == 3 else "")
    if max(weights.shape[1:]) <= 5:
        denominator = common_denominator(weights)
        if denominator > 1:  # the cells hold whole numbers: say what they are scaled by
            label += f"\nx 1/{denominator}"
    return label


def _overview_kernel(ax, weights: np.ndarray) -> None:
    """One kernel ``(C, kh, kw)`` in the overview: every channel's grid, numbers written in
    (its title is :func:`_kernel_label`)."""
    strip = kernel_strip(weights)
    limit = float(np.nanmax(np.abs(strip))) or 1.0
    ax.imshow(np.ma.masked_invalid(strip), cmap=SIGNED_CMAP, vmin=-limit, vmax=limit,
              interpolation="nearest")
    if max(weights.shape[1:]) <= 5:
        denominator = common_denominator(weights)
        font = 8 if weights.shape[0] == 1 else 6
        for (r, c), value in np.ndenumerate(strip):
            if not np.isnan(value):
                ax.text(c, r, format_number(value * denominator), ha="center", va="center",
                        fontsize=font, color="white" if abs(value) / limit > 0.6 else "black")


def _stage_norm(values: np.ndarray, name: str) -> tuple[Normalize, str]:
    """One stage's scale, shared by all kernels' maps ``(K, H, W)``: :func:`display_norm` over
    all of them at once, so a weak kernel's map looks weak beside a strong one."""
    return display_norm(values, signed=name == "conv" or bool(values.min(initial=0.0) < 0))


def _clip_note(norm: Normalize, values: np.ndarray | tuple[float, float]) -> str:
    """What a title says when ``norm`` cuts the map's true range (empty when it does not);
    ``values`` is the map or its ``(minimum, maximum)``."""
    if isinstance(values, tuple):
        low, high = float(values[0]), float(values[1])
    else:
        low, high = float(values.min()), float(values.max())
    if norm.vmin is not None and norm.vmax is not None and (low < norm.vmin or high > norm.vmax):
        top = format_number(float(norm.vmax))
        return f"\ncolours cut at {'±' if float(norm.vmin) < 0 else ''}{top}"
    return ""
