"""Compiled convolution kernels: the course's loops over ``(i, h, w, p, q, c, k)``, run by Numba.

A direct convolution never builds the patch matrix: for images with few channels (RGB) that matrix
is ``fh * fw`` times the input (50 MB for SIGNS's first layer at batch 64) and the GEMM that
consumes it has as few as 8 columns, so the copy, not the arithmetic, sets the time. Here each
output row ``out[i, h, :, :]`` (a few KB, in L1 cache) is accumulated one kernel tap at a time; the
innermost loop runs over the filters ``k``, contiguous in ``w`` and ``out``, and vectorises.

``prange`` splits the batch between threads: every example writes only its own rows, so no locks.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def conv_forward(planes, w, b, sh, sw, out):
    """``out[i, h, v, k] = b[k] + sum_{p,q,c} planes[c, i, h*sh + p, v*sw + q] * w[p, q, c, k]``.

    planes (n_C, m, H_pad, W_pad): the padded input, channel-major, so that the innermost loop runs
    along an image row ``v`` (contiguous, vectorised) for one filter ``k``; each output row is
    accumulated as ``(K, n_W)`` in a small per-example buffer, then written out NHWC.
    w (fh, fw, n_C, K), b (K,), out (m, n_H, n_W, K), written in place.
    """
    m, n_h, n_w, n_k = out.shape
    fh, fw, n_c, _ = w.shape
    for i in prange(m):
        row = np.empty((n_k, n_w), dtype=out.dtype)
        for h in range(n_h):
            for k in range(n_k):
                row[k, :] = b[k]
            for c in range(n_c):
                for p in range(fh):
                    image_row = planes[c, i, h * sh + p]
                    for q in range(fw):
                        for k in range(n_k):
                            tap = w[p, q, c, k]
                            acc = row[k]
                            if sw == 1:  # contiguous: vectorises
                                for v in range(n_w):
                                    acc[v] += tap * image_row[q + v]
                            else:
                                for v in range(n_w):
                                    acc[v] += tap * image_row[q + v * sw]
            out[i, h] = row.T


@njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def conv_backward_weights(planes, dout, sh, sw, dw_parts, db_parts):
    """Per-example partial gradients, summed over the batch by the caller (threads never share a row).

    ``dw_parts[i, p, q, c, k] = sum_{h,v} planes[c, i, h*sh + p, v*sw + q] * dout[i, h, v, k]`` and
    ``db_parts[i, k] = sum_{h,v} dout[i, h, v, k]``; shapes (m, fh, fw, n_C, K) and (m, K). Each
    output row of ``dout`` is first transposed to ``(K, n_W)`` so both operands of the inner dot
    product are contiguous (``reassoc`` lets it vectorise).
    """
    m, n_h, n_w, n_k = dout.shape
    _, fh, fw, n_c, _ = dw_parts.shape
    for i in prange(m):
        dw = dw_parts[i]
        db = db_parts[i]
        dw[...] = 0.0
        db[...] = 0.0
        grad_row = np.empty((n_k, n_w), dtype=dout.dtype)
        for h in range(n_h):
            grad_row[...] = dout[i, h].T
            for k in range(n_k):
                db[k] += grad_row[k].sum()
            for c in range(n_c):
                for p in range(fh):
                    image_row = planes[c, i, h * sh + p]
                    for q in range(fw):
                        for k in range(n_k):
                            g = grad_row[k]
                            total = 0.0
                            if sw == 1:  # contiguous: vectorises
                                for v in range(n_w):
                                    total += image_row[q + v] * g[v]
                            else:
                                for v in range(n_w):
                                    total += image_row[q + v * sw] * g[v]
                            dw[p, q, c, k] += total


@njit(parallel=True, cache=True)
def conv_backward_input(dout, w, sh, sw, dx_pad):
    """``dx_pad[i, h*sh + p, v*sw + q, c] += sum_k dout[i, h, v, k] * w[p, q, c, k]`` (zeroed first)."""
    m, n_h, n_w, n_k = dout.shape
    fh, fw, n_c, _ = w.shape
    for i in prange(m):
        dx_pad[i] = 0.0
        for h in range(n_h):
            for v in range(n_w):
                g = dout[i, h, v]
                for p in range(fh):
                    for q in range(fw):
                        for c in range(n_c):
                            taps = w[p, q, c]
                            total = 0.0
                            for k in range(n_k):
                                total += g[k] * taps[k]
                            dx_pad[i, h * sh + p, v * sw + q, c] += total


@njit(parallel=True, cache=True)
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
