"""Teaching figures: one pixel's arithmetic, one pooling window, pooling winners, slide frames.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot. Grids are drawn
cell by cell with their numbers written in, padded cells hatched, so a student can redo the
arithmetic from the picture alone.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure, SubFigure
from matplotlib.patches import Rectangle

from ..config import LayerConfig, PoolType
from ..explain import PixelExplanation, PooledExplanation, format_raw, pool_winners
from .stages import SIGNED_CMAP, UNSIGNED_CMAP, format_number

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
    """Draw a ``(h, w)`` grid of cells coloured by value with ``text`` written in each.

    ``padded`` ``(h, w)`` marks padding cells (lavender, hatched, purple numbers);
    ``row_labels`` / ``col_labels`` label the axes with coordinates (e.g. input rows and cols).
    The font fits the longest text in a cell of ``cell_points`` unless ``fontsize`` is given.
    """
    height, width = values.shape
    ax.imshow(values, cmap=cmap, norm=norm, interpolation="nearest")
    ax.set_xticks(np.arange(width + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(height + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.2)
    ax.tick_params(which="minor", length=0)
    _labels(ax, row_labels, col_labels, height, width)
    padded = np.zeros(values.shape, dtype=bool) if padded is None else padded
    for (row, col), is_pad in np.ndenumerate(padded):
        if is_pad:
            ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, facecolor=PAD_FILL,
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
    if title:
        ax.set_title(title, fontsize=10)


def _labels(ax, row_labels, col_labels, height: int, width: int) -> None:
    step = max(1, max(height, width) // 8)
    if row_labels is None:
        ax.set_yticks([])
    else:
        ticks = list(range(0, height, step))
        ax.set_yticks(ticks, [str(row_labels[i]) for i in ticks], fontsize=7)
    if col_labels is None:
        ax.set_xticks([])
    else:
        ticks = list(range(0, width, step))
        ax.set_xticks(ticks, [str(col_labels[i]) for i in ticks], fontsize=7)
        ax.xaxis.tick_top()


def _signed_norm(values: np.ndarray) -> Normalize:
    bound = float(np.abs(values).max()) or 1.0
    return TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound)


# --------------------------------------------------------------------------- one pixel


def plot_explanation(
    explanation: PixelExplanation, flip: bool = False, figure: Figure | SubFigure | None = None
) -> Figure | SubFigure:
    """Patch (raw 0-255, padding hatched) × kernel = products -> sum -> activation -> pooled.

    One row of panels per input channel; with ``flip`` a second set of rows shows true
    convolution (the kernel turned 180 degrees). Returns the figure it drew on.
    """
    e = explanation
    flip = flip and e.flipped_products is not None
    channels, kh, kw = e.patch.shape
    blocks = [("cross-correlation (what Conv2d does)", e.weights, e.products, e.total)]
    if flip:
        blocks.append(("true convolution (kernel turned 180°)", e.flipped_weights,
                       e.flipped_products, e.flipped_total))
    rows = channels * len(blocks)
    cell = 0.42 if max(kh, kw) <= 7 else 0.2
    side = max(2.0, max(kh, kw) * cell + 0.7)
    if figure is None:
        figure = Figure(figsize=(3 * side + 4.4, side * rows + 0.9), layout="constrained")
    axes = figure.subplots(rows, 4, squeeze=False,
                           gridspec_kw={"width_ratios": [side, side, side, 4.2]})
    raw = e.patch.astype(np.float64) * e.scale
    raw_norm = Normalize(vmin=min(0.0, float(raw.min())), vmax=max(e.scale, float(raw.max())))
    show = max(kh, kw) <= 11
    cell_points = side * 72 * 0.8 / max(kh, kw)
    one_decimal = lambda v: format_raw(v, 1)  # noqa: E731
    for block, (label, weights, products, total) in enumerate(blocks):
        weight_norm = _signed_norm(weights)
        product_norm = _signed_norm(products * e.scale)
        for channel in range(channels):
            row = block * channels + channel
            tag = f" [{CHANNEL_LABELS[channel]}]" if channels == 3 else ""
            patch_ax, kernel_ax, product_ax, _ = axes[row]
            draw_grid(patch_ax, raw[channel], cmap=PATCH_CMAPS[channels][channel],
                      norm=raw_norm, text=_texts(raw[channel], one_decimal) if show else None,
                      padded=e.padded, row_labels=e.input_rows, col_labels=e.input_cols,
                      title=f"input patch (0-255){tag}", cell_points=cell_points)
            draw_grid(kernel_ax, weights[channel], cmap=SIGNED_CMAP, norm=weight_norm,
                      text=_texts(weights[channel], lambda v: format_number(v, 3))
                      if show else None, cell_points=cell_points,
                      title=("× kernel" if block == 0 else "× kernel turned 180°") + tag)
            draw_grid(product_ax, products[channel] * e.scale, cmap=SIGNED_CMAP,
                      norm=product_norm, cell_points=cell_points,
                      text=_texts(products[channel] * e.scale, one_decimal) if show else None,
                      padded=e.padded, title=f"= products{tag}")
        text_ax = axes[block * channels][3]
        for extra in range(1, channels):
            axes[block * channels + extra][3].set_axis_off()
        _result_text(text_ax, e, label, total)
    figure.suptitle(
        f"{e.kernel_name}: conv pixel ({e.row}, {e.col}) of the {e.conv_shape[0]}x"
        f"{e.conv_shape[1]} map; receptive field rows {e.input_rows[0]}..{e.input_rows[-1]}, "
        f"cols {e.input_cols[0]}..{e.input_cols[-1]}"
        + (f" (taps {e.config.dilation} px apart)" if e.config.dilation > 1 else "")
        + ("  (hatched = padding)" if e.padded.any() else ""), fontsize=11)
    return figure


def _result_text(ax, e: PixelExplanation, label: str, total: float) -> None:
    ax.set_axis_off()
    value = total + e.bias
    lines = [label, "", f"sum of products = {format_raw(total * e.scale)}  (0-255 units)",
             f"÷ {format_number(e.scale)} = {value - e.bias:.5g}  (normalized)"]
    if e.bias:
        lines.append(f"+ bias {e.bias:.4g} = {value:.5g}")
    activated = float(e.activated) if label.startswith("cross") else None
    if activated is not None:
        lines += ["", f"{e.config.activation.value}({value:.4g}) = {activated:.5g}"]
        for fed in e.pooled[:2]:
            cell = tuple(fed["cell"])
            if fed["winner"] is None:
                lines.append(f"-> averaged into pooled cell {cell}")
            elif fed["wins"]:
                lines.append(f"-> wins its window: pooled cell {cell} = {fed['value']:.4g}")
            else:
                lines.append(f"-> loses in pooled cell {cell} to {tuple(fed['winner'])}")
        if e.config.pool is not None and not e.pooled:
            lines.append("-> in no pooling window (dropped by the pool)")
    ax.text(0.0, 0.5, "\n".join(lines), ha="left", va="center", fontsize=9.5,
            family="monospace", transform=ax.transAxes)


def _texts(values: np.ndarray, fmt) -> list[list[str]]:
    return [[fmt(float(v)) for v in row] for row in values]


# --------------------------------------------------------------------------- one pooled cell


def plot_pooled_explanation(
    explanation: PooledExplanation, figure: Figure | SubFigure | None = None
) -> Figure | SubFigure:
    """Conv values of the window -> activation -> activated values, the winner outlined."""
    e = explanation
    size = len(e.window_rows)
    side = max(2.2, size * 0.5 + 0.8)
    if figure is None:
        figure = Figure(figsize=(2 * side + 3.8, side + 0.9), layout="constrained")
    conv_ax, act_ax, text_ax = figure.subplots(
        1, 3, gridspec_kw={"width_ratios": [side, side, 3.6]})
    fmt = lambda v: f"{v:.3g}"  # noqa: E731
    cell_points = side * 72 * 0.8 / size
    draw_grid(conv_ax, e.conv_values, cmap=SIGNED_CMAP, norm=_signed_norm(e.conv_values),
              text=_texts(e.conv_values, fmt), row_labels=e.window_rows,
              col_labels=e.window_cols, title="conv values in the window",
              cell_points=cell_points)
    low, high = min(0.0, float(e.values.min())), float(e.values.max())
    draw_grid(act_ax, e.values, cmap=UNSIGNED_CMAP if low >= 0 else SIGNED_CMAP,
              norm=Normalize(low, high if high > low else low + 1) if low >= 0
              else _signed_norm(e.values),
              text=_texts(e.values, fmt), row_labels=e.window_rows, col_labels=e.window_cols,
              title=f"-> {e.config.activation.value}: what the pool sees",
              cell_points=cell_points)
    text_ax.set_axis_off()
    if e.winner is not None:
        r = e.window_rows.index(e.winner[0])
        c = e.window_cols.index(e.winner[1])
        act_ax.add_patch(Rectangle((c - 0.42, r - 0.42), 0.84, 0.84, fill=False,
                                   edgecolor=WINNER, linewidth=4, zorder=4))
        lines = [f"max of the {e.values.size} values", f"= {e.value:.5g}",
                 f"winner at conv ({e.winner[0]}, {e.winner[1]})", "(green box)",
                 f"the other {e.values.size - 1} are dropped"]
    else:
        lines = [f"mean of the {e.values.size} values", f"= {e.values.sum():.5g} / "
                 f"{e.values.size}", f"= {e.value:.5g}"]
    ax_text = "\n".join([f"pooled cell ({e.row}, {e.col})", "", *lines])
    text_ax.text(0.0, 0.5, ax_text, ha="left", va="center", fontsize=10, family="monospace",
                 transform=text_ax.transAxes)
    figure.suptitle(
        f"{e.kernel_name}: {e.pool_type.value} pool {e.config.pool}x{e.config.pool} "
        f"(stride {e.config.effective_pool_stride}), window conv rows {e.window_rows[0]}.."
        f"{e.window_rows[-1]}, cols {e.window_cols[0]}..{e.window_cols[-1]}", fontsize=11)
    return figure


def plot_explanations(
    items: Sequence[PixelExplanation | PooledExplanation], flip: bool = False
) -> Figure:
    """Several explanations stacked, one sub-figure each (pixels and pooled cells mixed)."""
    if not items:
        raise ValueError("nothing to plot")
    heights, widths = [], []
    for item in items:
        if isinstance(item, PixelExplanation):
            kh, kw = item.patch.shape[1:]
            side = max(2.0, max(kh, kw) * (0.42 if max(kh, kw) <= 7 else 0.2) + 0.7)
            rows = item.channels * (2 if flip and item.flipped_products is not None else 1)
            heights.append(side * rows + 0.9)
            widths.append(3 * side + 4.4)
        else:
            side = max(2.2, len(item.window_rows) * 0.5 + 0.8)
            heights.append(side + 0.9)
            widths.append(2 * side + 3.8)
    figure = Figure(figsize=(max(widths), sum(heights)), layout="constrained")
    subfigures = figure.subfigures(len(items), 1, height_ratios=heights, squeeze=False)
    for item, sub in zip(items, subfigures[:, 0]):
        if isinstance(item, PixelExplanation):
            plot_explanation(item, flip=flip, figure=sub)
        else:
            plot_pooled_explanation(item, figure=sub)
    return figure


# --------------------------------------------------------------------------- pooling winners


def plot_winners(
    activated: torch.Tensor | np.ndarray,
    config: LayerConfig,
    names: Sequence[str] | None = None,
    zoom_windows: int = 4,
) -> Figure:
    """What max pooling keeps: per kernel, the activated map with a zoomed region where each
    window's winning pixel is outlined in green and the losers are dimmed, beside the pooled
    cells they become.

    ``activated`` is ``(K, H, W)``. The zoom shows ``zoom_windows`` x ``zoom_windows`` pool
    windows around the busiest part of the maps (largest mean activation).
    """
    maps = torch.as_tensor(np.asarray(activated, dtype=np.float32)) if not isinstance(
        activated, torch.Tensor) else activated.detach().to("cpu", torch.float32)
    if config.pool is None or config.pool_type is not PoolType.MAX:
        from ..errors import ConfigError

        raise ConfigError("the winners figure needs max pooling (--pool N --pool-type max)")
    winners = pool_winners(maps, config).numpy()
    pooled = F.max_pool2d(maps[None], config.pool, config.effective_pool_stride)[0].numpy()
    data = maps.numpy()
    count, height, width = data.shape
    names = list(names) if names is not None else [f"map {i + 1}" for i in range(count)]
    size, stride = config.pool, config.effective_pool_stride or config.pool
    n_rows = max(1, min(zoom_windows, pooled.shape[1]))
    n_cols = max(1, min(zoom_windows, pooled.shape[2]))
    top, left = _busiest(data, size, stride, n_rows, n_cols)
    span_h, span_w = (n_rows - 1) * stride + size, (n_cols - 1) * stride + size
    aspect = height / width
    figure = Figure(figsize=(13, max(3.4, 4.2 * min(aspect, 1.2)) * count + 0.8),
                    layout="constrained")
    axes = figure.subplots(count, 3, squeeze=False,
                           gridspec_kw={"width_ratios": [1.3, 1.0, 0.75]})
    kept = winners.reshape(count, -1).mean(axis=1)
    for index in range(count):
        full_ax, zoom_ax, pooled_ax = axes[index]
        high = float(data[index].max()) or 1.0
        norm = Normalize(min(0.0, float(data[index].min())), high)
        full_ax.imshow(data[index], cmap=UNSIGNED_CMAP, norm=norm, interpolation="nearest")
        full_ax.add_patch(Rectangle((left - 0.5, top - 0.5), span_w, span_h, fill=False,
                                    edgecolor=HIGHLIGHT, linewidth=2))
        full_ax.set_xticks([])
        full_ax.set_yticks([])
        full_ax.set_title(f"{names[index]}: activated {height}x{width}\n"
                          f"orange box = the zoom; {kept[index]:.0%} of pixels win a window",
                          fontsize=9)
        block = data[index, top: top + span_h, left: left + span_w]
        mask = winners[index, top: top + span_h, left: left + span_w]
        zoom_norm = Normalize(min(0.0, float(block.min())), float(block.max()) or 1.0)
        draw_grid(zoom_ax, block, cmap=UNSIGNED_CMAP, norm=zoom_norm,
                  row_labels=list(range(top, top + span_h)),
                  col_labels=list(range(left, left + span_w)),
                  title=f"zoom: {size}x{size} windows (orange), stride {stride};\n"
                        "green box = the winner kept; grey numbers are dropped")
        for r in range(n_rows):
            for c in range(n_cols):
                zoom_ax.add_patch(Rectangle((c * stride - 0.5, r * stride - 0.5), size, size,
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
                zoom_ax.add_patch(Rectangle((c - 0.4, r - 0.4), 0.8, 0.8, fill=False,
                                            edgecolor=WINNER, linewidth=2.5, zorder=4))
        prow, pcol = top // stride, left // stride
        cells = pooled[index, prow: prow + n_rows, pcol: pcol + n_cols]
        draw_grid(pooled_ax, cells, cmap=UNSIGNED_CMAP, norm=zoom_norm,
                  text=_texts(cells, lambda v: f"{v:.2f}") if max(n_rows, n_cols) <= 12
                  else None,
                  row_labels=list(range(prow, prow + n_rows)),
                  col_labels=list(range(pcol, pcol + n_cols)),
                  title=f"pooled cells kept\n({pooled.shape[1]}x{pooled.shape[2]} in all)")
    figure.suptitle(
        f"Max pooling keeps one pixel per {size}x{size} window (the largest) and drops the rest",
        fontsize=12)
    return figure


def _busiest(data: np.ndarray, size: int, stride: int, n_rows: int, n_cols: int
             ) -> tuple[int, int]:
    """Top-left (conv coords, on the window grid) of the n_rows x n_cols windows with the
    largest mean activation (each map scaled by its maximum first)."""
    scale = np.abs(data).reshape(len(data), -1).max(axis=1)
    scale[scale == 0] = 1.0
    summed = torch.from_numpy((np.abs(data) / scale[:, None, None]).sum(axis=0))[None, None]
    span_h, span_w = (n_rows - 1) * stride + size, (n_cols - 1) * stride + size
    span_h, span_w = min(span_h, data.shape[1]), min(span_w, data.shape[2])
    scores = F.avg_pool2d(summed, (span_h, span_w), stride)[0, 0]
    # keep away from the borders, where padding makes artificial edges, when there is room
    margin_h, margin_w = scores.shape[0] // 12, scores.shape[1] // 12
    inner = torch.full_like(scores, -1.0)
    inner[margin_h: scores.shape[0] - margin_h, margin_w: scores.shape[1] - margin_w] = scores[
        margin_h: scores.shape[0] - margin_h, margin_w: scores.shape[1] - margin_w]
    index = int(torch.argmax(inner))
    return (index // scores.shape[1]) * stride, (index % scores.shape[1]) * stride


# --------------------------------------------------------------------------- slide frames


class SlideFigure:
    """One figure, redrawn per step, for the sliding-kernel animation.

    Left: the padded input (padding hatched), the kernel's taps shaded orange with the weight
    of each tap in its corner; middle: the kernel; right: the output filling in cell by cell;
    below: the current sum written out. :meth:`show` moves it to a step and returns the RGB
    frame ``(H, W, 3)`` uint8.
    """

    def __init__(self, slide, dpi: int = 80) -> None:
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
                "weights times the input cells under them. PyTorch's Conv2d does exactly this "
                "(cross-correlation: the kernel is not turned round).", self.text_width))
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
