"""Figures of a trained model: learned filters, learned vs classical kernels, feature maps,
saliency overlays, predictions and the data set images that drive a channel.

Every function returns a ``matplotlib.figure.Figure`` (no pyplot) whose title states the layer,
the shape and the value range of what it draws. Filter tiles hold the weights themselves (or,
for RGB tiles, the weights mapped linearly to [0, 1] with 0 at mid-gray), so a test or a
notebook can read the numbers back from ``ax.images[0].get_array()``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ..config import parse_enum
from ..errors import ConfigError, ImageError, ModelError, Option
from ..numbers import format_number
from ..wording import percent
from .stages import SIGNED_CMAP, as_array, plot_maps

HEAT_CMAP = "inferno"
OVERLAY_ALPHA = 0.55
MAX_FILTERS = 64
MAX_CHANNELS = 16
STRONGEST_CHANNELS = 4
"""Input channels the ``strongest`` filter view draws per filter."""


class FilterScale(str, enum.Enum):
    """How filter tiles share a colour scale: all one scale, or each filter its own."""

    SHARED = "shared"
    PER_FILTER = "per-filter"


class FilterView(str, enum.Enum):
    """How a filter with several input channels is drawn."""

    AUTO = "auto"
    RGB = "rgb"
    STRONGEST = "strongest"
    MEAN = "mean"
    CHANNELS = "channels"


SCALE = Option("scale", "--scale")
VIEW = Option("view", "--filter-view")
"""How each surface names the filter figures' settings."""


def parse_scale(value: str | FilterScale) -> FilterScale:
    return parse_enum(FilterScale, value, SCALE.python, options=[SCALE])


def parse_view(value: str | FilterView) -> FilterView:
    return parse_enum(FilterView, value, VIEW.python, options=[VIEW])


def rgb_tiles(weights: np.ndarray, scale: FilterScale | str = FilterScale.SHARED) -> np.ndarray:
    """Filters ``(K, 3, kh, kw)`` -> RGB tiles ``(K, kh, kw, 3)`` in [0, 1]: ``0.5 + w / 2m``,
    ``m`` the largest ``|w|`` of all filters (shared) or of each filter (per-filter), so a zero
    weight is mid-gray and the sign is kept."""
    data = np.asarray(weights, dtype=np.float64)
    limits = _limits(data, parse_scale(scale)).reshape(-1, 1, 1, 1)
    return (0.5 + data / (2 * limits)).transpose(0, 2, 3, 1)


