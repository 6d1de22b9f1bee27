"""Compiled batch normalisation over ``(N, C)`` rows: two passes over the data each way.

The NumPy tier makes about eleven passes over ``(N, C)`` for a training step (centre, square, sum,
scale, shift; then products and sums backward), each leaving the cache at Happy's size. Here the
forward reads ``x`` once for the statistics and once to write ``out``; the backward reads ``dout`` and
``x`` once for the two sums and once to write ``dx``.

Every kernel sees the data as *tiles*: the flat array cut into runs of ``L`` values, ``L`` a
multiple of ``C`` (:func:`tile_length`), so value ``j`` of every tile belongs to channel ``j % C``,
and each per-channel constant, given ``(C,)``, is repeated to length ``L`` once per call
(:func:`_tiled`). The inner loops then run ``L`` (64 or more) values long whatever the channel
count: along 8 or 16 channels they were too short to vectorise. Tiles are split into a fixed number
of blocks (:data:`BLOCKS`), one per ``prange`` iteration, whose float64 partial sums are added in
block order: the results do not depend on the number of threads. The rows left over after the last
whole tile are handled by the caller's tiles too: ``N * C`` need not be a multiple of ``L`` (see
:func:`_tiles`).

Batch norm followed by ReLU (``relu=True``) runs in the same passes: the forward clips as it writes,
and the backward recomputes ReLU's mask from ``x`` (which it reads anyway, :func:`_passed`) instead
of a ReLU layer's two passes and its stored output.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import kernel

#: The sources these kernels inline, hashed: Numba caches them by this file alone (see ``_jit``).
INLINED_SOURCES = "97bb75677132e40a"

__all__ = [
    "channel_moments",
    "combine_row_moments",
    "normalising_constants",
    "scale_shift",
    "input_gradient_constants",
    "training_backward",
    "update_moving",
    "tile_length",
]

#: Blocks of tiles per kernel call (at most): a few per thread on any machine, fixed for determinism.
BLOCKS = 32
#: Tiles whose terms the sums add in the data's type before the float64 totals: a quarter to a
#: third less time than converting every term, and a partial's relative error stays ~RUN * 6e-8.
RUN = 8


def tile_length(n_c: int) -> int:
    """The tile length ``L`` for ``n_c`` channels: the smallest multiple of ``n_c`` of at least 64."""
    return n_c * max(1, (64 + n_c - 1) // n_c)


@njit(cache=True, inline="always")
def _tiles(n_values, length, block, n_blocks):
    """``(start, stop)`` flat indices of ``block``'s share of the tiles; the last block also takes
    the values after the last whole tile (fewer than ``length``, a whole number of rows)."""
    n_tiles = n_values // length
    per_block = (n_tiles + n_blocks - 1) // n_blocks
    start = min(n_tiles, block * per_block) * length
    stop = min(n_tiles, (block + 1) * per_block) * length
    if block == n_blocks - 1:
        stop = n_values
    return start, stop


@njit(cache=True)
def _n_blocks(n_values, length):
    return max(1, min(BLOCKS, n_values // length))


@njit(cache=True, inline="always")
def _tiled(values, length, like):
    """``values (C,)`` repeated to ``length`` (a multiple of ``C``) in ``like``'s type: value ``j`` of
    a tile is channel ``j % C``'s (a float64 constant rounded to float32 as NumPy's astype does)."""
    tiled = np.empty(length, like.dtype)
    for j in range(length):
        tiled[j] = values[j % values.size]
    return tiled


@njit(cache=True, inline="always")
def _two_sums(n_blocks, length, like):
    """Zeroed partials of two sums per block, each ``(n_blocks, length)``: the float64 totals of
    both, then both current runs in ``like``'s type (added to the totals by :func:`_flush`)."""
    return (
        np.zeros((n_blocks, length)),
        np.zeros((n_blocks, length)),
        np.zeros((n_blocks, length), like.dtype),
        np.zeros((n_blocks, length), like.dtype),
    )


@njit(cache=True, inline="always")
def _flush(totals, partials, zero):
    """Add a run's ``partials`` (the data's type) to the float64 ``totals`` and clear them."""
    for j in range(partials.size):
        totals[j] += partials[j]
        partials[j] = zero


