"""Compiled batch norm (training), ReLU and the max pool that reads them: forward in one pass,
backward in two, for pool windows that tile the input (stride equal to the window, no padding).

Forward, :func:`scale_shift_max_pool` normalises, clips and pools each window in registers after
the statistics' pass: the full-size normalised array is never written.

Backward, the max pool sends each window's gradient to its winner and nothing to the rest, so the
gradient batch norm's backward receives is ``g = dout`` at the winners (then ReLU's mask) and 0
elsewhere. Run as two layers, the pool writes that mostly-zero full-size ``g`` and batch norm reads
it twice. Here both of batch norm's passes read ``g`` from the pooled ``dout`` and ``winner``
(a quarter of the size for 2x2 windows), selecting along the channels as the pool's backward does:
:func:`winner_gradient_sums` for ``sum(g)`` and ``sum(g * (x - mean))``, then
:func:`winner_input_gradient` for ``dx = a * g - b * x + c``. The sums are the two layers' in
another order (each pooled row's terms in the data's type, then float64, blocks fixed by the
shape): equal to rounding, the same bits on any thread count.
"""

from __future__ import annotations

from numba import njit, prange

from ._jit import kernel
from .batchnorm import BLOCKS, _affine, _flush, _fold, _passed, _two_sums
from .pool import _row_wins

#: The sources these kernels inline, hashed: Numba caches them by this file alone (see ``_jit``).
INLINED_SOURCES = "e8bf2b6e150472ef"

__all__ = ["scale_shift_max_pool", "winner_gradient_sums", "winner_input_gradient"]


@kernel()
def scale_shift_max_pool(x, scale, offset, relu, ph, pw, out, winner):
    """:func:`scale_shift` and a max pool of its output in one pass, for windows that tile the input:
    ``out[i, h, v, c] = max_{p<ph, q<pw} y[i, h*ph + p, v*pw + q, c]`` with ``y = x * scale[c] +
    offset[c]`` (then ``max(., 0)`` when ``relu``), ``winner`` the offset ``p * pw + q`` of the first
    maximum (a NaN always wins: the last NaN), as ``pool.max_pool_forward`` gives them for ``y``.
    ``y`` itself is never written.

    x (m, H, W, C) with ``H >= n_H * ph`` and ``W >= n_W * pw``; scale, offset (C,); out and winner
    (m, n_H, n_W, C), int32 winners, written in place.
    """
    m, n_h, n_w, n_c = out.shape
    zero = x.dtype.type(0)
    for row in prange(m * n_h):
        i = row // n_h
        h = row - i * n_h
        if ph == 2 and pw == 2:
            top, bottom = x[i, 2 * h], x[i, 2 * h + 1]
            for v in range(n_w):
                _scaled_window_2x2(top, bottom, 2 * v, scale, offset, relu, zero, out[i, h, v], winner[i, h, v])
        else:
            for v in range(n_w):
                best, won, first = out[i, h, v], winner[i, h, v], x[i, h * ph, v * pw]
                for c in range(n_c):
                    best[c] = _affine(first[c], scale[c], offset[c], relu, zero)
                    won[c] = 0
                for p in range(ph):
                    line = x[i, h * ph + p]
                    for q in range(pw):
                        if p == 0 and q == 0:
                            continue
                        offset_key = winner.dtype.type(p * pw + q)
                        candidate = line[v * pw + q]
                        for c in range(n_c):
                            value = _affine(candidate[c], scale[c], offset[c], relu, zero)
                            take = _row_wins(value, best[c])
                            best[c] = value if take else best[c]
                            won[c] = offset_key if take else won[c]


@njit(cache=True, inline="always")
def _scaled_window_2x2(top, bottom, left, scale, offset, relu, zero, best, won):
    """:func:`scale_shift_max_pool`'s window of rows ``top`` and ``bottom`` (W, C), columns ``left``
    and ``left + 1``, into ``best`` and ``won`` (C,): its four offsets in one loop along the
    channels, compared in the general loop's order (the same maxima and winners). The general loop
    runs one short channel loop per offset, each with its own set-up: 2.2x the time of this on
    ``smallres``'s 2 x 2 stem pool."""
    a, b, c, d = top[left], top[left + 1], bottom[left], bottom[left + 1]
    first, second, third, fourth = won.dtype.type(0), won.dtype.type(1), won.dtype.type(2), won.dtype.type(3)
    for k in range(best.size):
        value = _affine(a[k], scale[k], offset[k], relu, zero)
        key = first
        for candidate, candidate_key in ((b[k], second), (c[k], third), (d[k], fourth)):
            candidate = _affine(candidate, scale[k], offset[k], relu, zero)
            take = _row_wins(candidate, value)
            value = candidate if take else value
            key = candidate_key if take else key
        best[k], won[k] = value, key


