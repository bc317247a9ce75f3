"""Fixed figure layouts: every axes placed by arithmetic on what it holds, in inches.

matplotlib's constrained layout finds room for titles, tick labels and colour bars by measuring
every artist of every axes (each colour bar's tick labels included) twice per drawing: about two
thirds of the time a stage figure takes. Here each figure says instead what surrounds each of its
panels (a title of so many lines at so many points, a colour bar with these tick labels, tick
labels along the top), measured once with matplotlib's own font metrics and no renderer, and
:class:`Grid` turns that into the axes' positions. The pictures look the same; placing is a few
additions.

A :class:`Grid` is rows x columns of boxes in a figure (or sub-figure) of a known size. Every box
of a row has the same height and every box of a column the same width (their ratios given);
the room each row needs above and below its boxes, and each column left and right of them, is
the largest any of its panels asked for (:meth:`Grid.reserve`). The figure's size stays the
one the figure asked for: the boxes share what is left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from matplotlib import rcParams
from matplotlib.font_manager import FontProperties

POINT = 1 / 72
"""One point in inches."""
PAD = 3 * POINT
"""Space kept around every panel (inches): constrained layout's own default pad."""
TITLE_PAD = 6 * POINT
"""Space between a title and its axes (inches): matplotlib's ``axes.titlepad``."""
TICK_ROOM = 7 * POINT
"""A tick and the pad to its label (inches): 3.5 points each, matplotlib's defaults."""
COLORBAR_ASPECT = 20
"""Long side over short side of a colour bar beside a panel (matplotlib's default)."""
COLORBAR_SHRINK = 0.8
"""A colour bar's length as a share of its panel's side."""
COLORBAR_PAD = 0.1
"""Inches between a panel and its colour bar."""


@lru_cache(maxsize=4096)
def text_extent(text: str, fontsize: float, family: str = "sans-serif") -> tuple[float, float]:
    """``(width, height)`` in inches of ``text`` (lines split at newlines) drawn at ``fontsize``
    points in ``family``: matplotlib's own layout of it (its line spacing and font metrics),
    measured once on a small off-screen figure; nothing is drawn."""
    if not text:
        return 0.0, 0.0
    figure, renderer = _measuring()
    probe = figure.text(0, 0, text, fontsize=fontsize, family=family)
    extent = probe.get_window_extent(renderer)
    probe.remove()
    return extent.width / figure.dpi, extent.height / figure.dpi


@lru_cache(maxsize=1)
def _measuring():
    """A 1x1-inch off-screen figure at 72 dpi and its Agg renderer, on which texts are laid out
    to be measured (made once)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1, 1), dpi=72)
    return figure, FigureCanvasAgg(figure).get_renderer()


def fit_text(text: str, fontsize: float, width: float, family: str = "sans-serif") -> str:
    """``text`` with every line longer than ``width`` inches at ``fontsize`` broken onto
    further lines: at ``"; "`` or a double space first (between the parts of a title), at a
    single space only where a part is itself too long. Text that fits comes back as it is."""
    lines: list[str] = []
    for line in text.split("\n"):
        lines += _fit_line(line, fontsize, width, family)
    return "\n".join(lines)


def _fit_line(line: str, fontsize: float, width: float, family: str) -> list[str]:
    if text_extent(line, fontsize, family)[0] <= width:
        return [line]
    for separator in ("; ", "  ", " "):
        parts = line.split(separator)
        if len(parts) == 1:
            continue
        lines, current = [], parts[0]
        for part in parts[1:]:
            joined = current + separator + part
            if text_extent(joined, fontsize, family)[0] <= width:
                current = joined
            else:
                lines.append(current.rstrip(";"))
                current = part
        lines.append(current)
        fitted: list[str] = []
        for piece in lines:
            fitted += [piece] if text_extent(piece, fontsize, family)[0] <= width or \
                separator == " " else _fit_line(piece, fontsize, width, family)
        return fitted
    return [line]


def title_room(text: str, fontsize: float) -> float:
    """Inches an axes title of ``text`` at ``fontsize`` points takes above its axes, its pad
    included (0 for no title)."""
    return text_extent(text, fontsize)[1] + TITLE_PAD if text else 0.0


def tick_labels_room(labels: Sequence[str], fontsize: float, across: bool) -> float:
    """Inches tick labels (and their ticks) take beside an axis: their widest width for labels
    beside a vertical axis (``across=True``), one line's height for a horizontal one."""
    if not labels:
        return 0.0
    if across:
        return TICK_ROOM + max(text_extent(label, fontsize)[0] for label in labels)
    return TICK_ROOM + text_extent(labels[0], fontsize)[1]


