"""Compiled ``random_reframe``: Pillow's rotate, box resize and paste, redone per image in parallel.

The NumPy tier (:func:`npconv.data.augment.random_reframe`) hands each chosen image to Pillow, one
at a time, on uint8 pixels; its Python around a few small C calls took 5 ms for a (32, 64, 64, 3)
batch. This module repeats Pillow's arithmetic exactly (its ``libImaging`` ``Geometry.c``: affine
transform with the bilinear filter, float64 coordinates, results truncated to uint8; ``Resample.c``:
the box filter's coefficients in 22-bit fixed point, one axis then the other, in Pillow 13's order),
so the two tiers give the same bits; ``tests/data/test_augment_tiers.py`` holds them to it.
"""

from __future__ import annotations

import math

import numpy as np
import PIL
from numba import njit, prange

from ._jit import kernel

#: The sources these kernels inline, hashed: Numba caches them by this file alone (see ``_jit``).
INLINED_SOURCES = "97bb75677132e40a"

__all__ = ["reframe"]

#: Pillow's fixed-point resampling: coefficients scaled by ``2**PRECISION_BITS`` (``Resample.c``).
PRECISION_BITS = 22


def reframe(x, chosen, angles, sizes, corners, lo, hi, out):
    """``out[i]``: image ``i`` of ``x (m, H, W, C)`` (C 1 or 3) as Pillow reframes it where
    ``chosen[i]``, else a copy. ``angles (m,)`` degrees counter-clockwise (0: none), ``sizes (m, 2)``
    the shrunk ``(height, width)``, ``corners (m, 2)`` its top-left corner on the canvas, pixels
    mapped from ``[lo, hi]`` to uint8 and back."""
    n_h, n_w = x.shape[1:3]
    matrices = np.zeros((x.shape[0], 6))
    for i in np.flatnonzero(chosen & (angles != 0)):
        matrices[i] = _rotation_matrix(float(angles[i]), n_w, n_h)
    columns_first_allowed = int(PIL.__version__.split(".")[0]) >= 13
    _reframe_images(x, chosen, angles != 0, matrices, sizes, corners, float(lo), float(hi), columns_first_allowed, out)


def _rotation_matrix(angle: float, n_w: int, n_h: int) -> list[float]:
    """The inverse affine map (output pixel -> input) that ``Image.rotate(angle)`` gives Pillow, by
    its own float arithmetic: ``(a, b, c, d, e, f)``, ``x_in = a x + b y + c``, ``y_in = d x + e y + f``."""
    angle = -math.radians(angle % 360.0)
    a, b = round(math.cos(angle), 15), round(math.sin(angle), 15)
    d, e = round(-math.sin(angle), 15), round(math.cos(angle), 15)
    cx, cy = n_w / 2, n_h / 2
    c = a * -cx + b * -cy + 0.0 + cx
    f = d * -cx + e * -cy + 0.0 + cy
    return [a, b, c, d, e, f]


@kernel()
def _reframe_images(x, chosen, rotate, matrices, sizes, corners, lo, hi, columns_first_allowed, out):
    """:func:`reframe` in parallel; ``matrices (m, 6)`` Pillow's inverse rotations where ``rotate``.

    Iteration ``k`` reframes the ``k``-th chosen image and copies the ``k``-th other one: the threads
    share the chosen images evenly. Split over the batch, a random half of it chosen, one thread
    often had most of the work (2.8 against 1.4 ms for 16 of 32 images)."""
    m, n_h, n_w, n_c = x.shape
    values = np.arange(256) / 255 * (hi - lo) + lo  # what each uint8 level maps back to
    kept, reframed = np.flatnonzero(~chosen), np.flatnonzero(chosen)
    flat_x, flat_out = x.reshape(m, n_h * n_w * n_c), out.reshape(m, n_h * n_w * n_c)
    for k in prange(max(kept.size, reframed.size)):
        if k < kept.size:
            flat_out[kept[k]] = flat_x[kept[k]]
        if k < reframed.size:
            i = reframed[k]
            _reframe_one(
                x[i], rotate[i], matrices[i], sizes[i], corners[i], lo, hi, values, columns_first_allowed, out[i]
            )


