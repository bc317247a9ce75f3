"""``report.html``: the tutorial's story told on the user's own image, in one self-contained file.

Input, normalization, kernels, convolution, activation and pooling, each with a short caption in
plain words, the sizes and the arithmetic of that step worked on a real pixel of this run. Every
image is inline (``data:`` URIs) and nothing is fetched from elsewhere, so the file opens in any
browser, offline, and can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
from matplotlib.figure import Figure, SubFigure

from .config import Activation, PoolType
from .defaults import REPORT_DPI
from .display import parts_html
from .explain import PixelExplanation, PooledExplanation, explain_pixel, explain_pooled
from .explain.parts import Grids, Part
from .numbers import format_raw
from .plot import plot_image, plot_kernels, plot_maps
from .plot.png import figure_png
from .sizes import config_chain
from .stages import Stages
from .version import __version__

E = TypeVar("E", PixelExplanation, PooledExplanation)

REPORT_FILE = "report.html"

ACTIVATION_WORDS = {
    Activation.RELU: "ReLU keeps positive values and turns every negative value into 0",
    Activation.LEAKY_RELU: "leaky ReLU keeps positive values and shrinks negative ones to 1% "
                           "of their size",
    Activation.TANH: "tanh squashes every value into the range -1 to 1",
    Activation.SIGMOID: "sigmoid squashes every value into the range 0 to 1",
    Activation.ABS: "abs keeps the size of every value and drops its sign",
    Activation.NONE: "no activation: the conv values pass through unchanged",
}

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d1d1f; background: #fafafa; line-height: 1.5; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
section { background: #fff; border: 1px solid #e2e2e2; border-radius: 8px; padding: 16px 20px;
          margin: 18px 0; }
h1 { font-size: 1.6em; margin-bottom: 4px; }
h2 { font-size: 1.25em; margin-top: 0; }
img { max-width: 100%; height: auto; display: block; margin: 10px auto; }
code, .sum { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.92em; }
.sum { background: #f3f1fa; padding: 8px 10px; border-radius: 6px; overflow-x: auto;
       white-space: pre-wrap; word-break: break-word; }
.note { color: #555; font-size: 0.92em; }
table.grid { border-collapse: collapse; margin: 6px 12px 6px 0; display: inline-table; }
table.grid td, table.grid th { border: 1px solid #ccc; padding: 2px 7px; text-align: right;
                               font-family: ui-monospace, Menlo, Consolas, monospace; }
table.grid caption { font-size: 0.85em; color: #555; }
nav { display: flex; flex-wrap: wrap; gap: 4px 14px; }
code { overflow-wrap: anywhere; }
.scroll { display: inline-block; max-width: 100%; overflow-x: auto; vertical-align: top; }
@media (max-width: 600px) {
  main { padding: 10px; }
  section { padding: 12px; }
}
"""