@kernel()
def winner_gradient_sums(dout, winner, x, mean, scale, offset, relu, ph, pw):
    """``(sum(g), sum(g * (x - mean)))`` per channel, float64: ``g[i, h*ph + p, v*pw + q, c] =
    dout[i, h, v, c]`` where ``winner[i, h, v, c] == p * pw + q``, masked by ReLU's (the forward's
    ``scale`` and ``offset``, as :func:`~.batchnorm.gradient_sums`), and 0 elsewhere.

    x (m, H, W, C); dout and winner (m, n_H, n_W, C), ``H >= n_H * ph`` and ``W >= n_W * pw``;
    mean, scale, offset (C,) in x's type. Blocks of pooled rows, fixed by the shape, sum in order.
    """
    m, n_h, n_w, n_c = dout.shape
    rows = m * n_h
    n_blocks = max(1, min(BLOCKS, rows))
    zero = x.dtype.type(0)
    sums, products, run_sums, run_products = _two_sums(n_blocks, n_c, x)
    for block in prange(n_blocks):
        rs, rp = run_sums[block], run_products[block]
        for row in range(block * rows // n_blocks, (block + 1) * rows // n_blocks):
            i = row // n_h
            h = row - i * n_h
            for p in range(ph):
                line = x[i, h * ph + p]
                for v in range(n_w):
                    grads, won = dout[i, h, v], winner[i, h, v]
                    if pw == 2:
                        _pair_sums(grads, won, line[2 * v], line[2 * v + 1], 2 * p, mean, scale, offset, relu, rs, rp)
                        continue
                    for q in range(pw):
                        key = winner.dtype.type(p * pw + q)
                        values = line[v * pw + q]
                        for c in range(n_c):
                            routed = grads[c] if won[c] == key else zero
                            grad = _passed(routed, values[c], scale[c], offset[c], relu, zero)
                            rs[c] += grad
                            rp[c] += grad * (values[c] - mean[c])
            _flush(sums[block], rs, zero)
            _flush(products[block], rp, zero)
    return _fold(sums, n_c), _fold(products, n_c)


@njit(cache=True, inline="always")
def _pair_sums(grads, won, left, right, key, mean, scale, offset, relu, rs, rp):
    """:func:`winner_gradient_sums`' terms of a window row of two columns, ``left`` and ``right``
    (C,), the left one's offset ``key``: both in one loop along the channels, each channel's terms
    added in the general loop's order (the same bits), where that loop runs a short loop per column
    (1.3x the time at ``smallres``'s stem)."""
    zero = left.dtype.type(0)
    left_key, right_key = won.dtype.type(key), won.dtype.type(key + 1)
    for c in range(grads.size):
        first = _passed(grads[c] if won[c] == left_key else zero, left[c], scale[c], offset[c], relu, zero)
        second = _passed(grads[c] if won[c] == right_key else zero, right[c], scale[c], offset[c], relu, zero)
        rs[c] += first
        rp[c] += first * (left[c] - mean[c])
        rs[c] += second
        rp[c] += second * (right[c] - mean[c])


@kernel()
def winner_input_gradient(dout, winner, x, a, b, c0, scale, offset, relu, ph, pw, dx):
    """``dx = a * g - b * x + c0`` per channel, ``g`` as in :func:`winner_gradient_sums` (0 in the
    rows and columns past the last window); x and dx (m, H, W, C), dx written in place; a, b, c0 (C,)
    in x's type: batch norm's input gradient with its constants folded in by the caller."""
    m, n_h, n_w, n_c = dout.shape
    height, width = x.shape[1], x.shape[2]
    zero = x.dtype.type(0)
    for row in prange(m * n_h):
        i = row // n_h
        h = row - i * n_h
        for y in range(h * ph, height if h == n_h - 1 else (h + 1) * ph):
            p = y - h * ph  # ph or more: a row past the last window, where no key matches
            line, target = x[i, y], dx[i, y]
            for v in range(n_w):
                grads, won = dout[i, h, v], winner[i, h, v]
                for q in range(pw):
                    key = winner.dtype.type(p * pw + q if p < ph else -1)
                    values, written = line[v * pw + q], target[v * pw + q]
                    for c in range(n_c):
                        routed = grads[c] if won[c] == key else zero
                        grad = _passed(routed, values[c], scale[c], offset[c], relu, zero)
                        written[c] = a[c] * grad - b[c] * values[c] + c0[c]
            for u in range(n_w * pw, width):
                values, written = line[u], target[u]
                for c in range(n_c):
                    written[c] = a[c] * zero - b[c] * values[c] + c0[c]
