"""Compiled 3 x 3 stride-1 convolutions by Winograd's minimal filtering F(2 x 2, 3 x 3).

Lavin and Gray's algorithm (*Fast Algorithms for Convolutional Neural Networks*, 2016): a 2 x 2
tile of outputs of a 3 x 3 correlation is ::

    Y = A^T [ (G g G^T) . (B^T d B) ] A

for the tile's 4 x 4 window ``d`` of the input and the 3 x 3 filter ``g``, ``.`` elementwise. Summed
over the channels, the 16 elementwise products become 16 matrix products,
``M[j] = V[j] @ U[j]`` for ``V[j] (tiles, C)`` the transformed windows and ``U[j] (C, K)`` the
transformed filters: 16 multiply-adds per channel and filter for 4 outputs where the direct kernel
does 36, paid for by the transforms (adds only, see :mod:`._winograd_simd`). With

    G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]

every coefficient is 0, +-1 or +-1/2, so the rounding stays that of a few more adds per output
(about 1e-7 relative in float32 on ``smallres``'s layers, as the direct kernel's).

The matrix products are the direct kernel's own tiles (:func:`~.conv.filter_rows`): a row of tiles
of ``V[j]`` is a row of positions of a 1 x 1 convolution with ``C`` taps. Each parallel item is a
block of about :data:`BLOCK_TILES` tiles of one image, transformed, multiplied and transformed back
while its ``V`` and ``M`` stay in the core's cache; blocks split the work by the shapes, never by the
thread count, so the results are the same on any number of threads.

The input gradient of such a convolution is the same kernel over the output gradient (padded by 1)
with the filters flipped and transposed, as :mod:`.conv`'s.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import kernel
from ._simd import ACCUMULATORS, VECTOR_BYTES, weight_grad_tile
from ._winograd_simd import gradient_tile, input_row, output_tile
from .conv import filter_rows

#: The sources these kernels inline, hashed: Numba caches them by this file alone (see ``_jit``).
INLINED_SOURCES = "b7f138524e13f918"

__all__ = ["filter_transform", "conv3x3", "conv3x3_weight_grads"]

#: Tiles per parallel item of the forward: its transformed windows and products stay in cache.
BLOCK_TILES = 32
#: The fewest tiles across the output the kernels take: a block's products are rows of at least
#: this many tiles, and the direct kernel's forward tiles (8 positions) read rows of 4 or more.
MIN_TILES_WIDE = 4
#: Tiles per band of the weight gradient (whole images, at most half the batch): each band sums
#: its share into a partial of its own, and the partials are added in band order.
BAND_TILES = 512
#: Tiles per chunk of the weight gradient, transformed and multiplied while they stay in cache.
CHUNK_TILES = 64

# The 16 planes of a block's transformed windows (or products, or gradients) lie a tile more than
# the block apart: a power-of-two distance (32 tiles of 16 channels, 2 KB) put a transform's 16
# stores in one set of the L1 cache, which holds 8 of them (the weight gradient 1.4x faster, the
# forward 1.1-1.25x, with the gap).
#
# Tiles of channels x filter vectors: 16 x 1 or 8 x 2 with AVX-512, and 8 x 1 where the channels
# are not a multiple of 16 (float64's whole vectors are 8 channels).
_one_vector_grads = weight_grad_tile(ACCUMULATORS, 1)
_one_vector_half_grads = weight_grad_tile(ACCUMULATORS // 2, 1)
_two_vector_grads = weight_grad_tile(ACCUMULATORS // 2, 2)


@njit(cache=True)
def filter_transform(w, flip, table):
    """``table[j, c, k]``, ``(16, C, K)``: the transformed filters ``G g G^T`` of ``w (3, 3, C, K)``
    (entry ``j = 4 r + s``), in float64 and rounded once to the table's type; with ``flip``, those
    of the input gradient's kernel, ``g[p, q] = w[2 - p, 2 - q, k, c]`` for a ``(16, K, C)`` table.
    Loops along the filters, which both ``w`` and the table hold contiguous (vectorised: a loop
    along the channels took 0.2 ms for 64 x 64 filters, as long as a tenth of the convolution)."""
    n_in, n_out = table.shape[1], table.shape[2]
    g = np.empty((3, 3, n_out))
    half = np.empty((4, 3, n_out))
    for c in range(n_in):
        for p in range(3):
            for q in range(3):
                for k in range(n_out):
                    g[p, q, k] = w[2 - p, 2 - q, k, c] if flip else w[p, q, c, k]
        for q in range(3):
            for k in range(n_out):
                half[0, q, k] = g[0, q, k]
                half[1, q, k] = 0.5 * (g[0, q, k] + g[1, q, k] + g[2, q, k])
                half[2, q, k] = 0.5 * (g[0, q, k] - g[1, q, k] + g[2, q, k])
                half[3, q, k] = g[2, q, k]
        for r in range(4):
            for k in range(n_out):
                table[4 * r, c, k] = half[r, 0, k]
                table[4 * r + 1, c, k] = 0.5 * (half[r, 0, k] + half[r, 1, k] + half[r, 2, k])
                table[4 * r + 2, c, k] = 0.5 * (half[r, 0, k] - half[r, 1, k] + half[r, 2, k])
                table[4 * r + 3, c, k] = half[r, 2, k]


def _cost(x_pad, offsets, filters, bias, out, moments, residual):
    """:func:`conv3x3`'s multiply-adds: 16 per tile, channel and filter."""
    return out.size // 4 * 16 * x_pad.shape[3]