@kernel()
def combine_row_moments(partials, per_row, n_c):
    """``(mean, var)`` of the first ``n_c`` channels, float64, of ``R`` rows of ``per_row`` values
    each, from their partials ``(R, 3, C >= n_c)``: each row's first value, the sum of its values
    less that, and of their squares (:func:`~.conv.conv_nhwc`'s ``moments``; the lanes past the
    layer's filters, half of them with a table of tap pairs, are never written and never read).
    Chan's rule for equal counts: the mean of the rows' means, and ``M2 = sum_r M2_r + per_row *
    sum_r (mean_r - mean)^2`` with ``M2_r = s2 - s1^2 / per_row``. Rows in order: the same bits on
    any thread count."""
    n_rows = partials.shape[0]
    mean = np.zeros(n_c)
    m2 = np.zeros(n_c)
    # A product by the reciprocal, not a division per value: divisions bounded the loops (3x slower).
    per_value = 1.0 / per_row
    for r in range(n_rows):
        for c in range(n_c):
            mean[c] += np.float64(partials[r, 0, c]) + np.float64(partials[r, 1, c]) * per_value
    for c in range(n_c):
        mean[c] /= n_rows
    for r in range(n_rows):
        for c in range(n_c):
            s1 = np.float64(partials[r, 1, c])
            spread = np.float64(partials[r, 0, c]) + s1 * per_value - mean[c]
            m2[c] += np.float64(partials[r, 2, c]) - s1 * s1 * per_value + per_row * spread * spread
    var = np.zeros(n_c)
    for c in range(n_c):
        var[c] = max(m2[c] / (n_rows * per_row), 0.0)
    return mean, var


@njit(cache=True)
def normalising_constants(mean, var, gamma, beta, eps, out):
    """A training batch norm's per-channel constants from its float64 statistics, into ``out (5, C)``
    (the data's type): ``1 / sqrt(var + eps)``, the mean, the variance, ``scale = gamma * inv_std``
    and ``offset = beta - mean * scale``, computed in float64 as NumPy computes them (the same bits)
    and rounded once. One call for what took eleven NumPy operations on (C,) arrays."""
    for c in range(mean.size):
        inv_std = 1 / np.sqrt(var[c] + eps)
        scale = gamma[c] * inv_std
        out[0, c] = inv_std
        out[1, c] = mean[c]
        out[2, c] = var[c]
        out[3, c] = scale
        out[4, c] = beta[c] - mean[c] * scale


@njit(cache=True)
def update_moving(moving_mean, moving_var, mean, var, momentum, complement):
    """``moving = moving * momentum + complement * batch`` in place for the mean and the variance,
    all (C,) in one dtype, ``momentum`` and ``complement = 1 - momentum`` in it: NumPy's ``moving *=
    momentum; moving += (1 - momentum) * batch``, operation by operation (the same bits)."""
    for moving, batch in ((moving_mean, mean), (moving_var, var)):
        for c in range(moving.size):
            moving[c] = moving[c] * momentum
            moving[c] += complement * batch[c]


@kernel()
def channel_moments(x, shift, length):
    """``(sum(x - shift), sum((x - shift)^2))`` per channel, float64, for x (N, C), in tiles of
    ``length`` values.

    ``shift`` (C,) in x's type: a shift per channel (the caller's first row). The shift keeps
    ``E[d^2] - E[d]^2`` free of cancellation when the mean is large next to the spread.
    Partial sums over :data:`RUN` tiles, as in :func:`gradient_sums`.
    """
    n_c = x.shape[1]
    flat = x.ravel()
    shift_tiled = _tiled(shift, length, flat)
    n_blocks = _n_blocks(flat.size, length)
    zero = flat.dtype.type(0)
    sums, squares, run_sums, run_squares = _two_sums(n_blocks, length, flat)
    for block in prange(n_blocks):
        start, stop = _tiles(flat.size, length, block, n_blocks)
        rs, rq = run_sums[block], run_squares[block]
        for run in range(start, stop, RUN * length):
            for base in range(run, min(run + RUN * length, stop), length):
                values = flat[base : min(base + length, stop)]
                for j in range(values.size):
                    d = values[j] - shift_tiled[j]
                    rs[j] += d
                    rq[j] += d * d
            _flush(sums[block], rs, zero)
            _flush(squares[block], rq, zero)
    return _fold(sums, n_c), _fold(squares, n_c)


