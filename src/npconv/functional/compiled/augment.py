"""Compiled photo augmentations: white balance, blur and noise, one parallel pass over the batch.

The random numbers are drawn by the caller (:mod:`npconv.data.augment`) from its NumPy generator,
in the same order as the NumPy tier; these kernels do the per-pixel work, one image per ``prange``
iteration, with the NumPy tier's operations in the NumPy tier's order (products and sums rounded to
the image's dtype one by one, no fused multiply-add), so both tiers give the same bits whatever the
thread count. Images are ``(m, H, W * C)``: each row one contiguous run of values.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import kernel

__all__ = ["channel_gain", "gaussian_blur", "add_noise"]

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
        for y in range(n_h):
            source, target = x[i, y], out[i, y]
            for j in range(row_len):
                target[j] = _clipped(source[j] * gain[i, j % n_c], lo, hi, clip)


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
