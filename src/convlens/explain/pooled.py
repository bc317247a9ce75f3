"""One pooled cell worked out by hand, and told in words; which pixels win their windows.

:func:`explain_pooled` works out one cell of the pooled stage from its window of the activated
map (its winner for max pooling, its mean for avg pooling), :func:`pooled_parts` words it;
:func:`pooled_cells_of` finds the cells a conv pixel feeds, :func:`pool_winners` every
window's winner at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, overload

import numpy as np

from ..config import LayerConfig, PoolType
from ..errors import ConfigError
from ..sizes import check_at
from .layer import activate, as_numpy, conv_block, pool_window, prepare, window_dict
from .parts import (
    Grids,
    Heading,
    Part,
    Sentence,
    Span,
    Table,
    marks_where,
    parts_to_dicts,
    six,
    span_text,
)
from .patches import tap_positions

if TYPE_CHECKING:
    import torch

MAX_WRITTEN_VALUES = 16
"""Most values a mean is written out with; longer ones end in ``... (N values)``."""


@dataclass
class PooledExplanation:
    """How one pooled cell is made from its window of the activated map.

    ``window_rows`` / ``window_cols`` are conv-map coordinates; ``conv_values`` and ``values``
    (activated, what the pool sees) are ``(p, p)``. ``winner`` is the conv position of the
    maximum (max pooling; the first in row-major order on ties, as PyTorch picks) or None.
    """

    kernel: int
    kernel_name: str
    row: int
    col: int
    conv_shape: tuple[int, int]
    pooled_shape: tuple[int, int]
    config: LayerConfig
    window_rows: list[int]
    window_cols: list[int]
    conv_values: np.ndarray
    values: np.ndarray
    value: float
    winner: tuple[int, int] | None
    mean: float | None
    receptive_field: dict[str, int]
    what: ClassVar[str] = "pooled cell"

    @property
    def pool_type(self) -> PoolType:
        return self.config.pool_type

    def parts(self) -> tuple[Part, ...]:
        """The explanation in words and grids (:func:`pooled_parts`),
        which every renderer styles."""
        return pooled_parts(self)

    def to_dict(self) -> dict:
        """JSON-ready, values at full precision; ``parts`` the explanation's words and grids
        (:mod:`convlens.explain.parts`)."""
        return {
            "what": self.what,
            "kernel_index": self.kernel,
            "kernel_name": self.kernel_name,
            "at": [self.row, self.col],
            "conv_shape": list(self.conv_shape),
            "pooled_shape": list(self.pooled_shape),
            "layer": self.config.to_dict(),
            "pool_type": self.pool_type.value,
            "window": window_dict((self.window_rows, self.window_cols)),
            "conv_values": self.conv_values.tolist(),
            "values": self.values.tolist(),
            "value": self.value,
            "winner": (None if self.winner is None else
                       {"row": self.winner[0], "col": self.winner[1], "value": self.value}),
            "mean": self.mean,
            "receptive_field": self.receptive_field,
            "parts": parts_to_dicts(self.parts()),
        }


def explain_pooled(
    image: torch.Tensor | np.ndarray,
    weights: torch.Tensor | np.ndarray,
    config: LayerConfig,
    kernel: int,
    row: int,
    col: int,
    *,
    kernel_name: str | None = None,
) -> PooledExplanation:
    """Explain pooled cell ``(row, col)`` of kernel ``kernel``: its window, values and winner.

    Shapes as in :func:`explain_pixel`. Needs a pool stage (``config.pool``); a cell outside the
    pooled map raises :class:`ConfigError` naming the valid range.
    """
    if config.pool is None:
        raise ConfigError("there is no pool stage to explain (pooling is off); set a pool size")
    data, bank, steps = prepare(image, weights, config, kernel)
    kernel_size = (int(bank.shape[2]), int(bank.shape[3]))
    pooled_shape = steps[1].outputs
    check_at("pooled cell", row, col, pooled_shape, "pooled map")
    window = pool_window(config, (row, col))
    conv = conv_block(data, bank, config, kernel, window, kernel_size)
    values = activate(config, conv)
    tap_rows, tap_cols = tap_positions(config, data.shape[1:], kernel_size, *window)
    field_ = {"top": int(tap_rows.min()), "bottom": int(tap_rows.max()),
              "left": int(tap_cols.min()), "right": int(tap_cols.max())}
    if config.pool_type is PoolType.MAX:
        first = np.unravel_index(int(np.argmax(values)), values.shape)
        winner: tuple[int, int] | None = (window[0][first[0]], window[1][first[1]])
        value, mean = float(values[first]), None
    else:
        winner, value = None, float(values.mean())
        mean = value
    return PooledExplanation(
        kernel=kernel, kernel_name=kernel_name or f"kernel {kernel}", row=row, col=col,
        conv_shape=steps[0].outputs, pooled_shape=pooled_shape, config=config,
        window_rows=window[0], window_cols=window[1], conv_values=conv, values=values,
        value=value, winner=winner, mean=mean, receptive_field=field_,
    )


@overload
def pool_winners(activated: np.ndarray, config: LayerConfig) -> np.ndarray: ...


@overload
def pool_winners(activated: torch.Tensor, config: LayerConfig) -> torch.Tensor: ...


def pool_winners(activated, config):
    """Boolean ``(K, H, W)`` mask of the activated-map pixels that win a max-pool window: an
    array for an array, a tensor for a tensor.

    Computed in NumPy the way PyTorch's ``max_pool2d`` picks its indices, so ties go where
    PyTorch sends them: each window is scanned in row-major order and a value replaces the
    winner so far when it is larger (or NaN). Pixels in no window, and losers, are False.
    """
    if config.pool is None or config.pool_type is not PoolType.MAX:
        raise ConfigError("pool winners need max pooling; this layer's pooling is "
                          f"{config.pool_type.value if config.pool else 'off'}")
    maps = as_numpy(activated)
    if maps.ndim != 3:
        raise ConfigError(f"expected activated maps (K, H, W); got shape {tuple(maps.shape)}")
    mask = winner_mask(maps, config.pool, config.effective_pool_stride or config.pool)
    if isinstance(activated, np.ndarray):
        return mask
    import torch

    return torch.from_numpy(mask)


def winner_mask(maps: np.ndarray, size: int, stride: int) -> np.ndarray:
    """The winners of every ``size x size`` window, ``stride`` apart, of ``maps``
    ``(K, H, W)`` (see :func:`pool_winners`)."""
    count, height, width = maps.shape
    rows, cols = (height - size) // stride + 1, (width - size) // stride + 1
    mask = np.zeros(maps.shape, dtype=bool)
    if rows < 1 or cols < 1:
        return mask
    best = np.empty((count, rows, cols), maps.dtype)
    where = np.zeros((count, rows, cols), np.int64)  # offset a * size + b of the winner
    for a in range(size):
        for b in range(size):
            values = maps[:, a: a + (rows - 1) * stride + 1: stride,
                          b: b + (cols - 1) * stride + 1: stride]
            if a == 0 and b == 0:
                best[:] = values
                continue
            wins = (values > best) | np.isnan(values)
            best[wins] = values[wins]
            where[wins] = a * size + b
    k, r, c = np.indices((count, rows, cols))
    mask[k, r * stride + where // size, c * stride + where % size] = True
    return mask


def pooled_cells_of(
    config: LayerConfig, pooled_shape: tuple[int, int], row: int, col: int
) -> list[tuple[int, int]]:
    """Pooled cells whose window holds conv pixel ``(row, col)``, in row-major order.

    None when the pixel falls between windows (pool stride > size) or in the rows/cols the
    floor division drops; several when windows overlap (pool stride < size).
    """
    if config.pool is None:
        return []
    size, stride = config.pool, config.effective_pool_stride or config.pool

    def cells(index: int, limit: int) -> range:
        first = max(0, -(-(index - size + 1) // stride))
        return range(first, min(index // stride, limit - 1) + 1)

    return [(r, c) for r in cells(row, pooled_shape[0]) for c in cells(col, pooled_shape[1])]


# --------------------------------------------------------------------------- in words


def pooled_parts(e: PooledExplanation) -> tuple[Part, ...]:
    """The words of one pooled cell's explanation (see
    :func:`convlens.explain.explain_pooled`): its window in the conv map and the input, the
    window's conv and activated values, and the max with its winner or the mean."""
    c = e.config
    stride = c.effective_pool_stride
    field = e.receptive_field
    size = f"{len(e.window_rows)}x{len(e.window_cols)}"
    where = (f"pooled cell ({e.row}, {e.col}) of {e.kernel_name} in the {e.pooled_shape[0]}x"
             f"{e.pooled_shape[1]} pooled map (height x width): {c.pool_type.value} pool "
             f"{size}, stride "
             f"{stride}: window = conv rows {span_text(e.window_rows[0], e.window_rows[-1])}, "
             f"cols {span_text(e.window_cols[0], e.window_cols[-1])} (row {e.row} × stride "
             f"{stride}); input rows {span_text(field['top'], field['bottom'])}, cols "
             f"{span_text(field['left'], field['right'])}.")
    rows, cols = tuple(e.window_rows), tuple(e.window_cols)
    winner = np.zeros(e.values.shape, dtype=bool)
    if e.winner is not None:
        winner[e.window_rows.index(e.winner[0]), e.window_cols.index(e.winner[1])] = True
    marks = marks_where(winner, "winner") if e.winner is not None else None
    grids = Grids((
        Table.of("conv_values", "conv values", e.conv_values, six, row_labels=rows,
                 col_labels=cols, scale="signed"),
        Table.of("values", f"after {c.activation.value}", e.values, six, marks=marks,
                 row_labels=rows, col_labels=cols),
        Table("pooled", "pooled", ((six(e.value),),), ((e.value,),)),
    ), ("", "→", "→"), "window")
    count = e.values.size
    if e.winner is not None:
        result = Sentence((
            Span(f"the pool keeps the max of the {count} values: max = "),
            Span(six(e.value), "strong", "pooled", e.value),
            Span(f", won by conv pixel ({e.winner[0]}, {e.winner[1]})", "winner"),
            Span(f"; the other {count - 1} values are dropped"),
        ), "max")
    else:
        terms = [six(v) for v in e.values.ravel()]
        if len(terms) > MAX_WRITTEN_VALUES:
            terms = [*terms[:MAX_WRITTEN_VALUES - 1], f"... ({len(terms)} values)"]
        result = Sentence((
            Span(f"mean of {count} values = "), Span(six(e.value), "strong", "pooled", e.value),
            Span(f", that is ({' + '.join(terms)}) / {count}"),
        ), "mean")
    return (Heading(f"{e.kernel_name}: pooled cell ({e.row}, {e.col})"),
            Sentence((Span(where),), "where"), grids, result)


__all__ = ["PooledExplanation", "explain_pooled", "pool_winners", "pooled_cells_of",
           "pooled_parts"]
