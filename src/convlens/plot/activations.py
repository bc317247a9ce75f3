"""One number inside a model, drawn: the photo as the model sees it with the number's
receptive field outlined, and for a conv the strongest input channels' patch × kernel =
products grids, with the explanation's own words beside them.

Built from the explanation's parts (:mod:`convlens.activations`, worded once) with the
``Figure`` API (no pyplot); save it with :func:`convlens.outputs.save_figure`.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..errors import ConfigError
from ..explain.parts import Grids, Heading, Sentence, WrittenSum
from .explain import HIGHLIGHT, HINTING_SLACK, draw_grid, grid_room
from .layout import Grid, place_suptitle, suptitle_room, text_extent
from .stages import SIGNED_CMAP, SymmetricNorm

if TYPE_CHECKING:
    import torch

    from ..activations import ActivationExplanation

GRID_ROWS = 3
"""Input channels drawn as grids (the strongest first); the text says the rest."""
TEXT_CHARS = 52
PADDING_NOTE = "hatched = padding"
MAX_GRID_SIDE = 11
"""Largest kernel side whose cells get their numbers written in."""


def plot_activation(explanation: ActivationExplanation, image: torch.Tensor | np.ndarray
                    ) -> Figure:
    """The photo ``image`` ``(C, H, W)`` in [0, 1] (the model's prepared input, as
    :class:`convlens.models.PreparedInput` ``.display`` holds it) with the receptive field of
    ``explanation``'s number outlined; a conv's strongest input channels as grids (patch ×
    kernel = products); the heading, the sum and the result as text."""
    photo = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)
    if photo.ndim != 3 or photo.shape[0] not in (1, 3):
        raise ConfigError(f"expected an image (C, H, W) with 1 or 3 channels; got shape "
                          f"{tuple(photo.shape)}")
    parts = explanation.parts()
    grids = [part for part in parts if isinstance(part, Grids) and part.key == "products"]
    grids = grids[:GRID_ROWS]
    rows = max(1, len(grids))
    size = (4.2 + (3 * 2.2 if grids else 0) + 4.4, max(3.6, 2.2 * rows + 0.8))
    figure = Figure(figsize=size)
    columns = 5 if grids else 2
    ratios = [4.2, 2.2, 2.2, 2.2, 4.4] if grids else [4.2, 4.4]
    grid = Grid(*size, rows, columns, width_ratios=ratios, top=suptitle_room(
        PADDING_NOTE, 9))
    axes = [[figure.add_axes((0, 0, 1, 1)) for _ in range(columns)] for _ in range(rows)]
    _photo(axes[0][0], photo, explanation)
    grid.reserve_title(0, 0, axes[0][0].get_title(), 9)
    for row_axes in axes[1:]:
        row_axes[0].set_axis_off()
    for row, grid_part in enumerate(grids):
        for column, (ax, (operator, table)) in enumerate(
                zip(axes[row][1:4], grid_part.shown(detail=False)[:3]), start=1):
            values = table.array()
            bound = float(np.abs(values).max()) or 1.0
            kh, kw = values.shape
            title = (f"{operator} " if operator else "") + table.caption()
            draw_grid(ax, values, cmap=SIGNED_CMAP, norm=SymmetricNorm(bound),
                      text=[list(r) for r in table.cells] if max(kh, kw) <= MAX_GRID_SIDE
                      else None,
                      padded=table.mark_array("padding") if table.marks is not None else None,
                      row_labels=table.row_labels, col_labels=table.col_labels,
                      title=title, cell_points=2.2 * 72 * 0.8 / max(kh, kw))
            above, left = grid_room((kh, kw), table.row_labels, table.col_labels, title)
            grid.reserve(row, column, above=above, left=left)
            grid.reserve_width(column, text_extent(title, 10)[0])
    for row_axes in axes:
        row_axes[-1].set_axis_off()
    text = "\n".join(_lines(parts))
    axes[0][-1].text(0.0, 1.0, text, ha="left", va="top", fontsize=9, family="monospace",
                     transform=axes[0][-1].transAxes)
    grid.reserve_overhang(columns - 1, text_extent(text, 9, "monospace")[0] + HINTING_SLACK
                          * max(len(line) for line in text.split("\n")))
    for row, row_axes in enumerate(axes):
        for column, ax in enumerate(row_axes):
            ax.set_position(grid.rect(row, column))
    from ..activations import ConvExplanation  # the model side (torch) loads only when drawn

    if isinstance(explanation, ConvExplanation) and explanation.padded.any():
        place_suptitle(figure, PADDING_NOTE, 9, size[1])
    return figure


def _photo(ax, photo: np.ndarray, e: ActivationExplanation) -> None:
    """The image with the receptive field outlined (and said in the title)."""
    shown = photo[0] if photo.shape[0] == 1 else photo.transpose(1, 2, 0)
    ax.imshow(np.clip(shown, 0, 1), cmap="gray" if photo.shape[0] == 1 else None,
              vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    field = e.field
    if field is None:
        ax.set_title("input (receptive field unknown)", fontsize=9)
        return
    ax.add_patch(Rectangle((field["left"] - 0.5, field["top"] - 0.5),
                           field["right"] - field["left"] + 1, field["bottom"] - field["top"] + 1,
                           fill=False, edgecolor=HIGHLIGHT, linewidth=2.5))
    ax.set_title(f"input: rows {field['top']}..{field['bottom']}, cols {field['left']}.."
                 f"{field['right']}", fontsize=9)


def _lines(parts) -> list[str]:
    """The heading, the written sum's lines and the sentences, wrapped for the text panel."""
    lines: list[str] = []
    for part in parts:
        if isinstance(part, Heading):
            lines.append(part.text if part.level == 1 else f"-- {part.text} --")
        elif isinstance(part, Sentence) and part.key in ("total", "formula", "max", "branches",
                                                         "concat", "flatten", "what", "folded",
                                                         "softmax", "field", "where"):
            lines.append(part.text)
        elif isinstance(part, WrittenSum):
            lines += [f"{part.label}:", *(f"  {line}" for line in part.steps())]
    wrapped: list[str] = []
    for line in lines:
        wrapped += textwrap.wrap(line, TEXT_CHARS, break_long_words=False,
                                 subsequent_indent="  ") or [""]
    return wrapped


__all__ = ["plot_activation"]
