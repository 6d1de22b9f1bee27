"""The sum of a residual block's branches and the max pool that reads it, forward in one pass.

``max_pool(a + b)`` for pool windows that tile the input (stride equal to the window, no padding:
``smallres``'s stages). Run as two layers, ``Add`` writes the full-size sum and the pool reads it
back; here each output row's window rows are summed into a scratch that stays in cache and pooled
there (:func:`~npconv.functional.compiled.pool.add_max_pool`). The output and the pool's cache are
``pool2d_forward(a + b, pool, mode="max")``'s bit for bit, so the pool's backward runs on them
unchanged (and ``Add``'s backward, the gradient itself, needs nothing from its forward).
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError, check_float_array, expected
from ._shapes import as_pair, output_size
from ._tier import tiered
from ._workspace import aligned_empty
from .pool import WINNER_DTYPE, PoolCache, pool2d_forward


def add_maxpool_forward(a, b, pool_size, relu=False):
    """``pool2d_forward(a + b, pool_size, mode="max")``: windows ``pool_size`` with stride
    ``pool_size`` and no padding (rows and columns past the last window are left out, as
    ``"valid"`` pooling does); with ``relu``, its output clipped, ``max(out, 0)``, as the pass writes
    it (the pool's cache is the same: the winners of ``a + b``).

    Parameters
    ----------
    a, b : ndarray, shape (m, n_H_prev, n_W_prev, n_C), one dtype
    pool_size : int or (ph, pw)
    relu : bool, clip the output at 0 (a residual block's ReLU, moved past the pool)

    Returns
    -------
    out : ndarray, shape (m, n_H_prev // ph, n_W_prev // pw, n_C)
    cache : the pool's cache, as ``pool2d_forward`` returns it for ``a + b``
    """
    pool = as_pair(pool_size, "pool_size")
    a = check_float_array(a, "a", 4)
    b = check_float_array(b, "b", 4)
    if b.shape != a.shape or b.dtype != a.dtype:
        raise ShapeError(expected("b", f"an array of a's shape {a.shape} and dtype {a.dtype}", b))
    out_size = output_size(a.shape[1:3], pool, pool, ((0, 0), (0, 0)), "pool window")
    return _forward(a, b, pool, out_size, bool(relu))


def _forward_numpy(a, b, pool, out_size, relu):
    """The sum, then the pool (then ReLU)."""
    out, cache = pool2d_forward(a + b, pool, mode="max")
    return (np.maximum(out, 0, out=out) if relu else out), cache


@tiered(_forward_numpy)
def _forward(kernels, a, b, pool, out_size, relu):
    """Each output row's window rows summed and pooled (and clipped) in one compiled pass."""
    m, _, _, n_c = a.shape
    out = aligned_empty((m, *out_size, n_c), a.dtype)
    winner = aligned_empty(out.shape, WINNER_DTYPE)
    kernels.pool.add_max_pool(np.ascontiguousarray(a), np.ascontiguousarray(b), *pool, relu, out, winner)
    return out, PoolCache(a.shape, pool, pool, ((0, 0), (0, 0)), "max", winner, None)