@njit(cache=True)
def _reframe_one(image, rotate, matrix, size, corner, lo, hi, values, columns_first_allowed, out):
    """One image ``(H, W, C)`` reframed into ``out``: mapped to uint8, rotated where ``rotate``,
    shrunk to ``size`` and pasted at ``corner`` on its border's median colour, mapped back by
    ``values`` (each uint8 level's value)."""
    n_h, n_w, n_c = image.shape
    pixels = np.empty((n_h, n_w, n_c), np.uint8)
    for y in range(n_h):
        for v in range(n_w):
            for c in range(n_c):
                level = np.rint((np.float64(image[y, v, c]) - lo) / (hi - lo) * 255)
                pixels[y, v, c] = min(max(level, 0.0), 255.0)
    fill = _border_median(pixels)
    if rotate:
        pixels = _rotate(pixels, matrix, fill)
    small = _box_resize(pixels, size[0], size[1], columns_first_allowed)
    top, left = corner[0], corner[1]
    for y in range(n_h):
        for v in range(n_w):
            inside = top <= y < top + small.shape[0] and left <= v < left + small.shape[1]
            for c in range(n_c):
                out[y, v, c] = values[small[y - top, v - left, c] if inside else fill[c]]


@njit(cache=True)
def _border_median(pixels):
    """Per channel, the median of the outermost ring of pixels rounded half to even, as
    :func:`npconv.data.corruptions.background_colour` (``np.median`` then ``round``): ``(C,)`` uint8."""
    n_h, n_w, n_c = pixels.shape
    inner = max(n_h - 2, 0)
    ring = np.empty(2 * n_w + 2 * inner, np.int64)
    fill = np.empty(n_c, np.uint8)
    for c in range(n_c):
        for v in range(n_w):
            ring[v], ring[n_w + v] = pixels[0, v, c], pixels[n_h - 1, v, c]
        for y in range(inner):
            ring[2 * n_w + y], ring[2 * n_w + inner + y] = pixels[1 + y, 0, c], pixels[1 + y, n_w - 1, c]
        ring.sort()
        half = ring.size // 2
        if ring.size % 2:
            fill[c] = ring[half]
        else:
            twice = ring[half - 1] + ring[half]
            fill[c] = twice // 2 + (twice % 2 if (twice // 2) % 2 else 0)  # .5 rounds to even
    return fill


@njit(cache=True)
def _rotate(pixels, a, fill):
    """Pillow's affine transform with its bilinear filter (``Geometry.c``) onto a canvas of ``fill``:
    for output pixel ``(x, y)``, ``x_in = a0 (x + 0.5) + a1 (y + 0.5) + a2`` (``y_in`` likewise); a
    source outside the image keeps the fill, else the bilinear mix of the pixels around
    ``(x_in - 0.5, y_in - 0.5)``, edges repeated, truncated to uint8."""
    n_h, n_w, n_c = pixels.shape
    out = np.empty_like(pixels)
    for y in range(n_h):
        for v in range(n_w):
            x_in = a[0] * (v + 0.5) + a[1] * (y + 0.5) + a[2]
            y_in = a[3] * (v + 0.5) + a[4] * (y + 0.5) + a[5]
            if x_in < 0.0 or x_in >= n_w or y_in < 0.0 or y_in >= n_h:
                for c in range(n_c):
                    out[y, v, c] = fill[c]
                continue
            x_in -= 0.5
            y_in -= 0.5
            col, row = math.floor(x_in), math.floor(y_in)
            dx, dy = x_in - col, y_in - row
            left, right = min(max(col, 0), n_w - 1), min(max(col + 1, 0), n_w - 1)
            upper, lower = pixels[min(max(row, 0), n_h - 1)], pixels[min(row + 1, n_h - 1)]
            for c in range(n_c):
                top = upper[left, c] + (np.int64(upper[right, c]) - np.int64(upper[left, c])) * dx
                bottom = top
                if 0 <= row + 1 < n_h:
                    bottom = lower[left, c] + (np.int64(lower[right, c]) - np.int64(lower[left, c])) * dx
                out[y, v, c] = np.uint8(top + (bottom - top) * dy)
    return out