def render_report(
    stages: Stages,
    *,
    source: str = "image",
    command: str | None = None,
    figures: Mapping[str, Path | bytes] | None = None,
    pixel: tuple[int, int] | None = None,
    descriptions: Sequence[str] | None = None,
    explained: Sequence[PixelExplanation | PooledExplanation] = (),
) -> str:
    """The report as one HTML string.

    ``figures`` maps ``filters``, ``conv``, ``activated``, ``pooled`` (and optionally
    ``winners``) to PNG files or bytes already drawn; missing ones are drawn here. ``pixel`` is
    the conv pixel worked out by hand (default: the strongest response of the first kernel away
    from the border). ``descriptions`` says what each kernel finds. ``explained`` are
    explanations the run already worked out (``run --explain``): the first kernel's of
    ``pixel`` and of the pooled cell it feeds are reused, not worked out again.
    """
    figures = figures or {}  # read only where used: a picture may still be being drawn
    config = stages.config
    names = stages.kernel_names
    arrays = stages.arrays
    channels, height, width = arrays.input.shape
    _, conv_h, conv_w = arrays.conv.shape
    kernel_h, kernel_w = arrays.kernels.shape[2:]
    row, col = pixel if pixel is not None else _interesting_pixel(stages)
    explanation = _reused(explained, PixelExplanation, (row, col)) or explain_pixel(
        arrays.input, arrays.kernels, config, 0, row, col, kernel_name=names[0])
    chain = config_chain(config, (height, width), (kernel_h, kernel_w))
    from .plot.explain import plot_explanation, plot_pooled_explanation

    # the report's own pictures first, then the run's (which another process may be drawing)
    images = {"input": _png(figures.get("input"), lambda: plot_image(
        arrays.input, title=f"input: {source}", dpi=REPORT_DPI))}
    images["explain"] = _png(None, lambda: plot_explanation(explanation))
    if config.pool is not None:
        cell = explanation.pooled_cell or _strongest_pooled(stages)
        pooled = _reused(explained, PooledExplanation, cell) or explain_pooled(
            arrays.input, arrays.kernels, config, 0, *cell, kernel_name=names[0])
        pooled_png = _png(None, lambda: plot_pooled_explanation(pooled))
    for name in ("filters", "conv", "activated", "pooled"):
        images[name] = _png(figures.get(name), partial(_draw, stages, name))

    sections = [
        _input_section(stages, source, images["input"]),
        _normalization_section(stages, explanation),
        _kernels_section(stages, descriptions, images["filters"]),
        _conv_section(stages, explanation, chain, images["conv"], images["explain"]),
        _activation_section(stages, explanation, images["activated"]),
    ]
    if config.pool is not None:
        winners_png = _given_png(figures.get("winners"))
        sections.append(_pooling_section(stages, chain, pooled, images["pooled"], pooled_png,
                                         winners_png))
    else:
        sections.append(_section("pooling", "6. Pooling", [
            _p("Pooling was off for this run (no pool size was set), so the layer's output is "
               "the activated map itself: "
               f"{conv_h}x{conv_w} values per kernel (height x width)."),
            _img(images["pooled"], "pooled stage (equal to the activated stage)"),
        ]))
    settings = html.escape(", ".join(f"{key} {value}" for key, value in config.to_dict().items()
                                     if value is not None))
    head = (
        f"<h1>What a convolution layer does to {html.escape(source)}</h1>"
        f"<p>One conv layer with {len(names)} fixed kernel{'s' if len(names) > 1 else ''} "
        f"({html.escape(', '.join(names))}), then {config.activation.value}"
        + (f", then {config.pool_type.value} pooling" if config.pool else "")
        + f": {channels}x{height}x{width} in, {arrays.pooled.shape[0]}x"
        f"{arrays.pooled.shape[1]}x{arrays.pooled.shape[2]} out (channels x height x width). "
        "Every number below comes from "
        "this run; each step says what it does, how big its result is, and works one value out "
        "by hand.</p>"
        f'<p class="note">settings: {settings}'
        + (f"<br>command: <code>{html.escape(command)}</code>" if command else "") + "</p>"
        '<nav><a href="#input">input</a><a href="#normalization">normalization</a>'
        '<a href="#kernels">kernels</a><a href="#conv">convolution</a>'
        '<a href="#activation">activation</a><a href="#pooling">pooling</a></nav>'
    )
    footer = (f'<p class="note">Made by convlens {__version__}. The arrays behind every figure '
              "are in <code>stages.npz</code> next to this file (float32 <code>input, kernels, "
              "conv, activated, pooled</code>).</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>convlens report: {html.escape(source)}</title><style>{_STYLE}</style>"
            f"</head><body><main>{head}{''.join(sections)}{footer}</main></body></html>\n")


