"""Single-pass CPU path for conv -> activation -> pool, giving the numbers of the reference.

Every stage of the layer is memory-bound on a CPU: a 3x3 kernel does 9 multiply-adds per output
value, but the value still has to be written to memory, and twice more for the activated and
pooled copies. The fastest way to keep all three stages is one pass over the input that writes
each stage exactly once while the row it came from is still in cache. :func:`run_layer` does
that with a numba kernel run on blocks of output rows (and images of a batch) by several threads:

* the input is padded first with :func:`~convlens.layers.pad_input` (every padding mode, the
  asymmetric 'same' padding), so the kernel only ever does a *valid* cross-correlation;
* a block computes each conv row for every kernel into an accumulator (a tile of columns that
  stays in cache; up to nine kernel taps per vectorised sweep over it, two kernels sharing each
  load of the image), writes the conv and activated rows, and pools a pooled row as soon as
  the rows of its window are done, while they are still in cache;
* a pool window that reaches into the next block's rows (pool size larger than pool stride)
  recomputes those few rows into a scratch buffer instead of waiting for another thread;
* the kernel releases the GIL and plain Python threads run it, each taking the next chunk of
  blocks when free (no numba threading layer: its OpenMP one clashes with torch's, and a thread
  slowed by another program does not hold the rest up).

Nothing the size of a stage is allocated besides the three outputs themselves (no im2col), so an
8000x6000 photo with 16 kernels needs only its stages' memory. Outputs are allocated with NumPy,
which asks Linux for transparent huge pages: first-touching fresh memory in 4 KiB pages costs
more than the convolution itself on virtual machines.

The compiled kernel is cached on disk (``cache=True``, in ``__pycache__`` or numba's user cache
folder): only the very first call after installing pays numba's compilation (5-10 s); later
processes load it in about 0.3 s. All arguments have one fixed type signature, so there is
exactly one compiled version. Stores to memory are plain ones: non-temporal stores were tried
and only paid off on some workloads.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

from .errors import ConfigError
from .kernels import MAX_KERNEL_SIDE
from .layers import (
    LEAKY_SLOPE,
    Activation,
    LayerConfig,
    PoolType,
    StageOutputs,
    check_fits,
    pad_input,
    resolve_padding,
)

_ACTIVATION_CODES = {
    Activation.NONE: 0,
    Activation.RELU: 1,
    Activation.LEAKY_RELU: 2,
    Activation.TANH: 3,
    Activation.SIGMOID: 4,
    Activation.ABS: 5,
}

_TILE = 8192
"""Columns accumulated at a time (32 KiB of float32, in L1 or L2): a whole row of most images,
since each sweep over a tile has a fixed cost that shorter tiles pay more often."""

_CHUNKS_PER_THREAD = 8
"""Pieces of work per thread, taken in turn by whichever thread is free, so a thread slowed by
other processes on the machine does not hold the others up."""

_SMALL_WORK = 200_000
"""Below this many multiply-adds one thread does it all: handing work over costs more."""

_POOL_LOCK = threading.Lock()
_POOL: tuple[ThreadPoolExecutor, int, int] | None = None
"""The helper threads, their number, and the process they belong to (a forked child, such as a
data-loader worker, has none of its parent's threads and makes its own pool)."""

MAX_POOL_OVERLAP = 64
"""Pool size minus pool stride above which the rows recomputed at block edges stop paying."""


def is_loaded() -> bool:
    """Whether the kernel is compiled or loaded from the disk cache in this process already."""
    return bool(_fused_tasks.signatures)


def supports(batch: torch.Tensor, weights: torch.Tensor, config: LayerConfig) -> bool:
    """Whether :func:`run_layer` handles this case (else the torch reference runs).

    The fused path takes a float32 ``(N, C, H, W)`` batch on the CPU with matching float32
    ``(K, C, kh, kw)`` weights up to 31 a side, and pools whose windows overlap by at most
    :data:`MAX_POOL_OVERLAP` rows. Gradients are not tracked.
    """
    if batch.ndim != 4 or weights.ndim != 4 or batch.shape[1] != weights.shape[1]:
        return False
    if batch.device.type != "cpu" or weights.device.type != "cpu":
        return False
    if batch.dtype != torch.float32 or weights.dtype != torch.float32:
        return False
    if batch.requires_grad or weights.requires_grad:
        return False
    if max(weights.shape[2:]) > MAX_KERNEL_SIDE or min(batch.shape) == 0 or not len(weights):
        return False
    overlap = 0 if config.pool is None else config.pool - (config.effective_pool_stride or 1)
    return overlap <= MAX_POOL_OVERLAP


def run_layer(
    batch: torch.Tensor,
    weights: torch.Tensor,
    config: LayerConfig,
    out: StageOutputs | None = None,
    threads: int | None = None,
) -> StageOutputs:
    """Stages of ``batch`` ``(N, C, H, W)`` for ``weights`` ``(K, C, kh, kw)``, one pass.

    Returns :class:`~convlens.layers.StageOutputs` ``(conv, activated, pooled)``, each
    ``(N, K, H', W')`` float32 on the CPU, equal to :class:`~convlens.layers.FixedConvLayer`'s up
    to float32 summation order. As in the reference, ``activated`` is ``conv`` itself for the
    activation ``none`` and ``pooled`` is ``activated`` itself without pooling.

    ``out`` reuses the tensors of an earlier call of the same shapes (a loop over images or a
    benchmark): writing into memory already touched is about twice as fast as into fresh pages.
    ``threads`` defaults to ``torch.get_num_threads()``.
    """
    if not supports(batch, weights, config):
        raise ConfigError(
            "the fused path takes a float32 (N, C, H, W) CPU batch and matching (K, C, kh, kw) "
            f"weights up to {MAX_KERNEL_SIDE} a side; got {tuple(batch.shape)} {batch.dtype} and "
            f"{tuple(weights.shape)} {weights.dtype}"
        )
    n_images, _, height, width = batch.shape
    n_kernels, _, kh, kw = weights.shape
    kernel_size = (kh, kw)
    sizes = check_fits(config, height, width, kernel_size)
    conv_h, conv_w = sizes[0].outputs
    pooling = config.pool is not None
    pool = config.pool if pooling else 1
    pool_stride = config.effective_pool_stride if pooling else 1
    pooled_h, pooled_w = sizes[1].outputs if pooling else (conv_h, conv_w)

    pads = resolve_padding(config, height, width, kernel_size)
    with torch.no_grad():
        padded = pad_input(batch, pads, config.padding_mode)
    x = padded.detach().contiguous().numpy()
    w = weights.detach().contiguous().numpy()
    bias = np.zeros(n_kernels, np.float32)
    if config.bias is not None:
        if len(config.bias) != n_kernels:
            raise ConfigError(
                f"bias needs one value per kernel ({n_kernels}); got {len(config.bias)}"
            )
        bias[:] = config.bias

    conv_shape = (n_images, n_kernels, conv_h, conv_w)
    pooled_shape = (n_images, n_kernels, pooled_h, pooled_w)
    activate = config.activation is not Activation.NONE
    conv, activated, pooled = _outputs(out, conv_shape, pooled_shape, activate, pooling)

    rows, cols, taps = _taps(w, x.shape[2], config.dilation)
    threads = max(1, threads or torch.get_num_threads())
    if conv.numel() * taps.shape[1] < _SMALL_WORK:
        threads = 1
    blocks = _blocks_per_image(n_images, pooled_h, pool, pool_stride, threads)
    arguments = (
        x.reshape(n_images, -1, x.shape[3]), rows, cols, taps, bias, config.stride,
        _ACTIVATION_CODES[config.activation], np.float32(LEAKY_SLOPE), pool, pool_stride,
        pooling, config.pool_type is PoolType.MAX, blocks, _TILE,
        conv.numpy(), activated.numpy(), pooled.numpy(),
    )
    _run_tasks(arguments, n_images * blocks, threads)
    return StageOutputs(conv, activated, pooled)


def _run_tasks(arguments: tuple, n_tasks: int, threads: int) -> None:
    """Run tasks ``0 .. n_tasks-1`` of :func:`_fused_tasks` on ``threads`` threads.

    The kernel releases the GIL, so plain Python threads run it in parallel; each takes the
    next chunk of tasks when it is free.
    """
    if threads == 1 or n_tasks == 1:
        _fused_tasks(*arguments, 0, n_tasks)
        return
    n_chunks = min(n_tasks, _CHUNKS_PER_THREAD * threads)
    bounds = [n_tasks * i // n_chunks for i in range(n_chunks + 1)]
    chunks = iter(range(n_chunks))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                chunk = next(chunks, None)
            if chunk is None:
                return
            _fused_tasks(*arguments, bounds[chunk], bounds[chunk + 1])

    pool = _thread_pool(threads - 1)
    helpers = [pool.submit(worker) for _ in range(threads - 1)]
    worker()
    for helper in helpers:
        helper.result()


def _thread_pool(size: int) -> ThreadPoolExecutor:
    """A process-wide pool of helper threads (the calling thread works too), grown on demand."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[1] < size or _POOL[2] != os.getpid():
            if _POOL is not None and _POOL[2] == os.getpid():
                _POOL[0].shutdown(wait=False)
            pool = ThreadPoolExecutor(size, thread_name_prefix="convlens-fused")
            _POOL = pool, size, os.getpid()
        return _POOL[0]


def _outputs(
    out: StageOutputs | None,
    conv_shape: tuple[int, ...],
    pooled_shape: tuple[int, ...],
    activate: bool,
    pooling: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three output tensors: ``out``'s when given and fitting, else fresh ones.

    Without an activation the activated stage *is* the conv stage, and without pooling the
    pooled stage *is* the activated one, as in the reference layer.
    """
    if out is not None:
        conv, activated, pooled = out
        expected = (conv_shape, conv_shape, pooled_shape)
        for name, tensor, shape in zip(StageOutputs._fields, out, expected):
            if (tuple(tensor.shape) != shape or tensor.dtype != torch.float32
                    or tensor.device.type != "cpu" or not tensor.is_contiguous()):
                raise ConfigError(
                    f"out.{name} must be a contiguous float32 CPU tensor of shape {shape}; got "
                    f"{tuple(tensor.shape)} {tensor.dtype}"
                )
        if (activate and conv.data_ptr() == activated.data_ptr()) or (
                pooling and pooled.data_ptr() in (conv.data_ptr(), activated.data_ptr())):
            raise ConfigError("out's conv, activated and pooled tensors must be separate")
    else:
        conv = torch.from_numpy(np.empty(conv_shape, np.float32))
        activated = torch.from_numpy(np.empty(conv_shape, np.float32)) if activate else conv
        pooled = torch.from_numpy(np.empty(pooled_shape, np.float32)) if pooling else activated
    if not activate:
        activated = conv
    if not pooling:
        pooled = activated
    return conv, activated, pooled


def _taps(weights: np.ndarray, padded_h: int, dilation: int):
    """The kernels' taps, flattened in ``(c, i, j)`` order: the row offset into the padded
    image seen as ``(C * Hp, Wp)`` rows and the column offset ``(C * kh * kw,)``, shared by all
    kernels, and each kernel's weights ``(K, C * kh * kw)``."""
    n_kernels, channels, kh, kw = weights.shape
    c, i, j = np.meshgrid(np.arange(channels), np.arange(kh), np.arange(kw), indexing="ij")
    rows = (c * padded_h + i * dilation).ravel().astype(np.int64)
    cols = (j * dilation).ravel().astype(np.int64)
    return rows, cols, np.ascontiguousarray(weights.reshape(n_kernels, -1), np.float32)


def _blocks_per_image(
    n_images: int, pooled_h: int, pool: int, pool_stride: int, threads: int
) -> int:
    """How many row blocks to cut each image into: enough blocks for every thread to stay busy,
    but blocks tall enough that the rows recomputed at their edges (overlapping pool windows)
    stay a small share of the work."""
    if threads == 1:
        return 1
    wanted = math.ceil(_CHUNKS_PER_THREAD * threads / n_images)
    overlap = max(pool - pool_stride, 0)
    min_rows = max(8, 4 * overlap)
    most = max(1, (pooled_h * pool_stride) // min_rows)
    return int(max(1, min(wanted, most, pooled_h)))


@numba.njit(cache=True, fastmath={"contract"})
def _conv_rows(image, rows, cols, weights, bias, k, pair, top, stride, activation, slope,
               conv0, act0, conv1, act1, acc):
    """One output row of kernel ``k``, and of kernel ``k + 1`` too when ``pair``: the conv into
    ``conv0`` (``conv1``), its activation into ``act0`` (``act1``).

    ``image`` is one padded image as rows ``(C * Hp, Wp)``; tap ``t`` multiplies
    ``weights[k, t]`` with image row ``top + rows[t]`` from column ``cols[t]`` on. Columns are
    done a tile (``acc``, ``(2, tile)``) at a time; the taps are taken nine, then three, then one
    per sweep over the tile, so an accumulator is loaded and stored once per group (once for a
    3x3 kernel), the inner loop is a vectorised multiply-add over columns, and the two kernels
    of a pair share each load of the image.
    """
    taps = rows.shape[0]
    width = conv0.shape[0]
    w0 = weights[k]
    w1 = weights[k + 1] if pair else w0
    b0 = bias[k]
    b1 = bias[k + 1] if pair else b0
    for start in range(0, width, acc.shape[1]):
        count = min(acc.shape[1], width - start)
        s0 = acc[0, :count]
        s1 = acc[1, :count]
        first = start * stride
        g = 0
        while g < taps:
            init = g == 0
            if stride == 1 and taps - g >= 9:
                if pair:
                    _taps9x2(s0, s1, image, rows, cols, w0, w1, g, top, first, count, init, b0, b1)
                else:
                    _taps9(s0, image, rows, cols, w0, g, top, first, count, init, b0)
                g += 9
            elif stride == 1 and taps - g >= 3:
                _taps3(s0, image, rows, cols, w0, g, top, first, count, init, b0)
                if pair:
                    _taps3(s1, image, rows, cols, w1, g, top, first, count, init, b1)
                g += 3
            else:
                row, col = top + rows[g], first + cols[g]
                _tap1(s0, image, row, col, w0[g], count, stride, init, b0)
                if pair:
                    _tap1(s1, image, row, col, w1[g], count, stride, init, b1)
                g += 1
        _finish(s0, conv0[start:start + count], act0[start:start + count], activation, slope)
        if pair:
            _finish(s1, conv1[start:start + count], act1[start:start + count], activation, slope)


@numba.njit(cache=True)
def _finish(sums, conv_out, act_out, activation, slope):
    """Write the conv values and their activation (codes as in ``_ACTIVATION_CODES``)."""
    count = sums.shape[0]
    for t in range(count):
        conv_out[t] = sums[t]
    if activation == 1:
        for t in range(count):
            value = sums[t]
            act_out[t] = np.float32(0) if value < 0 else value
    elif activation == 2:
        for t in range(count):
            value = sums[t]
            act_out[t] = value * slope if value < 0 else value
    elif activation == 3:
        for t in range(count):
            act_out[t] = math.tanh(sums[t])
    elif activation == 4:
        for t in range(count):
            act_out[t] = np.float32(1) / (np.float32(1) + math.exp(-sums[t]))
    elif activation == 5:
        for t in range(count):
            act_out[t] = abs(sums[t])


@numba.njit(cache=True, fastmath={"contract"})
def _tap1(sums, image, row, col, weight, count, stride, init, bias):
    """``sums += weight * image[row, col::stride]`` (or ``=`` ``bias + ...`` when ``init``)."""
    src = image[row, col:col + (count - 1) * stride + 1]
    if init:
        for t in range(count):
            sums[t] = bias + weight * src[t * stride]
    elif stride == 1:
        for t in range(count):
            sums[t] += weight * src[t]
    else:
        for t in range(count):
            sums[t] += weight * src[t * stride]


@numba.njit(cache=True, fastmath={"contract"})
def _taps3(sums, image, rows, cols, weights, g, top, first, count, init, bias):
    """Taps ``g .. g+2`` added to ``sums`` in one sweep (stride 1)."""
    a = image[top + rows[g], first + cols[g]:first + cols[g] + count]
    b = image[top + rows[g + 1], first + cols[g + 1]:first + cols[g + 1] + count]
    c = image[top + rows[g + 2], first + cols[g + 2]:first + cols[g + 2] + count]
    wa, wb, wc = weights[g], weights[g + 1], weights[g + 2]
    if init:
        for t in range(count):
            sums[t] = bias + wa * a[t] + wb * b[t] + wc * c[t]
    else:
        for t in range(count):
            sums[t] += wa * a[t] + wb * b[t] + wc * c[t]


@numba.njit(cache=True, fastmath={"contract"})
def _taps9(sums, image, rows, cols, weights, g, top, first, count, init, bias):
    """Taps ``g .. g+8`` added to ``sums`` in one sweep (stride 1): a whole 3x3 kernel."""
    a = image[top + rows[g], first + cols[g]:first + cols[g] + count]
    b = image[top + rows[g + 1], first + cols[g + 1]:first + cols[g + 1] + count]
    c = image[top + rows[g + 2], first + cols[g + 2]:first + cols[g + 2] + count]
    d = image[top + rows[g + 3], first + cols[g + 3]:first + cols[g + 3] + count]
    e = image[top + rows[g + 4], first + cols[g + 4]:first + cols[g + 4] + count]
    f = image[top + rows[g + 5], first + cols[g + 5]:first + cols[g + 5] + count]
    h = image[top + rows[g + 6], first + cols[g + 6]:first + cols[g + 6] + count]
    i = image[top + rows[g + 7], first + cols[g + 7]:first + cols[g + 7] + count]
    j = image[top + rows[g + 8], first + cols[g + 8]:first + cols[g + 8] + count]
    wa, wb, wc = weights[g], weights[g + 1], weights[g + 2]
    wd, we, wf = weights[g + 3], weights[g + 4], weights[g + 5]
    wh, wi, wj = weights[g + 6], weights[g + 7], weights[g + 8]
    if init:
        for t in range(count):
            sums[t] = ((bias + wa * a[t] + wb * b[t] + wc * c[t])
                       + (wd * d[t] + we * e[t] + wf * f[t])
                       + (wh * h[t] + wi * i[t] + wj * j[t]))
    else:
        for t in range(count):
            sums[t] = ((sums[t] + wa * a[t] + wb * b[t] + wc * c[t])
                       + (wd * d[t] + we * e[t] + wf * f[t])
                       + (wh * h[t] + wi * i[t] + wj * j[t]))


@numba.njit(cache=True, fastmath={"contract"})
def _taps9x2(s0, s1, image, rows, cols, w0, w1, g, top, first, count, init, b0, b1):
    """:func:`_taps9` for two kernels at once (weights ``w0``, ``w1``; sums ``s0``, ``s1``):
    each image value is loaded once for both, so the sweep runs at the multiply-add rate."""
    a = image[top + rows[g], first + cols[g]:first + cols[g] + count]
    b = image[top + rows[g + 1], first + cols[g + 1]:first + cols[g + 1] + count]
    c = image[top + rows[g + 2], first + cols[g + 2]:first + cols[g + 2] + count]
    d = image[top + rows[g + 3], first + cols[g + 3]:first + cols[g + 3] + count]
    e = image[top + rows[g + 4], first + cols[g + 4]:first + cols[g + 4] + count]
    f = image[top + rows[g + 5], first + cols[g + 5]:first + cols[g + 5] + count]
    h = image[top + rows[g + 6], first + cols[g + 6]:first + cols[g + 6] + count]
    i = image[top + rows[g + 7], first + cols[g + 7]:first + cols[g + 7] + count]
    j = image[top + rows[g + 8], first + cols[g + 8]:first + cols[g + 8] + count]
    pa, pb, pc = w0[g], w0[g + 1], w0[g + 2]
    pd, pe, pf = w0[g + 3], w0[g + 4], w0[g + 5]
    ph, pi, pj = w0[g + 6], w0[g + 7], w0[g + 8]
    qa, qb, qc = w1[g], w1[g + 1], w1[g + 2]
    qd, qe, qf = w1[g + 3], w1[g + 4], w1[g + 5]
    qh, qi, qj = w1[g + 6], w1[g + 7], w1[g + 8]
    for t in range(count):
        va, vb, vc, vd, ve = a[t], b[t], c[t], d[t], e[t]
        vf, vh, vi, vj = f[t], h[t], i[t], j[t]
        first0 = b0 if init else s0[t]
        first1 = b1 if init else s1[t]
        s0[t] = ((first0 + pa * va + pb * vb + pc * vc) + (pd * vd + pe * ve + pf * vf)
                 + (ph * vh + pi * vi + pj * vj))
        s1[t] = ((first1 + qa * va + qb * vb + qc * vc) + (qd * vd + qe * ve + qf * vf)
                 + (qh * vh + qi * vi + qj * vj))


@numba.njit(cache=True)
def _pool_row(head, tail, pool, pool_stride, is_max, out_row, line):
    """One pooled row from the ``pool`` activated rows of its window: the rows of ``head`` then
    those of ``tail`` (rows recomputed past the end of the block; usually none).

    The common 2x2 window with stride 2 is one pass over the two rows. Otherwise the rows are
    first reduced column by column into ``line`` (contiguous, vectorised), then each output
    takes the ``pool`` columns of its window from ``line``.
    """
    width = out_row.shape[0]
    split = head.shape[0]
    if pool == 2 and pool_stride == 2:
        upper = head[0] if split > 0 else tail[0]
        lower = head[1] if split > 1 else tail[1 - split]
        if is_max:
            for q in range(width):
                a, b = upper[2 * q], upper[2 * q + 1]
                c, d = lower[2 * q], lower[2 * q + 1]
                out_row[q] = _max(_max(a, b), _max(c, d))
        else:
            for q in range(width):
                out_row[q] = np.float32(0.25) * (
                    (upper[2 * q] + upper[2 * q + 1]) + (lower[2 * q] + lower[2 * q + 1]))
        return
    span = (width - 1) * pool_stride + pool
    for r in range(pool):
        row = head[r] if r < split else tail[r - split]
        if r == 0:
            for t in range(span):
                line[t] = row[t]
        elif is_max:
            for t in range(span):
                value = row[t]
                line[t] = _max(value, line[t])
        else:
            for t in range(span):
                line[t] += row[t]
    for j in range(pool):
        if j == 0:
            for q in range(width):
                out_row[q] = line[q * pool_stride]
        elif is_max:
            for q in range(width):
                value = line[q * pool_stride + j]
                out_row[q] = _max(value, out_row[q])
        else:
            for q in range(width):
                out_row[q] += line[q * pool_stride + j]
    if not is_max:
        scale = np.float32(1.0 / (pool * pool))
        for q in range(width):
            out_row[q] *= scale


@numba.njit(cache=True)
def _max(a, b):
    """The larger of ``a`` and ``b``, NaN if either is NaN (as torch's max pool)."""
    return a if a > b or a != a else b


@numba.njit(cache=True, nogil=True)
def _fused_tasks(x, rows, cols, weights, bias, stride, activation, slope, pool, pool_stride,
                 pooling, is_max, blocks, tile, conv, activated, pooled, task_start, task_end):
    """Fill ``conv``, ``activated`` and ``pooled`` ``(N, K, H', W')`` from padded ``x``
    ``(N, C * Hp, Wp)``, the taps' ``rows`` and ``cols`` ``(taps,)`` and ``weights``
    ``(K, taps)``, for tasks ``task_start .. task_end - 1``.

    Task ``(n, b)`` owns the conv rows of block ``b`` of image ``n`` and the pooled rows whose
    windows start there; rows a window needs beyond the block are recomputed into ``scratch``.
    Without pooling ``pool = pool_stride = 1`` and nothing is pooled. With the activation
    ``none`` (code 0) ``activated`` is ``conv`` and is not written twice.
    """
    n_kernels = weights.shape[0]
    conv_h, conv_w = conv.shape[2], conv.shape[3]
    pooled_h = pooled.shape[2] if pooling else conv_h
    per_block = -(-pooled_h // blocks)
    overlap = max(pool - pool_stride, 0)
    write_act = activation != 0
    for task in range(task_start, task_end):
        n = task // blocks
        b = task % blocks
        q_start = b * per_block
        q_end = min(pooled_h, q_start + per_block)
        if q_start >= q_end:
            continue
        own_start = q_start * pool_stride
        own_end = conv_h if q_end == pooled_h else q_end * pool_stride
        acc = np.empty((2, min(conv_w, tile)), np.float32)
        spare = np.empty((2, conv_w), np.float32)
        line = np.empty(conv_w, np.float32)
        scratch = np.empty((n_kernels, max(overlap, 1), conv_w), np.float32)
        image = x[n]
        next_row = own_start
        next_extra = own_end
        for q in range(q_start, q_end + 1):
            # The last pass (q == q_end) only writes the owned conv rows that no window of
            # this block reaches: gaps when pool_stride > pool, the bottom rows of an image.
            top = q * pool_stride
            bottom = min(top + pool, conv_h) if q < q_end else own_end
            while next_row < min(bottom, own_end):
                for k in range(0, n_kernels, 2):
                    pair = k + 1 < n_kernels
                    k1 = k + 1 if pair else k
                    conv0, conv1 = conv[n, k, next_row], conv[n, k1, next_row]
                    act0 = activated[n, k, next_row] if write_act else conv0
                    act1 = activated[n, k1, next_row] if write_act else conv1
                    _conv_rows(image, rows, cols, weights, bias, k, pair, next_row * stride,
                               stride, activation, slope, conv0, act0, conv1, act1, acc)
                next_row += 1
            if q == q_end:
                break
            while next_extra < bottom:
                for k in range(0, n_kernels, 2):
                    pair = k + 1 < n_kernels
                    act0 = scratch[k, next_extra - own_end]
                    act1 = scratch[k + 1 if pair else k, next_extra - own_end]
                    conv0 = spare[0] if write_act else act0
                    conv1 = spare[1] if write_act else act1
                    _conv_rows(image, rows, cols, weights, bias, k, pair, next_extra * stride,
                               stride, activation, slope, conv0, act0, conv1, act1, acc)
                next_extra += 1
            if not pooling:
                continue
            split = min(bottom, own_end)
            for k in range(n_kernels):
                _pool_row(activated[n, k, top:split],
                          scratch[k, max(top, own_end) - own_end:max(bottom, own_end) - own_end],
                          pool, pool_stride, is_max, pooled[n, k, q], line)


READY = True  # the module is fully imported (see convlens.layers.fused_pays)
