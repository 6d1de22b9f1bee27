"""Compiled convolution kernels: a register-blocked direct stride-1 convolution over NHWC, and col2im.

The direct convolution never builds a patch matrix. The input is the zero-padded NHWC batch
``x_pad (m, H_pad, W_pad, C)`` and the filters a table ``weights (T, K_pad)``, ``T = fh * fw * C``
taps in ``(p, q, c)`` order (``w.reshape(T, K)``, zero-padded to ``K_pad`` filters). Output pixel
``(i, h, v)`` is::

    out[i, h, v, :] = bias + sum_t x_flat[((i * H_pad + h) * W_pad + v) * C + offsets[t]] * weights[t, :]

with ``offsets[t] = (p * W_pad + q) * C + c``. The work is done by the register tiles of
:mod:`._simd`: ``P`` pixels of a row times one or two vectors of filters, summed over every tap in
registers (one weight-vector load and ``P`` broadcasts per tap), the oneDNN way. The weight gradient
is the same sums the other way round: ``dw[t, :] = sum over pixels of x_flat[pixel * C + offsets[t]]
* dout[pixel, :]``, tiles of ``P`` taps times filter vectors summed over a band of pixels (with one
vector of filters over whole vectors of channels, window positions times filters with the vector
along the channels, each output gradient broadcast). The input
gradient is the forward kernel again, over the output gradient padded by ``f - 1 - pad`` with the
kernel flipped (a full correlation).

Speed: the forward runs at 215-370 GFLOP/s with 16 or more filters on 2 threads of an AVX-512 Xeon
whose sgemm peaks at 385 (``benchmarks/kernels.py``).

Work is split over output rows (forward) or over fixed bands of pixels and blocks of taps (weight
gradient, whose partial sums are added in band order): by the shapes, never by the thread count,
so results do not depend on how many threads run.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import kernel
from ._simd import ACCUMULATORS, VECTOR_BYTES, channel_weight_grad_tile, forward_row, weight_grad_tile

# The kernels, which _tier wraps; filter_lanes, MIN_WIDTH and TAP_BLOCK are the layout's rules,
# imported by the caller that builds the tables.
#: The sources these kernels inline, hashed: Numba caches them by this file alone (see ``_jit``).
INLINED_SOURCES = "cf10b6ca221769f0"

__all__ = ["conv_nhwc", "conv_weight_grads", "col2im", "filter_table"]

#: Pixels per forward tile with two filter vectors, and with one (half as many on rows narrower).
#: At most 8: each pixel of a tile holds an address register, and x86-64 has 16 general registers;
#: a 16-pixel tile reloaded 6 of its addresses from the stack at every tap, one load per FMA more
#: (16-filter layers 1.2x faster with 8).
_TWO_VECTOR_PIXELS, _ONE_VECTOR_PIXELS = ACCUMULATORS // 2, min(ACCUMULATORS, 8)
#: The narrowest output row the direct forward takes.
MIN_WIDTH = ACCUMULATORS // 2
#: Taps per weight-gradient tile; the offsets table is padded to a multiple of it.
TAP_BLOCK = ACCUMULATORS
#: Pixels per band of the weight gradient: its share of the input and of ``dout`` stays in L2.
BAND_PIXELS = 2048

_two_vector_row = forward_row(_TWO_VECTOR_PIXELS, 2)
_one_vector_row = forward_row(_ONE_VECTOR_PIXELS, 1)
_half_vector_row = forward_row(_ONE_VECTOR_PIXELS, 1, VECTOR_BYTES // 2)
_paired_row = forward_row(_ONE_VECTOR_PIXELS, 1, VECTOR_BYTES, paired=True)
_paired_two_vector_row = forward_row(_TWO_VECTOR_PIXELS, 2, VECTOR_BYTES, paired=True)
_two_vector_grads = weight_grad_tile(TAP_BLOCK // 2, 2)
_one_vector_grads = weight_grad_tile(TAP_BLOCK, 1)
_half_vector_grads = weight_grad_tile(TAP_BLOCK, 1, VECTOR_BYTES // 2)
#: A 3 x 3 window over 3 channels (an RGB network's first layer) has 27 taps in three runs of 9.
#: With 32 vector registers one tile holds all 27 sums of a vector of filters, addressed from three
#: offsets, and reads each band's output gradient once: with 16-tap tiles, whose runs do not line up
#: with the window's, it was read four times, 8 scattered taps at a time (2x slower).
_RGB_TAPS, _RGB_RUN = 27, 9
_RGB_WINDOW = 2 * ACCUMULATORS >= _RGB_TAPS + 2
_rgb_window_grads = weight_grad_tile(_RGB_TAPS, 1, run_taps=_RGB_RUN)
#: One vector of filters over whole vectors of channels (``smallres``'s 16-channel stage): tiles of
#: a window row's 3 positions x 8 filters, the vector along the channels, hold 24 sums, so they
#: take 32 vector registers (1.15x faster than 16 taps x one filter vector, which loads once per FMA).
_CHANNEL_POSITIONS, _CHANNEL_FILTERS = 3, 8
_BY_CHANNELS = VECTOR_BYTES == 64
_channel_grads = [channel_weight_grad_tile(p, _CHANNEL_FILTERS) for p in (1, 2, 3)]
_one_position_grads, _two_position_grads, _three_position_grads = _channel_grads


def filter_lanes(n_k: int, dtype) -> int:
    """``K_pad``: ``n_k`` filters rounded up to whole vectors (half vectors for a few filters)."""
    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    if n_k <= lanes // 2:
        return lanes // 2
    return -(-n_k // lanes) * lanes


@njit(cache=True)
def filter_table(w, flip, paired, table):
    """The direct kernels' filter table for ``w (fh, fw, C, K)``, into ``table``: tap ``t = (p, q, c)``'s
    filters ``w[p, q, c, :]``, or with ``flip`` (the input gradient's full correlation) tap
    ``t = (p, q, k)``'s ``w[fh-1-p, fw-1-q, :, k]``. Plain, ``table (T, K_pad)`` holds tap ``t``'s
    filter ``j`` at ``[t, j]``; ``paired`` (:func:`conv_nhwc`'s tap pairs), ``table (T / 2, 2 K_pad)``
    at ``[t // 2, 2 j + t % 2]``. The padded filters are zero. One call for what took a transposing
    copy, a zero fill and two to three strided copies in NumPy, on every layer's every pass."""
    fh, fw, n_c, n_k = w.shape
    n_in, n_out = (n_k, n_c) if flip else (n_c, n_k)
    flat = table.reshape(table.size)
    for j in range(flat.size):
        flat[j] = 0
    for p in range(fh):
        for q in range(fw):
            for i in range(n_in):
                t = (p * fw + q) * n_in + i
                for j in range(n_out):
                    value = w[fh - 1 - p, fw - 1 - q, j, i] if flip else w[p, q, i, j]
                    if paired:
                        table[t // 2, 2 * j + t % 2] = value
                    else:
                        table[t, j] = value


@njit(cache=True, inline="always")
def _by_channel_vectors(route, n_c, k_pad, lanes, n_taps, offsets):
    """Whether :func:`conv_weight_grads` takes tiles along the channels: one vector of filters, no
    route, and taps that are window positions of whole vectors of consecutive channels."""
    if route is not None or not _BY_CHANNELS or k_pad != lanes or n_c % lanes or n_taps % n_c:
        return False
    for t in range(n_taps):
        if offsets[t] != offsets[t - t % n_c] + t % n_c:
            return False
    return True


@njit(cache=True)
def _one_rgb_tile(n_taps, k_pad, lanes):
    """Whether :func:`conv_weight_grads` sums all taps of a 3 x 3 window over 3 channels in one tile
    (one vector of filters, where the registers hold its 27 sums)."""
    return _RGB_WINDOW and n_taps == _RGB_TAPS and k_pad == lanes


def reads_each_gradient_once(n_taps: int, k_pad: int, dtype) -> bool:
    """Whether :func:`conv_weight_grads` reads each output gradient vector once: one tile holds all
    ``n_taps`` taps of a vector of filters (an RGB 3 x 3 window, or at most one block of taps). Its
    routed form computes each gradient where it reads it, so it pays only then: Happy's 147 taps in
    19 tiles made its epoch 1.35x longer."""
    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    return _one_rgb_tile(n_taps, k_pad, lanes) or n_taps <= (TAP_BLOCK if k_pad <= lanes else TAP_BLOCK // 2)


def _forward_cost(x_pad, offsets, n_taps, weights, bias, out, moments, residual):
    """:func:`conv_nhwc`'s multiply-adds: pixels x taps x filters."""
    return out.size * n_taps


@kernel(cost=_forward_cost)
def conv_nhwc(x_pad, offsets, n_taps, weights, bias, out, moments, residual):
    """Direct stride-1 convolution: ``out[i, h, v, k] = bias[k] + sum_{t < n_taps} weights[t, k]
    * x_flat[((i * H_pad + h) * W_pad + v) * C + offsets[t]]`` (see the module docstring).

    x_pad (m, H_pad, W_pad, C), C-contiguous; offsets (>= n_taps,) int64; weights (n_taps, K_pad) and
    bias (K_pad,) zero-padded, ``K_pad = filter_lanes(K)``; out (m, n_H, n_W, K), written in place,
    ``n_W >= MIN_WIDTH``. For ``K`` of one vector or less, ``weights`` may instead be a table of tap
    pairs, ``(n_taps / 2, 2 * K_pad)`` (:func:`~._simd.forward_row`'s ``paired``; its caller checks
    that the taps come in adjacent pairs): every lane busy with half a vector of filters, and one
    broadcast for two FMAs with one vector.

    ``moments`` (m * n_H, 3, weights.shape[1]), or with no rows for none: each output row's moments as the
    tiles compute them (``moments[r] = (y_r0, sum_v (y_rv - y_r0), sum_v (y_rv - y_r0)^2)`` per
    filter, in the data's type), for a batch norm's statistics without a pass of their own
    (:func:`~npconv.functional.conv.conv2d_forward_with_moments`).

    ``residual`` like ``out``, or empty for none: added to each output as it is written (an input
    gradient summed with the other branch's gradient of the same input, a residual block's).
    """
    m, h_pad, w_pad, n_c = x_pad.shape
    n_h, n_w, n_k = out.shape[1], out.shape[2], out.shape[3]
    k_pad = weights.shape[1]
    x, w, o = x_pad.reshape(x_pad.size), weights.reshape(weights.size), out.reshape(out.size)
    with_moments = moments.shape[0] > 0
    sums = moments.reshape(moments.size)
    added, with_residual = residual.reshape(residual.size), residual.size > 0
    for row in prange(m * n_h):
        i = row // n_h
        x_row = (i * h_pad + row - i * n_h) * w_pad
        m_row = row * 3 * k_pad if with_moments else -1
        filter_rows(
            x, x_row, n_c, offsets, n_taps, w, k_pad, o, row * n_w, n_k, bias, n_w, sums, m_row, added, with_residual
        )


@njit(cache=True, inline="always")
def filter_rows(x, x_row, n_c, offsets, n_taps, w, k_pad, o, o_row, n_k, bias, n_w, sums, m_row, added, with_residual):
    """One output row of :func:`conv_nhwc` for every block of filters, by the tiles of
    :func:`~._simd.forward_row`: ``n_w`` positions from ``o_row`` (``n_k`` outputs each) over input
    positions from ``x_row`` (``n_c`` values each), the table ``w (n_taps, k_pad)`` or its tap pairs
    (``(n_taps / 2, 2 k_pad)``, see :func:`conv_nhwc`), the row's moments from ``sums[m_row]``
    (``m_row < 0``: none). Inlined into :func:`conv_nhwc` and into the Winograd kernel's products
    (:mod:`.winograd`), which are rows of 1 x 1 convolutions."""
    lanes = VECTOR_BYTES // x.itemsize
    # A table twice filter_lanes(n_k) wide holds tap pairs: filter_lanes never gives that width.
    paired = k_pad == lanes and n_k <= lanes // 2 or k_pad == 2 * lanes and n_k <= lanes
    source = (x, x_row, n_c, offsets)  # the row's arguments before the taps' count, then after it
    target = (o, o_row, n_k, bias)
    extras = (n_w, sums, m_row, added, with_residual)
    if paired and k_pad == lanes:
        _paired_row(*source, n_taps // 2, w, k_pad, 0, *target, n_k, *extras)
    elif paired:
        _paired_two_vector_row(*source, n_taps // 2, w, k_pad, 0, *target, n_k, *extras)
    k0 = n_k if paired else 0
    while k0 < n_k:
        left = n_k - k0
        extras = (n_w, sums, m_row + k0 if m_row >= 0 else -1, added, with_residual)
        if left > lanes:
            _two_vector_row(*source, n_taps, w, k_pad, k0, *target, min(left, 2 * lanes), *extras)
            k0 += 2 * lanes
        elif left > lanes // 2:
            _one_vector_row(*source, n_taps, w, k_pad, k0, *target, left, *extras)
            k0 += lanes
        else:
            _half_vector_row(*source, n_taps, w, k_pad, k0, *target, left, *extras)
            k0 += lanes // 2


def _weight_grads_cost(x_pad, dout, top, left, n_h, n_w, offsets, n_taps, with_bias, route):
    """:func:`conv_weight_grads`' multiply-adds: pixels x taps x filters."""
    return x_pad.shape[0] * n_h * n_w * dout.shape[3] * n_taps


@njit(cache=True, inline="always")
def _pooled_start(route, i):
    """Where image ``i``'s values start in ``route``'s pooled gradient (0 without a route)."""
    if route is None:
        return 0
    pooled = route[0]
    return i * pooled.shape[1] * pooled.shape[2] * pooled.shape[3]


@kernel(cost=_weight_grads_cost)
def conv_weight_grads(x_pad, dout, top, left, n_h, n_w, offsets, n_taps, with_bias, route):
    """Weight and bias gradients of :func:`conv_nhwc`, ``(dw, db)``: ``dw (n_taps, K_pad)``,
    ``dw[t, k] = sum over pixels (i, h, v) of x_flat[((i * H_pad + h) * W_pad + v) * C + offsets[t]]
    * g[i, h, v, k]``, and ``db (K_pad,)`` the sum of ``g`` over the pixels (zeros unless
    ``with_bias``), taken by the first tile of taps from the same loads.

    x_pad as for :func:`conv_nhwc`; the output gradient ``g (m, n_H, n_W, K_pad)`` is
    ``dout[:, top : top + n_H, left : left + n_W]``, dout C-contiguous (the whole of it, or a
    zero-bordered buffer holding it: the input gradient's padded operand), its padded filters zero;
    offsets padded to a multiple of :data:`TAP_BLOCK`. The pixels are split into bands of whole rows
    (about :data:`BAND_PIXELS`, several images when they are small, but never more than half the
    batch: with one band, each thread read the whole batch's input and gradient for its blocks of
    taps, from the other core's cache or memory); each (band, block of taps) sums into the band's
    partial, and the partials are added in band order. A 3 x 3 window over 3 channels
    with one vector of filters is one block of 27 taps where the registers hold it. Each tap's sum
    runs over the pixels in the same order whatever its block: the same bits either way.

    ``route``: ``None``, or ``(pooled, winner, constants, relu)`` for a first layer whose output a
    training batch norm (+ ReLU) and a 2 x 2 max pool read: ``dout`` is then the batch norm's input
    (``top = left = 0``) and each output gradient is computed from it as it is read (see
    :func:`~._simd.weight_grad_tile`), the batch norm's full-size input gradient never written.
    """
    m, h_pad, w_pad, n_c = x_pad.shape
    g_height, g_width, k_pad = dout.shape[1], dout.shape[2], dout.shape[3]
    g_row = g_width * k_pad
    lanes = VECTOR_BYTES // x_pad.itemsize
    rows_per_band = max(1, min(n_h, BAND_PIXELS // n_w))
    images_per_band = max(1, min(BAND_PIXELS // (n_h * n_w), (m + 1) // 2)) if rows_per_band == n_h else 1
    bands_per_image = (n_h + rows_per_band - 1) // rows_per_band
    n_bands = bands_per_image * ((m + images_per_band - 1) // images_per_band)
    bands = (n_bands, bands_per_image, rows_per_band, images_per_band)
    if _by_channel_vectors(route, n_c, k_pad, lanes, n_taps, offsets):
        return _weight_grads_by_channels(x_pad, dout, top, left, n_h, n_w, offsets, n_taps, with_bias, bands)
    rgb_window = _one_rgb_tile(n_taps, k_pad, lanes)
    n_tap_blocks = (n_taps + TAP_BLOCK - 1) // TAP_BLOCK
    bias_row = n_tap_blocks * TAP_BLOCK  # each band's partial: its taps' rows, then the bias's
    if rgb_window:
        n_tap_blocks = 1
    partials = np.zeros((n_bands, bias_row + 1, k_pad), x_pad.dtype)
    x, g = x_pad.reshape(x_pad.size), dout.reshape(dout.size)
    for item in prange(n_bands * n_tap_blocks):
        band, t0 = item // n_tap_blocks, (item % n_tap_blocks) * TAP_BLOCK
        acc = partials[band].reshape(partials.shape[1] * k_pad)
        first_image, end_image, h0, n_rows = _band_rows(band, bands, m, n_h)
        for i in range(first_image, end_image):
            x0 = (i * h_pad + h0) * w_pad * n_c
            g0 = ((i * g_height + top + h0) * g_width + left) * k_pad
            p0 = _pooled_start(route, i)
            k0 = 0
            while k0 < k_pad:
                a0 = t0 * k_pad + k0
                b0 = bias_row * k_pad + k0 if with_bias and t0 == 0 else -1
                if rgb_window:
                    _rgb_window_grads(
                        x,
                        x0,
                        w_pad * n_c,
                        n_c,
                        offsets,
                        0,
                        g,
                        g0,
                        g_row,
                        k_pad,
                        n_rows,
                        n_w,
                        acc,
                        0,
                        k_pad,
                        b0,
                        route,
                        p0,
                        h0,
                    )
                    k0 += lanes
                elif k_pad - k0 > lanes:  # two vectors of filters: the block's taps in two tiles
                    # (the second skipped where it holds only the table's padding: Happy's 147 taps)
                    for t in range(t0, min(t0 + TAP_BLOCK, n_taps), TAP_BLOCK // 2):
                        _two_vector_grads(
                            x,
                            x0,
                            w_pad * n_c,
                            n_c,
                            offsets,
                            t,
                            g,
                            g0 + k0,
                            g_row,
                            k_pad,
                            n_rows,
                            n_w,
                            acc,
                            t * k_pad + k0,
                            k_pad,
                            b0 if t == t0 else -1,
                            route,
                            p0,
                            h0,
                        )
                    k0 += 2 * lanes
                elif k_pad - k0 > lanes // 2:
                    _one_vector_grads(
                        x,
                        x0,
                        w_pad * n_c,
                        n_c,
                        offsets,
                        t0,
                        g,
                        g0 + k0,
                        g_row,
                        k_pad,
                        n_rows,
                        n_w,
                        acc,
                        a0,
                        k_pad,
                        b0,
                        route,
                        p0,
                        h0,
                    )
                    k0 += lanes
                else:
                    _half_vector_grads(
                        x,
                        x0,
                        w_pad * n_c,
                        n_c,
                        offsets,
                        t0,
                        g,
                        g0 + k0,
                        g_row,
                        k_pad,
                        n_rows,
                        n_w,
                        acc,
                        a0,
                        k_pad,
                        b0,
                        route,
                        p0,
                        h0,
                    )
                    k0 += lanes // 2
    return _band_totals(partials[:, :n_taps], partials[:, bias_row])


@njit(cache=True, inline="always")
def _band_rows(band, bands, m, n_h):
    """Weight-gradient band ``band``'s images ``first .. end - 1`` and, in each, its ``n_rows`` output
    rows from ``h0``: ``(first, end, h0, n_rows)``; ``bands`` is ``(n_bands, bands_per_image,
    rows_per_band, images_per_band)``."""
    _, bands_per_image, rows_per_band, images_per_band = bands
    first = (band // bands_per_image) * images_per_band
    h0 = (band % bands_per_image) * rows_per_band
    return first, min(m, first + images_per_band), h0, min(rows_per_band, n_h - h0)


@njit(cache=True, inline="always")
def _band_totals(tap_partials, bias_partials):
    """``(dw (n_taps, K_pad), db (K_pad,))``: the bands' partial sums ``tap_partials (bands, n_taps,
    K_pad)`` and ``bias_partials (bands, K_pad)`` added in band order (the same bits on any thread
    count). Explicit loops: an array expression here would become a parallel loop per band (parfors)."""
    n_bands, n_taps, k_pad = tap_partials.shape
    dw = np.zeros((n_taps, k_pad), tap_partials.dtype)
    db = np.zeros(k_pad, tap_partials.dtype)
    for band in range(n_bands):
        for t in range(n_taps):
            for k in range(k_pad):
                dw[t, k] += tap_partials[band, t, k]
        for k in range(k_pad):
            db[k] += bias_partials[band, k]
    return dw, db


@njit(cache=True, inline="always")
def _weight_grads_by_channels(x_pad, dout, top, left, n_h, n_w, offsets, n_taps, with_bias, bands):
    """:func:`conv_weight_grads` by tiles along the channels (see :data:`_CHANNEL_POSITIONS`), in its
    bands: each (band, tile) sums into the band's partial, held filter by filter ``(K_pad, n_taps)``
    for the tiles' channel vectors, whose sums are added in band order as there. Inlined into the
    kernel, so that its ``prange`` is the kernel's."""
    m, h_pad, w_pad, n_c = x_pad.shape
    g_height, g_width, k_pad = dout.shape[1], dout.shape[2], dout.shape[3]
    g_row = g_width * k_pad
    lanes = VECTOR_BYTES // x_pad.itemsize
    n_bands = bands[0]
    n_positions = n_taps // n_c
    position_groups = (n_positions + _CHANNEL_POSITIONS - 1) // _CHANNEL_POSITIONS
    filter_groups = k_pad // _CHANNEL_FILTERS
    n_groups = position_groups * filter_groups * (n_c // lanes)
    partials = np.zeros((n_bands, k_pad, n_taps), x_pad.dtype)
    bias_partials = np.zeros((n_bands, k_pad), x_pad.dtype)
    x, g = x_pad.reshape(x_pad.size), dout.reshape(dout.size)
    for item in prange(n_bands * n_groups):
        band, group = item // n_groups, item % n_groups
        u0 = (group % position_groups) * _CHANNEL_POSITIONS
        f0 = (group // position_groups) % filter_groups * _CHANNEL_FILTERS
        c0 = group // (position_groups * filter_groups) * lanes
        n_u = min(_CHANNEL_POSITIONS, n_positions - u0)
        acc = partials[band].reshape(k_pad * n_taps)
        a0 = f0 * n_taps + u0 * n_c + c0
        first_image, end_image, h0, n_rows = _band_rows(band, bands, m, n_h)
        for i in range(first_image, end_image):
            x0 = (i * h_pad + h0) * w_pad * n_c
            g0 = ((i * g_height + top + h0) * g_width + left) * k_pad
            source = (x, x0, w_pad * n_c, n_c, offsets, u0 * n_c, n_c, c0)
            target = (g, g0 + f0, g_row, k_pad, n_rows, n_w, acc, a0, n_c, n_taps)
            if n_u == 3:
                _three_position_grads(*source, *target)
            elif n_u == 2:
                _two_position_grads(*source, *target)
            else:
                _one_position_grads(*source, *target)
            if with_bias and group == 0:  # the band's bias gradient, image by image as the tiles sum it
                image_sums = np.zeros(k_pad, x_pad.dtype)
                for r in range(n_rows):
                    for v in range(n_w):
                        at = g0 + r * g_row + v * k_pad
                        for k in range(k_pad):
                            image_sums[k] += g[at + k]
                for k in range(k_pad):
                    bias_partials[band, k] += image_sums[k]
    return _band_totals(partials.transpose(0, 2, 1), bias_partials)


@kernel()
def col2im(dcols, sh, sw, dx_pad):
    """Scatter-add patch gradients ``dcols (m, n_H, n_W, fh, fw, n_C)`` onto ``dx_pad (m, H_pad, W_pad, n_C)``.

    One pass over ``dcols`` (the NumPy tier makes ``fh * fw`` strided passes over ``dx_pad``).
    """
    m, n_h, n_w, fh, fw, n_c = dcols.shape
    for i in prange(m):
        dx_pad[i] = 0.0
        for h in range(n_h):
            for v in range(n_w):
                for p in range(fh):
                    for q in range(fw):
                        target = dx_pad[i, h * sh + p, v * sw + q]
                        source = dcols[i, h, v, p, q]
                        for c in range(n_c):
                            target[c] += source[c]