@kernel(cost=_cost)
def conv3x3(x_pad, offsets, filters, bias, out, moments, residual):
    """:func:`~.conv.conv_nhwc` for a 3 x 3 window by F(2 x 2, 3 x 3): ``out[i, h, v, k] = bias[k] +
    sum_{p, q, c} x_pad[i, h + p, v + q, c] * w[p, q, c, k]``, ``filters`` the table of
    :func:`filter_transform`.

    x_pad (m, n_H + 2, n_W + 2, C), C-contiguous; offsets ``(>= C,)`` int64, ``offsets[c] = c`` (the
    products' 1 x 1 taps); filters (16, C, K); bias (K,); out (m, n_H, n_W, K), written in place.
    ``n_H`` and ``n_W`` even, ``n_W >= 2 * MIN_TILES_WIDE``, ``C`` and ``K`` whole vectors. ``moments`` and
    ``residual`` as :func:`~.conv.conv_nhwc`'s (``moments (m * n_H, 3, K)``).
    """
    m, h_pad, w_pad, n_c = x_pad.shape
    n_h, n_w, n_k = out.shape[1], out.shape[2], out.shape[3]
    lanes = VECTOR_BYTES // x_pad.itemsize
    tiles_high, tiles_wide = n_h // 2, n_w // 2
    rows_per_block = max(1, min(tiles_high, BLOCK_TILES // tiles_wide))
    blocks_per_image = (tiles_high + rows_per_block - 1) // rows_per_block
    x, o, u = x_pad.reshape(x_pad.size), out.reshape(out.size), filters.reshape(filters.size)
    sums, with_moments = moments.reshape(moments.size), moments.shape[0] > 0
    added, with_residual = residual.reshape(residual.size), residual.size > 0
    plane = n_c * n_k
    no_bias = np.zeros(n_k, x_pad.dtype)
    for item in prange(m * blocks_per_image):
        i, r0 = item // blocks_per_image, (item % blocks_per_image) * rows_per_block
        n_rows = min(rows_per_block, tiles_high - r0)
        n_tiles = n_rows * tiles_wide
        spaced = n_tiles + 1  # planes a tile apart more (see above)
        windows = np.empty(16 * spaced * n_c, x_pad.dtype)
        products = np.empty(16 * spaced * n_k, x_pad.dtype)
        _transform_windows(x, (i * h_pad + 2 * r0) * w_pad, n_rows, tiles_wide, w_pad, n_c, windows, 0, spaced)
        for j in range(16):
            filter_rows(
                windows,
                j * spaced,
                n_c,
                offsets,
                n_c,
                u[j * plane : (j + 1) * plane],
                n_k,
                products,
                j * spaced,
                n_k,
                no_bias,
                n_tiles,
                sums,
                -1,
                added,
                False,
            )
        for r in range(n_rows):
            h = 2 * (r0 + r)
            o0 = (i * n_h + h) * n_w * n_k
            mo = (i * n_h + h) * 3 * n_k if with_moments else -1
            for t in range(tiles_wide):
                m0 = r * tiles_wide + t
                for k in range(0, n_k, lanes):
                    output_tile(
                        products,
                        m0 * n_k + k,
                        spaced * n_k,
                        o,
                        o0 + 2 * t * n_k + k,
                        n_w * n_k,
                        n_k,
                        bias,
                        k,
                        added,
                        with_residual,
                        sums,
                        mo + k if with_moments else -1,
                        n_k,
                        t == 0,
                    )


@njit(cache=True, inline="always")
def _transform_windows(x, x_row, n_rows, tiles_wide, w_pad, n_c, windows, first_tile, spaced):
    """The input transforms of ``n_rows`` rows of ``tiles_wide`` windows from input row ``x_row``
    (positions of ``n_c`` values, ``w_pad`` a row, windows two rows apart) into ``windows``,
    ``(16, spaced, n_c)``, as its tiles from ``first_tile``."""
    lanes = VECTOR_BYTES // x.itemsize
    for r in range(n_rows):
        x0 = (x_row + 2 * r * w_pad) * n_c
        v0 = (first_tile + r * tiles_wide) * n_c
        for c in range(0, n_c, lanes):
            input_row(x, x0 + c, w_pad * n_c, n_c, tiles_wide, windows, v0 + c, n_c, spaced * n_c)


def _weight_cost(x_pad, dout, top, left, offsets, with_bias, dw):
    """:func:`conv3x3_weight_grads`' multiply-adds: 16 per tile, channel and filter."""
    return x_pad.shape[0] * (x_pad.shape[1] - 2) * (x_pad.shape[2] - 2) // 4 * 16 * x_pad.shape[3] * dw.shape[3]


@kernel(cost=_weight_cost)
def conv3x3_weight_grads(x_pad, dout, top, left, offsets, with_bias, dw):
    """The weight and bias gradients of :func:`conv3x3`: ``dw (3, 3, C, K)`` written, ``db (K,)``
    returned (zeros unless ``with_bias``).

    The gradient of the transformed filters is ``dU[j] = sum over tiles of V[j]^T (A e A^T)[j]``
    for ``e`` each tile of the output gradient, matrix products summed along the tiles (the direct
    kernel's weight-gradient tiles, :func:`~._simd.weight_grad_tile`, with the channels for taps);
    then ``dw = G^T dU G`` per channel and filter, in float64. x_pad as :func:`conv3x3`'s; the
    output gradient ``g (m, n_H, n_W, K)`` is ``dout[:, top : top + n_H, left : left + n_W]`` (the
    whole of ``dout``, or the input gradient's zero-bordered operand holding it); offsets as
    :func:`conv3x3`'s.
    """
    m, h_pad, w_pad, n_c = x_pad.shape
    n_h, n_w = h_pad - 2, w_pad - 2
    n_k = dout.shape[3]
    tiles_high, tiles_wide = n_h // 2, n_w // 2
    per_image = tiles_high * tiles_wide
    # A chunk: rows of one image's tiles, or whole images where they are small. The products sum
    # along a chunk's tiles, and a short run spends its time loading and storing the sums.
    rows_per_chunk = max(1, min(tiles_high, CHUNK_TILES // tiles_wide))
    images_per_chunk = max(1, CHUNK_TILES // per_image) if rows_per_chunk == tiles_high else 1
    images_per_band = max(1, min(BAND_TILES // per_image, (m + 1) // 2))
    images_per_band = max(images_per_chunk, images_per_band // images_per_chunk * images_per_chunk)
    n_bands = (m + images_per_band - 1) // images_per_band
    chunk_tiles = images_per_chunk * rows_per_chunk * tiles_wide
    plane = n_c * n_k
    partials = np.zeros((n_bands, 16 * plane + n_k), x_pad.dtype)
    x, g = x_pad.reshape(x_pad.size), dout.reshape(dout.size)
    for band in prange(n_bands):
        acc = partials[band]
        windows = np.empty(16 * (chunk_tiles + 1) * n_c, x_pad.dtype)
        grads = np.empty(16 * (chunk_tiles + 1) * n_k, x_pad.dtype)
        band_end = min(m, (band + 1) * images_per_band)
        for first in range(band * images_per_band, band_end, images_per_chunk):
            n_images = min(images_per_chunk, band_end - first)
            for r0 in range(0, tiles_high, rows_per_chunk):
                n_rows = min(rows_per_chunk, tiles_high - r0)
                n_tiles = n_images * n_rows * tiles_wide
                for i in range(first, first + n_images):
                    t0 = (i - first) * n_rows * tiles_wide
                    _transform_windows(
                        x, (i * h_pad + 2 * r0) * w_pad, n_rows, tiles_wide, w_pad, n_c, windows, t0, chunk_tiles + 1
                    )
                    _transform_gradients(
                        g,
                        i,
                        r0,
                        n_rows,
                        tiles_wide,
                        top,
                        left,
                        dout.shape,
                        grads,
                        t0,
                        chunk_tiles + 1,
                        acc,
                        with_bias,
                        16 * plane,
                    )
                for j in range(16):
                    _tile_products(windows, grads, j, chunk_tiles + 1, n_tiles, n_c, n_k, offsets, acc, j * plane)
    return _filter_gradient(partials, n_c, n_k, dw)


@njit(cache=True, inline="always")
def _transform_gradients(g, i, r0, n_rows, tiles_wide, top, left, shape, grads, first_tile, spaced, acc, with_bias, b0):
    """The transforms ``A e A^T`` of the output gradient's tiles, rows ``r0 .. r0 + n_rows - 1`` of
    image ``i``'s, into ``grads`` ``(16, spaced, K)`` as its tiles from ``first_tile``; ``g`` the
    flat gradient of ``shape (m, height, width, K)`` whose tiles start at row ``top``, column
    ``left``. With ``with_bias``, each tile's sum added to ``acc[b0 ..]``."""
    g_height, g_width, n_k = shape[1], shape[2], shape[3]
    lanes = VECTOR_BYTES // g.itemsize
    for r in range(n_rows):
        g0 = ((i * g_height + top + 2 * (r0 + r)) * g_width + left) * n_k
        for t in range(tiles_wide):
            tile = first_tile + r * tiles_wide + t
            for k in range(0, n_k, lanes):
                at = g0 + 2 * t * n_k + k
                gradient_tile(
                    g, at, g_width * n_k, n_k, grads, tile * n_k + k, spaced * n_k, acc, b0 + k if with_bias else -1
                )


@njit(cache=True, inline="always")
def _tile_products(windows, grads, j, spaced, n_tiles, n_c, n_k, offsets, acc, a0):
    """``acc[a0 + c * n_k + k] += sum_t windows[j, t, c] * grads[j, t, k]``: product ``j``'s share
    of ``dU``, by the weight-gradient tiles (channels for taps, tiles for positions)."""
    lanes = VECTOR_BYTES // windows.itemsize
    x0, e0 = j * spaced * n_c, j * spaced * n_k
    k = 0
    while k < n_k:
        two = n_k - k > lanes
        taps = ACCUMULATORS if not two and n_c % ACCUMULATORS == 0 else ACCUMULATORS // 2
        for c in range(0, n_c, taps):
            source = (windows, x0, 0, n_c, offsets, c, grads, e0 + k, 0, n_k, 1, n_tiles, acc)
            if two:
                _two_vector_grads(*source, a0 + c * n_k + k, n_k, -1, None, 0, 0)
            elif taps == ACCUMULATORS:
                _one_vector_grads(*source, a0 + c * n_k + k, n_k, -1, None, 0, 0)
            else:
                _one_vector_half_grads(*source, a0 + c * n_k + k, n_k, -1, None, 0, 0)
        k += 2 * lanes if two else lanes


@njit(cache=True, inline="always")
def _filter_gradient(partials, n_c, n_k, dw):
    """``dw = G^T dU G`` from the bands' partials of ``dU (16, C, K)`` (and of the bias's gradient,
    returned), added in band order, in float64 and rounded once to ``dw``'s type."""
    plane = n_c * n_k
    total = np.zeros(partials.shape[1])
    for band in range(partials.shape[0]):
        for j in range(partials.shape[1]):
            total[j] += partials[band, j]
    half = np.empty((3, 4, n_k))
    for c in range(n_c):
        for s in range(4):
            at = s * plane + c * n_k
            u0 = total[at : at + n_k]
            u1 = total[at + 4 * plane : at + 4 * plane + n_k]
            u2 = total[at + 8 * plane : at + 8 * plane + n_k]
            u3 = total[at + 12 * plane : at + 12 * plane + n_k]
            for k in range(n_k):
                half[0, s, k] = u0[k] + 0.5 * (u1[k] + u2[k])
                half[1, s, k] = 0.5 * (u1[k] - u2[k])
                half[2, s, k] = 0.5 * (u1[k] + u2[k]) + u3[k]
        for p in range(3):
            for k in range(n_k):
                dw[p, 0, c, k] = half[p, 0, k] + 0.5 * (half[p, 1, k] + half[p, 2, k])
                dw[p, 1, c, k] = 0.5 * (half[p, 1, k] - half[p, 2, k])
                dw[p, 2, c, k] = 0.5 * (half[p, 1, k] + half[p, 2, k]) + half[p, 3, k]
    db = np.empty(n_k, dw.dtype)
    for k in range(n_k):
        db[k] = total[16 * plane + k]
    return db
