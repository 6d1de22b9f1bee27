"""Compiled photo augmentations: white balance, blur and noise, one parallel pass over the batch.

The random numbers are drawn from the caller's NumPy generator (:mod:`npconv.data.augment`), in the
same order as the NumPy tier (the noise's here, by :func:`standard_normal`); these kernels do the
per-pixel work, one image per ``prange``
iteration, with the NumPy tier's operations in the NumPy tier's order (products and sums rounded to
the image's dtype one by one, no fused multiply-add), so both tiers give the same bits whatever the
thread count. Images are ``(m, H, W * C)``: each row one contiguous run of values.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import kernel

#: The sources these kernels inline, hashed: Numba caches them by this file alone (see ``_jit``).
INLINED_SOURCES = "97bb75677132e40a"

__all__ = ["channel_gain", "gaussian_blur", "standard_normal", "add_noise"]

#: Taps of the blur's kernel: offsets -3..3, as the NumPy tier's.
TAPS = 7


@njit(cache=True, inline="always")
def _clipped(value, lo, hi, clip):
    """``value`` clipped to ``[lo, hi]`` when ``clip`` (NaN stays NaN, as ``np.clip``)."""
    if clip:
        if value < lo:
            return lo
        if value > hi:
            return hi
    return value


@kernel()
def channel_gain(x, gain, lo, hi, clip, out):
    """``out[i, y, v * C + c] = x[i, y, v * C + c] * gain[i, c]``, clipped to ``[lo, hi]`` when
    ``clip``; x and out (m, H, W * C), gain (m, C) in x's dtype."""
    m, n_h, row_len = x.shape
    n_c = gain.shape[1]
    for i in prange(m):
        along_row = np.empty(row_len, x.dtype)  # the gains repeated along a row: no j % C per value
        for j in range(row_len):
            along_row[j] = gain[i, j % n_c]
        for y in range(n_h):
            source, target = x[i, y], out[i, y]
            for j in range(row_len):
                target[j] = _clipped(source[j] * along_row[j], lo, hi, clip)


@kernel()
def gaussian_blur(x, taps, n_c, out):
    """Separable blur with edges repeated: ``t[y] = sum_k taps[i, k] * x[clamp(y + k - 3)]`` down
    the columns, then the same along each row of ``t`` (summed from ``k = 0`` up, as the NumPy tier).

    x and out (m, H, W * C), ``n_c`` values per pixel; taps (m, 7) in x's dtype.
    """
    m, n_h, row_len = x.shape
    n_w = row_len // n_c
    half = TAPS // 2
    for i in prange(m):
        k = taps[i]
        for y in range(n_h):
            target = out[i, y]
            first = x[i, min(max(y - half, 0), n_h - 1)]
            for j in range(row_len):
                target[j] = k[0] * first[j]
            for t in range(1, TAPS):
                line = x[i, min(max(y + t - half, 0), n_h - 1)]
                for j in range(row_len):
                    target[j] += k[t] * line[j]
        padded = np.empty(row_len + 2 * half * n_c, x.dtype)
        for y in range(n_h):
            target = out[i, y]
            padded[half * n_c : half * n_c + row_len] = target
            for v in range(half):
                for c in range(n_c):
                    padded[v * n_c + c] = target[c]
                    padded[(n_w + half + v) * n_c + c] = target[(n_w - 1) * n_c + c]
            for j in range(row_len):
                target[j] = k[0] * padded[j]
            for t in range(1, TAPS):
                shifted = padded[t * n_c : t * n_c + row_len]
                for j in range(row_len):
                    target[j] += k[t] * shifted[j]


@njit(cache=True)
def standard_normal(rng, out):
    """Fill ``out`` (float32 or float64, contiguous) with ``rng.standard_normal(out.shape, out.dtype)``.

    Numba's ``Generator`` methods are NumPy's algorithms on the same bit generator, so the draws,
    and the generator's state after them, are NumPy's; without NumPy's per-value function calls
    they take 0.6 of its time. Unlike NumPy's, they do not take the generator's lock: a generator
    must not be drawn from by two threads at once.
    """
    flat = out.reshape(-1)
    if out.itemsize == 4:
        flat[:] = rng.standard_normal(size=flat.size, dtype=np.float32)
    else:
        flat[:] = rng.standard_normal(size=flat.size, dtype=np.float64)


@kernel()
def add_noise(x, scale, lo, hi, clip, noise):
    """``noise[i, y, j] = x[i, y, j] + noise[i, y, j] * scale[i]``, clipped to ``[lo, hi]`` when
    ``clip``: standard normal draws turned into the noisy images in place; x and noise (m, H, W * C),
    scale (m,) in x's dtype."""
    m, n_h, row_len = x.shape
    for i in prange(m):
        s = scale[i]
        for y in range(n_h):
            source, target = x[i, y], noise[i, y]
            for j in range(row_len):
                target[j] = _clipped(source[j] + target[j] * s, lo, hi, clip)
