"""Compiled Adam: one call updates every parameter of a model.

The NumPy tier's Adam (:class:`npconv.optimizers.Adam`) makes about twelve ufunc calls per
parameter array, each with its fixed cost: 29 arrays, 0.55 ms a batch of ``smallres``, mostly that
cost. Here the arrays come as tuples of flat views, one tuple per role, and one serial loop (the
arrays are small: a parallel launch would cost more) updates them all, operation by operation in
the NumPy tier's order and types, so the bits are the same.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel

#: The sources these kernels inline, hashed: Numba caches them by this file alone (see ``_jit``).
INLINED_SOURCES = "97bb75677132e40a"

__all__ = ["adam"]


@kernel(error_model="numpy")  # x / 0 is inf as in NumPy: Python's check kept the loop scalar
def adam(params, grads, ms, vs, v_hats, amsgrad, decay, b1, c1, b2, c2, eps, alpha):
    """Adam's update of each ``params[k]`` in place (flat arrays of one dtype; the coefficients
    in that dtype), as :meth:`npconv.optimizers.Adam._update` computes it::

        p *= decay (when not 1);  m = b1 * m + c1 * g;  v = b2 * v + c2 * g**2
        v_hat = max(v_hat, v) (amsgrad: ``v_hats`` not ``vs`` itself);  p -= alpha * m / (sqrt(v_hat) + eps)

    ``c1 = 1 - b1``, ``c2 = 1 - b2``; without ``amsgrad``, ``v_hats`` is not read (pass ``vs``).

    Returns how many updated values are not finite (inf or NaN), counted in the update's own loop:
    the training step's check that the update kept every weight finite, without a pass of its own.
    """
    not_finite = 0
    for k in range(len(params)):
        p, g, m, v = params[k], grads[k], ms[k], vs[k]
        if decay != 1:
            for j in range(p.size):
                p[j] *= decay
        for j in range(p.size):
            m[j] = m[j] * b1 + g[j] * c1
            v[j] = v[j] * b2 + (g[j] * g[j]) * c2
        root = v
        if amsgrad:
            root = v_hats[k]
            for j in range(p.size):
                root[j] = np.maximum(root[j], v[j])
        for j in range(p.size):
            p[j] -= (m[j] / (np.sqrt(root[j]) + eps)) * alpha
            not_finite += (p[j] - p[j]) != 0  # NaN for inf and NaN, 0 for every finite value
    return not_finite
