"""The parts every explanation is told in: words written once, styled by every renderer.

An explanation (one conv pixel, one pooled cell, a chain of sizes) is a short tuple of parts:

* :class:`Heading` names what is explained (``sobel-h: conv pixel (0, 3)``);
* :class:`Sentence` says one thing in words, made of :class:`Span` pieces so a renderer can
  make a number bold or mark padding, and find a number by its ``key`` (``conv``,
  ``activated``, ...) with its exact ``value``;
* :class:`Grids` puts :class:`Table` grids of numbers side by side with the operators between
  them (patch ``×`` kernel ``=`` products);
* :class:`WrittenSum` is a sum written out term by term, then row by row, then its total;
* :class:`TextTable` is a table of words (the size chain's rows), its :class:`Column` s named;
* :class:`Note` is a side remark (shown small or dim).

Each explanation words itself once (:meth:`~convlens.explain.PixelExplanation.parts`,
:meth:`~convlens.explain.PooledExplanation.parts`, :func:`convlens.explain.chain_parts`). The
renderers only style the parts: rich text (``convlens explain``, ``convlens size``), HTML
(:func:`convlens.display.parts_html`: notebooks, widgets and ``report.html``), figures
(:mod:`convlens.plot.explain`) and the page, which reads the ``parts`` list of an
explanation's JSON (:func:`parts_to_dicts`)::

    {"kind": "heading", "text": ..., "level": 1 or 2}
    {"kind": "sentence", "key": ..., "text": ..., "spans": [{"text", "style", "key", "value"}]}
    {"kind": "note", "key": ..., "text": ...}
    {"kind": "grids", "key": ..., "operators": [...], "tables": [{"kind": "table", "key",
     "title", "unit", "channel", "caption", "cells", "values", "marks", "row_labels",
     "col_labels", "scale", "detail"}]}
    {"kind": "sum", "key": ..., "label": ..., "unit": ..., "lines": [...], "total": ...}
    {"kind": "text_table", "key": ..., "title": ..., "columns": [{"name", "align",
     "compact", "group"}], "rows": [[...]], "marks": [[...]] or null}

Span and mark styles are ``strong``, ``dim``, ``padding``, ``winner``, ``warning`` or
empty. A table's ``scale`` says how to colour it: ``raw`` (0 to the raw scale, pixels),
``signed`` (around 0) or ``plain`` (0 to its largest value). ``detail`` tables (the
normalized patch) are for the long renderers (text) and left out by the compact ones (HTML,
figures, the page).

Standard library and NumPy only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- the parts


@dataclass(frozen=True)
class Span:
    """A piece of a sentence: its ``text``, a ``style`` (``strong``, ``dim``, ``padding``,
    ``winner`` or empty) and, for a number, the ``key`` that names it and its exact ``value``."""

    text: str
    style: str = ""
    key: str = ""
    value: float | None = None


@dataclass(frozen=True)
class Heading:
    """What is explained, one line (``sobel-h: conv pixel (0, 3)``); ``level`` 2 for a
    sub-heading inside an explanation."""

    text: str
    level: int = 1
    kind = "heading"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "level": self.level}


@dataclass(frozen=True)
class Sentence:
    """One thing said in words, as :class:`Span` pieces; ``key`` says what it is about."""

    spans: tuple[Span, ...]
    key: str = ""
    kind = "sentence"

    @property
    def text(self) -> str:
        return "".join(span.text for span in self.spans)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "text": self.text,
                "spans": [asdict(span) for span in self.spans]}


@dataclass(frozen=True)
class Note:
    """A side remark, shown small or dim."""

    text: str
    key: str = ""
    kind = "note"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "text": self.text}


@dataclass(frozen=True)
class Table:
    """A ``(rows, cols)`` grid of numbers: ``cells`` the text of each, ``values`` the numbers
    (for colour), ``marks`` a style per cell (``padding``, ``winner`` or empty).

    ``title`` says what it holds, ``unit`` in what (``0-255``), ``channel`` which colour
    channel (``R``); :attr:`caption` puts them together. ``row_labels`` / ``col_labels`` are
    coordinates (input rows and cols), ``scale`` how to colour it (``raw``, ``signed``,
    ``plain``), ``detail`` True for a table only the long renderers show.
    """

    key: str
    title: str
    cells: tuple[tuple[str, ...], ...]
    values: tuple[tuple[float, ...], ...]
    unit: str = ""
    channel: str = ""
    marks: tuple[tuple[str, ...], ...] | None = None
    row_labels: tuple[int, ...] | None = None
    col_labels: tuple[int, ...] | None = None
    scale: str = "plain"
    detail: bool = False
    kind = "table"

    def caption(self, unit_style: str = " ({unit})") -> str:
        """``patch (0-255) [R]``; ``unit_style`` places the unit (``", {unit}"`` for text)."""
        text = self.title
        if self.unit:
            text += unit_style.format(unit=self.unit)
        if self.channel:
            text += f" [{self.channel}]"
        return text

    @classmethod
    def of(cls, key: str, title: str, values: np.ndarray, fmt: Callable[[float], str],
           **options: Any) -> Table:
        """The table of a ``(rows, cols)`` array, each value written by ``fmt``."""
        grid = np.asarray(values, dtype=np.float64)
        return cls(key, title, tuple(tuple(fmt(float(v)) for v in row) for row in grid),
                   tuple(tuple(float(v) for v in row) for row in grid), **options)

    def array(self) -> np.ndarray:
        """The values as a float64 ``(rows, cols)`` array."""
        return np.array(self.values, dtype=np.float64).reshape(len(self.cells), -1)

    def mark_array(self, style: str) -> np.ndarray:
        """Boolean ``(rows, cols)``: the cells marked ``style``."""
        grid = np.zeros((len(self.cells), len(self.cells[0]) if self.cells else 0), dtype=bool)
        for (row, col), mark in np.ndenumerate(np.array(self.marks or [[""]], dtype=object)):
            if self.marks is not None and mark == style:
                grid[row, col] = True
        return grid

    def to_dict(self) -> dict:
        data = asdict(self)
        data["kind"] = self.kind
        data["caption"] = self.caption()
        return data


@dataclass(frozen=True)
class Grids:
    """Tables side by side: ``operators[i]`` stands before ``tables[i]`` (empty for none)."""

    tables: tuple[Table, ...]
    operators: tuple[str, ...]
    key: str = ""
    kind = "grids"

    def shown(self, detail: bool = True) -> list[tuple[str, Table]]:
        """``(operator, table)`` pairs, without the detail tables unless ``detail``."""
        return [(op, table) for op, table in zip(self.operators, self.tables)
                if detail or not table.detail]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "operators": list(self.operators),
                "tables": [table.to_dict() for table in self.tables]}


@dataclass(frozen=True)
class WrittenSum:
    """A sum written out: ``lines`` from the terms to the total (each line equals the one
    before), ``label`` what it is (``sum of products``), ``unit`` what its numbers are in,
    ``total`` the exact sum in those units."""

    label: str
    lines: tuple[str, ...]
    total: float
    unit: str = ""
    key: str = "sum"
    kind = "sum"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "label": self.label, "unit": self.unit,
                "lines": list(self.lines), "total": self.total}

    def steps(self) -> list[str]:
        """The lines as written one under the other: each after the first starts ``= ``.

        >>> WrittenSum("sum", ("1 + 2", "3"), 3.0).steps()
        ['1 + 2', '= 3']
        """
        return [line if i == 0 else f"= {line}" for i, line in enumerate(self.lines)]


@dataclass(frozen=True)
class Column:
    """One column of a :class:`TextTable`: its ``name``, ``align`` (``left``/``right``) and
    ``compact`` True for a column only the compact renderers show (HTML, the page), where the
    long ones (text) say the same in sentences after the table; ``group`` True for a column
    whose value belongs to a group of rows (a layer), which a renderer may write once."""

    name: str
    align: str = "left"
    compact: bool = False
    group: bool = False


@dataclass(frozen=True)
class TextTable:
    """A table of words and numbers: ``columns``, then ``rows`` of cell texts; ``marks`` a style
    per cell (``warning`` or empty). Every row holds all its cells (a renderer may blank a value
    that repeats the row above)."""

    key: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]
    marks: tuple[tuple[str, ...], ...] | None = None
    kind = "text_table"

    def shown(self, compact: bool) -> list[int]:
        """Indices of the columns a compact (or long) renderer shows."""
        return [i for i, column in enumerate(self.columns) if compact or not column.compact]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "title": self.title,
                "columns": [asdict(column) for column in self.columns],
                "rows": [list(row) for row in self.rows],
                "marks": None if self.marks is None else [list(row) for row in self.marks]}


Part = Heading | Sentence | Note | Grids | WrittenSum | TextTable


def parts_to_dicts(parts: Iterable[Part]) -> list[dict]:
    """The parts as JSON-ready dicts (the ``parts`` list of an explanation's JSON)."""
    return [part.to_dict() for part in parts]


def find(parts: Iterable[Part], key: str) -> Part | None:
    """The first part whose ``key`` is ``key``, or None."""
    return next((part for part in parts if getattr(part, "key", None) == key), None)


# --------------------------------------------------------------------------- small helpers


def six(value: float) -> str:
    """A value to six significant digits: ``1.74118``."""
    return f"{value:.6g}"


def marks_where(mask: np.ndarray, style: str) -> tuple[tuple[str, ...], ...]:
    """Table marks: ``style`` where ``mask`` ``(rows, cols)`` is True, else empty."""
    return tuple(tuple(style if flag else "" for flag in row) for row in mask)


def span_text(first: int, last: int) -> str:
    """``3..5``: an inclusive range of rows or cols."""
    return f"{first}..{last}"


__all__ = [
    "Column",
    "Grids",
    "Heading",
    "Note",
    "Part",
    "Sentence",
    "Span",
    "Table",
    "TextTable",
    "WrittenSum",
    "find",
    "marks_where",
    "parts_to_dicts",
    "six",
    "span_text",
]