def plot_filters(
    weights: torch.Tensor | np.ndarray,
    layer: str,
    scale: FilterScale | str = FilterScale.SHARED,
    view: FilterView | str = FilterView.AUTO,
    max_filters: int = MAX_FILTERS,
    max_channels: int = MAX_CHANNELS,
) -> Figure:
    """Draw a conv layer's learned filters ``(K, C, kh, kw)``.

    ``view``: ``rgb`` (3 input channels: one colour tile per filter), ``strongest`` (per
    filter its :data:`STRONGEST_CHANNELS` input channels of the largest summed ``|weight|``,
    strongest first, the weights themselves), ``mean`` (the filter averaged over its input
    channels, a diverging map centred on 0: weights of opposite sign cancel, so it can look
    flat where the filter is not), ``channels`` (one row per filter, one tile per input
    channel), ``auto`` (rgb for 3 input channels, the weights themselves for 1, else strongest).
    ``scale``: ``shared`` (one colour scale for every tile, so strengths compare) or
    ``per-filter`` (each filter stretched to its own largest weight, so weak ones show shape).
    At most ``max_filters`` filters are drawn (``max_channels`` in the channels view, with at
    most ``max_channels`` input channels each); the title says when some are left out.
    """
    data = as_array(weights)
    if data.ndim != 4:
        raise ConfigError(f"expected filters (K, C, kh, kw); got shape {data.shape}")
    scale, view = parse_scale(scale), parse_view(view)
    count, channels, kh, kw = data.shape
    if view is FilterView.AUTO:
        view = {3: FilterView.RGB, 1: FilterView.MEAN}.get(channels, FilterView.STRONGEST)
    if view is FilterView.RGB and channels != 3:
        raise ConfigError(f"the rgb view needs 3 input channels; layer {layer} has {channels} "
                          "(use mean or channels)")
    # the channels view draws filters x channels tiles: keep it as square as the other caps
    shown = data[:min(max_filters, max_channels) if view is FilterView.CHANNELS else max_filters]
    low, high = float(data.min()), float(data.max())
    head = (f"{layer}: learned filters {count}x{channels}x{kh}x{kw}, weights "
            f"[{format_number(low)}, {format_number(high)}]")
    if len(shown) < count:
        head += f" (first {len(shown)} of {count} drawn)"
    if view is FilterView.CHANNELS:
        return _filter_channels(shown, head, scale, max_channels)
    if view is FilterView.STRONGEST:
        return _filter_strongest(shown, head, scale)
    if view is FilterView.RGB:
        tiles = rgb_tiles(shown, scale)
        note = f"RGB tiles, {scale.value} scale: mid-gray = 0, brighter = positive"
    else:
        tiles = shown.mean(axis=1)
        over = "one input channel" if channels == 1 else (
            f"mean over the {channels} input channels, values [{format_number(float(tiles.min()))}"
            f", {format_number(float(tiles.max()))}]")
        note = f"{over}, {scale.value} scale, red > 0 > blue"
    columns = min(len(shown), 8 if len(shown) <= 32 else 12)
    rows = math.ceil(len(shown) / columns)
    side = 1.15 if max(kh, kw) <= 7 else 1.5
    figure = Figure(figsize=(max(side * columns, 5.5), side * rows + 1.0), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    limits = _limits(tiles if view is FilterView.MEAN else shown, scale)
    image = None
    for index in range(rows * columns):
        ax = axes[index // columns][index % columns]
        ax.set(xticks=[], yticks=[])
        if index >= len(shown):
            ax.set_axis_off()
            continue
        if view is FilterView.RGB:
            ax.imshow(np.clip(tiles[index], 0, 1), interpolation="nearest")
        else:
            limit = float(limits[index])
            image = ax.imshow(tiles[index], cmap=SIGNED_CMAP, vmin=-limit, vmax=limit,
                              interpolation="nearest")
        ax.set_title(f"#{index}", fontsize=8)
    if image is not None and scale is FilterScale.SHARED:
        figure.colorbar(image, ax=axes, shrink=0.8, label="weight")
    figure.suptitle(f"{head}\n{note}", fontsize=10)
    return figure


def _filter_strongest(data: np.ndarray, head: str, scale: FilterScale) -> Figure:
    """Per filter, its strongest input channels (largest summed ``|weight|``, strongest
    first), the weights themselves on one signed scale (shared: the layer's largest
    ``|weight|``, so the colour bar spans the title's range)."""
    count, channels = data.shape[:2]
    shown = min(channels, STRONGEST_CHANNELS)
    strength = np.abs(data).sum(axis=(2, 3))
    order = np.argsort(-strength, axis=1, kind="stable")[:, :shown]
    groups = 4 if count > 4 else count
    rows = math.ceil(count / groups)
    figure = Figure(figsize=(0.62 * groups * shown + 0.35 * groups + 1.2, 0.75 * rows + 1.3),
                    layout="constrained")
    axes = figure.subplots(rows, groups * shown, squeeze=False,
                           gridspec_kw={"wspace": 0.02})
    limits = _limits(data, scale)
    image = None
    for slot in range(rows * groups):
        for rank in range(shown):
            ax = axes[slot // groups][(slot % groups) * shown + rank]
            ax.set(xticks=[], yticks=[])
            if slot >= count:
                ax.set_axis_off()
                continue
            channel = int(order[slot, rank])
            limit = float(limits[slot])
            image = ax.imshow(data[slot, channel], cmap=SIGNED_CMAP, vmin=-limit, vmax=limit,
                              interpolation="nearest")
            ax.set_title(f"#{slot} in {channel}" if rank == 0 else f"in {channel}", fontsize=7)
    if image is not None and scale is FilterScale.SHARED:
        figure.colorbar(image, ax=axes, shrink=0.8, label="weight")
    limit = float(limits.max())
    scale_note = (f"one scale for all, ±{format_number(limit)}" if scale is FilterScale.SHARED
                  else "each filter on its own scale")
    figure.suptitle(f"{head}\neach filter's {shown} strongest of {channels} input channels "
                    f"(largest sum of |weight|), strongest first; {scale_note}, red > 0 > blue",
                    fontsize=10)
    return figure


def _filter_channels(data: np.ndarray, head: str, scale: FilterScale, max_channels: int) -> Figure:
    count, channels = data.shape[:2]
    shown_channels = min(channels, max_channels)
    figure = Figure(figsize=(0.75 * shown_channels + 1.6, 0.75 * count + 1.1),
                    layout="constrained")
    axes = figure.subplots(count, shown_channels, squeeze=False)
    limits = _limits(data, scale)
    image = None
    for row in range(count):
        for column in range(shown_channels):
            ax = axes[row][column]
            limit = float(limits[row])
            image = ax.imshow(data[row, column], cmap=SIGNED_CMAP, vmin=-limit, vmax=limit,
                              interpolation="nearest")
            ax.set(xticks=[], yticks=[])
            if row == 0:
                ax.set_title(f"in {column}", fontsize=7)
            if column == 0:
                ax.set_ylabel(f"#{row}", fontsize=7, rotation=0, labelpad=12)
    if image is not None and scale is FilterScale.SHARED:
        figure.colorbar(image, ax=axes, shrink=0.6, label="weight")
    more = f" (first {shown_channels} of {channels} input channels)" if channels > max_channels \
        else ""
    figure.suptitle(f"{head}\none row per filter, one tile per input channel{more}, "
                    f"{scale.value} scale, red > 0 > blue", fontsize=10)
    return figure


def plot_learned_vs_classical(
    weights: torch.Tensor | np.ndarray,
    matches: Sequence,
    layer: str,
    max_pairs: int = 32,
) -> Figure:
    """Each learned filter beside its nearest built-in kernel, best matches first.

    ``matches`` come from :func:`convlens.inspect.nearest_kernels` (``None`` where no built-in
    kernel fits the filter's size). Learned filters are drawn as RGB tiles (3 input channels)
    or averaged over channels; kernels with their sign, each on its own symmetric scale.
    """
    data = as_array(weights)
    count, channels, kh, kw = data.shape
    pairs = sorted((m for m in matches if m is not None), key=lambda m: -abs(m.cosine))
    pairs = pairs[:max_pairs]
    if not pairs:
        raise ModelError(f"no built-in kernel fits the {kh}x{kw} filters of {layer}")
    per_row = 4 if len(pairs) > 4 else len(pairs)
    rows = math.ceil(len(pairs) / per_row)
    figure = Figure(figsize=(2.7 * per_row, 1.75 * rows + 1.0), layout="constrained")
    made: Any = figure.subfigures(rows, per_row, wspace=0.04, hspace=0.04)  # one, or an array
    cells = np.atleast_2d(np.asarray(made, dtype=object))
    tiles = rgb_tiles(data, FilterScale.PER_FILTER) if channels == 3 else data.mean(axis=1)
    for slot in range(rows * per_row):
        cell = cells[slot // per_row][slot % per_row]
        if slot >= len(pairs):
            continue
        cell.set_facecolor("0.94" if (slot // per_row + slot % per_row) % 2 == 0 else "white")
        learned_ax, kernel_ax = cell.subplots(1, 2)
        for ax in (learned_ax, kernel_ax):
            ax.set(xticks=[], yticks=[])
        match = pairs[slot]
        tile = tiles[match.filter_index]
        if channels == 3:
            learned_ax.imshow(np.clip(tile, 0, 1), interpolation="nearest")
        else:
            limit = float(np.abs(tile).max()) or 1.0
            learned_ax.imshow(tile, cmap=SIGNED_CMAP, vmin=-limit, vmax=limit,
                              interpolation="nearest")
        limit = float(np.abs(match.kernel).max()) or 1.0
        kernel_ax.imshow(match.kernel, cmap=SIGNED_CMAP, vmin=-limit, vmax=limit,
                         interpolation="nearest")
        learned_ax.set_title(f"learned #{match.filter_index}", fontsize=8)
        kernel_ax.set_title(f"{match.label}\ncos {match.similarity:.2f}", fontsize=8)
    low, high = float(data.min()), float(data.max())
    figure.suptitle(
        f"{layer}: learned filters {count}x{channels}x{kh}x{kw} (weights [{format_number(low)}, "
        f"{format_number(high)}]) beside the nearest built-in kernel by cosine similarity\n"
        "-name: the kernel with its sign flipped (for an edge kernel: the same edge, opposite "
        "polarity)", fontsize=10)
    return figure


def plot_feature_maps(feature_maps, top: int | None = 16, subtitle: str = "") -> Figure:
    """The ``top`` most active channels of a :class:`convlens.inspect.FeatureMaps`, one panel
    each (via :func:`convlens.plot.plot_maps`), most active first.

    Panel titles give each channel's full-resolution shape, range and mean (the stored maps
    may be area-averaged; the title says so).
    """
    channels = feature_maps.top(top)
    total, height, width = feature_maps.shape
    stats = feature_maps.stats
    low, high = feature_maps.value_range
    title = (f"{feature_maps.name} ({feature_maps.layer_type}) output {total}x{height}x{width}, "
             f"range [{format_number(low)}, {format_number(high)}]\n"
             f"{len(channels)} of {total} channels, most active (highest mean) first")
    if feature_maps.factor > 1:
        title += f"; drawn from maps stored at 1/{feature_maps.factor}"
    if subtitle:
        title += f"\n{subtitle}"
    data = feature_maps.maps[channels]
    columns = min(len(channels), 4)
    figure = plot_maps(data, [f"ch {c}" for c in channels], title, columns=columns)
    for ax, channel in zip(figure.axes, channels):
        ax.set_title(f"ch {channel}  {height}x{width}\n"
                     f"range [{format_number(stats.minimum[channel])}, "
                     f"{format_number(stats.maximum[channel])}]  "
                     f"mean {format_number(stats.mean[channel])}", fontsize=9)
    return figure


def plot_saliency(result, subtitle: str = "") -> Figure:
    """The model's input, then per saliency method its heatmap and the heatmap over the image.

    ``result`` is a :class:`convlens.saliency.ClassSaliency`; each heatmap is drawn from 0 to
    its maximum, titled with the method, layer, shape and range.
    """
    image = _display(result.prepared.display)
    channels, height, width = result.prepared.display.shape
    rows = len(result.maps)
    aspect = height / width
    figure = Figure(figsize=(10.5, 3.4 * aspect * rows + 1.2), layout="constrained")
    axes = figure.subplots(rows, 3, squeeze=False)
    for row, item in enumerate(result.maps):
        heat = item.heatmap.numpy()
        for ax in axes[row]:
            ax.set(xticks=[], yticks=[])
        _show_image(axes[row][0], image)
        axes[row][0].set_title(f"model input {channels}x{height}x{width}", fontsize=9)
        top = float(heat.max()) or 1.0
        shown = axes[row][1].imshow(heat, cmap=HEAT_CMAP, vmin=0, vmax=top,
                                    interpolation="antialiased")
        figure.colorbar(shown, ax=axes[row][1], shrink=0.8)
        where = f" at {item.layer}" if item.layer else ""
        res = ""
        if item.layer and item.raw.ndim == 2:
            res = f" (from {item.raw.shape[0]}x{item.raw.shape[1]})"
        axes[row][1].set_title(f"{item.method.label}{where}\n{height}x{width}{res}, range "
                               f"[{format_number(float(heat.min()))}, {format_number(top)}]",
                               fontsize=9)
        _show_image(axes[row][2], image, dim=True)
        axes[row][2].imshow(heat, cmap=HEAT_CMAP, vmin=0, vmax=top, alpha=OVERLAY_ALPHA,
                            interpolation="antialiased")
        overlay = f"{item.method.label} over the input"
        axes[row][2].set_title(overlay + (f"\n{item.note}" if item.note else ""), fontsize=8)
    probability = "" if result.probability is None else f" (p = {result.probability:.3f})"
    title = f"Why class '{result.label}'{probability}?"
    if result.predictions:
        title += "  top: " + ", ".join(f"{p.label} {percent(p.probability, 0)}"
                                       for p in result.predictions[:3])
    if subtitle:
        title += f"\n{subtitle}"
    figure.suptitle(title, fontsize=11)
    return figure


def plot_predictions(predictions: Sequence, title: str = "", highlight: int | None = None
                     ) -> Figure:
    """Top-k classes as horizontal bars with their probabilities, the best on top."""
    if not predictions:
        raise ModelError("no predictions to draw: the model does not output class scores")
    labels = [p.label for p in predictions][::-1]
    values = [p.probability for p in predictions][::-1]
    colors = ["tab:orange" if p.index == highlight else "tab:blue" for p in predictions][::-1]
    figure = Figure(figsize=(6.0, 0.45 * len(values) + 1.2), layout="constrained")
    ax = figure.subplots()
    bars = ax.barh(range(len(values)), values, color=colors)
    ax.set_yticks(range(len(values)), labels)
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("probability (softmax)")
    for bar, value in zip(bars, values):
        ax.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, percent(value),
                va="center", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    figure.suptitle(title or f"top {len(values)} predictions", fontsize=11)
    return figure


def plot_top_images(tops: Sequence, layer: str, channel: int, searched: int) -> Figure:
    """Data set images that most activate ``channel`` of ``layer``, with the channel's map
    over each (a shared scale, so strengths compare), best first."""
    if not tops:
        raise ImageError("no data set images to draw")
    columns = min(len(tops), 4)
    rows = math.ceil(len(tops) / columns)
    figure = Figure(figsize=(2.7 * columns, 2.9 * rows + 0.9), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    top = max(float(t.activation.max()) for t in tops) or 1.0
    low = min(float(t.activation.min()) for t in tops)
    shown = None
    for index in range(rows * columns):
        ax = axes[index // columns][index % columns]
        ax.set(xticks=[], yticks=[])
        if index >= len(tops):
            ax.set_axis_off()
            continue
        item = tops[index]
        image = _display(item.image)
        _show_image(ax, image, dim=True)
        height, width = image.shape[:2]
        shown = ax.imshow(item.activation.numpy(), cmap=HEAT_CMAP, vmin=min(low, 0), vmax=top,
                          alpha=OVERLAY_ALPHA, extent=(-0.5, width - 0.5, height - 0.5, -0.5),
                          interpolation="bilinear")
        name = _short(item.source)
        ax.set_title(f"{index + 1}. {name}\nmean {format_number(item.score)}", fontsize=8)
    if shown is not None:
        figure.colorbar(shown, ax=axes, shrink=0.7, label=f"channel {channel} activation")
    shape = "x".join(map(str, tops[0].map_shape))
    figure.suptitle(f"{layer}, channel {channel} (maps {shape}): the {len(tops)} of {searched} "
                    f"images with the highest mean activation\nactivation range shown "
                    f"[{format_number(low)}, {format_number(top)}]", fontsize=10)
    return figure


def _limits(data: np.ndarray, scale: FilterScale) -> np.ndarray:
    """Largest |weight| per filter (per-filter) or overall, repeated per filter (shared)."""
    per_filter = np.abs(data.reshape(len(data), -1)).max(axis=1)
    if scale is FilterScale.SHARED:
        per_filter = np.full(len(data), per_filter.max(initial=0.0))
    return np.where(per_filter > 0, per_filter, 1.0)


def _display(image: torch.Tensor) -> np.ndarray:
    data = image.detach().to("cpu", torch.float32).numpy()
    return np.clip(data[0] if data.shape[0] == 1 else data.transpose(1, 2, 0), 0, 1)


def _show_image(ax, image: np.ndarray, dim: bool = False) -> None:
    shown = image * 0.75 if dim else image
    if shown.ndim == 2:
        ax.imshow(shown, cmap="gray", norm=Normalize(0, 1), interpolation="nearest")
    else:
        ax.imshow(shown, interpolation="nearest")


def _short(source: str, limit: int = 22) -> str:
    name = source.replace("\\", "/").rsplit("/", 1)[-1]
    return name if len(name) <= limit else name[: limit - 3] + "..."


__all__ = [
    "FilterScale",
    "FilterView",
    "parse_scale",
    "parse_view",
    "plot_feature_maps",
    "plot_filters",
    "plot_learned_vs_classical",
    "plot_predictions",
    "plot_saliency",
    "plot_top_images",
    "rgb_tiles",
]
