"""The numba kernels of the fused CPU path, compiled (or loaded from numba's disk cache) on
first import: :func:`fused_tasks` fills the three stages of a block of output rows.

Only :mod:`convlens.fused` imports this module, on the first call that needs it, so importing
:mod:`convlens.fused` (and asking it :func:`~convlens.fused.supports`) costs no numba. All
arguments have one fixed type signature, so there is exactly one compiled version; it is cached
on disk (``cache=True``, in ``__pycache__`` or numba's user cache folder): only the very first
call after installing pays numba's compilation (5-10 s); later processes load it in about 0.3 s.
Activation codes are :data:`convlens.fused.ACTIVATION_CODES`.
"""

from __future__ import annotations

import math

import numba
import numpy as np


def is_compiled() -> bool:
    """Whether :func:`fused_tasks` is compiled or loaded from the disk cache in this process."""
    return bool(fused_tasks.signatures)


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
    """Write the conv values and their activation (codes of
    :data:`convlens.fused.ACTIVATION_CODES`)."""
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
def fused_tasks(x, rows, cols, weights, bias, stride, activation, slope, pool, pool_stride,
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