@njit(cache=True)
def _box_weights(n_in, n_out):
    """Pillow's box filter from ``n_in`` to ``n_out`` samples (``precompute_coeffs`` then
    ``normalize_coeffs_8bpc``): ``(first (n_out,), count (n_out,), weights (n_out, k))``, weights
    in fixed point."""
    scale = np.float64(n_in) / n_out
    filter_scale = max(scale, 1.0)
    support = 0.5 * filter_scale
    size = int(math.ceil(support)) * 2 + 1
    first = np.zeros(n_out, np.int64)
    count = np.zeros(n_out, np.int64)
    weights = np.zeros((n_out, size), np.int64)
    share = np.zeros(size)
    for out in range(n_out):
        centre = 0.0 + (out + 0.5) * scale
        start = max(int(centre - support + 0.5), 0)
        taps = min(int(centre + support + 0.5), n_in) - start
        total = 0.0
        for t in range(taps):
            u = (np.float64(t + start) - centre + 0.5) * (1.0 / filter_scale)
            share[t] = 1.0 if -0.5 < u <= 0.5 else 0.0
            total += share[t]
        for t in range(taps):
            weight = share[t] / total if total != 0.0 else share[t]
            weights[out, t] = int(0.5 + weight * (1 << PRECISION_BITS))
        first[out], count[out] = start, taps
    return first, count, weights


@njit(cache=True)
def _box_resize(pixels, n_h_out, n_w_out, columns_first_allowed):
    """Pillow's ``resize(BOX)`` of uint8 ``pixels (H, W, C)`` to ``(n_h_out, n_w_out, C)``, one axis
    then the other, each output ``(2**21 + sum_t w_t p_t) >> 22`` clipped to [0, 255]. Along the
    rows first, unless the height shrinks by more than twice as many pixels as the width (Pillow 13
    then starts down the columns, which rounds differently: ``columns_first_allowed``)."""
    n_h, n_w = pixels.shape[:2]
    if n_h_out == n_h and n_w_out == n_w:
        return pixels.copy()
    if columns_first_allowed and n_h - n_h_out > 0 and n_h - n_h_out > 2 * (n_w - n_w_out):
        return _box_pass(_box_pass(pixels, n_h_out, 0), n_w_out, 1)
    return _box_pass(_box_pass(pixels, n_w_out, 1), n_h_out, 0)


@njit(cache=True)
def _box_pass(pixels, n_out, axis):
    """One axis (0: down the columns, 1: along the rows) of :func:`_box_resize`."""
    n_h, n_w, n_c = pixels.shape
    first, count, weights = _box_weights(pixels.shape[axis], n_out)
    # Along the rows, the same loops over the transposed views (no branch in the innermost loop).
    source = pixels if axis == 0 else pixels.transpose(1, 0, 2)
    out = np.empty((n_out, n_w, n_c) if axis == 0 else (n_h, n_out, n_c), np.uint8)
    target = out if axis == 0 else out.transpose(1, 0, 2)
    half = np.int64(1) << (PRECISION_BITS - 1)
    for j in range(n_out):
        for v in range(target.shape[1]):
            for c in range(n_c):
                acc = half
                for t in range(count[j]):
                    acc += np.int64(source[first[j] + t, v, c]) * weights[j, t]
                target[j, v, c] = min(max(acc >> PRECISION_BITS, 0), 255)
    return out
