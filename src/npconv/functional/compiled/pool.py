"""Compiled max pooling: one pass over each window, the course's loops run by Numba.

The NumPy tier makes ``ph * pw`` strided passes over the whole batch (64 for an 8x8 pool), each
reading a slice and updating the running maximum and the winner; here every window is read once
while its maximum and winner are updated in the output row, which stays in L1 cache. Same results and the same cache: ``winner`` holds
the offset ``p * pw + q`` of the first maximum (ties keep the earlier offset, as PyTorch); a window
holding NaN gives NaN (as NumPy's max) and its winner is its last NaN (as PyTorch's).
"""
from __future__ import annotations

from numba import njit, prange

__all__ = ["max_pool_forward", "max_pool_backward"]


@njit(parallel=True, cache=True)
def max_pool_forward(x_pad, ph, pw, sh, sw, out, winner):
    """``out[i, h, v, c] = max_{p<ph, q<pw} x_pad[i, h*sh + p, v*sw + q, c]``; ``winner`` its offset.

    x_pad (m, H_pad, W_pad, n_C) padded with -inf; out and winner (m, n_H, n_W, n_C), written in place.
    """
    m, n_h, n_w, n_c = out.shape
    for i in prange(m):
        for h in range(n_h):
            for v in range(n_w):
                best = out[i, h, v]
                won = winner[i, h, v]
                best[:] = x_pad[i, h * sh, v * sw]
                won[:] = 0
                for p in range(ph):
                    for q in range(pw):
                        if p == 0 and q == 0:
                            continue
                        candidate = x_pad[i, h * sh + p, v * sw + q]
                        for c in range(n_c):
                            # Strict, so ties keep the earlier offset; a NaN always wins (PyTorch's
                            # test), so the maximum of a window holding NaN is NaN.
                            if candidate[c] > best[c] or candidate[c] != candidate[c]:
                                best[c] = candidate[c]
                                won[c] = p * pw + q


@njit(parallel=True, cache=True)
def max_pool_backward(dout, winner, ph, pw, sh, sw, tiled, dx_pad):
    """``dx_pad[i, h*sh + p, v*sw + q, c] += dout[i, h, v, c]`` where ``winner[i, h, v, c] == p*pw + q``.

    dx_pad (m, H_pad, W_pad, n_C). When the windows ``tiled`` it exactly (stride == pool size, no
    leftover rows), each element is written once, ``dout`` or 0; otherwise it is zeroed first and
    overlapping windows accumulate. The innermost loop is a select along the channels (no branch, no
    division), so it vectorises.
    """
    m, n_h, n_w, n_c = dout.shape
    for i in prange(m):
        if not tiled:
            dx_pad[i] = 0.0
        for h in range(n_h):
            for v in range(n_w):
                grad, won = dout[i, h, v], winner[i, h, v]
                for p in range(ph):
                    for q in range(pw):
                        offset = p * pw + q
                        target = dx_pad[i, h * sh + p, v * sw + q]
                        if tiled:
                            for c in range(n_c):
                                target[c] = grad[c] if won[c] == offset else 0.0
                        else:
                            for c in range(n_c):
                                target[c] += grad[c] if won[c] == offset else 0.0
