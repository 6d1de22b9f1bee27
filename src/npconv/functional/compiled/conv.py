"""Compiled convolution kernels: a direct stride-1 convolution over channel planes, and col2im.

The direct convolution never builds a patch matrix. The input is laid out as *stacked planes*,
``planes (n_C, m * B, S)``: channel ``c`` of image ``i`` is the block of rows ``i*B .. i*B + B - 1``,
zero-padded to ``B`` rows of ``S`` columns (:func:`to_planes`). In flat indices of one channel's
plane, output position ``(i, h, v)`` is ``j = (i*B + h) * S + v`` and the window offset of tap
``(p, q)`` is ``p * S + q``, so every tap ``t = (c, p, q)`` contributes one long contiguous run::

    out_flat[j] += w[p, q, c, k] * planes_flat[offset_t + j],   offset_t = (c * m * B + p) * S + q

over every image at once; positions that are not outputs (the padding rows and columns) are computed
and dropped. The weight gradient is the same runs as dot products against the output gradient laid
out in the same geometry, chunk by chunk, and the input gradient is the forward kernel again, over
the output gradient's planes with the kernel flipped (a full correlation).

Speed (``benchmarks/ops.py``): the innermost loops are those runs, indexed from 0 on slices (an
offset index defeats LLVM's vectoriser), four taps and four filters per pass so each load feeds
several FMAs (four filters instead of two: forward and weight gradient 1.1-1.25x faster on an
AVX-512 Xeon, the weight gradient 1.15x and the forward 0.96x with AVX2 code; eight filters bought
nothing more), each row updated by a chain of four FMAs (``row + a0*v0 + a1*v1 + ...``, 4 vector ops
per 4 taps; summing the products as two pairs first took 6, and ran 5-15% slower on the Xeon;
an earlier session on an AMD EPYC saw the chain halve the speed, not rechecked there),
accumulators in the data's dtype. Accumulating a block of positions over every
tap in registers, as oneDNN does, was tried: as scalars LLVM's SLP vectoriser left them scalar
(15-21 GFLOP/s), as a small array they stayed in memory (45-61), against 85-118 for these runs.
``prange`` splits the rows into chunks of about
:data:`CHUNK` positions, fixed by the shapes and not by the thread count, so results do not depend
on how many threads run.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import kernel

__all__ = ["to_planes", "conv_planes", "conv_weight_grads", "col2im"]

#: Taps per pass of the inner loops (the tap table is padded to a multiple with zero weights).
TAPS = 4
#: Filters per pass of the inner loops (the weights are padded to a multiple with zero filters).
FILTERS = 4
#: Output positions per chunk of work: two accumulator rows of 4 KB (float32) stay in L1.
CHUNK = 1024


@kernel()
def to_planes(src, top, left, block_rows, dst):
    """Stacked planes of an NHWC batch: ``dst[c, i*B + top + y, left + x] = src[i, y, x, c]``, zero elsewhere.

    src (m, H, W, n_C); dst (n_C, m * B, S), written in place (``B = block_rows``), with
    ``top + H <= B`` and ``left + W <= S``.
    """
    m, n_h, n_w, n_c = src.shape
    for i in prange(m):
        for c in range(n_c):
            block = dst[c, i * block_rows:(i + 1) * block_rows]
            block[:top] = 0
            block[top + n_h:] = 0
            for y in range(n_h):
                row = block[top + y]
                row[:left] = 0
                row[left + n_w:] = 0
                pixels = src[i, y]
                for x in range(n_w):
                    row[left + x] = pixels[x, c]


def _forward_cost(planes, offsets, weights, *rest):
    """:func:`conv_planes`' multiply-adds: positions x taps x filters."""
    return planes.shape[1] * planes.shape[2] * offsets.size * weights.shape[1]


