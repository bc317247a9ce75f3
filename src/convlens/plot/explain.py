"""Teaching figures: one pixel's arithmetic, one pooling window, pooling winners, slide frames.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot. Grids are drawn
cell by cell with their numbers written in, padded cells hatched, so a student can redo the
arithmetic from the picture alone.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import patheffects, rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.markers import TICKLEFT, TICKUP, MarkerStyle
from matplotlib.patches import Rectangle
from matplotlib.transforms import blended_transform_factory, offset_copy

from ..config import PoolType
from ..defaults import SCREEN_DPI
from ..errors import ConfigError
from ..explain import (
    CROSS_CORRELATION_NOTE,
    RAW_SCALE,
    PixelExplanation,
    PooledExplanation,
    pool_winners,
)
from ..explain.parts import (
    Grids,
    Heading,
    Part,
    Sentence,
    Table,
    WrittenSum,
    find,
)
from ..images import downsample_for_display
from ..numbers import format_number, format_raw
from .layout import (
    PAD,
    Grid,
    fit_text,
    place_suptitle,
    suptitle_room,
    text_extent,
    tick_labels_room,
    title_room,
)
from .stages import (
    DISPLAY_MAX_SIDE,
    SIGNED_CMAP,
    UNSIGNED_CMAP,
    SymmetricNorm,
    panel_pixels,
    stage_array,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..stages import Stages

PAD_COLOR = "#5b3f8c"
PAD_FILL = "#ddd1f2"
PAD_EDGE = "#b9a6dd"
HIGHLIGHT = "#ff8c00"
WINNER = "#00c853"
CHANNEL_LABELS = ("R", "G", "B")
PATCH_CMAPS = {1: ("gray",), 3: ("Reds_r", "Greens_r", "Blues_r")}


# --------------------------------------------------------------------------- cell grids


def draw_grid(
    ax,
    values: np.ndarray,
    *,
    cmap: str,
    norm: Normalize,
    text: Sequence[Sequence[str]] | None = None,
    padded: np.ndarray | None = None,
    row_labels: Sequence[int] | None = None,
    col_labels: Sequence[int] | None = None,
    title: str = "",
    fontsize: float | None = None,
    cell_points: float = 30.0,
) -> None:
    """Draw a ``(h, w)`` grid of cells coloured by value with ``text`` written in each (marks
    are added with ``add_artist``: the image already fixes the limits, so nothing is
    re-measured for them).

    ``padded`` ``(h, w)`` marks padding cells (lavender, hatched, purple numbers);
    ``row_labels`` / ``col_labels`` label the axes with coordinates (e.g. input rows and cols).
    The font fits the longest text in a cell of ``cell_points`` unless ``fontsize`` is given.
    """
    height, width = values.shape
    ax.imshow(values, cmap=cmap, norm=norm, interpolation="nearest")
    _cell_lines(ax, height, width, "white", 1.2)
    labels = _labels(ax, row_labels, col_labels, height, width)
    padded = np.zeros(values.shape, dtype=bool) if padded is None else padded
    for (row, col), is_pad in np.ndenumerate(padded):
        if is_pad:
            ax.add_artist(Rectangle((col - 0.5, row - 0.5), 1, 1, facecolor=PAD_FILL,
                                   hatch="//", edgecolor=PAD_EDGE, linewidth=0))
    if text is not None:
        size = fontsize or _cell_font(text, cell_points)
        colormap = ax.images[-1].get_cmap()
        for (row, col), value in np.ndenumerate(values):
            shade = colormap(norm(value))
            luminance = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2]
            color = PAD_COLOR if padded[row, col] else (
                "white" if luminance < 0.5 else "black")
            ax.text(col, row, text[row][col], ha="center", va="center", fontsize=size,
                    color=color, fontweight="bold" if padded[row, col] else "normal")
    if title:  # over the column labels
        ax.set_title(title, fontsize=10, pad=rcParams["axes.titlepad"] + labels)


def _cell_lines(ax, height: int, width: int, color: str, linewidth: float) -> None:
    """The lines between the cells of a ``height x width`` grid drawn on ``ax``: one
    collection (where a grid of minor ticks would make two ticks, four artists, per line)."""
    xs = np.arange(width + 1) - 0.5
    ys = np.arange(height + 1) - 0.5
    segments = [((x, ys[0]), (x, ys[-1])) for x in xs] + [((xs[0], y), (xs[-1], y))
                                                          for y in ys]
    ax.add_collection(LineCollection(segments, colors=color, linewidths=linewidth,
                                     zorder=1.5), autolim=False)


def _label_step(height: int, width: int) -> int:
    """Every how many cells a grid's rows and columns are labelled with their coordinates."""
    return max(1, max(height, width) // 8)


def grid_room(shape: tuple[int, int], row_labels: Sequence[int] | None,
              col_labels: Sequence[int] | None, title: str = "", title_size: float = 10
              ) -> tuple[float, float]:
    """Inches a :func:`draw_grid` panel of ``shape`` cells needs around its box: ``(above,
    left)``: its title and column labels above, its row labels left."""
    height, width = shape
    step = _label_step(height, width)
    labels = 0.0 if col_labels is None else tick_labels_room(
        [str(col_labels[0])], LABEL_SIZE, across=False)
    left = 0.0 if row_labels is None else tick_labels_room(
        [str(row_labels[i]) for i in range(0, height, step)], LABEL_SIZE, across=True)
    return title_room(title, title_size) + labels, left


LABEL_SIZE = 7
"""Points of a grid's row and column coordinate labels."""


def _labels(ax, row_labels, col_labels, height: int, width: int) -> float:
    """Coordinates along the left (rows) and the top (columns) of a grid, every
    :func:`_label_step`-th cell, each with its tick mark; returns the points the column
    labels take above the axes (0 without them).

    They look like tick labels but are drawn as the figure's texts placed against ``ax`` and
    one line of tick marks per side: matplotlib's own ticks make four artists per label and
    measure them all at every drawing, the most expensive part of a small grid. (So
    ``ax.texts`` holds only the cells' numbers.)"""
    ax.xaxis.set_visible(False)
    ax.yaxis.set_visible(False)
    step = _label_step(height, width)
    figure = ax.figure
    if row_labels is not None:
        rows = list(range(0, height, step))
        along = blended_transform_factory(ax.transAxes, ax.transData)
        ax.add_artist(Line2D([0] * len(rows), rows, linestyle="", marker=MarkerStyle(TICKLEFT),
                             markersize=TICK_LENGTH, markeredgewidth=TICK_WIDTH, color="black",
                             transform=along, clip_on=False))
        where = offset_copy(along, fig=figure, x=-2 * TICK_LENGTH, units="points")
        for row in rows:
            figure.text(0, row, str(row_labels[row]), transform=where, ha="right",
                        va="center", fontsize=LABEL_SIZE)
    if col_labels is None:
        return 0.0
    cols = list(range(0, width, step))
    along = blended_transform_factory(ax.transData, ax.transAxes)
    ax.add_artist(Line2D(cols, [1] * len(cols), linestyle="", marker=MarkerStyle(TICKUP),
                         markersize=TICK_LENGTH, markeredgewidth=TICK_WIDTH, color="black",
                         transform=along, clip_on=False))
    where = offset_copy(along, fig=figure, y=2 * TICK_LENGTH, units="points")
    for col in cols:
        figure.text(col, 1, str(col_labels[col]), transform=where, ha="center", va="bottom",
                    fontsize=LABEL_SIZE)
    return tick_labels_room([str(col_labels[0])], LABEL_SIZE, across=False) * 72


TICK_LENGTH = 3.5
"""Points a grid's coordinate tick marks are long (and their labels away from them)."""
TICK_WIDTH = 0.8
"""Points a grid's coordinate tick marks are wide (matplotlib's default ticks)."""


def _signed_norm(values: np.ndarray) -> Normalize:
    return SymmetricNorm(float(np.abs(values).max()) or 1.0)


# --------------------------------------------------------------------------- one pixel

TEXT_PANEL_CHARS = 46
"""Characters per line of a figure's text panel (monospace at 9.5 pt in 4.2 inches)."""
PIXEL_TEXT_KEYS = ("divided", "conv", "activation", "pooled")
"""The sentences of a pixel's explanation its figure writes beside the grids."""


def plot_explanation(
    explanation: PixelExplanation, flip: bool = False, figure: Figure | SubFigure | None = None
) -> Figure | SubFigure:
    """Patch (raw 0-255, padding hatched) × kernel = products -> sum -> activation -> pooled.

    Draws the explanation's parts (:func:`convlens.explain.pixel.pixel_parts`): one row of
    grids per input channel, with the sum and the sentences after it beside them; with
    ``flip`` a second set of rows shows true convolution (the kernel turned 180 degrees).
    Returns the figure it drew on.
    """
    e = explanation
    parts = e.parts()
    blocks = [_block(parts, "products", "sum")]
    if flip and find(parts, "convolution_products") is not None:
        blocks.append(_block(parts, "convolution_products", "convolution_sum"))
    channels, kh, kw = e.patch.shape
    rows = channels * len(blocks)
    side = _grid_side(kh, kw)
    if figure is None:
        figure = Figure(figsize=(3 * side + 4.4, side * rows + 0.9))
    width, height = _inches(figure)
    where = find(parts, "where")
    suptitle = fit_text(_wrap(getattr(where, "text", ""), int((3 * side + 4.4) * 9))
                        + ("  (hatched = padding)" if e.padded.any() else ""), 11,
                        width - 2 * PAD)
    grid = Grid(width, height, rows, 4, width_ratios=[side, side, side, 4.2],
                top=suptitle_room(suptitle, 11))
    axes = [[figure.add_axes((0, 0, 1, 1)) for _ in range(4)] for _ in range(rows)]
    show = max(kh, kw) <= 11
    cell_points = side * 72 * 0.8 / max(kh, kw)
    patches = [grid_part.shown(detail=False)[0][1] for grid_part in blocks[0][0]]
    for block, (grids, lines) in enumerate(blocks):
        for channel, grid_part in enumerate(grids):
            tables = [table for _, table in grid_part.shown(detail=False)]
            if len(tables) == 2:  # true convolution: the same patch, the kernel turned
                tables = [patches[channel], *tables]
            row = block * channels + channel
            row_axes = axes[row]
            for index, (ax, table) in enumerate(zip(row_axes[:3], tables)):
                prefix = ("", "× ", "= ")[index]
                _draw_table(ax, table, show, cell_points, prefix,
                            PATCH_CMAPS[channels][channel] if table.scale == "raw" else None)
                _reserve_table(grid, row, index, ax, table)
            row_axes[3].set_axis_off()
        grid.reserve_overhang(3, _text_panel(axes[block * channels][3], lines, 9.5))
    _place(grid, axes)
    place_suptitle(figure, suptitle, 11, height)
    return figure


def _inches(figure: Figure | SubFigure) -> tuple[float, float]:
    """``(width, height)`` in inches of a figure or of a sub-figure's share of its figure."""
    return figure.bbox.width / figure.dpi, figure.bbox.height / figure.dpi


def _reserve_table(grid: Grid, row: int, column: int, ax: Axes, table: Table) -> None:
    """Keep room around one drawn grid part (its title and coordinate labels)."""
    _reserve_grid(grid, row, column, ax, table.array().shape, table.row_labels,
                  table.col_labels)


def _place(grid: Grid, axes: Sequence[Sequence[Axes]]) -> None:
    """Every axes of ``axes`` (rows of columns) in its box of ``grid``."""
    for row, row_axes in enumerate(axes):
        for column, ax in enumerate(row_axes):
            ax.set_position(grid.rect(row, column))


def _block(parts: Sequence[Part], grids_key: str, sum_key: str
           ) -> tuple[list[Grids], list[str]]:
    """The grids of one block (one per channel) and the text beside them: the heading, the
    sum's total, then the block's sentences."""
    grids = [part for part in parts if isinstance(part, Grids) and part.key == grids_key]
    written = find(parts, sum_key)
    level = 1 if grids_key == "products" else 2
    lines = [next(part.text for part in parts
                  if isinstance(part, Heading) and part.level == level)]
    keys: tuple[str, ...] = PIXEL_TEXT_KEYS if grids_key == "products" else ("convolution",)
    if isinstance(written, WrittenSum):
        lines.append(f"{written.label} = {written.lines[-1]} ({written.unit})")
    lines += [part.text for part in parts
              if isinstance(part, Sentence) and part.key in keys]
    return grids, lines


def _draw_table(ax, table: Table, show: bool, cell_points: float, prefix: str = "",
                cmap: str | None = None) -> None:
    """One grid part drawn cell by cell, its numbers written in where ``show``."""
    values = table.array()
    if table.scale == "raw":
        norm: Normalize = Normalize(vmin=min(0.0, float(values.min())),
                                    vmax=max(RAW_SCALE, float(values.max())))
    elif table.scale == "signed" or values.min() < 0:
        norm = _signed_norm(values)
    else:
        high = float(values.max())
        norm = Normalize(0.0, high if high > 0 else 1.0)
    padded = table.mark_array("padding") if table.marks is not None else None
    draw_grid(ax, values, cmap=cmap or (UNSIGNED_CMAP if table.scale == "plain" and
                                        values.min() >= 0 else SIGNED_CMAP),
              norm=norm, text=[list(row) for row in table.cells] if show else None,
              padded=padded, row_labels=table.row_labels, col_labels=table.col_labels,
              title=prefix + table.caption(), cell_points=cell_points)
    for row, col in np.argwhere(table.mark_array("winner")):
        ax.add_artist(Rectangle((col - 0.42, row - 0.42), 0.84, 0.84, fill=False,
                               edgecolor=WINNER, linewidth=4, zorder=4))


def _text_panel(ax, lines: Sequence[str], fontsize: float) -> float:
    """``lines`` written in ``ax`` (no frame), left-aligned and centred vertically; returns
    the inches the text is wide."""
    ax.set_axis_off()
    text = "\n".join(_wrap(line, TEXT_PANEL_CHARS) if line else "" for line in lines)
    ax.text(0.0, 0.5, text, ha="left", va="center", fontsize=fontsize, family="monospace",
            transform=ax.transAxes)
    longest = max(len(line) for line in text.split("\n"))
    return text_extent(text, fontsize, "monospace")[0] + longest * HINTING_SLACK


HINTING_SLACK = 0.5 / 72
"""Inches a character of a text panel may draw wider than measured: Agg rounds each glyph's
advance to whole pixels, up to half a pixel more at 72 dpi (a 46-character line at 90 dpi is
7% wider than at 72)."""


def _wrap(text: str, width: int) -> str:
    return textwrap.fill(text, max(20, width), break_long_words=False)


def _grid_side(kh: int, kw: int) -> float:
    """Inches a side of one grid panel of a ``kh`` x ``kw`` kernel."""
    return max(2.0, max(kh, kw) * (0.42 if max(kh, kw) <= 7 else 0.2) + 0.7)


def _texts(values: np.ndarray, fmt) -> list[list[str]]:
    return [[fmt(float(v)) for v in row] for row in values]


# --------------------------------------------------------------------------- one pooled cell


def plot_pooled_explanation(
    explanation: PooledExplanation, figure: Figure | SubFigure | None = None
) -> Figure | SubFigure:
    """Conv values of the window -> activation -> activated values, the winner outlined, and
    the max or mean beside them (:func:`convlens.explain.pooled.pooled_parts`)."""
    e = explanation
    parts = e.parts()
    size = len(e.window_rows)
    side = _pooled_side(size)
    if figure is None:
        figure = Figure(figsize=(2 * side + 3.8, side + 0.9))
    width, height = _inches(figure)
    where = find(parts, "where")
    suptitle = fit_text(_wrap(getattr(where, "text", ""), int((2 * side + 3.8) * 9)), 11,
                        width - 2 * PAD)
    grid = Grid(width, height, 1, 3, width_ratios=[side, side, 3.6],
                top=suptitle_room(suptitle, 11))
    conv_ax, act_ax, text_ax = axes = [figure.add_axes((0, 0, 1, 1)) for _ in range(3)]
    cell_points = side * 72 * 0.8 / size
    grids = find(parts, "window")
    assert isinstance(grids, Grids)
    conv_table, values_table = grids.tables[0], grids.tables[1]
    _draw_table(conv_ax, conv_table, True, cell_points)
    _draw_table(act_ax, values_table, True, cell_points, "→ ")
    _reserve_table(grid, 0, 0, conv_ax, conv_table)
    _reserve_table(grid, 0, 1, act_ax, values_table)
    result = next(part for part in parts if isinstance(part, Sentence)
                  and part.key in ("max", "mean"))
    heading = next(part.text for part in parts if isinstance(part, Heading))
    grid.reserve_overhang(2, _text_panel(text_ax, [heading, "", result.text], 10))
    _place(grid, [axes])
    place_suptitle(figure, suptitle, 11, height)
    return figure


def _pooled_side(size: int) -> float:
    return max(2.2, size * 0.5 + 0.8)


def plot_explanations(
    items: Sequence[PixelExplanation | PooledExplanation], flip: bool = False
) -> Figure:
    """Several explanations stacked, one sub-figure each (pixels and pooled cells mixed)."""
    if not items:
        raise ConfigError("there is nothing to plot: no explanations were given")
    heights, widths = [], []
    for item in items:
        if isinstance(item, PixelExplanation):
            kh, kw = item.patch.shape[1:]
            side = _grid_side(kh, kw)
            rows = item.channels * (2 if flip and item.flipped_products is not None else 1)
            heights.append(side * rows + 0.9)
            widths.append(3 * side + 4.4)
        else:
            side = _pooled_side(len(item.window_rows))
            heights.append(side + 0.9)
            widths.append(2 * side + 3.8)
    figure = Figure(figsize=(max(widths), sum(heights)))
    subfigures = figure.subfigures(len(items), 1, height_ratios=heights, squeeze=False,
                                   wspace=0, hspace=0)
    for item, sub in zip(items, subfigures[:, 0]):
        if isinstance(item, PixelExplanation):
            plot_explanation(item, flip=flip, figure=sub)
        else:
            plot_pooled_explanation(item, figure=sub)
    return figure


# --------------------------------------------------------------------------- pooling winners


def plot_winners(stages: Stages, zoom_windows: int = 4, dpi: float | None = None) -> Figure:
    """What max pooling keeps: per kernel, the activated map with a zoomed region where each
    window's winning pixel is outlined in green and the losers are dimmed, beside the pooled
    cells they become (``stages.pooled``, as the run computed them).

    The zoom shows ``zoom_windows`` x ``zoom_windows`` pool windows around the busiest part of
    the maps (largest mean activation). The whole maps are drawn at most
    :data:`~convlens.plot.stages.DISPLAY_MAX_SIDE` pixels a side, and with ``dpi`` (of the
    saved picture) no larger than their panels (area-averaged; the title says so).
    """
    config = stages.config
    if config.pool is None or config.pool_type is not PoolType.MAX:
        raise ConfigError("the winners figure needs max pooling")
    data = stage_array(stages, "activated")
    winners = np.asarray(pool_winners(data, config))
    pooled = stage_array(stages, "pooled")
    count, height, width = data.shape
    names = list(stages.kernel_names)
    size, stride = config.pool, config.effective_pool_stride or config.pool
    n_rows = max(1, min(zoom_windows, pooled.shape[1]))
    n_cols = max(1, min(zoom_windows, pooled.shape[2]))
    top, left = _busiest(data, size, stride, n_rows, n_cols)
    span_h, span_w = (n_rows - 1) * stride + size, (n_cols - 1) * stride + size
    aspect = height / width
    fig_size = (13.0, max(3.4, 4.2 * min(aspect, 1.2)) * count + 0.8)
    figure = Figure(figsize=fig_size)
    suptitle = fit_text(f"Max pooling keeps one pixel per {size}x{size} window (the largest) "
                        "and drops the rest", 12, fig_size[0] - 2 * PAD)
    grid = Grid(*fig_size, count, 3, width_ratios=[1.3, 1.0, 0.75],
                top=suptitle_room(suptitle, 12))
    axes = [[figure.add_axes((0, 0, 1, 1)) for _ in range(3)] for _ in range(count)]
    kept = winners.reshape(count, -1).mean(axis=1)
    full_w = fig_size[0] * 1.3 / 3.05
    max_side = DISPLAY_MAX_SIDE if dpi is None else min(DISPLAY_MAX_SIDE, panel_pixels(
        full_w, full_w * aspect, 1.0, dpi))
    shown, factor = downsample_for_display(data, max_side)
    for index in range(count):
        full_ax, zoom_ax, pooled_ax = axes[index]
        high = float(data[index].max()) or 1.0
        norm = Normalize(min(0.0, float(data[index].min())), high)
        full_ax.imshow(shown[index], cmap=UNSIGNED_CMAP, norm=norm, interpolation="nearest",
                       extent=(-0.5, width - 0.5, height - 0.5, -0.5))
        full_ax.add_artist(Rectangle((left - 0.5, top - 0.5), span_w, span_h, fill=False,
                                    edgecolor=HIGHLIGHT, linewidth=2))
        full_ax.set_xticks([])
        full_ax.set_yticks([])
        full_title = (f"{names[index]}: activated {height}x{width}"
                      + (f" (drawn at 1/{factor})" if factor > 1 else "") + "\n"
                      f"orange box = the zoom; {kept[index]:.0%} of pixels win a window")
        full_ax.set_title(full_title, fontsize=9)
        grid.reserve_title(index, 0, full_title, 9)
        block = data[index, top: top + span_h, left: left + span_w]
        mask = winners[index, top: top + span_h, left: left + span_w]
        zoom_norm = Normalize(min(0.0, float(block.min())), float(block.max()) or 1.0)
        zoom_rows, zoom_cols = list(range(top, top + span_h)), list(range(left, left + span_w))
        draw_grid(zoom_ax, block, cmap=UNSIGNED_CMAP, norm=zoom_norm,
                  row_labels=zoom_rows, col_labels=zoom_cols,
                  title=f"zoom: {size}x{size} windows (orange), stride {stride};\n"
                        "green box = the winner kept; grey numbers are dropped")
        _reserve_grid(grid, index, 1, zoom_ax, block.shape, zoom_rows, zoom_cols)
        for r in range(n_rows):
            for c in range(n_cols):
                zoom_ax.add_artist(Rectangle((c * stride - 0.5, r * stride - 0.5), size, size,
                                            fill=False, edgecolor=HIGHLIGHT, linewidth=2.5,
                                            zorder=3))
        if max(span_h, span_w) <= 16:
            font = _cell_font([["0.00"]], 200 / max(span_h, span_w))
            for (r, c), value in np.ndenumerate(block):
                dark = zoom_norm(value) < 0.55
                if mask[r, c]:
                    color, weight = ("white" if dark else "black"), "bold"
                else:
                    color, weight = ("#9a9a9a" if dark else "#5a5a5a"), "normal"
                zoom_ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=font,
                             color=color, fontweight=weight, zorder=5)
        for (r, c), won in np.ndenumerate(mask):
            if won:
                zoom_ax.add_artist(Rectangle((c - 0.4, r - 0.4), 0.8, 0.8, fill=False,
                                            edgecolor=WINNER, linewidth=2.5, zorder=4))
        prow, pcol = top // stride, left // stride
        cells = pooled[index, prow: prow + n_rows, pcol: pcol + n_cols]
        cell_rows, cell_cols = list(range(prow, prow + n_rows)), list(range(pcol, pcol + n_cols))
        draw_grid(pooled_ax, cells, cmap=UNSIGNED_CMAP, norm=zoom_norm,
                  text=_texts(cells, lambda v: f"{v:.2f}") if max(n_rows, n_cols) <= 12
                  else None, row_labels=cell_rows, col_labels=cell_cols,
                  title=f"pooled cells kept\n({pooled.shape[1]}x{pooled.shape[2]} in all)")
        _reserve_grid(grid, index, 2, pooled_ax, cells.shape, cell_rows, cell_cols)
    _place(grid, axes)
    place_suptitle(figure, suptitle, 12, fig_size[1])
    return figure


