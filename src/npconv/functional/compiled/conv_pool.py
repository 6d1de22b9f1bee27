"""Compiled weight gradient of a convolution from the winners of the max pool that reads its output.

See :mod:`npconv.functional.conv_pool` for the maths. Each filter's gradient is summed by one
thread (``prange`` over the filters), in float64, over the pool windows in order: the split is by
the shapes, so the result does not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import kernel

#: The sources these kernels inline, hashed: Numba caches them by this file alone (see ``_jit``).
INLINED_SOURCES = "97bb75677132e40a"

__all__ = ["weight_grads_at_winners"]


@kernel()
def weight_grads_at_winners(x_pad, dout, winner, fh, fw, pw, sh, sw, top, left, n_hz, n_wz, dw):
    """``dw[(p*fw + q)*C + c, k] = sum_{i,h,v} dout[i,h,v,k] * x_pad[i, y + p, x + q, c]``, ``(y, x)``
    the convolution-output position of window ``(i, h, v, k)``'s winner (skipped outside the
    ``(n_hz, n_wz)`` output: a window of padding only).

    x_pad (m, H_pad, W_pad, C) the stride-1 convolution's padded input; dout and winner
    (m, n_H, n_W, K) the pool's output gradient and winners; pool width ``pw``, stride ``(sh, sw)``
    and padding ``(top, left)``; dw (fh * fw * C, K), written in place.
    """
    m, n_h, n_w, n_k = dout.shape
    n_c = x_pad.shape[3]
    run = fw * n_c
    flat_rows = x_pad.reshape(m, x_pad.shape[1], x_pad.shape[2] * n_c)
    for k in prange(n_k):
        total = np.zeros(fh * fw * n_c)
        for i in range(m):
            for h in range(n_h):
                for v in range(n_w):
                    won = winner[i, h, v, k]
                    y = h * sh + won // pw - top
                    x = v * sw + won % pw - left
                    if y < 0 or y >= n_hz or x < 0 or x >= n_wz:
                        continue
                    grad = np.float64(dout[i, h, v, k])
                    for p in range(fh):
                        # the patch's row p: fw * C contiguous values, one run for the vectoriser
                        row, base = flat_rows[i, y + p, x * n_c :], p * run
                        for j in range(run):
                            total[base + j] += grad * row[j]
        for t in range(fh * fw * n_c):
            dw[t, k] = total[t]