@kernel(cost=_forward_cost, fastmath={"contract"})
def conv_planes(planes, offsets, weights, bias, out, block_rows):
    """Direct stride-1 convolution: ``out[i, h, v, k] = bias[k] + sum_t weights[t, k] * flat[offsets[t] + j]``,
    ``j = (i * B + h) * S + v``, ``flat`` = ``planes`` raveled.

    planes (n_C, m * B, S) from :func:`to_planes`; offsets (T,) and weights (T, K4) from the tap
    table (``T`` a multiple of :data:`TAPS`, ``K4`` the filters rounded up to a multiple of
    :data:`FILTERS`, padded with zeros); bias (K,); out (m, n_H, n_W, K), written in place.
    """
    n_rows, row_len = planes.shape[1], planes.shape[2]
    m, n_h, n_w, n_k = out.shape
    plane = n_rows * row_len
    flat = planes.ravel()
    reach = 0
    for t in range(offsets.size):
        reach = max(reach, offsets[t] % plane)
    limit = plane - reach  # positions whose every tap stays inside its channel's plane
    chunk_rows = max(1, CHUNK // row_len)
    for chunk in prange((n_rows + chunk_rows - 1) // chunk_rows):
        r0 = chunk * chunk_rows
        r1 = min(n_rows, r0 + chunk_rows)
        j0, j1 = r0 * row_len, min(r1 * row_len, limit)
        if j1 <= j0:
            continue
        n = j1 - j0
        acc = np.empty((weights.shape[1], n), out.dtype)
        for k in range(0, n_k, FILTERS):
            # Distinct rows (K4 is a multiple of FILTERS); padded filters have zero weights and bias.
            row0, row1, row2, row3 = acc[k], acc[k + 1], acc[k + 2], acc[k + 3]
            row0[:] = bias[k]
            row1[:] = bias[k + 1] if k + 1 < n_k else 0
            row2[:] = bias[k + 2] if k + 2 < n_k else 0
            row3[:] = bias[k + 3] if k + 3 < n_k else 0
            for t in range(0, offsets.size, TAPS):
                x0 = flat[offsets[t] + j0:offsets[t] + j1]
                x1 = flat[offsets[t + 1] + j0:offsets[t + 1] + j1]
                x2 = flat[offsets[t + 2] + j0:offsets[t + 2] + j1]
                x3 = flat[offsets[t + 3] + j0:offsets[t + 3] + j1]
                a0, a1, a2, a3 = weights[t, k], weights[t + 1, k], weights[t + 2, k], weights[t + 3, k]
                b0, b1, b2, b3 = (weights[t, k + 1], weights[t + 1, k + 1], weights[t + 2, k + 1],
                                  weights[t + 3, k + 1])
                c0, c1, c2, c3 = (weights[t, k + 2], weights[t + 1, k + 2], weights[t + 2, k + 2],
                                  weights[t + 3, k + 2])
                d0, d1, d2, d3 = (weights[t, k + 3], weights[t + 1, k + 3], weights[t + 2, k + 3],
                                  weights[t + 3, k + 3])
                for j in range(n):
                    v0, v1, v2, v3 = x0[j], x1[j], x2[j], x3[j]
                    row0[j] = row0[j] + a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3
                    row1[j] = row1[j] + b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3
                    row2[j] = row2[j] + c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3
                    row3[j] = row3[j] + d0 * v0 + d1 * v1 + d2 * v2 + d3 * v3
        for r in range(r0, r1):  # the chunk's output rows, written NHWC
            i = r // block_rows
            h = r - i * block_rows
            base = (r - r0) * row_len
            if h >= n_h or base + n_w > n:
                continue
            pixels = out[i, h]
            for v in range(n_w):
                pixel = pixels[v]
                for k in range(n_k):
                    pixel[k] = acc[k, base + v]


def _weight_grads_cost(planes, dout, offsets, *rest):
    """:func:`conv_weight_grads`' multiply-adds: positions x taps x filters."""
    return planes.shape[1] * planes.shape[2] * offsets.size * dout.shape[3]


@kernel(cost=_weight_grads_cost, fastmath={"reassoc", "contract"})
def conv_weight_grads(planes, dout, offsets, block_rows):
    """Weight and bias gradients of :func:`conv_planes`: ``(dw (T, K), db (K,))`` with

    ``dw[t, k] = sum_j flat[offsets[t] + j] * g_k[j]`` and ``db[k] = sum_j g_k[j]``, where ``j`` runs
    over every position of the planes and ``g_k[j]`` is ``dout[i, h, v, k]`` at output positions
    ``j = (i * B + h) * S + v`` and 0 elsewhere.

    planes (n_C, m * B, S) from :func:`to_planes`; dout (m, n_H, n_W, K); offsets (T,). Each chunk of
    positions lays its share of ``dout`` out as ``g`` (``K`` rows of the chunk's length, in L1/L2
    cache: no planes of the whole output gradient) and sums into its own partial; the partials are
    added in chunk order, so the result does not depend on the number of threads.
    """
    n_rows, row_len = planes.shape[1], planes.shape[2]
    m, n_h, n_w, n_k = dout.shape
    plane = n_rows * row_len
    flat = planes.ravel()
    reach = 0
    for t in range(offsets.size):
        reach = max(reach, offsets[t] % plane)
    limit = plane - reach
    chunk_rows = max(1, CHUNK // row_len)
    n_chunks = (n_rows + chunk_rows - 1) // chunk_rows
    n_k4 = -(-n_k // FILTERS) * FILTERS  # padded filters: zero rows of g, dropped at the end
    dw_parts = np.zeros((n_chunks, offsets.size, n_k4), flat.dtype)
    db_parts = np.zeros((n_chunks, n_k4), flat.dtype)
    zero = flat.dtype.type(0)
    for chunk in prange(n_chunks):
        dw, db = dw_parts[chunk], db_parts[chunk]
        r0 = chunk * chunk_rows
        j0 = r0 * row_len
        j1 = min(j0 + chunk_rows * row_len, limit)
        n = j1 - j0
        if n <= 0:
            continue
        g = np.zeros((n_k4, n), flat.dtype)
        for r in range(r0, min(n_rows, r0 + chunk_rows)):  # the chunk's output rows, from NHWC
            i = r // block_rows
            h = r - i * block_rows
            base = (r - r0) * row_len
            if h >= n_h or base >= n:
                continue
            pixels = dout[i, h]
            for v in range(min(n_w, n - base)):
                pixel = pixels[v]
                for k in range(n_k):
                    g[k, base + v] = pixel[k]
        for k in range(0, n_k4, FILTERS):
            g0, g1, g2, g3 = g[k], g[k + 1], g[k + 2], g[k + 3]
            s0 = s1 = s2 = s3 = zero
            for j in range(n):
                s0 += g0[j]
                s1 += g1[j]
                s2 += g2[j]
                s3 += g3[j]
            db[k], db[k + 1], db[k + 2], db[k + 3] = s0, s1, s2, s3
            for t in range(0, offsets.size, TAPS):
                x0 = flat[offsets[t] + j0:offsets[t] + j1]
                x1 = flat[offsets[t + 1] + j0:offsets[t + 1] + j1]
                x2 = flat[offsets[t + 2] + j0:offsets[t + 2] + j1]
                x3 = flat[offsets[t + 3] + j0:offsets[t + 3] + j1]
                a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = zero
                c0 = c1 = c2 = c3 = d0 = d1 = d2 = d3 = zero
                for j in range(n):
                    u0, u1, u2, u3 = g0[j], g1[j], g2[j], g3[j]
                    v0, v1, v2, v3 = x0[j], x1[j], x2[j], x3[j]
                    a0 += v0 * u0
                    a1 += v1 * u0
                    a2 += v2 * u0
                    a3 += v3 * u0
                    b0 += v0 * u1
                    b1 += v1 * u1
                    b2 += v2 * u1
                    b3 += v3 * u1
                    c0 += v0 * u2
                    c1 += v1 * u2
                    c2 += v2 * u2
                    c3 += v3 * u2
                    d0 += v0 * u3
                    d1 += v1 * u3
                    d2 += v2 * u3
                    d3 += v3 * u3
                dw[t, k], dw[t + 1, k], dw[t + 2, k], dw[t + 3, k] = a0, a1, a2, a3
                dw[t, k + 1], dw[t + 1, k + 1], dw[t + 2, k + 1], dw[t + 3, k + 1] = b0, b1, b2, b3
                dw[t, k + 2], dw[t + 1, k + 2], dw[t + 2, k + 2], dw[t + 3, k + 2] = c0, c1, c2, c3
                dw[t, k + 3], dw[t + 1, k + 3], dw[t + 2, k + 3], dw[t + 3, k + 3] = d0, d1, d2, d3
    # Explicit loops: an array expression here would become a parallel loop per chunk (parfors).
    dw_total = np.zeros((offsets.size, n_k), flat.dtype)
    db_total = np.zeros(n_k, flat.dtype)
    for chunk in range(n_chunks):
        for t in range(offsets.size):
            for k in range(n_k):
                dw_total[t, k] += dw_parts[chunk, t, k]
        for k in range(n_k):
            db_total[k] += db_parts[chunk, k]
    return dw_total, db_total


@kernel()
def col2im(dcols, sh, sw, dx_pad):
    """Scatter-add patch gradients ``dcols (m, n_H, n_W, fh, fw, n_C)`` onto ``dx_pad (m, H_pad, W_pad, n_C)``.

    One pass over ``dcols`` (the NumPy tier makes ``fh * fw`` strided passes over ``dx_pad``).
    """
    m, n_h, n_w, fh, fw, n_c = dcols.shape
    for i in prange(m):
        dx_pad[i] = 0.0
        for h in range(n_h):
            for v in range(n_w):
                for p in range(fh):
                    for q in range(fw):
                        target = dx_pad[i, h * sh + p, v * sw + q]
                        source = dcols[i, h, v, p, q]
                        for c in range(n_c):
                            target[c] += source[c]