def write_report(
    stages: Stages,
    out_dir: Path,
    *,
    source: str = "image",
    command: str | None = None,
    pixel: tuple[int, int] | None = None,
    descriptions: Sequence[str] | None = None,
    figures: Mapping[str, Path | bytes] | None = None,
    explained: Sequence[PixelExplanation | PooledExplanation] = (),
) -> Path:
    """Write ``report.html`` into ``out_dir``. ``figures`` are the pictures already drawn (as
    :func:`render_report` takes them); without it, the PNG figures already in ``out_dir`` are
    reused. ``explained`` as :func:`render_report` takes them."""
    out_dir = Path(out_dir)
    if figures is None:
        figures = {name: out_dir / f"{name}.png" for name in
                   ("filters", "conv", "activated", "pooled", "winners")
                   if (out_dir / f"{name}.png").is_file()}
    text = render_report(stages, source=source, command=command, figures=figures, pixel=pixel,
                         descriptions=descriptions, explained=explained)
    path = out_dir / REPORT_FILE
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- sections


def _input_section(stages: Stages, source: str, png: bytes) -> str:
    channels, height, width = stages.arrays.input.shape
    if channels == 1:
        how = ("loaded as gray: each pixel's brightness is its luma, "
               "0.299 R + 0.587 G + 0.114 B (ITU-R BT.601), one number per pixel")
    else:
        how = "loaded in colour: three numbers per pixel, red, green and blue"
    return _section("input", "1. Input", [
        _p(f"The image <b>{html.escape(source)}</b> was {how}. It is {height} pixels high and "
           f"{width} wide, so the network sees a tensor of shape {channels}x{height}x{width} "
           "(channels x height x width)."),
        _img(png, "the input image"),
    ])


def _normalization_section(stages: Stages, e: PixelExplanation) -> str:
    data = stages.arrays.input
    low, high = stages.value_range("input")
    inside = ~e.padded
    rows = [index for index in range(inside.shape[0]) if inside[index].any()]
    first = next(part for part in e.parts() if isinstance(part, Grids))
    patch_raw, patch_norm = (
        _grid([[text if inside[r, c] else "pad" for c, text in enumerate(table.cells[r])]
               for r in rows], table.caption(), e.input_rows, e.input_cols, rows)
        for table in first.tables if table.key in ("patch", "normalized"))
    channel = " (first channel)" if data.shape[0] > 1 else ""
    return _section("normalization", "2. Normalization", [
        _p("Photos store each value as a whole number from 0 (black) to 255 (white). Networks "
           "work best with small numbers, so every value is divided by 255 and lies between 0 "
           f"and 1. In this image the values run from {format_raw(low * 255)} to "
           f"{format_raw(high * 255)}, that is {low:.3f} to {high:.3f} after dividing."),
        _p(f"The patch used in the worked example below{channel}, before and after:"),
        f"<div>{patch_raw}{patch_norm}</div>",
    ])


def _kernels_section(stages: Stages, descriptions: Sequence[str] | None, png: bytes) -> str:
    count, channels, kh, kw = stages.arrays.kernels.shape
    items = []
    for index, name in enumerate(stages.kernel_names):
        text = f"<b>{html.escape(name)}</b>"
        if descriptions and index < len(descriptions) and descriptions[index]:
            text += f": {html.escape(descriptions[index])}"
        items.append(f"<li>{text}</li>")
    spread = ("" if channels == 1 else
              " A gray kernel on a colour image is shared by the three channels, each with "
              "a third of its weight, so it sees their mean.")
    return _section("kernels", "3. Kernels", [
        _p(f"A kernel is a small grid of weights, here {kh}x{kw}. Each one looks for one "
           "pattern: where the image under it matches its positive and negative weights, the "
           f"response is large. This layer holds {count} kernel{'s' if count > 1 else ''}, "
           f"stored as one weight tensor of shape {count}x{channels}x{kh}x{kw} (kernels x "
           f"input channels x height x width).{spread}"),
        f"<ul>{''.join(items)}</ul>",
        _img(png, "the kernels with their weights"),
    ])