def tick_fontsize() -> float:
    """Points of tick labels as matplotlib's settings give them (``ytick.labelsize``)."""
    return float(FontProperties(size=rcParams["ytick.labelsize"]).get_size_in_points())


def colorbar_labels(bar) -> list[str]:
    """The tick labels a colour bar will draw along its long axis, read from its own locator
    and formatter once its axes has its place (no drawing)."""
    axis = bar.long_axis
    locations = axis.get_majorticklocs()
    low, high = sorted(axis.get_view_interval())
    span = (high - low) or 1.0
    texts = axis.get_major_formatter().format_ticks(locations)
    return [text for location, text in zip(locations, texts)
            if low - 1e-9 * span <= location <= high + 1e-9 * span and text]


@dataclass
class Grid:
    """Rows x columns of axes boxes in a ``width`` x ``height``-inch figure.

    ``top``, ``bottom``, ``left`` and ``right`` are inches kept free along the figure's edges
    (a suptitle, a row of colour bars). Boxes of a row share a height, boxes of a column a
    width, in ``height_ratios`` and ``width_ratios``; :meth:`reserve` asks for room around one
    panel's box, which its whole row (above, below) or column (left, right) then keeps.
    """

    width: float
    height: float
    rows: int
    columns: int
    width_ratios: Sequence[float] | None = None
    height_ratios: Sequence[float] | None = None
    top: float = 0.0
    bottom: float = 0.0
    left: float = 0.0
    right: float = 0.0
    pad: float = PAD
    _above: list[float] = field(init=False)
    _below: list[float] = field(init=False)
    _before: list[float] = field(init=False)
    _after: list[float] = field(init=False)
    _least: list[float] = field(init=False)
    _overhang: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self._above = [0.0] * self.rows
        self._below = [0.0] * self.rows
        self._before = [0.0] * self.columns
        self._after = [0.0] * self.columns
        self._least = [0.0] * self.columns
        self._overhang = [0.0] * self.columns

    def reserve(self, row: int, column: int, *, above: float = 0.0, below: float = 0.0,
                left: float = 0.0, right: float = 0.0) -> None:
        """Keep room (inches) around the box at ``row, column``: above and below it in its
        row, left and right of it in its column."""
        self._above[row] = max(self._above[row], above)
        self._below[row] = max(self._below[row], below)
        self._before[column] = max(self._before[column], left)
        self._after[column] = max(self._after[column], right)

    def reserve_overhang(self, column: int, width: float) -> None:
        """Keep room for something ``width`` inches wide starting at the left edge of the
        column's boxes (a text panel's left-aligned lines), spilling past them on the right."""
        self._overhang[column] = max(self._overhang[column], width)

    def reserve_title(self, row: int, column: int, text: str, fontsize: float,
                      above: float = 0.0) -> None:
        """Keep room for an axes title over the box at ``row, column`` (``above``: inches of
        tick labels between the title and the box)."""
        self.reserve(row, column, above=above + title_room(text, fontsize))
        self.reserve_width(column, text_extent(text, fontsize)[0])

    def reserve_width(self, column: int, width: float) -> None:
        """Keep room for something ``width`` inches wide centred on the column's boxes (a
        title wider than its panel spills over both sides equally)."""
        self._least[column] = max(self._least[column], width)

    def columns_spans(self) -> list[tuple[float, float]]:
        """``(left, width)`` in inches of each column's boxes, from the figure's left edge."""
        ratios = self.width_ratios or [1.0] * self.columns
        before, after = list(self._before), list(self._after)
        spans = _spans(self.width, ratios, before, after, self.left, self.right, self.pad)
        for _ in range(30):  # what spills past the boxes (wide titles, text) gets room beside
            spills = [(least - box) / 2 for least, (_, box) in zip(self._least, spans)]
            wanted_before = [max(base, spill) for base, spill in zip(self._before, spills)]
            wanted_after = [max(base, spill, overhang - box) for base, spill, overhang, (_, box)
                            in zip(self._after, spills, self._overhang, spans)]
            if all(abs(a - b) < 1e-4 for a, b in zip(wanted_before + wanted_after,
                                                     before + after)):
                break
            before, after = wanted_before, wanted_after
            spans = _spans(self.width, ratios, before, after, self.left, self.right, self.pad)
        return spans

    def rows_spans(self) -> list[tuple[float, float]]:
        """``(top, height)`` in inches of each row's boxes, down from the figure's top edge."""
        return _spans(self.height, self.height_ratios or [1.0] * self.rows, self._above,
                      self._below, self.top, self.bottom, self.pad)

    def box(self, row: int, column: int, row_span: int = 1, column_span: int = 1
            ) -> tuple[float, float, float, float]:
        """``(left, top, width, height)`` in inches (top down from the figure's top edge) of
        the box at ``row, column``, spanning ``row_span`` rows and ``column_span`` columns."""
        xs, ys = self.columns_spans(), self.rows_spans()
        left, top = xs[column][0], ys[row][0]
        last_x, last_y = xs[column + column_span - 1], ys[row + row_span - 1]
        return left, top, last_x[0] + last_x[1] - left, last_y[0] + last_y[1] - top

    def rect(self, row: int, column: int, row_span: int = 1, column_span: int = 1
             ) -> tuple[float, float, float, float]:
        """The box at ``row, column`` as ``[left, bottom, width, height]`` fractions of the
        figure, what ``add_axes`` and ``set_position`` take."""
        return self.fractions(*self.box(row, column, row_span, column_span))

    def fractions(self, left: float, top: float, width: float, height: float
                  ) -> tuple[float, float, float, float]:
        """An inch box ``(left, top, width, height)`` (top down from the top edge) as
        ``[left, bottom, width, height]`` fractions of the figure."""
        return (left / self.width, 1 - (top + height) / self.height, width / self.width,
                height / self.height)


