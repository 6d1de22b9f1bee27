"""Compiled convolution kernels: the course's loops over ``(i, h, w, p, q, c, k)``, run by Numba.

A direct convolution (stride 1) never builds the patch matrix: for images with few channels (RGB)
that matrix is ``fh * fw`` times the input (50 MB for SIGNS's first layer at batch 64) and the GEMM
that consumes it has as few as 8 columns, so the copy, not the arithmetic, sets the time. Here the
input is read as channel planes ``(n_C, m, H_pad, W_pad)``, and every inner loop is a long run over
contiguous memory: an ``axpy`` (forward) or a dot product (weight gradient) along a whole plane.

``prange`` splits the batch between threads: every example writes only its own rows, so no locks.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["conv_forward", "conv_backward_weights", "conv_backward_input", "col2im"]


@njit(parallel=True, cache=True)
def conv_forward(planes, w, b, out):
    """A stride-1 convolution: ``out[i, h, v, k] = b[k] + sum_{p,q,c} planes[c, i, h + p, v + q] * w[p, q, c, k]``.

    planes (n_C, m, H_pad, W_pad): the padded input, channel-major; w (fh, fw, n_C, K), b (K,),
    out (m, n_H, n_W, K), written in place. In flat indices of a plane the window of tap ``(p, q)``
    starts at ``p * W_pad + q``, so for each filter ``k`` the output plane (rows ``W_pad`` long, the
    last ``fw - 1`` columns of each discarded) is a sum of ``fh * fw * n_C`` long contiguous
    ``acc += tap * window`` loops, which vectorise; it is then written out NHWC.
    """
    m, n_h, n_w, n_k = out.shape
    fh, fw, n_c, _ = w.shape
    w_pad = planes.shape[3]
    length = (n_h - 1) * w_pad + n_w  # the last window row stops at n_W: no read past the plane
    for i in prange(m):
        acc = np.empty(length, dtype=out.dtype)
        for k in range(n_k):  # one output plane and one input plane at a time stay in L1
            acc[:] = b[k]
            for c in range(n_c):
                plane = planes[c, i].ravel()
                for p in range(fh):
                    for q in range(fw):
                        tap = w[p, q, c, k]
                        window = plane[p * w_pad + q:p * w_pad + q + length]  # from 0: vectorises
                        for j in range(length):
                            acc[j] += tap * window[j]
            for h in range(n_h):
                for v in range(n_w):
                    out[i, h, v, k] = acc[h * w_pad + v]


@njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def conv_backward_weights(planes, dout, dw_parts, db_parts):
    """Per-example partial gradients of a stride-1 convolution, summed over the batch by the caller.

    ``dw_parts[i, p, q, c, k] = sum_{h,v} planes[c, i, h + p, v + q] * dout[i, h, v, k]`` and
    ``db_parts[i, k] = sum_{h,v} dout[i, h, v, k]``; shapes (m, fh, fw, n_C, K) and (m, K).

    Each example's gradient is laid out like a padded plane, ``grads[k, h, v]`` with rows ``W_pad``
    long (zeros past ``n_W``), so that in flat indices the window of tap ``(p, q)`` is the plane from
    ``p * W_pad + q`` on: every ``dw`` entry becomes one long contiguous dot product, which
    vectorises (``reassoc``) instead of thousands of 64-long ones with a reduction each.
    """
    m, n_h, n_w, n_k = dout.shape
    _, fh, fw, n_c, _ = dw_parts.shape
    w_pad = planes.shape[3]
    length = (n_h - 1) * w_pad + n_w  # the last window row stops at n_W: no read past the plane
    for i in prange(m):
        grads = np.zeros((n_k, n_h * w_pad), dtype=dout.dtype)
        for h in range(n_h):
            for v in range(n_w):
                for k in range(n_k):
                    grads[k, h * w_pad + v] = dout[i, h, v, k]
        for k in range(n_k):
            db_parts[i, k] = grads[k].sum()
        for k in range(n_k):  # one gradient plane and one input plane at a time stay in L1
            g = grads[k]
            for c in range(n_c):
                plane = planes[c, i].ravel()
                for p in range(fh):
                    for q in range(fw):
                        window = plane[p * w_pad + q:p * w_pad + q + length]
                        # A slice indexed from 0 and an accumulator in the data's dtype (the first
                        # product) vectorise; an offset index or a float64 sum ran 6-10x slower.
                        total = window[0] * g[0]
                        for j in range(1, length):
                            total += window[j] * g[j]
                        dw_parts[i, p, q, c, k] = total


@njit(parallel=True, cache=True)
def conv_backward_input(dout, w, dx_pad):
    """Stride 1: ``dx_pad[i, h + p, v + q, c] += sum_k dout[i, h, v, k] * w[p, q, c, k]`` (zeroed first)."""
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
                            dx_pad[i, h + p, v + q, c] += total


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
