"""Compiled batch normalisation over ``(N, C)`` rows: two passes over the data each way.

The NumPy tier makes about eleven passes over ``(N, C)`` for a training step (centre, square, sum,
scale, shift; then products and sums backward), each leaving the cache at Happy's size. Here the
forward reads ``x`` once for the statistics and once to write ``out``; the backward reads ``dout`` and
``x`` once for the two sums and once to write ``dx``. Rows are split into ``blocks`` contiguous
chunks, one per ``prange`` iteration, whose per-channel partial sums (float64) are added at the end.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["channel_moments", "scale_shift", "gradient_sums", "input_gradient"]


@njit(parallel=True, cache=True)
def channel_moments(x, shift, blocks):
    """``(sum(x - shift), sum((x - shift)^2))`` per channel, float64, for x (N, C) and shift (C,).

    The shift (the first row) keeps ``E[d^2] - E[d]^2`` free of cancellation when the mean is large
    next to the spread.
    """
    n, n_c = x.shape
    sums = np.zeros((blocks, n_c))
    squares = np.zeros((blocks, n_c))
    step = (n + blocks - 1) // blocks
    for block in prange(blocks):
        s = sums[block]
        s2 = squares[block]
        for r in range(block * step, min(n, (block + 1) * step)):
            row = x[r]
            for c in range(n_c):
                d = row[c] - shift[c]
                s[c] += d
                s2[c] += d * d
    return sums.sum(axis=0), squares.sum(axis=0)


@njit(parallel=True, cache=True)
def scale_shift(x, scale, offset, out, blocks):
    """``out[r, c] = x[r, c] * scale[c] + offset[c]`` for x and out (N, C)."""
    n, n_c = x.shape
    step = (n + blocks - 1) // blocks
    for block in prange(blocks):
        for r in range(block * step, min(n, (block + 1) * step)):
            row, target = x[r], out[r]
            for c in range(n_c):
                target[c] = row[c] * scale[c] + offset[c]


@njit(parallel=True, cache=True)
def gradient_sums(dout, x, mean, blocks):
    """``(sum(dout), sum(dout * (x - mean)))`` per channel, float64, for dout and x (N, C)."""
    n, n_c = x.shape
    sums = np.zeros((blocks, n_c))
    products = np.zeros((blocks, n_c))
    step = (n + blocks - 1) // blocks
    for block in prange(blocks):
        s = sums[block]
        sp = products[block]
        for r in range(block * step, min(n, (block + 1) * step)):
            g, row = dout[r], x[r]
            for c in range(n_c):
                s[c] += g[c]
                sp[c] += g[c] * (row[c] - mean[c])
    return sums.sum(axis=0), products.sum(axis=0)


@njit(parallel=True, cache=True)
def input_gradient(dout, x, mean, a, b, c0, dx, blocks):
    """``dx[r, c] = a[c] * dout[r, c] - b[c] * (x[r, c] - mean[c]) - c0[c]``: batch norm's ``dx`` with
    the per-channel constants folded in by the caller."""
    n, n_c = x.shape
    step = (n + blocks - 1) // blocks
    for block in prange(blocks):
        for r in range(block * step, min(n, (block + 1) * step)):
            g, row, target = dout[r], x[r], dx[r]
            for c in range(n_c):
                target[c] = a[c] * g[c] - b[c] * (row[c] - mean[c]) - c0[c]
