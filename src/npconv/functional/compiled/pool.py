"""Compiled max pooling: one pass over the input, the window's maximum kept in the output row.

The NumPy tier makes ``ph * pw`` strided passes over the whole batch (64 for an 8x8 pool), each
reading a slice and updating the running maximum and the winner; here each output row (its values
and winners, in L1 cache) is updated by every window offset in turn. Same results and the same
cache: ``winner`` holds the offset ``p * pw + q`` of the first maximum (ties keep the earlier offset,
as PyTorch); a window holding NaN gives NaN (as NumPy's max) and its winner is its last NaN (as
PyTorch's). The innermost loops run along the channels and are branch-free selects on 32-bit lanes
(an int32 winner: a uint8 one beside float32 values kept LLVM from vectorising them).
"""

from __future__ import annotations

from numba import njit, prange

from ._jit import kernel

__all__ = ["max_pool_forward", "max_pool_backward"]


@kernel()
def max_pool_forward(x_pad, ph, pw, sh, sw, out, winner):
    """``out[i, h, v, c] = max_{p<ph, q<pw} x_pad[i, h*sh + p, v*sw + q, c]``; ``winner`` its offset.

    x_pad (m, H_pad, W_pad, n_C) padded with -inf; out (m, n_H, n_W, n_C) and winner (same shape,
    int32), written in place. ``prange`` over the output rows of the whole batch.
    """
    m, n_h, n_w, n_c = out.shape
    for row in prange(m * n_h):
        i = row // n_h
        h = row - i * n_h
        best, won = out[i, h], winner[i, h]
        first = x_pad[i, h * sh]
        for v in range(n_w):
            values, offsets, source = best[v], won[v], first[v * sw]
            for c in range(n_c):
                values[c] = source[c]
                offsets[c] = 0
        for p in range(ph):
            line = x_pad[i, h * sh + p]
            for q in range(pw):
                if p == 0 and q == 0:
                    continue
                offset = winner.dtype.type(p * pw + q)
                for v in range(n_w):
                    values, offsets, candidate = best[v], won[v], line[v * sw + q]
                    for c in range(n_c):
                        value = candidate[c]
                        # Strict, so ties keep the earlier offset; a NaN always wins (PyTorch's
                        # test), so the maximum of a window holding NaN is NaN.
                        take = (value > values[c]) | (value != value)
                        values[c] = value if take else values[c]
                        offsets[c] = offset if take else offsets[c]


@kernel()
def max_pool_backward(dout, winner, ph, pw, sh, sw, tiled, dx_pad):
    """``dx_pad[i, h*sh + p, v*sw + q, c] += dout[i, h, v, c]`` where ``winner[i, h, v, c] == p*pw + q``.

    dx_pad (m, H_pad, W_pad, n_C). When the windows ``tiled`` it exactly (stride == pool size, no
    leftover rows), each element is written once, ``dout`` or 0, and the output rows are shared out
    between threads; otherwise each image is zeroed first and its windows, which may overlap,
    accumulate, one image per thread at a time.
    """
    m, n_h = dout.shape[0], dout.shape[1]
    if tiled:
        for row in prange(m * n_h):
            i = row // n_h
            _route_row(
                dout[i, row - i * n_h], winner[i, row - i * n_h], dx_pad[i], row - i * n_h, ph, pw, sh, sw, False
            )
    else:
        for i in prange(m):
            dx_pad[i] = 0.0
            for h in range(n_h):
                _route_row(dout[i, h], winner[i, h], dx_pad[i], h, ph, pw, sh, sw, True)


@njit(cache=True, inline="always")
def _route_row(grads, won, dx_image, h, ph, pw, sh, sw, accumulate):
    """One output row's gradients ``grads (n_W, n_C)`` to their winners in ``dx_image``. The
    innermost loop is a select along the channels (no branch, no division), so it vectorises."""
    n_w, n_c = grads.shape
    for p in range(ph):
        line = dx_image[h * sh + p]
        for q in range(pw):
            offset = won.dtype.type(p * pw + q)
            for v in range(n_w):
                target, grad, w = line[v * sw + q], grads[v], won[v]
                if accumulate:
                    for c in range(n_c):
                        target[c] += grad[c] if w[c] == offset else 0.0
                else:
                    for c in range(n_c):
                        target[c] = grad[c] if w[c] == offset else 0.0
