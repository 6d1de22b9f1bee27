"""The sum of a residual block's branches and the max pool that reads it, forward in one pass.

``max_pool(a + b)`` for pool windows that tile the input (stride equal to the window, no padding:
``smallres``'s stages). Run as two layers, ``Add`` writes the full-size sum and the pool reads it
back; here each output row's window rows are summed into a scratch that stays in cache and pooled
there (:func:`~npconv.functional.compiled.pool.add_max_pool`). A branch may be a batch norm's output
not yet written (:class:`~npconv.functional.ScaleShift`): its map is applied as the row is read.
The output and the pool's cache are ``pool2d_forward(a + b, pool, mode="max")``'s bit for bit, so
the pool's backward runs on them unchanged (and ``Add``'s backward, the gradient itself, needs
nothing from its forward).
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError, check_float_array, expected
from ._shapes import as_pair, output_size
from ._tier import tiered
from ._workspace import aligned_empty
from .batchnorm import ScaleShift
from .pool import WINNER_DTYPE, PoolCache, pool2d_forward


def add_maxpool_forward(a, b, pool_size, relu=False):
    """``pool2d_forward(a + b, pool_size, mode="max")``: windows ``pool_size`` with stride
    ``pool_size`` and no padding (rows and columns past the last window are left out, as
    ``"valid"`` pooling does); with ``relu``, its output clipped, ``max(out, 0)``, as the pass writes
    it (the pool's cache is the same: the winners of ``a + b``).

    Parameters
    ----------
    a, b : ndarray, shape (m, n_H_prev, n_W_prev, n_C), one dtype; either may be a
        :class:`~npconv.functional.ScaleShift`, a batch norm's output not yet written, whose map the
        pass applies as it reads it (the same bits as its ``value()``)
    pool_size : int or (ph, pw)
    relu : bool, clip the output at 0 (a residual block's ReLU, moved past the pool)

    Returns
    -------
    out : ndarray, shape (m, n_H_prev // ph, n_W_prev // pw, n_C)
    cache : the pool's cache, as ``pool2d_forward`` returns it for ``a + b``
    """
    pool = as_pair(pool_size, "pool_size")
    branches = [_checked_branch(branch, name) for branch, name in ((a, "a"), (b, "b"))]
    (a_x, _, _), (b_x, _, _) = branches
    if b_x.shape != a_x.shape or b_x.dtype != a_x.dtype:
        raise ShapeError(expected("b", f"an array of a's shape {a_x.shape} and dtype {a_x.dtype}", b_x))
    out_size = output_size(a_x.shape[1:3], pool, pool, ((0, 0), (0, 0)), "pool window")
    return _forward(*branches, pool, out_size, bool(relu))


def _checked_branch(branch, name: str):
    """``(x, scale, offset)``: a branch's array and, for a :class:`ScaleShift`, its map's constants
    in its dtype (else ``None``)."""
    if not isinstance(branch, ScaleShift):
        return check_float_array(branch, name, 4), None, None
    x = check_float_array(branch.x, f"{name}.x", 4)
    scale, offset = (np.asarray(v, dtype=x.dtype) for v in (branch.scale, branch.offset))
    if scale.shape != (x.shape[3],) or offset.shape != (x.shape[3],):
        raise ShapeError(expected(f"{name}.scale and {name}.offset", f"shape ({x.shape[3]},) each", scale))
    return x, scale, offset


def _forward_numpy(a, b, pool, out_size, relu):
    """The sum (each mapped branch written first), then the pool (then ReLU)."""
    a_value, b_value = (x if scale is None else ScaleShift(x, scale, offset).value() for x, scale, offset in (a, b))
    out, cache = pool2d_forward(a_value + b_value, pool, mode="max")
    return (np.maximum(out, 0, out=out) if relu else out), cache


def summed_maxpool_forward(kernels, a, b, pool, out_size, relu):
    """Each output row's window rows mapped, summed and pooled (and clipped) in one compiled pass:
    :func:`add_maxpool_forward`'s ``(out, cache)``. Unchecked: the branches ``(x, scale, offset)`` as
    :func:`_checked_branch` leaves them (a training step that checked its first batch calls it
    directly, :class:`~npconv.engine.steps.AddMaxPool`)."""
    m, _, _, n_c = a[0].shape
    out = aligned_empty((m, *out_size, n_c), a[0].dtype)
    winner = aligned_empty(out.shape, WINNER_DTYPE)
    no_map = np.empty(0, out.dtype)
    a_x, a_scale, a_offset, b_x, b_scale, b_offset = (
        no_map if value is None else np.ascontiguousarray(value) for value in (*a, *b)
    )
    kernels.pool.add_max_pool(a_x, a_scale, a_offset, b_x, b_scale, b_offset, *pool, relu, out, winner)
    return out, PoolCache(a[0].shape, pool, pool, ((0, 0), (0, 0)), "max", winner, None)


_forward = tiered(_forward_numpy)(summed_maxpool_forward)
