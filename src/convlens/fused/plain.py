"""The NumPy backend of conv -> activation -> pool, for small work: no torch, no numba.

A valid cross-correlation is a sum of shifted copies of the input: for every tap ``(c, i, j)``
of a kernel, the padded input's channel ``c`` seen from row ``i * dilation`` and column
``j * dilation`` on, every ``stride``-th cell, times the tap's weight. :func:`run_layer` adds
those copies up with NumPy ufuncs writing into the output (no im2col, no temporary the size of a
stage), a block of output rows at a time so the block stays in cache while its taps are added,
its activation taken and the pooled rows it completes are pooled. Taps of weight 0 are skipped
and taps of weight +-1 are added or subtracted without a multiply (the tutorial's Sobel and
Laplacian kernels have 7 and 5 non-zero taps, all but two of them +-1 or +-2).

It shares the padding, the output allocation and the checks of :mod:`convlens.fused` (the numba
kernel's module), whose :func:`~convlens.fused.supports` it accepts: the dispatcher
(:func:`convlens.layers.run_layer`) picks it where the work is too small to pay for importing
and loading numba (about a second) or torch (about two). ``ufunc``s let go of the GIL, so blocks
of rows run on plain Python threads. Numbers equal the reference's
(:class:`~convlens.reference.FixedConvLayer`) up to float32 summation order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..config import LEAKY_SLOPE, Activation, LayerConfig, PoolType
from ..errors import ConfigError
from ..limits import MAX_KERNEL_SIDE
from ..sizes import resolve_padding
from ..stages import StageMaps
from . import (
    _padded,
    bias_values,
    default_threads,
    layer_shapes,
    outputs,
    plain_inputs,
    run_on_threads,
)

BLOCK_VALUES = 32_768
"""Output values (128 KiB of float32) per block of rows: the block and the shifted input rows
it reads stay in the L2 cache while all its taps are added."""

SMALL_WORK = 2_000_000
"""Below this many multiply-adds one thread does it all: handing work over costs more."""

"""The helper threads, their number, and the process they belong to (a forked child makes its
own)."""


def supports(batch: Any, weights: Any, config: LayerConfig) -> bool:
    """Whether :func:`run_layer` takes this case: float32 ``(N, C, H, W)`` and matching
    ``(K, C, kh, kw)`` NumPy arrays (or CPU tensors without gradients), kernels up to
    :data:`~convlens.limits.MAX_KERNEL_SIDE` a side; every padding, stride, dilation, bias,
    activation and pool."""
    return plain_inputs(batch, weights) and max(weights.shape[2:]) <= MAX_KERNEL_SIDE


def run_layer(batch: np.ndarray, weights: np.ndarray, config: LayerConfig,
              threads: int | None = None) -> StageMaps:
    """Stages of ``batch`` ``(N, C, H, W)`` for ``weights`` ``(K, C, kh, kw)``, float32 arrays.

    Returns :class:`~convlens.stages.StageMaps` ``(conv, activated, pooled)``, each
    ``(N, K, H', W')`` float32; ``activated`` is ``conv`` itself for the activation ``none``
    and ``pooled`` ``activated`` itself without pooling, as in the reference. ``threads``
    defaults to :func:`~convlens.fused.default_threads` (one for small work).
    """
    if not (isinstance(batch, np.ndarray) and isinstance(weights, np.ndarray)
            and supports(batch, weights, config)):
        raise ConfigError(
            "the NumPy path takes a float32 (N, C, H, W) array and matching (K, C, kh, kw) "
            f"weights up to {MAX_KERNEL_SIDE} a side; got {tuple(batch.shape)} {batch.dtype} "
            f"and {tuple(weights.shape)} {weights.dtype}")
    n_images, _, height, width = batch.shape
    n_kernels, _, kh, kw = weights.shape
    conv_shape, pooled_shape = layer_shapes(batch.shape, weights.shape, config)
    bias = bias_values(config, n_kernels)
    activate = config.activation is not Activation.NONE
    pooling = config.pool is not None
    maps = outputs(None, conv_shape, pooled_shape, activate, pooling)
    x = _padded(batch, resolve_padding(config, height, width, (kh, kw)), config.padding_mode)
    layer = _Layer(x, weights, bias, config, maps)

    conv_h, conv_w = conv_shape[2:]
    work = int(np.count_nonzero(weights)) * conv_h * conv_w * n_images
    threads = max(1, threads or default_threads())
    if work < SMALL_WORK:
        threads = 1
    # pieces of rows that pool on their own: whole pooled rows where windows do not overlap
    pool_step = (config.effective_pool_stride or 1) if pooling else 1
    overlapping = pooling and (config.pool or 1) > pool_step
    unit = 1 if overlapping or not pooling else pool_step
    units = conv_h // unit if pooling and not overlapping else conv_h
    pieces = max(1, min(units, 4 * threads)) if threads > 1 else 1
    tasks = [(image, units * p // pieces * unit,
              conv_h if p == pieces - 1 else units * (p + 1) // pieces * unit)
             for image in range(n_images) for p in range(pieces)]
    run_on_threads(tasks, lambda task: layer.rows(task[0], task[1], task[2], not overlapping),
                   threads)
    if overlapping:
        pooled_h = pooled_shape[2]
        parts = max(1, min(pooled_h, 4 * threads)) if threads > 1 else 1
        tasks = [(image, pooled_h * p // parts, pooled_h * (p + 1) // parts)
                 for image in range(n_images) for p in range(parts)]
        run_on_threads(tasks, lambda task: layer.pool_rows(task[0], task[1], task[2]), threads)
    return maps


class _Layer:
    """One layer run's inputs and outputs, filled a block of rows at a time."""

    def __init__(self, x: np.ndarray, weights: np.ndarray, bias: np.ndarray,
                 config: LayerConfig, maps: StageMaps) -> None:
        self.x = x
        self.config = config
        self.maps = maps
        self.bias = bias
        d = config.dilation
        # each kernel's non-zero taps: (channel, row offset, column offset, weight)
        self.taps = [
            [(int(c), int(i) * d, int(j) * d, np.float32(w[c, i, j]))
             for c, i, j in zip(*np.nonzero(w))]
            for w in weights
        ]
        conv_w = maps.conv.shape[3]
        self.block = max(1, BLOCK_VALUES // max(conv_w, 1))
        self.activate = _ACTIVATIONS[config.activation]

    def rows(self, image: int, start: int, stop: int, pool_now: bool) -> None:
        """Conv and activated rows ``start:stop`` of ``image`` for every kernel, and (with
        ``pool_now``) the pooled rows whose windows lie in them."""
        conv_w = self.maps.conv.shape[3]
        scratch = np.empty((self.block, conv_w), np.float32)
        for top in range(start, stop, self.block):
            bottom = min(stop, top + self.block)
            for k, taps in enumerate(self.taps):
                conv = self.maps.conv[image, k, top:bottom]
                self._correlate(conv, self.x[image], taps, top, scratch[:bottom - top])
                if self.bias[k]:
                    conv += self.bias[k]
                if self.maps.activated is not self.maps.conv:
                    self.activate(conv, self.maps.activated[image, k, top:bottom])
        if pool_now and self.config.pool is not None and stop >= self.config.pool:
            # the pooled rows whose windows lie in these rows (``start`` is a whole number of
            # pool strides, windows no taller than the stride)
            step = self.config.effective_pool_stride or 1
            last = (stop - self.config.pool) // step + 1
            self.pool_rows(image, start // step, min(last, self.maps.pooled.shape[2]))

    def _correlate(self, out: np.ndarray, x: np.ndarray, taps: list, top: int,
                   scratch: np.ndarray) -> None:
        """``out`` = conv rows from ``top`` on: the sum of the shifted, weighted input."""
        s = self.config.stride
        rows, cols = out.shape
        if not taps:
            out.fill(0.0)
            return
        for n, (c, di, dj, w) in enumerate(taps):
            r0 = top * s + di
            part = x[c, r0:r0 + (rows - 1) * s + 1:s, dj:dj + (cols - 1) * s + 1:s]
            if n == 0:
                if w == 1:
                    np.copyto(out, part)
                elif w == -1:
                    np.negative(part, out=out)
                else:
                    np.multiply(part, w, out=out)
            elif w == 1:
                np.add(out, part, out=out)
            elif w == -1:
                np.subtract(out, part, out=out)
            else:
                np.multiply(part, w, out=scratch)
                np.add(out, scratch, out=out)

    def pool_rows(self, image: int, start: int, stop: int) -> None:
        """Pooled rows ``start:stop`` of ``image`` for every kernel, from the activated maps:
        the maximum or mean of each ``pool x pool`` window, ``pool_stride`` apart."""
        if stop <= start:
            return
        pool = self.config.pool or 1
        step = self.config.effective_pool_stride or 1
        is_max = self.config.pool_type is PoolType.MAX
        pooled = self.maps.pooled[image, :, start:stop]
        rows, cols = pooled.shape[1:]
        activated = self.maps.activated[image]
        for a in range(pool):
            for b in range(pool):
                r0 = start * step + a
                part = activated[:, r0:r0 + (rows - 1) * step + 1:step,
                                 b:b + (cols - 1) * step + 1:step]
                if a == 0 and b == 0:
                    np.copyto(pooled, part)
                elif is_max:
                    np.maximum(pooled, part, out=pooled)
                else:
                    np.add(pooled, part, out=pooled)
        if not is_max:
            pooled *= np.float32(1.0 / (pool * pool))


def _relu(conv: np.ndarray, out: np.ndarray) -> None:
    np.maximum(conv, np.float32(0.0), out=out)


def _leaky_relu(conv: np.ndarray, out: np.ndarray) -> None:
    # x for x > 0, slope * x below: max(x, slope * x) for a slope between 0 and 1
    np.multiply(conv, np.float32(LEAKY_SLOPE), out=out)
    np.maximum(out, conv, out=out)


def _tanh(conv: np.ndarray, out: np.ndarray) -> None:
    np.tanh(conv, out=out)


def _sigmoid(conv: np.ndarray, out: np.ndarray) -> None:
    with np.errstate(over="ignore"):  # exp(-x) -> inf for very negative x gives 0, as torch's
        np.negative(conv, out=out)
        np.exp(out, out=out)
        out += np.float32(1.0)
        np.reciprocal(out, out=out)


def _abs(conv: np.ndarray, out: np.ndarray) -> None:
    np.abs(conv, out=out)


def _none(conv: np.ndarray, out: np.ndarray) -> None:
    np.copyto(out, conv)


_ACTIVATIONS: dict[Activation, Callable[[np.ndarray, np.ndarray], None]] = {
    Activation.RELU: _relu,
    Activation.LEAKY_RELU: _leaky_relu,
    Activation.TANH: _tanh,
    Activation.SIGMOID: _sigmoid,
    Activation.ABS: _abs,
    Activation.NONE: _none,
}
"""Each activation written from a block of conv rows into the activated rows."""




__all__ = ["BLOCK_VALUES", "SMALL_WORK", "run_layer", "supports"]
