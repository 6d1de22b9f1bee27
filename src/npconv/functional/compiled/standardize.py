"""Compiled per-image standardisation: two passes over each image forward, two backward.

One image per ``prange`` iteration; each sum is taken in float64 over :data:`LANES` interleaved
partial sums (so that it vectorises), added in a fixed order: the same bits whatever the thread
count. The NumPy tier sums in the image's dtype (pairwise), so the two agree to that dtype's
rounding, not bit for bit. Images are flattened: ``(m, N)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import kernel

#: The sources these kernels inline, hashed: Numba caches them by this file alone (see ``_jit``).
INLINED_SOURCES = "97bb75677132e40a"

__all__ = ["standardize_forward", "standardize_backward"]

#: Partial sums per image.
LANES = 16


@njit(cache=True, inline="always")
def _sum(a):
    """``sum(a)`` in float64, over LANES partial sums."""
    partial = np.zeros(LANES)
    whole = a.size - a.size % LANES
    for base in range(0, whole, LANES):
        for j in range(LANES):
            partial[j] += a[base + j]
    total = 0.0
    for j in range(LANES):
        total += partial[j]
    for j in range(whole, a.size):
        total += a[j]
    return total


@njit(cache=True, inline="always")
def _dot(a, b):
    """``sum(a * b)`` in float64 (each product too), over LANES partial sums."""
    partial = np.zeros(LANES)
    whole = a.size - a.size % LANES
    for base in range(0, whole, LANES):
        for j in range(LANES):
            partial[j] += np.float64(a[base + j]) * np.float64(b[base + j])
    total = 0.0
    for j in range(LANES):
        total += partial[j]
    for j in range(whole, a.size):
        total += np.float64(a[j]) * np.float64(b[j])
    return total


@kernel()
def standardize_forward(x, scale, floored, y):
    """``y[i] = (x[i] - mu_i) / s_i``, ``s_i = max(std(x[i]), 1 / sqrt(N))``, as
    :func:`npconv.functional.standardize.standardize_forward`; x and y (m, N); writes ``scale (m,)``
    (x's dtype) and ``floored (m,)`` (whether the floor was taken)."""
    m, n = x.shape
    floor = 1.0 / np.sqrt(n)
    for i in prange(m):
        image, out = x[i], y[i]
        mean = image.dtype.type(_sum(image) / n)
        for j in range(n):
            out[j] = image[j] - mean
        std = np.sqrt(_dot(out, out) / n)
        floored[i] = std < floor
        s = image.dtype.type(floor if floored[i] else std)
        scale[i] = s
        for j in range(n):
            out[j] = out[j] / s


@kernel()
def standardize_backward(dout, y, scale, floored, dx):
    """``dx[i] = (dout[i] - mean(dout[i]) - y[i] * mean(dout[i] * y[i])) / s_i``, the last term
    left out where the floor was taken; dout, y and dx (m, N), scale and floored (m,)."""
    m, n = dout.shape
    for i in prange(m):
        grad, values, out = dout[i], y[i], dx[i]
        mean = grad.dtype.type(_sum(grad) / n)
        through_std = grad.dtype.type(0.0 if floored[i] else _dot(grad, values) / n)
        s = scale[i]
        for j in range(n):
            out[j] = (grad[j] - mean - values[j] * through_std) / s
