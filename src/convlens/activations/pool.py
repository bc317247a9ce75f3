"""One number of a pooling layer: max (which input wins), average (the sum and the divisor),
adaptive average or max (which window: rows ``floor(i H / out)`` to ``ceil((i + 1) H / out)``),
global pooling (the whole map)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..explain.parts import Grids, Part, Sentence, Span, Table, WrittenSum, six
from .base import Where, grid_numbers, grid_texts
from .ops import LayerOp

MAX_TERMS = 16
"""Values a mean is written out with; longer ones end in ``... (N values)``."""


@dataclass(frozen=True, kw_only=True, eq=False)
class PoolExplanation(Where):
    """``pool`` is ``max``, ``avg``, ``adaptive avg``, ``adaptive max`` or ``global avg`` /
    ``global max``; ``rows``/``cols`` the input positions of the window (in the input map,
    padding left out), ``values`` ``(len(rows), len(cols))`` the input values there;
    ``winner`` the input ``(row, col)`` of the max; ``divisor`` what the sum is divided by;
    ``window_cells`` the cells of the whole window (more than ``values`` where it reaches into
    the padding; ``None`` for adaptive pools)."""

    pool: str
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    values: np.ndarray
    total: float
    winner: tuple[int, int] | None = None
    divisor: float | None = None
    input_shape: tuple[int, int, int] = (0, 0, 0)
    window_cells: int | None = None

    def parts(self) -> tuple[Part, ...]:
        _, h, w = self.input_shape
        size = f"{len(self.rows)}x{len(self.cols)}"
        where = (f"{self.pool} pool: the {size} window of input channel {self.channel} at rows "
                 f"{self.rows[0]}..{self.rows[-1]}, cols {self.cols[0]}..{self.cols[-1]} of "
                 f"the {h}x{w} map.")
        marks = None
        if self.winner is not None:
            marks = tuple(tuple("winner" if (r, col) == self.winner else "" for col in self.cols)
                          for r in self.rows)
        parts: list[Part] = [self.heading("pooled output"), Sentence((Span(where),), "where")]
        outside = (self.window_cells or 0) - self.values.size
        if outside > 0:
            counted = ("left out" if self.winner is not None or self.divisor == self.values.size
                       else "counted as 0 in the mean")
            parts.append(Sentence((Span(
                f"{outside} of the window's {self.window_cells} cells lie outside the map: "
                f"{counted}.", "padding"),), "padding"))
        if self.values.size <= 400:
            parts.append(Grids((Table("window", "window", grid_texts(self.values),
                                      grid_numbers(self.values), marks=marks,
                                      row_labels=self.rows, col_labels=self.cols,
                                      scale="signed"),), ("",), "window"))
        count = self.values.size
        if self.winner is not None:
            parts.append(Sentence((
                Span(f"the max of the {count} values = "),
                Span(six(self.total), "strong", "pooled", self.total),
                Span(f", won by input ({self.channel}, {self.winner[0]}, {self.winner[1]})",
                     "winner")), "max"))
        else:
            terms = [six(float(v)) for v in self.values.ravel()]
            if len(terms) > MAX_TERMS:
                terms = [*terms[:MAX_TERMS - 1], f"... ({len(terms)} values)"]
            total_sum = float(self.values.sum())
            parts.append(WrittenSum("mean", (f"({' + '.join(terms)}) / {self.divisor:g}",
                                             f"{six(total_sum)} / {self.divisor:g}",
                                             six(self.total)), self.total, key="sum"))
        parts.append(self.result("pooled output", self.total))
        parts += self.field_sentence()
        return tuple(parts)

    def to_dict(self) -> dict:
        return {**self.where_dict(), "what": "pool", "pool": self.pool, "total": self.total,
                "window": {"rows": list(self.rows), "cols": list(self.cols)},
                "values": self.values.tolist(),
                "winner": None if self.winner is None else list(self.winner),
                "divisor": self.divisor, "window_cells": self.window_cells}


def _adaptive(index: int, size: int, out: int) -> range:
    return range((index * size) // out, math.ceil((index + 1) * size / out))


def pool_explanation(where: dict, op: LayerOp, data: np.ndarray) -> PoolExplanation:
    """``data`` is the pool's input ``(C, H, W)``."""
    p = op.params
    c, y, x = where["channel"], where["y"], where["x"]
    height, width = data.shape[1:]
    divisor: float | None = None
    if op.kind in ("adaptive_avg", "adaptive_max"):
        out_h, out_w = where["shape"][1:]
        rows = list(_adaptive(y, height, out_h))
        cols = list(_adaptive(x, width, out_w))
        whole = (out_h, out_w) == (1, 1)
        kind = "avg" if op.kind == "adaptive_avg" else "max"
        pool = f"global {kind}" if whole else f"adaptive {kind}"
        window = data[c][np.ix_(rows, cols)]
        if kind == "max":
            return _max(where, pool, rows, cols, window, data.shape)
        divisor = float(window.size)
        return PoolExplanation(**where, pool=pool, rows=tuple(rows), cols=tuple(cols),
                               values=window, total=float(window.sum() / divisor),
                               divisor=divisor, input_shape=tuple(data.shape))
    (kh, kw), (sh, sw), (ph, pw) = p["kernel"], p["stride"], p["padding"]
    if op.kind == "maxpool":
        dh, dw = p["dilation"]
        rows = [r for r in range(y * sh - ph, y * sh - ph + dh * (kh - 1) + 1, dh)
                if 0 <= r < height]
        cols = [q for q in range(x * sw - pw, x * sw - pw + dw * (kw - 1) + 1, dw)
                if 0 <= q < width]
        return _max(where, "max", rows, cols, data[c][np.ix_(rows, cols)], data.shape,
                    kh * kw)
    top, left = y * sh - ph, x * sw - pw
    bottom, right = min(top + kh, height + ph), min(left + kw, width + pw)
    pool_size = (bottom - top) * (right - left)
    rows = list(range(max(top, 0), min(bottom, height)))
    cols = list(range(max(left, 0), min(right, width)))
    window = data[c][np.ix_(rows, cols)]
    if p["divisor"]:
        divisor = float(p["divisor"])
    elif p["count_include_pad"]:
        divisor = float(pool_size)
    else:
        divisor = float(len(rows) * len(cols))
    return PoolExplanation(**where, pool="avg", rows=tuple(rows), cols=tuple(cols),
                           values=window, total=float(window.sum() / divisor), divisor=divisor,
                           input_shape=tuple(data.shape), window_cells=kh * kw)


def _max(where: dict, pool: str, rows: list[int], cols: list[int], window: np.ndarray,
         shape, window_cells: int | None = None) -> PoolExplanation:
    i, j = np.unravel_index(int(np.argmax(window)), window.shape)
    return PoolExplanation(**where, pool=pool, rows=tuple(rows), cols=tuple(cols),
                           values=window, total=float(window[i, j]),
                           winner=(rows[i], cols[j]), input_shape=tuple(shape),
                           window_cells=window_cells)