def _spans(total: float, ratios: Sequence[float], before: Sequence[float],
           after: Sequence[float], start: float, end: float, pad: float
           ) -> list[tuple[float, float]]:
    """Split ``total`` inches into tracks: each keeps ``pad`` + ``before`` + its box +
    ``after`` + ``pad``, the boxes sharing what is left in ``ratios`` (never less than a tenth
    of ``total`` between them, so an over-full figure squeezes rather than breaks)."""
    kept = start + end + sum(before) + sum(after) + 2 * pad * len(ratios)
    free = max(total - kept, 0.1 * total)
    unit = free / (sum(ratios) or 1.0)
    spans: list[tuple[float, float]] = []
    position = start
    for ratio, ahead, behind in zip(ratios, before, after):
        position += pad + ahead
        length = unit * ratio
        spans.append((position, length))
        position += length + behind + pad
    return spans


def suptitle_room(text: str, fontsize: float) -> float:
    """Inches a figure's suptitle of ``text`` at ``fontsize`` takes at the top (0 for none),
    a little margin above and below it included."""
    return text_extent(text, fontsize)[1] + 2 * PAD + 2 * POINT if text else 0.0


def place_suptitle(figure, text: str, fontsize: float, height: float) -> None:
    """``figure``'s (or a sub-figure's, ``height`` inches tall) suptitle ``text`` at
    ``fontsize`` points, at the top and centred, where :func:`suptitle_room` kept room."""
    if text:
        figure.suptitle(text, fontsize=fontsize, y=1.0 - (PAD + POINT) / height, va="top")


__all__ = [
    "COLORBAR_ASPECT",
    "COLORBAR_PAD",
    "COLORBAR_SHRINK",
    "PAD",
    "POINT",
    "TICK_ROOM",
    "TITLE_PAD",
    "Grid",
    "colorbar_labels",
    "fit_text",
    "place_suptitle",
    "suptitle_room",
    "text_extent",
    "tick_fontsize",
    "tick_labels_room",
    "title_room",
]
