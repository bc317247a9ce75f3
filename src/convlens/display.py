"""Notebook display: figures as PNG bytes, results as small self-contained HTML tables.

Jupyter shows an object through its ``_repr_png_`` / ``_repr_html_`` methods. The result classes
of convlens implement those in one line each by calling the functions here, so the notebook, the
widgets (:mod:`convlens.widgets`) and any other page render the same thing the same way:

* :func:`figure_png` turns a ``matplotlib.figure.Figure`` into PNG bytes (no pyplot involved);
* :func:`parts_html` styles an explanation's parts (:mod:`convlens.explain.parts`);
  :func:`pixel_explanation_html` / :func:`pooled_explanation_html` show one conv pixel's or one
  pooled cell's arithmetic that way (patch x kernel = products -> sum -> activation -> pooled
  cell), the words and numbers ``convlens explain`` prints; :func:`activation_explanation_html`
  one number of any layer of any model (:mod:`convlens.activations`), :func:`chain_html` one
  shown step by step from the conv before it;
* :func:`size_chain_html` the size formula ``(I - F + 2P)/S + 1`` layer by layer;
* :func:`stages_html` the stage table of a run (shape, range, share zeroed, size formula);
* :func:`layer_table_html` a model's layers, :func:`inspection_html` / :func:`feature_maps_png`
  its feature maps, :func:`saliency_png` a saliency result, :func:`train_result_html` a
  training run;
* :func:`html_table`, :func:`html_matrix` and :func:`png_html` the building blocks.

The HTML is well-formed XHTML (every tag closed, text escaped) with inline styles only, so it
needs no stylesheet and can be checked by any XML parser.

:func:`enable_notebook_display` lets Jupyter draw the plain ``Figure`` objects convlens returns
even when pyplot was never imported (IPython only knows how to draw figures after
``%matplotlib inline`` or ``import matplotlib.pyplot``).
"""

from __future__ import annotations

import base64
import html
import io
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize, TwoSlopeNorm, to_hex
from matplotlib.figure import Figure

from .defaults import SCREEN_DPI
from .errors import ConfigError
from .explain import RAW_SCALE
from .numbers import format_number

if TYPE_CHECKING:
    from .explain import PixelExplanation, PooledExplanation
    from .explain.parts import Part, Span, TextTable
    from .explain.parts import Table as TablePart
    from .sizes import SizeChain
    from .stages import Stages

_FONT = "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px"
_CELL = "padding: 2px 6px; text-align: right; border: 1px solid #bbb"
_TEXT_CELL = "padding: 2px 6px; text-align: left; border: 1px solid #bbb"
_HEAD = "padding: 2px 6px; text-align: left; border: 1px solid #bbb; font-weight: bold"
_PADDED = "border: 1px dashed #888; font-style: italic"
_WINNER = "outline: 3px solid #e6a700; outline-offset: -3px; font-weight: bold"
_NOTE = "color: #666; font-size: 11px; margin: 2px 0"


# --------------------------------------------------------------------------- figures