@njit(cache=True)
def _fold(partials, n_c):
    """Per-channel totals of ``partials (n_blocks, L)``, blocks in order, then the tile's channels."""
    out = np.zeros(n_c)
    for block in range(partials.shape[0]):
        for j in range(partials.shape[1]):
            out[j % n_c] += partials[block, j]
    return out


@njit(cache=True, inline="always")
def _affine(value, scale, offset, relu, zero):
    """``value * scale + offset``, then ``max(., 0)`` when ``relu`` (NaN stays NaN, as NumPy's);
    ``zero`` is 0 in the data's type (a float64 literal would turn float32 arithmetic into float64)."""
    y = value * scale + offset
    return zero if relu and y < zero else y


@njit(cache=True, inline="always")
def _passed(grad, value, scale, offset, relu, zero):
    """``grad`` where ReLU passed the forward's value (``value * scale + offset > 0``), else 0;
    ``grad`` itself without ``relu``. The same rounding as :func:`_affine`: the same mask."""
    return grad if not relu or value * scale + offset > zero else zero


@njit(cache=True, inline="always")
def _placed(base, layout):
    """Where value ``base`` of the flat rows goes in the flat target, ``layout = (origin, run, gap,
    runs, group_gap)``: runs of ``run`` values, ``gap`` values skipped after each and ``group_gap``
    more after every ``runs`` runs: the rows of a zero-bordered buffer's interior (a convolution's
    padded input, written by the layer before it). ``(0, N * C, 0, 1, 0)`` for plain rows. A tile
    never straddles two runs (the caller's tile length divides ``run``)."""
    run = base // layout[1]
    return layout[0] + base + run * layout[2] + (run // layout[3]) * layout[4]


@kernel()
def scale_shift(x, scale, offset, relu, out, layout, length):
    """``out[r, c] = x[r, c] * scale[c] + offset[c]`` (then ``max(., 0)`` when ``relu``) for x
    (N, C) in tiles of ``length`` values; scale, offset (C,); ``out`` flat, the rows placed by
    ``layout`` (:func:`_placed`)."""
    flat = x.ravel()
    scale_tiled, offset_tiled = _tiled(scale, length, flat), _tiled(offset, length, flat)
    n_blocks = _n_blocks(flat.size, length)
    zero = flat.dtype.type(0)
    for block in prange(n_blocks):
        start, stop = _tiles(flat.size, length, block, n_blocks)
        for base in range(start, stop, length):
            values = flat[base : min(base + length, stop)]
            at = _placed(base, layout)
            written = out[at : at + values.size]
            for j in range(values.size):
                written[j] = _affine(values[j], scale_tiled[j], offset_tiled[j], relu, zero)


@njit(cache=True, inline="always")
def _gradient_sums(dout, x, mean, scale, offset, relu, length):
    """``(sum(g), sum(g * (x - mean)))`` per channel, float64, for dout and x (N, C) in tiles of
    ``length`` values, with ``g`` the gradient ``dout`` masked by ReLU's (:func:`_passed`: the
    forward's ``scale``, ``offset``); mean, scale, offset (C,) in x's type."""
    n_c = x.shape[1]
    grads, flat = dout.ravel(), x.ravel()
    mean_tiled = _tiled(mean, length, flat)
    scale_tiled, offset_tiled = _tiled(scale, length, flat), _tiled(offset, length, flat)
    n_blocks = _n_blocks(flat.size, length)
    zero = flat.dtype.type(0)
    sums, products, run_sums, run_products = _two_sums(n_blocks, length, flat)
    for block in prange(n_blocks):
        start, stop = _tiles(flat.size, length, block, n_blocks)
        rs, rp = run_sums[block], run_products[block]
        for run in range(start, stop, RUN * length):
            for base in range(run, min(run + RUN * length, stop), length):
                g = grads[base : min(base + length, stop)]
                values = flat[base : min(base + length, stop)]
                for j in range(values.size):
                    grad = _passed(g[j], values[j], scale_tiled[j], offset_tiled[j], relu, zero)
                    rs[j] += grad
                    rp[j] += grad * (values[j] - mean_tiled[j])
            _flush(sums[block], rs, zero)
            _flush(products[block], rp, zero)
    return _fold(sums, n_c), _fold(products, n_c)


@njit(cache=True)
def input_gradient_constants(dbeta, centred_product, gamma, inv_std, mean, n):
    """``(dgamma, a, b, c0)`` per channel, float64, from the backward's sums ``dbeta = sum(g)`` and
    ``sum(g * (x - mean))`` over ``n`` rows: ``dx = a * g - b * (x - mean) - a * dbeta / n`` with
    ``a = gamma * inv_std`` and ``b = a * inv_std * dgamma / n`` is ``a * g - b * x + c0``. Each
    in float64 in NumPy's order of operations (gamma, inv_std and mean in the data's type)."""
    n_c = dbeta.size
    dgamma, a, b, c0 = np.empty(n_c), np.empty(n_c), np.empty(n_c), np.empty(n_c)
    for c in range(n_c):
        inv_std64 = np.float64(inv_std[c])
        dgamma[c] = centred_product[c] * inv_std64
        a[c] = np.float64(gamma[c]) * inv_std64
        b[c] = a[c] * inv_std64 * dgamma[c] / n
        c0[c] = b[c] * np.float64(mean[c]) - a[c] * dbeta[c] / n
    return dgamma, a, b, c0


@njit(cache=True, inline="always")
def _input_gradient(dout, x, a, b, c0, scale, offset, relu, dx, layout, length):
    """``dx[r, c] = a[c] * g[r, c] - b[c] * x[r, c] + c0[c]``, ``g`` as in :func:`_gradient_sums`,
    constants (C,) float64 used in x's type; tiles of ``length`` values; ``dx`` flat, the rows
    placed by ``layout`` (:func:`_placed`)."""
    grads, flat = dout.ravel(), x.ravel()
    a_tiled, b_tiled, c_tiled = _tiled(a, length, flat), _tiled(b, length, flat), _tiled(c0, length, flat)
    scale_tiled, offset_tiled = _tiled(scale, length, flat), _tiled(offset, length, flat)
    n_blocks = _n_blocks(flat.size, length)
    zero = flat.dtype.type(0)
    for block in prange(n_blocks):
        start, stop = _tiles(flat.size, length, block, n_blocks)
        for base in range(start, stop, length):
            end = min(base + length, stop)
            at = _placed(base, layout)
            g, values, written = grads[base:end], flat[base:end], dx[at : at + end - base]
            for j in range(values.size):
                grad = _passed(g[j], values[j], scale_tiled[j], offset_tiled[j], relu, zero)
                written[j] = a_tiled[j] * grad - b_tiled[j] * values[j] + c_tiled[j]


@kernel()
def training_backward(dout, x, mean, gamma, inv_std, scale, offset, relu, sums_length, dx, layout, length):
    """A training batch norm's backward in one call, ``(dgamma, dbeta)`` float64 returned and ``dx``
    written: the sums ``sum(g)`` and ``sum(g * (x - mean))`` over dout and x (N, C) in tiles of
    ``sums_length`` values, ``g`` the gradient masked by ReLU's (the forward's ``scale``,
    ``offset``); then :func:`input_gradient_constants`; then ``dx = a * g - b * x + c0`` in tiles of
    ``length`` values, ``dx`` flat, the rows placed by ``layout`` (:func:`_placed`). mean, gamma,
    inv_std, scale, offset (C,) in x's type. One call for two passes and the constants between
    them: no Python between the sums and the pass that needs them."""
    dbeta, centred_product = _gradient_sums(dout, x, mean, scale, offset, relu, sums_length)
    dgamma, a, b, c0 = input_gradient_constants(dbeta, centred_product, gamma, inv_std, mean, x.shape[0])
    _input_gradient(dout, x, a, b, c0, scale, offset, relu, dx, layout, length)
    return dgamma, dbeta
