"""Figures of a training run: loss/accuracy curves, the confusion matrix, and the first
layer's filters epoch by epoch beside their change since the random start (drawn as frames of
``filters-evolution.gif``).

Every function returns a ``matplotlib.figure.Figure`` (no pyplot) except
:func:`save_filters_gif`, which renders the frames and writes the GIF with Pillow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from ..defaults import SCREEN_DPI
from ..errors import ConfigError
from .stages import SIGNED_CMAP

ANNOTATE_MAX_CLASSES = 20
"""Confusion matrices with at most this many classes get each cell's value written in."""
LABEL_MAX_CLASSES = 40
"""Above this many classes the tick labels are left off (they would overlap)."""


def plot_curves(
    history: Sequence[Mapping[str, float]],
    best_epoch: int | None = None,
    baseline: tuple[str, float] | None = None,
    title: str = "",
    test_accuracy: float | None = None,
) -> Figure:
    """Loss (left) and accuracy (right) per epoch, train and val.

    ``history`` holds one mapping per epoch with ``epoch``, ``train_loss``, ``val_loss``,
    ``train_accuracy`` and ``val_accuracy`` (fractions). ``best_epoch`` is marked;
    ``baseline`` ``(name, accuracy)`` draws a reference line (e.g. an SVC on the same split);
    ``test_accuracy`` (a fraction) marks the kept model's one measurement on the test split
    at ``best_epoch``.
    """
    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = figure.subplots(1, 2)
    for key, label, style in (("train_loss", "train", "-"), ("val_loss", "val", "-")):
        loss_ax.plot(epochs, [row[key] for row in history], style, marker=".", label=label)
    for key, label in (("train_accuracy", "train"), ("val_accuracy", "val")):
        acc_ax.plot(epochs, [100 * row[key] for row in history], marker=".", label=label)
    loss_ax.set_ylabel("cross-entropy loss")
    acc_ax.set_ylabel("accuracy (%)")
    if baseline is not None:
        name, value = baseline
        acc_ax.axhline(100 * value, color="gray", linestyle="--", linewidth=1,
                       label=f"{name} {100 * value:.2f}%")
    if best_epoch is not None and best_epoch in epochs:
        best = history[epochs.index(best_epoch)]["val_accuracy"]
        acc_ax.plot([best_epoch], [100 * best], "*", color="crimson", markersize=12,
                    label=f"kept: epoch {best_epoch}, {100 * best:.2f}% val")
        if test_accuracy is not None:
            acc_ax.plot([best_epoch], [100 * test_accuracy], "D", color="black", markersize=6,
                        label=f"kept model on the test split: {100 * test_accuracy:.2f}%")
    low = min(100 * min(row["val_accuracy"] for row in history[len(history) // 3:]), 100)
    if test_accuracy is not None:
        low = min(low, 100 * test_accuracy)
    acc_ax.set_ylim(max(0.0, min(low - 2, 90.0)) if len(history) > 2 else 0.0, 100.5)
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
    figure.suptitle(title or "Training curves", fontsize=11)
    return figure


def plot_confusion(
    confusion: np.ndarray,
    class_names: Sequence[str],
    title: str = "",
) -> Figure:
    """Confusion matrix normalized per true class: row ``i`` shows where class ``i``'s images
    went, in % of that class (the diagonal is each class's recall). ``confusion`` holds counts
    ``(K, K)``, rows = true class, columns = predicted class."""
    counts = np.asarray(confusion, dtype=np.float64)
    count = len(class_names)
    if counts.shape != (count, count):
        raise ConfigError(f"confusion must be ({count}, {count}); got {counts.shape}")
    totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    side = min(14.0, max(4.5, 0.55 * count + 2.5))
    figure = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(100 * rates, cmap="Blues", vmin=0, vmax=100, interpolation="nearest")
    figure.colorbar(image, ax=ax, shrink=0.8, label="% of the true class")
    if count <= LABEL_MAX_CLASSES:
        ticks = range(count)
        ax.set_xticks(ticks, [str(name) for name in class_names], rotation=45 if max(
            len(str(n)) for n in class_names) > 3 else 0, ha="right" if max(
            len(str(n)) for n in class_names) > 3 else "center", fontsize=8)
        ax.set_yticks(ticks, [str(name) for name in class_names], fontsize=8)
    if count <= ANNOTATE_MAX_CLASSES:
        font = 9 if count <= 10 else 7
        for (row, col), value in np.ndenumerate(rates):
            if counts[row, col] == 0:
                continue
            text = "100" if value >= 0.9995 else f"{100 * value:.1f}"
            ax.text(col, row, text, ha="center", va="center", fontsize=font,
                    color="white" if value > 0.6 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total = counts.sum()
    accuracy = np.trace(counts) / total if total else 0.0
    head = title or "Confusion matrix"
    ax.set_title(f"{head}\n{int(total)} images, accuracy {100 * accuracy:.2f}%; "
                 "each row sums to 100%", fontsize=10)
    return figure


def plot_filters_frame(
    weights: np.ndarray,
    epoch: int,
    limit: float | None = None,
    layer: str = "first conv layer",
    start: np.ndarray | None = None,
    change_limit: float | None = None,
) -> Figure:
    """One frame of the filter evolution: filters ``(K, C, kh, kw)`` after ``epoch``
    (0 = the random start), tiled in one image with white gaps. ``limit`` is the weight that
    maps to full colour, shared by all frames so they compare; RGB filters are drawn as colour
    tiles (0.5 + w / 2 limit, mid-gray = 0), others as a diverging map of the mean over input
    channels (red > 0 > blue).

    With ``start`` (the filters at the random start) a second panel shows the change since
    then, ``weights - start``, on its own scale: ``change_limit`` (shared by all frames) maps
    to full colour. Training moves the weights a little against their random spread, so on
    the weights' scale the frames look nearly alike; the change panel shows what moved.
    """
    data = np.asarray(weights, dtype=np.float64)
    if data.ndim != 4:
        raise ConfigError(f"expected filters (K, C, kh, kw); got shape {data.shape}")
    limit = float(limit if limit is not None else np.abs(data).max()) or 1.0
    panels = [(filter_mosaic(data, limit), "the filters", f"full colour at |w| = {limit:.3g}")]
    if start is not None:
        begin = np.asarray(start, dtype=np.float64)
        if begin.shape != data.shape:
            raise ConfigError(f"the start filters are {begin.shape}; these are {data.shape}")
        change = data - begin
        scale = float(change_limit if change_limit is not None else np.abs(change).max())
        moved = float(np.abs(change).max())
        note = (f"full colour at |change| = {scale:.3g}" if moved > 0 else "none yet")
        panels.append((filter_mosaic(change, scale or 1.0), "change since the random start",
                       note))
    count = len(data)
    height, width = panels[0][0].shape[:2]
    inches = min(6.0 / (width * len(panels)), 3.5 / height)  # at most 6 x 3.5 inches of tiles
    figure = Figure(figsize=(max(width * inches * len(panels) + 0.3 * (len(panels) - 1), 3.5),
                             height * inches + 0.9), dpi=SCREEN_DPI)
    figure.subplots_adjust(left=0.02, right=0.98, bottom=0.02, wspace=0.08,
                           top=1 - 0.8 / (height * inches + 0.9))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (mosaic, name, scale_note) in zip(axes, panels):
        ax.imshow(mosaic, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"{name}\n{scale_note}", fontsize=8)
    label = "random start" if epoch == 0 else f"after epoch {epoch}"
    colours = ("mid-gray = 0" if data.shape[1] == 3 else "red > 0 > blue")
    figure.suptitle(f"{layer}: {count} filters {'x'.join(map(str, data.shape[1:]))}, {label}; "
                    f"{colours}", fontsize=9)
    return figure


def filter_mosaic(weights: np.ndarray, limit: float, gap: int = 1) -> np.ndarray:
    """Filters ``(K, C, kh, kw)`` -> one RGB image ``(H, W, 3)`` in [0, 1]: a grid of tiles (8
    per row up to 32 filters, else 12) with white ``gap``-pixel borders. Three-channel filters
    become colour tiles ``0.5 + w / 2 limit``; others the mean over channels through the
    diverging colour map, ``-limit`` blue to ``+limit`` red."""
    from matplotlib import colormaps

    count, channels, kh, kw = weights.shape
    if channels == 3:
        tiles = np.clip(0.5 + weights.transpose(0, 2, 3, 1) / (2 * limit), 0, 1)
    else:
        values = np.clip(weights.mean(axis=1) / (2 * limit) + 0.5, 0, 1)
        tiles = colormaps[SIGNED_CMAP](values)[..., :3]
    columns = min(count, 8 if count <= 32 else 12)
    rows = math.ceil(count / columns)
    mosaic = np.ones((rows * (kh + gap) + gap, columns * (kw + gap) + gap, 3))
    for index, tile in enumerate(tiles):
        top = gap + (index // columns) * (kh + gap)
        left = gap + (index % columns) * (kw + gap)
        mosaic[top:top + kh, left:left + kw] = tile
    return mosaic


def save_filters_gif(
    history: Sequence[np.ndarray],
    path: Path | str,
    layer: str = "first conv layer",
    frame_ms: int = 400,
    epochs: Sequence[int] | None = None,
) -> Path:
    """Write ``history`` (the first layer's filters, one ``(K, C, kh, kw)`` array per epoch,
    epoch 0 first) as an animated GIF: each frame shows the filters (all frames on one colour
    scale) beside their change since the first snapshot (all frames on another, so what moved
    shows even when it is small against the weights); the last frame is held longer. Returns
    the path."""
    if not history:
        raise ConfigError("no filter snapshots to animate")
    epochs = list(epochs) if epochs is not None else list(range(len(history)))
    start = np.asarray(history[0], dtype=np.float64)
    limit = max(float(np.abs(np.asarray(w)).max()) for w in history) or 1.0
    change_limit = max(float(np.abs(np.asarray(w) - start).max()) for w in history) or 1.0
    frames = []
    for epoch, weights in zip(epochs, history):
        figure = plot_filters_frame(weights, epoch, limit, layer, start, change_limit)
        frames.append(Image.fromarray(figure_to_array(figure)))
    size = frames[0].size
    frames = [frame if frame.size == size else frame.resize(size) for frame in frames]
    # One palette for all frames (from the last, the most structured one): fast, no flicker.
    palette = frames[-1].quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    indexed = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    durations = [frame_ms] * len(indexed)
    durations[-1] = frame_ms * 5
    path = Path(path)
    indexed[0].save(path, save_all=True, append_images=indexed[1:], duration=durations, loop=0)
    return path


def figure_to_array(figure: Figure) -> np.ndarray:
    """Render ``figure`` to an RGB array ``(H, W, 3)`` uint8."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


__all__ = [
    "figure_to_array",
    "filter_mosaic",
    "plot_confusion",
    "plot_curves",
    "plot_filters_frame",
    "save_filters_gif",
]