def figure_png(figure: Figure, dpi: int = SCREEN_DPI) -> bytes:
    """The PNG bytes of ``figure`` at ``dpi`` (dots per inch), drawn with Agg, no pyplot."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def enable_notebook_display(shell: Any = None) -> bool:
    """Teach IPython to draw ``matplotlib.figure.Figure`` objects inline as PNG, and a
    :class:`~convlens.sizes.SizeChain` as its HTML table (:func:`size_chain_html`).

    Library functions return plain figures built without pyplot; IPython only registers its
    figure formatter once pyplot's inline backend is loaded, so without this a returned figure
    shows as ``<Figure size 640x480 with 4 Axes>``. ``shell`` defaults to the running IPython
    shell; outside IPython nothing happens and False is returned. A formatter already in place
    (``%matplotlib inline``) is kept, so a figure is never drawn twice. Results of the
    modules below the renderers (explanations, size chains, ...) are drawn by the functions
    here, registered by their class names.
    """
    if shell is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        if shell is None:
            return False
    formatter = shell.display_formatter.formatters["image/png"]
    try:
        formatter.lookup_by_type(Figure)
    except KeyError:
        formatter.for_type(Figure, figure_png)
    # explanations: convlens.explain is below the renderers, so it cannot import them
    for where, explanation, to_html in (
            ("convlens.explain.pixel", "PixelExplanation", pixel_explanation_html),
            ("convlens.explain.pooled", "PooledExplanation", pooled_explanation_html)):
        shell.display_formatter.formatters["text/html"].for_type_by_name(
            where, explanation, to_html)
    # results of the foundation modules, which cannot import this renderer themselves
    shell.display_formatter.formatters["text/html"].for_type_by_name(
        "convlens.sizes", "SizeChain", size_chain_html)
    # one number of any layer (convlens.activations): its parts, and the trace back
    for module, name in ACTIVATION_EXPLANATIONS:
        shell.display_formatter.formatters["text/html"].for_type_by_name(
            module, name, activation_explanation_html)
    shell.display_formatter.formatters["text/html"].for_type_by_name(
        "convlens.activations.core", "Trace", activation_explanation_html)
    shell.display_formatter.formatters["text/html"].for_type_by_name(
        "convlens.activations.chain", "Chain", chain_html)
    # and of the computation modules (inspect, saliency, train), below the renderers too
    for kind, module, name, render in (
            ("text/html", "convlens.train.files", "TrainResult", train_result_html),
            ("text/html", "convlens.inspect.table", "LayerTable", layer_table_html),
            ("image/png", "convlens.stages", "Stages", stages_png),
            ("image/png", "convlens.inspect.maps", "FeatureMaps", feature_maps_png),
            ("text/html", "convlens.inspect.maps", "Activations", inspection_html),
            ("image/png", "convlens.saliency", "ClassSaliency", saliency_png)):
        shell.display_formatter.formatters[kind].for_type_by_name(module, name, render)
    return True


# --------------------------------------------------------------------------- HTML blocks


def esc(value: object) -> str:
    """Text escaped for HTML element content and attribute values."""
    return html.escape(str(value), quote=True)


def html_table(
    rows: Sequence[Sequence[object]],
    header: Sequence[str] | None = None,
    caption: str | None = None,
) -> str:
    """A bordered table of ``rows`` (cells are turned into escaped text), optional header row.

    Numbers are right-aligned, text left-aligned.
    """
    parts = [f'<table style="border-collapse: collapse; {_FONT}">']
    if caption:
        parts.append(f'<caption style="text-align: left; font-weight: bold">{esc(caption)}'
                     "</caption>")
    if header:
        parts.append("<tr>" + "".join(f'<th style="{_HEAD}">{esc(h)}</th>' for h in header)
                     + "</tr>")
    for row in rows:
        parts.append("<tr>" + "".join(
            f'<td style="{_CELL if _is_number(c) else _TEXT_CELL}">{esc(c)}</td>' for c in row)
            + "</tr>")
    parts.append("</table>")
    return "".join(parts)


def _is_number(value: object) -> bool:
    if isinstance(value, (int, float, np.number)):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def html_matrix(
    values: np.ndarray,
    *,
    caption: str | None = None,
    formatter: Callable[[float], str] = format_number,
    texts: Sequence[Sequence[str]] | None = None,
    signed: bool | None = None,
    limits: tuple[float, float] | None = None,
    padded: np.ndarray | None = None,
    highlight: tuple[int, int] | None = None,
    row_labels: Sequence[object] | None = None,
    col_labels: Sequence[object] | None = None,
) -> str:
    """A ``(rows, cols)`` grid of numbers as a small heatmap table, each value written in.

    Signed grids (``signed=None``: any value below 0) are coloured blue-white-red around 0, the
    colours of the conv maps; others dark (0) to white (the largest value), like the image.
    ``limits`` ``(low, high)`` fixes the colour scale (e.g. ``(0, 255)`` for raw pixels).
    ``padded`` ``(rows, cols)`` marks cells that lie in the padding (dashed, italic);
    ``highlight`` outlines one cell (a pool winner). ``texts`` gives each cell's text (else
    ``formatter`` writes the value).
    """
    grid = np.asarray(values, dtype=np.float64)
    if grid.ndim != 2:
        raise ConfigError(f"expected a 2-D grid of numbers; got shape {grid.shape}")
    signed = bool(grid.min(initial=0.0) < 0) if signed is None else signed
    top = float(np.abs(grid).max(initial=0.0)) or 1.0
    if limits is not None:
        norm: Normalize = Normalize(vmin=limits[0], vmax=limits[1], clip=True)
        cmap = colormaps["RdBu_r"] if signed else None
    elif signed:
        norm = TwoSlopeNorm(vcenter=0.0, vmin=-top, vmax=top)
        cmap = colormaps["RdBu_r"]
    else:
        norm, cmap = Normalize(vmin=min(float(grid.min(initial=0.0)), 0.0), vmax=top), None
    parts = [f'<table style="border-collapse: collapse; {_FONT}">']
    if caption:
        parts.append(f'<caption style="text-align: left; font-weight: bold">{esc(caption)}'
                     "</caption>")
    if col_labels is not None:
        corner = "<th></th>" if row_labels is not None else ""
        parts.append("<tr>" + corner + "".join(
            f'<th style="{_NOTE}">{esc(label)}</th>' for label in col_labels) + "</tr>")
    for r, row in enumerate(grid):
        cells = [f'<th style="{_NOTE}">{esc(row_labels[r])}</th>'] if row_labels is not None else []
        for c, value in enumerate(row):
            shade = float(norm(value))
            rgba = cmap(shade) if cmap is not None else (0.2 + 0.8 * shade,) * 3 + (1.0,)
            luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
            style = (f"{_CELL}; background: {to_hex(rgba)}; "
                     f"color: {'#fff' if luminance < 0.5 else '#000'}")
            title = ""
            if padded is not None and padded[r, c]:
                style += f"; {_PADDED}"
                title = ' title="padding"'
            if highlight is not None and (r, c) == tuple(highlight):
                style += f"; {_WINNER}"
                title = ' title="winner"'
            text = texts[r][c] if texts is not None else formatter(float(value))
            cells.append(f'<td style="{style}"{title}>{esc(text)}</td>')
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>")
    return "".join(parts)


def _row(*cells: str) -> str:
    """Side-by-side blocks (tables and operators) in one line."""
    inner = "".join(
        f'<td style="vertical-align: middle; padding: 0 6px; border: none">{cell}</td>'
        for cell in cells
    )
    return f'<table style="border-collapse: collapse"><tr>{inner}</tr></table>'


def _operator(symbol: str) -> str:
    return f'<span style="font-size: 20px">{esc(symbol)}</span>'


def _paragraph(text: str, style: str = "margin: 4px 0") -> str:
    return f'<p style="{style}">{text}</p>'


# --------------------------------------------------------------------------- explanations


def parts_html(parts: Sequence[Part]) -> str:
    """An explanation's parts (:mod:`convlens.explain.parts`) as HTML: headings bold,
    sentences as paragraphs (numbers bold, with ``data-key`` / ``data-value``), grids as
    heatmap tables side by side with their operators (padding dashed, the winner outlined;
    detail tables and repeated units left out), the written sum on one line, notes small."""
    from .explain.parts import Grids, Heading, Note, Sentence, TextTable, WrittenSum

    blocks = []
    for part in parts:
        if isinstance(part, Heading):
            blocks.append(_paragraph(f"<b>{esc(part.text)}</b>"))
        elif isinstance(part, Sentence):
            blocks.append(_paragraph("".join(_span_html(span) for span in part.spans)))
        elif isinstance(part, Note):
            blocks.append(_paragraph(esc(part.text), _NOTE))
        elif isinstance(part, WrittenSum):
            blocks.append(_paragraph(esc(f"{part.label} = " + " = ".join(part.lines))))
        elif isinstance(part, TextTable):
            blocks.append(_text_table_html(part))
        elif isinstance(part, Grids):
            cells: list[str] = []
            units: set[str] = set()
            for operator, table in part.shown(detail=False):
                if operator and cells:
                    cells.append(_operator(operator))
                cells.append(_table_html(table, with_unit=table.unit not in units))
                units.add(table.unit)
            blocks.append(_row(*cells))
    return "".join(blocks)


def _text_table_html(table: TextTable) -> str:
    """A table of words: every column (the compact ones too), numbers right-aligned, cells
    marked ``warning`` in amber."""
    shown = table.shown(compact=True)
    parts = [f'<table style="border-collapse: collapse; {_FONT}">',
             f'<caption style="text-align: left; font-weight: bold">{esc(table.title)}'
             "</caption>",
             "<tr>" + "".join(f'<th style="{_HEAD}">{esc(table.columns[i].name)}</th>'
                              for i in shown) + "</tr>"]
    for r, row in enumerate(table.rows):
        cells = []
        for i in shown:
            style = _CELL if table.columns[i].align == "right" else _TEXT_CELL
            if table.marks is not None and table.marks[r][i] == "warning":
                style += "; background: #fff3cd"
            cells.append(f'<td style="{style}">{esc(row[i])}</td>')
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>")
    return "".join(parts)


def _span_html(span: Span) -> str:
    text = esc(span.text)
    attributes = ""
    if span.key:
        attributes = f' data-key="{esc(span.key)}" data-value="{esc(span.value)}"'
    if span.style == "strong":
        return f"<b{attributes}>{text}</b>"
    if span.style == "warning":
        return f'<b style="color: #a15c00"{attributes}>{text}</b>'
    if span.style == "dim":
        return f'<span style="color: #666"{attributes}>{text}</span>'
    return f"<span{attributes}>{text}</span>" if attributes else text


def _table_html(table: TablePart, with_unit: bool = True) -> str:
    """One grid part as a heatmap table: raw pixels on a 0-255 scale, signed values around 0."""
    winner = np.argwhere(table.mark_array("winner"))
    return html_matrix(
        table.array(), caption=table.caption() if with_unit else table.caption(""),
        texts=table.cells, signed={"signed": True, "raw": False}.get(table.scale),
        limits=(0.0, RAW_SCALE) if table.scale == "raw" else None,
        padded=table.mark_array("padding") if table.marks is not None else None,
        highlight=tuple(winner[0]) if len(winner) else None,
        row_labels=table.row_labels, col_labels=table.col_labels)


def pixel_explanation_html(explanation: PixelExplanation) -> str:
    """One conv output pixel worked out (:func:`convlens.explain.pixel.pixel_parts`): where
    its patch lies, patch x kernel = products, the sum written out as ``convlens explain``
    prints it, the activation and the pooled cell it feeds. Patch and products are in raw
    0-255 units (normalized x 255), as the tutorial does.
    """
    return f'<div class="convlens-explain" style="{_FONT}">{parts_html(explanation.parts())}</div>'


def pooled_explanation_html(explanation: PooledExplanation) -> str:
    """One pooled cell worked out (:func:`convlens.explain.pooled.pooled_parts`): its window of
    the activated map (conv coordinates), the winner outlined (max pooling) or the mean (avg
    pooling), and the value it gives."""
    return f'<div class="convlens-explain" style="{_FONT}">{parts_html(explanation.parts())}</div>'


ACTIVATION_EXPLANATIONS = (
    ("convlens.activations.conv", "ConvExplanation"),
    ("convlens.activations.norm", "BatchNormExplanation"),
    ("convlens.activations.elementwise", "ActivationFunctionExplanation"),
    ("convlens.activations.pool", "PoolExplanation"),
    ("convlens.activations.linear", "LinearExplanation"),
    ("convlens.activations.merge", "AddExplanation"),
    ("convlens.activations.merge", "MulExplanation"),
    ("convlens.activations.merge", "ConcatExplanation"),
    ("convlens.activations.merge", "FlattenExplanation"),
    ("convlens.activations.other", "OtherExplanation"),
)
"""Where each layer kind's explanation class of :mod:`convlens.activations` lives: registered
by name (:func:`enable_notebook_display`), so this renderer imports none of them."""


def activation_explanation_html(explanation: Any) -> str:
    """One number of any layer worked out (:func:`convlens.activations.explain_activation`,
    any layer kind), or a :class:`~convlens.activations.Trace` back to the input: its parts,
    the words and numbers ``convlens explain MODEL IMAGE --layer ...`` prints."""
    return f'<div class="convlens-explain" style="{_FONT}">{parts_html(explanation.parts())}</div>'


def chain_html(chain: Any, last: bool = True) -> str:
    """A number made step by step from the nearest conv before it
    (:func:`convlens.activations.explain_chain`, as the page's network view shows it): the
    chain's words, then each step's parts in a section of its own (``data-layer``,
    ``data-step``), in the order the layers ran. ``last=False`` leaves the number's own step
    out (for a view that shows it apart, as :func:`activation_explanation_html`)."""
    steps = chain.steps if last else chain.steps[:-1]
    sections = "".join(
        f'<div class="convlens-chain-step" data-step="{i}" data-layer="{esc(step.layer)}" '
        f'style="border-left: 3px solid #ccc; padding-left: 6px; margin: 6px 0">'
        f"{parts_html(step.parts())}</div>" for i, step in enumerate(steps))
    return (f'<div class="convlens-chain" style="{_FONT}">{parts_html(chain.intro())}'
            f"{sections}</div>")


# --------------------------------------------------------------------------- sizes and stages


def size_chain_html(chain: SizeChain) -> str:
    """The size formula ``(I - F + 2P)/S + 1`` with the numbers put in, one row per layer and
    axis, the receptive field of one output pixel, and a warning where a division is not exact
    (:func:`convlens.explain.chain_parts`)."""
    from .explain import chain_parts

    return f'<div class="convlens-sizes">{parts_html(chain_parts(chain))}</div>'


def stages_html(stages: Stages) -> str:
    """The stage table of a run: shape, value range, share zeroed by the activation and the
    size formula of each stage (what ``convlens run`` prints)."""
    rows = []
    for item in stages.summary():
        zeroed = "" if item.zeroed is None else f"{item.zeroed:.0%}"
        rows.append((item.stage, "x".join(map(str, item.shape)), format_number(item.minimum),
                     format_number(item.maximum), zeroed, item.size_formula))
    table = html_table(rows, ("stage", "shape", "min", "max", "zeroed", "size"))
    return f'<div class="convlens-stages">{table}</div>'


def layer_table_html(table: Any) -> str:
    """A model's layers (:class:`convlens.inspect.LayerTable`): name (indented by depth),
    type, output shape, parameters, receptive field and geometry; the layer that failed in red
    with what mismatched, then the totals."""
    header = ("layer", "type", "output shape", "params", "receptive field", "geometry")
    parts = [f'<div class="convlens-layers" style="{_FONT}">',
             f'<table style="border-collapse: collapse; {_FONT}">',
             '<caption style="text-align: left; font-weight: bold">'
             f"input {esc(_shape_text(table.input_shape))}"
             f"{' -> output ' + esc(_shape_text(table.output_shape)) if table.output_shape else ''}"
             "</caption>",
             "<tr>" + "".join(f'<th style="{_HEAD}">{esc(h)}</th>' for h in header) + "</tr>"]
    for row in table.rows:
        field = row.receptive_field
        cells = (row.name or "(model)", row.layer_type, _shape_text(row.output_shape),
                 f"{row.params:,}" if row.params else "", f"{field[0]}x{field[1]}"
                 if field else "", row.geometry)
        style = "; color: #c00; font-weight: bold" if row.failed else ""
        indent = f"padding-left: {6 + 12 * max(0, row.depth)}px"
        tds = [f'<td style="{_TEXT_CELL}; {indent}{style}">{esc(cells[0])}</td>']
        tds += [f'<td style="{_CELL if i in (3, 4) else _TEXT_CELL}{style}">{esc(c)}</td>'
                for i, c in enumerate(cells[1:], start=1)]
        title = ' title="failed"' if row.failed else ""
        parts.append(f"<tr{title}>" + "".join(tds) + "</tr>")
    parts.append("</table>")
    parts.append(_paragraph(f"{table.total_params:,} parameters, "
                            f"{table.trainable_params:,} trainable"))
    if table.failure:
        parts.append(_paragraph(f"the model failed here: {esc(table.failure)}",
                                "margin: 4px 0; color: #c00; font-weight: bold"))
    for note in getattr(table, "notes", []) or []:
        parts.append(_paragraph(esc(note), _NOTE))
    parts.append("</div>")
    return "".join(parts)


def png_html(png: bytes, alt: str = "") -> str:
    """An ``<img>`` holding ``png`` inline (base64 data URI): self-contained, no file."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}" style="max-width: 100%"/>'


def stages_png(stages: Stages) -> bytes:
    """A tutorial layer's stages (:class:`convlens.layers.Stages`) as the overview figure of
    :func:`convlens.plot.plot_overview`: the input, the kernels and every stage."""
    from .plot import plot_overview

    return figure_png(plot_overview(stages))


def feature_maps_png(maps: Any, top: int | None = 16) -> bytes:
    """One layer's feature maps (:class:`convlens.inspect.FeatureMaps`), the ``top`` most
    active channels first, as drawn by :func:`convlens.plot.models.plot_feature_maps`."""
    from .plot.models import plot_feature_maps

    return figure_png(plot_feature_maps(maps, top=top))


def inspection_html(inspection: Any, top: int | None = 16) -> str:
    """An inspected model (:class:`convlens.inspect.Activations`, or the ``inspect`` command's
    :class:`convlens.results.inspection.Inspection`): per hooked layer its most
    active feature maps, in the order the layers ran."""
    parts = ['<div class="convlens-inspection">']
    for name, maps in inspection.layers.items():
        shape = "x".join(map(str, maps.shape))
        parts.append(_paragraph(f"<b>{esc(name)}</b> ({esc(maps.layer_type)}) {shape}"))
        parts.append(png_html(feature_maps_png(maps, top), f"feature maps of {name}"))
    parts.append("</div>")
    return "".join(parts)


def saliency_png(result: Any) -> bytes:
    """A saliency result (:class:`convlens.saliency.ClassSaliency`): the input, each method's
    heatmap and the heatmap over the input, as drawn by
    :func:`convlens.plot.models.plot_saliency`."""
    from .plot.models import plot_saliency

    return figure_png(plot_saliency(result))


def train_result_html(result: Any) -> str:
    """A training run (:class:`convlens.train.TrainResult`): its key metrics, then the learning
    curves and confusion matrix it wrote, inline."""
    metrics = result.metrics
    rows = [("run folder", str(result.out_dir))]
    if "test_accuracy" in metrics:
        rows.append(("test accuracy (kept model, measured once)",
                     f"{metrics['test_accuracy']:.2%}"))
    if "val_accuracy" in metrics:
        rows.append(("validation accuracy (kept model)", f"{metrics['val_accuracy']:.2%}"))
    if "best_epoch" in metrics:
        rows.append(("best epoch", f"{metrics['best_epoch']} of {metrics.get('epochs', '?')}"))
    baseline = metrics.get("baseline")
    split = "test" if isinstance(baseline, dict) and "test_accuracy" in baseline else "val"
    if isinstance(baseline, dict) and f"{split}_accuracy" in baseline:
        rows.append((f"baseline: {baseline.get('model', 'SVC')}, {split} accuracy",
                     f"{baseline[f'{split}_accuracy']:.2%}"))
    if "seconds" in metrics:
        rows.append(("seconds", f"{metrics['seconds']:.1f}"))
    parts = ['<div class="convlens-train">', html_table(rows, caption="training run")]
    for name in ("curves.png", "confusion.png"):
        path = Path(result.out_dir) / name
        if path.is_file():
            parts.append(png_html(path.read_bytes(), name))
    parts.append("</div>")
    return "".join(parts)


def _shape_text(shape: Sequence[int] | None) -> str:
    return "" if shape is None else "x".join(str(int(s)) for s in shape)


__all__ = [
    "enable_notebook_display",
    "esc",
    "feature_maps_png",
    "figure_png",
    "html_matrix",
    "html_table",
    "inspection_html",
    "layer_table_html",
    "parts_html",
    "pixel_explanation_html",
    "png_html",
    "pooled_explanation_html",
    "saliency_png",
    "size_chain_html",
    "stages_html",
    "train_result_html",
]