def _conv_section(stages: Stages, e: PixelExplanation, chain, conv_png: bytes,
                  explain_png: bytes) -> str:
    config = stages.config
    count, conv_h, conv_w = stages.arrays.conv.shape
    step = chain.steps[0]
    formulas = "".join(f"<div class='sum'>{axis}: {html.escape(item.formula())}</div>"
                       for axis, item in step.axes())
    notes = "".join(_p(html.escape(note), "note") for note in
                    (item.rounding_note() for _, item in step.axes()) if note)
    low, high = stages.value_range("conv")
    return _section("conv", "4. Convolution", [
        _p(f"Each kernel slides over the image {config.stride} pixel"
           f"{'s' if config.stride > 1 else ''} at a time. At every stop it multiplies each "
           "weight by the pixel under it and adds the products up: that sum is one pixel of "
           f"the output, called a feature map. {count} kernel{'s' if count > 1 else ''} give "
           f"{count} maps of {conv_h}x{conv_w} (height x width), with values from {low:.3g} "
           f"to {high:.3g} "
           "(red above 0, blue below)."),
        _p("The output size follows from <code>(I - F + 2P)/S + 1</code>, with input size I, "
           "kernel size F (its span D(F-1)+1 when dilated), padding P and stride S:"),
        formulas, notes,
        _img(conv_png, "conv stage"),
        _p("<b>Worked example</b>, number by number:"),
        _worked(e.parts(), ("where", "padding", "sum", "divided", "conv")),
        _img(explain_png, "the worked example: patch times kernel gives the products"),
        _worked(e.parts(), ("cross_correlation",)),
    ])


def _activation_section(stages: Stages, e: PixelExplanation, png: bytes) -> str:
    config = stages.config
    activated = stages.arrays.activated
    changed = stages.zeroed()
    words = ACTIVATION_WORDS[config.activation]
    share = (f" Here that zeroed {changed:.0%} of all conv values." if
             config.activation in (Activation.RELU,) else "")
    return _section("activation", "5. Activation", [
        _p(f"The conv values can be negative and of any size. The activation function is "
           f"applied to each value on its own: {words}.{share} The size does not change: "
           f"still {activated.shape[1]}x{activated.shape[2]} (height x width) "
           "per kernel."),
        _worked(e.parts(), ("activation",)),
        _img(png, "activated stage"),
    ])


def _pooling_section(stages: Stages, chain, pooled: PooledExplanation, pooled_png: bytes,
                     window_png: bytes, winners_png: bytes | None) -> str:
    config = stages.config
    step = chain.steps[1]
    formulas = "".join(f"<div class='sum'>{axis}: {html.escape(item.formula())}</div>"
                       for axis, item in step.axes())
    size, stride = config.pool, config.effective_pool_stride or 1  # pooling is on here
    _, pool_h, pool_w = stages.arrays.pooled.shape
    _, act_h, act_w = stages.arrays.activated.shape
    kept = (pool_h * pool_w) / (act_h * act_w)
    if config.pool_type is PoolType.MAX:
        what = ("keeps only the largest value of each window (the strongest response) and drops "
                "the rest")
    else:
        what = "replaces each window by the mean of its values"
    parts = [
        _p(f"Pooling shrinks each map: a {size}x{size} window moves {stride} pixel"
           f"{'s' if stride > 1 else ''} at a time and {what}. {act_h}x{act_w} (height x width) "
           "becomes "
           f"{pool_h}x{pool_w}, {kept:.0%} as many values; a feature that moved by a pixel "
           "or so often still gives the same output."),
        formulas,
        "".join(_p(html.escape(note), "note") for note in
                (item.rounding_note() for _, item in step.axes()) if note),
        _img(pooled_png, "pooled stage"),
        _p("<b>Worked example</b>:"),
        _worked(pooled.parts(), ("where", "max", "mean")),
        _img(window_png, "one pooling window worked out"),
    ]
    if winners_png is not None:
        parts += [_p("Which pixel won each window (green), and what pooling dropped:"),
                  _img(winners_png, "pooling winners")]
    return _section("pooling", "6. Pooling", parts)


# --------------------------------------------------------------------------- helpers


def _reused(explained: Sequence[PixelExplanation | PooledExplanation], kind: type[E],
            at: tuple[int, int]) -> E | None:
    """The first kernel's explanation of this kind at ``at`` among ``explained``, or None."""
    return next((item for item in explained if isinstance(item, kind) and item.kernel == 0
                 and (item.row, item.col) == tuple(at)), None)


