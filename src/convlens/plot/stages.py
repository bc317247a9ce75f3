"""Figures: kernels with their numbers, and stage maps one labelled panel per kernel.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot (no global state, no
``plt.show()``), so the CLI saves it, a notebook displays it, and nothing leaks. Maps larger than
``max_side`` pixels are shrunk for display by area averaging; the panel title says so, and the
value range printed is always that of the full-resolution data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from ..limits import MAX_FIGURE_INCHES, MAX_PANEL_ASPECT

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


def format_number(value: float, digits: int = 3) -> str:
    """Short text for a cell value: ``2``, ``-0.5``, ``0.0625``."""
    if abs(value - round(value)) < 1e-6:
        return str(round(value))
    return f"{value:.{digits}g}"


def common_denominator(values: np.ndarray, limit: int = 1024) -> int:
    """Smallest d <= ``limit`` making every value times d a whole number (1 if none)."""
    for denominator in (1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 16, 25, 32, 64, 100, 128, 256, 512, 1024):
        if denominator > limit:
            break
        scaled = values * denominator
        if np.allclose(scaled, np.round(scaled), atol=1e-4):
            return denominator
    return 1


def bounded_figsize(width: float, height: float) -> tuple[float, float]:
    """``(width, height)`` in inches, scaled down whole so neither side passes
    :data:`~convlens.limits.MAX_FIGURE_INCHES` (the canvas, not the layout, is what costs
    memory: a 20000x3 map must not ask for a figure a mile tall)."""
    scale = min(1.0, MAX_FIGURE_INCHES / max(width, height, 1e-9))
    return width * scale, height * scale


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
    weights = _as_numpy(kernels)
    if weights.ndim == 2:
        weights = weights[None, None]
    elif weights.ndim == 3:
        weights = weights[:, None]
    count, channels, kh, kw = weights.shape
    names = list(names) if names is not None else [f"kernel {i + 1}" for i in range(count)]
    cell = 0.42 if max(kh, kw) <= 7 else 0.22
    panel_w = max(2.2, kw * cell + 0.6)
    panel_h = max(2.0, kh * cell + 0.9)
    per_row = min(count, KERNEL_COLUMNS)
    blocks = math.ceil(count / per_row)
    figure = Figure(figsize=bounded_figsize(
        panel_w * per_row, panel_h * channels * blocks + (0.5 if title else 0)),
        layout="constrained")
    axes = figure.subplots(channels * blocks, per_row, squeeze=False)
    for ax in axes.flat[count * channels:]:
        ax.set_axis_off()
    show_numbers = max(kh, kw) <= 11
    for index in range(count):
        denominator = common_denominator(weights[index])
        limit = float(np.abs(weights[index]).max()) or 1.0
        block, column = divmod(index, per_row)
        for channel in range(channels):
            ax = axes[block * channels + channel][column]
            grid = weights[index, channel]
            ax.imshow(grid, cmap=SIGNED_CMAP, vmin=-limit, vmax=limit, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if show_numbers:
                font = 11 if max(kh, kw) <= 5 else 7
                for (row, col), value in np.ndenumerate(grid):
                    shade = abs(value) / limit
                    ax.text(col, row, format_number(value * denominator), ha="center",
                            va="center", fontsize=font, color="white" if shade > 0.6 else "black")
            label = names[index]
            if denominator > 1:
                label += f"  (x 1/{denominator})"
            if channels > 1:
                label = f"{label} [{CHANNEL_LABELS[channel] if channels == 3 else channel}]"
            ax.set_title(label, fontsize=10)
    if title:
        figure.suptitle(title, fontsize=12)
    return figure


def plot_maps(
    maps: torch.Tensor | np.ndarray,
    names: Sequence[str] | None = None,
    title: str = "",
    signed: bool | None = None,
    max_side: int = DISPLAY_MAX_SIDE,
    columns: int | None = None,
) -> Figure:
    """Draw feature maps ``(K, H, W)`` one labelled panel each, with a colour bar.

    Signed data (``signed=None`` decides from the values) uses a diverging map centred on 0,
    non-negative data a gray ramp from 0. Each panel's title gives its name, shape and range.
    Maps more elongated than :data:`~convlens.limits.MAX_PANEL_ASPECT` are drawn stretched.
    """
    data = _as_numpy(maps)
    if data.ndim == 2:
        data = data[None]
    count, height, width = data.shape
    names = list(names) if names is not None else [f"map {i + 1}" for i in range(count)]
    display, factor = downsample_for_display(data, max_side)
    if signed is None:
        signed = bool(data.min() < 0)
    columns = columns or min(count, 4)
    rows = math.ceil(count / columns)
    aspect, stretched = panel_aspect(height, width)
    panel_w = 4.2 if columns > 1 else 6.0
    figure = Figure(figsize=bounded_figsize(panel_w * columns, panel_w * aspect * rows + 0.9),
                    layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for index in range(rows * columns):
        ax = axes[index // columns][index % columns]
        if index >= count:
            ax.set_axis_off()
            continue
        low, high = float(data[index].min()), float(data[index].max())
        norm, cmap = display_norm(display[index], signed)
        image = ax.imshow(display[index], cmap=cmap, norm=norm, interpolation="nearest",
                          aspect="auto" if stretched else "equal")
        ax.set_xticks([])
        ax.set_yticks([])
        label = (f"{names[index]}  {height}x{width}\n"
                 f"range [{format_number(low)}, {format_number(high)}]")
        if factor > 1:
            label += f"  (drawn at 1/{factor})"
        if stretched:
            label += "  (stretched)"
        ax.set_title(label, fontsize=9)
        figure.colorbar(image, ax=ax, shrink=0.8, extend="both" if signed else "max")
    if title:
        figure.suptitle(title, fontsize=12)
    return figure


def plot_image(image: torch.Tensor | np.ndarray, title: str = "input",
               max_side: int = DISPLAY_MAX_SIDE) -> Figure:
    """Draw an image ``(C, H, W)`` in [0, 1] (gray or RGB) with its size in the title."""
    data = _as_numpy(image)
    channels, height, width = data.shape
    display, factor = downsample_for_display(data, max_side)
    aspect, stretched = panel_aspect(height, width)
    figure = Figure(figsize=bounded_figsize(6, 6 * aspect + 0.6), layout="constrained")
    ax = figure.subplots()
    fit = "auto" if stretched else "equal"
    if channels == 1:
        ax.imshow(display[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest", aspect=fit)
    else:
        ax.imshow(np.clip(display.transpose(1, 2, 0), 0, 1), interpolation="nearest",
                  aspect=fit)
    ax.set_xticks([])
    ax.set_yticks([])
    suffix = f"  (drawn at 1/{factor})" if factor > 1 else ""
    suffix += "  (stretched)" if stretched else ""
    ax.set_title(f"{title}  {channels}x{height}x{width}{suffix}", fontsize=10)
    return figure


def display_norm(data: np.ndarray, signed: bool) -> tuple[Normalize, str]:
    """Colour normalization and map name for one panel.

    Signed data: a diverging map centred on 0, symmetric at the :data:`DISPLAY_PERCENTILE` of
    ``|data|``. Non-negative data: gray from 0 to that percentile.
    """
    magnitude = np.abs(data) if signed else data
    top = float(np.percentile(magnitude, DISPLAY_PERCENTILE)) if magnitude.size else 0.0
    top = top or float(magnitude.max(initial=0.0)) or 1.0
    if signed:
        return TwoSlopeNorm(vcenter=0.0, vmin=-top, vmax=top), SIGNED_CMAP
    return Normalize(vmin=min(float(data.min()), 0.0), vmax=top), UNSIGNED_CMAP


def display_factor(shape: tuple[int, ...], max_side: int) -> int:
    """The whole factor :func:`downsample_for_display` shrinks a map of ``shape`` (``(..., H,
    W)``) by, so its longer side is <= ``max_side``: one drawn pixel covers factor x factor."""
    return max(1, math.ceil(max(shape[-2:]) / max_side))


def downsample_for_display(data: np.ndarray, max_side: int) -> tuple[np.ndarray, int]:
    """Area-average ``(K, H, W)`` by a whole factor so its longer side is <= ``max_side``."""
    factor = display_factor(data.shape, max_side)
    if factor == 1:
        return data, 1
    tensor = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))[None]
    pooled = F.avg_pool2d(tensor, factor, ceil_mode=True)[0]
    return pooled.numpy(), factor


def _as_numpy(data: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(data, torch.Tensor):
        return data.detach().to("cpu", torch.float32).numpy()
    return np.asarray(data, dtype=np.float32)


OVERVIEW_COLUMNS = ("input", "kernel", "conv", "activated", "pooled")
"""The panels of one row of :func:`plot_overview`, left to right."""
OVERVIEW_MAX_SIDE = 320
"""Maps in :func:`plot_overview` are area-averaged to at most this many pixels a side."""


def plot_overview(stages, max_side: int = OVERVIEW_MAX_SIDE) -> Figure:
    """One figure of a whole run: the input, then per kernel its weights, conv, activated and
    pooled maps side by side, each titled with its shape and value range.

    ``stages`` is a :class:`convlens.layers.Stages`; gray kernels are drawn with their numbers.
    """
    kernels = _as_numpy(stages.kernels)
    count = kernels.shape[0]
    columns = OVERVIEW_COLUMNS
    height, width = stages.input.shape[-2:]
    panel = 2.6
    aspect, stretched = panel_aspect(height, width)
    fit = "auto" if stretched else "equal"
    figure = Figure(figsize=bounded_figsize(panel * len(columns),
                                            panel * max(aspect, 0.5) * count + 1.0),
                    layout="constrained")
    axes = figure.subplots(count, len(columns), squeeze=False)
    image, _ = downsample_for_display(_as_numpy(stages.input), max_side)
    for row in range(count):
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
        if row == 0:
            shown = image[0] if image.shape[0] == 1 else np.clip(image.transpose(1, 2, 0), 0, 1)
            axes[0][0].imshow(shown, cmap="gray", vmin=0, vmax=1, interpolation="nearest",
                              aspect=fit)
            axes[0][0].set_title(f"input {'x'.join(map(str, stages.input.shape))}", fontsize=9)
        else:
            axes[row][0].set_axis_off()
        weights = kernels[row].mean(axis=0) if kernels.shape[1] > 1 else kernels[row, 0]
        limit = float(np.abs(weights).max()) or 1.0
        axes[row][1].imshow(weights, cmap=SIGNED_CMAP, vmin=-limit, vmax=limit)
        label = stages.kernel_names[row]
        if kernels.shape[1] > 1:
            label += " (mean of its channels)"
        if max(weights.shape) <= 5:
            denominator = common_denominator(weights)
            for (r, c), value in np.ndenumerate(weights):
                axes[row][1].text(c, r, format_number(value * denominator), ha="center",
                                  va="center", fontsize=8,
                                  color="white" if abs(value) / limit > 0.6 else "black")
            if denominator > 1:  # the cells hold whole numbers: say what they are scaled by
                label += f"\nx 1/{denominator}"
        axes[row][1].set_title(label, fontsize=9)
        for name in ("conv", "activated", "pooled"):
            column = columns.index(name)
            data = _as_numpy(getattr(stages, name)[row])
            shown, _ = downsample_for_display(data[None], max_side)
            low, high = float(data.min()), float(data.max())
            norm, cmap = display_norm(shown[0], signed=name == "conv" or low < 0)
            axes[row][column].imshow(shown[0], cmap=cmap, norm=norm, interpolation="nearest",
                                     aspect=fit)
            axes[row][column].set_title(
                f"{name} {data.shape[0]}x{data.shape[1]}\n"
                f"[{format_number(low)}, {format_number(high)}]", fontsize=8)
    figure.suptitle("input -> kernel -> conv -> activation -> pool", fontsize=11)
    return figure