def _reserve_grid(grid: Grid, row: int, column: int, ax: Axes, shape: tuple[int, ...],
                  row_labels: Sequence[int] | None, col_labels: Sequence[int] | None) -> None:
    """Keep room around one :func:`draw_grid` panel of ``shape`` cells: its title and
    coordinate labels."""
    above, left = grid_room((int(shape[0]), int(shape[1])), row_labels, col_labels,
                            ax.get_title(), 10)
    grid.reserve(row, column, above=above, left=left)
    grid.reserve_width(column, text_extent(ax.get_title(), 10)[0])


def _busiest(data: np.ndarray, size: int, stride: int, n_rows: int, n_cols: int
             ) -> tuple[int, int]:
    """Top-left (conv coords, on the window grid) of the n_rows x n_cols windows with the
    largest mean activation (each map scaled by its maximum first)."""
    summed = np.zeros((data.shape[1], data.shape[2]), np.float32)
    for values in data:  # one map at a time: no copy of all the maps
        scale = max(float(values.max(initial=0.0)), -float(values.min(initial=0.0))) or 1.0
        summed += np.abs(values) * np.float32(1 / scale)
    span_h, span_w = (n_rows - 1) * stride + size, (n_cols - 1) * stride + size
    span_h, span_w = min(span_h, data.shape[1]), min(span_w, data.shape[2])
    # each span's sum at every stride-th place (an average pool): prefix sums down the rows,
    # read at the windows' rows only, then along those rows
    rows = np.arange(0, summed.shape[0] - span_h + 1, stride)
    cols = np.arange(0, summed.shape[1] - span_w + 1, stride)
    down = np.zeros((summed.shape[0] + 1, summed.shape[1]))
    np.cumsum(summed, axis=0, dtype=np.float64, out=down[1:])
    bands = down[rows + span_h] - down[rows]
    across = np.zeros((len(rows), summed.shape[1] + 1))
    np.cumsum(bands, axis=1, out=across[:, 1:])
    scores = across[:, cols + span_w] - across[:, cols]
    # keep away from the borders, where padding makes artificial edges, when there is room
    margin_h, margin_w = scores.shape[0] // 12, scores.shape[1] // 12
    inner = np.full_like(scores, -1.0)
    inner[margin_h: scores.shape[0] - margin_h, margin_w: scores.shape[1] - margin_w] = scores[
        margin_h: scores.shape[0] - margin_h, margin_w: scores.shape[1] - margin_w]
    index = int(np.argmax(inner))
    return (index // scores.shape[1]) * stride, (index % scores.shape[1]) * stride


# --------------------------------------------------------------------------- slide frames


class SlideFigure:
    """One figure, redrawn per step, for the sliding-kernel animation.

    Left: the padded input (padding hatched), the kernel's taps shaded orange with the weight
    of each tap in its corner; middle: the kernel; right: the output filling in cell by cell;
    below: the current sum written out. :meth:`show` moves it to a step and returns the RGB
    frame ``(H, W, 3)`` uint8.
    """

    def __init__(self, slide, dpi: int = SCREEN_DPI) -> None:
        self.slide = slide
        self.dpi = dpi
        hp, wp = slide.padded.shape
        kh, kw = slide.kernel.shape
        ho, wo = slide.output.shape
        unit = 0.42
        width = (wp + kw + wo) * unit + 3.2
        height = max(hp, kh, ho) * unit + 2.4
        self.figure = Figure(figsize=(max(8.0, width), max(4.2, height)), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        grid = self.figure.add_gridspec(2, 3, width_ratios=[wp, max(kw, 2), wo],
                                        height_ratios=[max(hp, kh, ho), 1.6],
                                        left=0.04, right=0.98, top=0.86, bottom=0.02,
                                        wspace=0.25, hspace=0.12)
        self.input_ax = self.figure.add_subplot(grid[0, 0])
        self.kernel_ax = self.figure.add_subplot(grid[0, 1])
        self.output_ax = self.figure.add_subplot(grid[0, 2])
        self.text_ax = self.figure.add_subplot(grid[1, :])
        self.text_ax.set_axis_off()
        self._draw_static()

    def _draw_static(self) -> None:
        s = self.slide
        values = s.padded
        low, high = float(s.values.min()), float(s.values.max())
        norm = Normalize(low, high if high > low else low + 1)
        texts = _texts(values, format_raw)
        draw_grid(self.input_ax, values, cmap="gray", norm=norm, text=texts,
                  padded=s.pad_mask,
                  title=f"input {s.values.shape[0]}x{s.values.shape[1]}"
                  + (f" + padding {_pad_text(s.pads)} ({s.config.padding_mode.value}, "
                     "purple)" if any(s.pads) else ""))
        self.taps = self.input_ax.imshow(np.zeros((*values.shape, 4)), interpolation="nearest")
        kh, kw = s.kernel.shape
        weight_texts = [f"×{format_number(float(w), 3)}" for w in s.kernel.ravel()]
        # weights are written in the taps' corners only where they fit (the kernel panel
        # always shows them)
        self.show_weights = max(len(text) for text in weight_texts) <= 4
        self.tap_labels = [self.input_ax.text(0, 0, "", fontsize=_cell_font(weight_texts) * 0.75,
                                              color="#7a2e00", ha="right", va="bottom",
                                              fontweight="bold", path_effects=[
                                                  patheffects.withStroke(linewidth=2.5,
                                                                         foreground="white")])
                           for _ in range(kh * kw)]
        kernel_texts = _texts(s.kernel, lambda v: format_number(v, 3))
        draw_grid(self.kernel_ax, s.kernel, cmap=SIGNED_CMAP, norm=_signed_norm(s.kernel),
                  text=kernel_texts, fontsize=_cell_font(kernel_texts),
                  title=f"kernel {kh}x{kw}")
        ho, wo = s.output.shape
        out_norm = _signed_norm(s.output)
        self.output_image = self.output_ax.imshow(np.full((ho, wo), np.nan), cmap=SIGNED_CMAP,
                                                  norm=out_norm, interpolation="nearest")
        self.output_ax.set_facecolor("white")
        self.output_ax.set_xticks(np.arange(wo + 1) - 0.5, minor=True)
        self.output_ax.set_yticks(np.arange(ho + 1) - 0.5, minor=True)
        self.output_ax.grid(which="minor", color="#bbb", linewidth=1)
        self.output_ax.tick_params(which="minor", length=0)
        self.output_ax.set_xticks([])
        self.output_ax.set_yticks([])
        self.output_ax.set_title(f"output {ho}x{wo}", fontsize=10)
        out_font = _cell_font([[format_raw(float(v)) for v in s.output.ravel()]])
        self.output_texts = [[self.output_ax.text(c, r, "", ha="center", va="center",
                                                  fontsize=out_font)
                              for c in range(wo)] for r in range(ho)]
        self.output_norm = out_norm
        self.current = Rectangle((-0.5, -0.5), 1, 1, fill=False, edgecolor=HIGHLIGHT,
                                 linewidth=3)
        self.output_ax.add_patch(self.current)
        self.field = Rectangle((-0.5, -0.5), 1, 1, fill=False, edgecolor=HIGHLIGHT,
                               linewidth=2.5)
        self.input_ax.add_patch(self.field)
        self.text_width = int(self.figure.get_figwidth() * 0.95 * 72 / (10 * 0.64)) - 2
        self.sum_text = self.text_ax.text(0.0, 1.0, "", ha="left", va="top", fontsize=10,
                                          family="monospace", transform=self.text_ax.transAxes)
        self.title = self.figure.suptitle("", fontsize=12)

    def show(self, step: int | None) -> np.ndarray:
        """Draw the state after ``step`` (0-based) output cells, or the finished output."""
        s = self.slide
        count = len(s.steps) if step is None else step + 1
        ho, wo = s.output.shape
        filled = np.full((ho, wo), np.nan)
        for index, item in enumerate(s.steps):
            label = self.output_texts[item.row][item.col]
            if index < count:
                filled[item.row, item.col] = item.total
                label.set_text(format_raw(item.total))
                label.set_color("white" if abs(self.output_norm(item.total) - 0.5) > 0.35
                                else "black")
            else:
                label.set_text("")
        self.output_image.set_data(filled)
        overlay = np.zeros((*s.padded.shape, 4))
        if step is None:
            self.field.set_visible(False)
            self.current.set_visible(False)
            for label in self.tap_labels:
                label.set_text("")
            self.sum_text.set_text(textwrap.fill(
                f"done: each of the {len(s.steps)} output cells is the sum of the kernel's "
                f"weights times the input cells under them. {CROSS_CORRELATION_NOTE}",
                self.text_width))
            self.title.set_text(f"{s.heading()}  -  finished")
        else:
            item = s.steps[step]
            kw = s.kernel.shape[1]
            for index, (r, c) in enumerate((r, c) for r in item.tap_rows for c in item.tap_cols):
                overlay[r, c] = (1.0, 0.55, 0.0, 0.45)
                label = self.tap_labels[index]
                label.set_position((c + 0.48, r + 0.48))
                weight = float(s.kernel[index // kw, index % kw])
                label.set_text(f"×{format_number(weight, 3)}" if self.show_weights else "")
            self.field.set_visible(True)
            self.field.set_xy((item.tap_cols[0] - 0.5, item.tap_rows[0] - 0.5))
            self.field.set_width(item.tap_cols[-1] - item.tap_cols[0] + 1)
            self.field.set_height(item.tap_rows[-1] - item.tap_rows[0] + 1)
            self.current.set_visible(True)
            self.current.set_xy((item.col - 0.5, item.row - 0.5))
            self.sum_text.set_text(s.step_text(step, self.text_width))
            self.title.set_text(f"{s.heading()}  -  output ({item.row}, {item.col}), "
                                f"step {step + 1} of {len(s.steps)}")
        self.taps.set_data(overlay)
        canvas = self.canvas
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


def _cell_font(texts: Sequence[Sequence[str]], cell_points: float = 30.0) -> float:
    """Largest font (points, 4 to 13) that fits the longest text in a cell that wide."""
    longest = max((len(text) for row in texts for text in row), default=1)
    return float(min(13.0, 0.45 * cell_points, max(4.0, 1.45 * cell_points / max(longest, 2))))


def _pad_text(pads: tuple[int, int, int, int]) -> str:
    top, bottom, left, right = pads
    return str(top) if len({top, bottom, left, right}) == 1 else f"{top},{bottom},{left},{right}"


__all__ = [
    "SlideFigure",
    "draw_grid",
    "plot_explanation",
    "plot_explanations",
    "plot_pooled_explanation",
    "plot_winners",
]