def _worked(parts: Sequence[Part], keys: Sequence[str]) -> str:
    """The parts of an explanation with these ``keys``, in its order, as ``convlens explain``
    words them (:func:`convlens.display.parts_html`)."""
    return parts_html([part for part in parts if getattr(part, "key", None) in keys])


def _section(anchor: str, title: str, parts: Sequence[str]) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{"".join(parts)}</section>'


def _p(text: str, css: str = "") -> str:
    return f'<p class="{css}">{text}</p>' if css else f"<p>{text}</p>"


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _grid(cells, caption: str, row_labels, col_labels, rows) -> str:
    head = "".join(f"<th>{c}</th>" for c in col_labels)
    body = "".join(f"<tr><th>{row_labels[r]}</th>{''.join(f'<td>{v}</td>' for v in row)}</tr>"
                   for r, row in zip(rows, cells))
    return (f'<div class="scroll"><table class="grid"><caption>{html.escape(caption)}</caption>'
            f"<tr><th></th>{head}</tr>{body}</table></div>")


def _given_png(given: Path | bytes | None) -> bytes | None:
    """The PNG a run already has for a picture: its bytes, or its file's."""
    if isinstance(given, bytes):
        return given
    if isinstance(given, Path) and given.is_file():
        return given.read_bytes()
    return None


def _png(given: Path | bytes | None, draw: Callable[[], Figure | SubFigure]) -> bytes:
    """The PNG a run already has for a picture, else ``draw()``'s (a whole figure) at the
    report's dpi."""
    found = _given_png(given)
    if found is not None:
        return found
    figure = draw()
    assert isinstance(figure, Figure), "the report draws whole figures"
    return figure_png(figure, REPORT_DPI)


def _draw(stages: Stages, name: str) -> Figure:
    names = stages.kernel_names
    arrays = stages.arrays
    if name == "filters":
        return plot_kernels(arrays.kernels, names)
    if name == "conv":
        return plot_maps(arrays.conv, names, "conv", signed=True, dpi=REPORT_DPI)
    if name == "activated":
        return plot_maps(arrays.activated, names, f"activated ({stages.config.activation.value})",
                         dpi=REPORT_DPI)
    return plot_maps(arrays.pooled, names, "pooled", dpi=REPORT_DPI)


_ROWS_AT_A_TIME = 256
"""Rows of a map searched at a time for its strongest value: no float copy of a whole map."""


def _interesting_pixel(stages: Stages) -> tuple[int, int]:
    """The strongest response of the first kernel, away from the border where possible."""
    activated = stages.arrays.activated[0]
    conv = activated if _largest_size(activated, 0, activated.shape[0]) > 0 else (
        stages.arrays.conv[0])
    height, width = conv.shape
    margin_h, margin_w = min(height // 4, 8), min(width // 4, 8)
    inner = conv[margin_h: height - margin_h, margin_w: width - margin_w]
    if not inner.size:  # no inner pixel: the first one, as the argmax of all -1 gave
        return 0, 0
    best, at = -1.0, (0, 0)
    for top in range(0, inner.shape[0], _ROWS_AT_A_TIME):
        block = np.abs(inner[top: top + _ROWS_AT_A_TIME])
        index = int(np.argmax(block))
        if block.flat[index] > best:
            best = float(block.flat[index])
            at = (top + index // inner.shape[1], index % inner.shape[1])
    return at[0] + margin_h, at[1] + margin_w


def _largest_size(data: np.ndarray, start: int, stop: int) -> float:
    """The largest absolute value of rows ``start:stop`` of ``data`` (no copy made)."""
    part = data[start:stop]
    return max(float(part.max()), -float(part.min())) if part.size else 0.0


def _strongest_pooled(stages: Stages) -> tuple[int, int]:
    pooled = stages.arrays.pooled[0]
    index = int(np.argmax(pooled))
    return index // pooled.shape[1], index % pooled.shape[1]


__all__ = ["REPORT_FILE", "render_report", "write_report"]
