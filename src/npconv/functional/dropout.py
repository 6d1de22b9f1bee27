"""Inverted dropout: zero each unit with probability ``rate``, scale the survivors by ``1/(1-rate)``.

The scaling happens at training time so the expected activation is unchanged and inference is
the identity (Keras's ``Dropout``).
"""

from __future__ import annotations

import numpy as np

from ..errors import check_float_array, expected
from ._shapes import check_dout


def dropout_forward(x, rate, rng, training=True):
    """``out = x * mask``, ``mask[i] = (u[i] >= rate) / (1 - rate)``, ``u ~ U[0, 1)`` from ``rng``.

    Parameters
    ----------
    x : ndarray, any shape
    rate : float in [0, 1), the fraction of units dropped
    rng : np.random.Generator, the source of the mask (so seeded runs repeat)
    training : bool; when False (or ``rate == 0``) the kernel is the identity and draws nothing

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : the scaled mask (dtype of ``x``), or the shape of ``x`` for the identity
    """
    x = check_float_array(x, "x")
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating, np.integer)) or not 0 <= rate < 1:
        raise ValueError(expected("rate", "a number in [0, 1) (the fraction of units dropped)", rate))
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            expected(
                "rng", "a numpy.random.Generator", rng, "Use npconv.utils.global_rng() or np.random.default_rng(seed)."
            )
        )
    if not training or rate == 0:
        return x, x.shape
    # Draw in x's precision when NumPy can (float32 halves the bytes drawn); else float64.
    draw_dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    # One float mask holding 0 or 1/(1-rate): forward and backward are then one multiply each.
    mask = (rng.random(x.shape, dtype=draw_dtype) >= rate).astype(x.dtype)
    mask *= 1 / (1 - rate)
    return x * mask, mask


def dropout_backward(dout, cache):
    """``dx = dout * mask``: dropped units pass no gradient, kept ones the same ``1/(1-rate)``."""
    if isinstance(cache, tuple):
        return check_dout(dout, cache)
    return check_dout(dout, cache.shape) * cache
