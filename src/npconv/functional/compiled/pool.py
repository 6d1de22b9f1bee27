"""Compiled max pooling: each output row reduced over its windows' rows, then over their columns.

The NumPy tier makes ``ph * pw`` strided passes over the whole batch (64 for an 8x8 pool), each
reading a slice and updating the running maximum and the winner. Here each output row, a block of
windows at a time, first takes each padded column's maximum over the window's ``ph`` rows, reading
each input row as one contiguous run of columns and channels, then each window's maximum over its
``pw`` column maxima. Looping along the channels of every window offset instead, as a simpler
kernel would, runs a loop of a single vector per offset and window with 8 channels, and its
set-up (the arrays' overlap checks, entering and leaving the loop) costs more than its work:
SIGNS's 8x8 pool of 8 channels takes about a fifth of that kernel's time (0.6 against 3 ms a batch
of 64, two cores). Same results and the same cache as the NumPy tier: ``winner`` holds the offset
``p * pw + q`` of the first maximum in the window's row-major order (ties keep the earlier offset,
as PyTorch); a window holding NaN gives NaN (as NumPy's max) and its winner is its last NaN (as
PyTorch's). The innermost loops are branch-free selects on 32-bit lanes (an int32 winner: a uint8
one beside float32 values kept LLVM from vectorising them).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import kernel

__all__ = ["max_pool_forward", "max_pool_backward"]


#: Output rows per ``prange`` task: each task allocates its column scratch once.
ROWS_PER_TASK = 16
#: About how many values of an input row a block of windows reads: runs long enough to vectorise
#: well, scratch (three such rows) small enough to stay in L1 cache beside the input.
BLOCK_VALUES = 1024


@kernel()
def max_pool_forward(x_pad, ph, pw, sh, sw, out, winner):
    """``out[i, h, v, c] = max_{p<ph, q<pw} x_pad[i, h*sh + p, v*sw + q, c]``; ``winner`` its offset.

    x_pad (m, H_pad, W_pad, n_C) padded with -inf; out (m, n_H, n_W, n_C) and winner (same shape,
    int32), written in place. ``prange`` over blocks of :data:`ROWS_PER_TASK` output rows of the
    whole batch; each output row, a block of windows at a time, is reduced over the window's rows
    (:func:`_column_maxima`), then over its columns (:func:`_window_maxima`).
    """
    m, n_h, n_w, n_c = out.shape
    block = max(1, min(n_w, BLOCK_VALUES // (sw * n_c)))  # windows per block
    width = ((block - 1) * sw + pw) * n_c  # the values of an input row that a block reads
    image_rows = x_pad.reshape(m, x_pad.shape[1], x_pad.shape[2] * n_c)  # a view: each row flat
    rows = m * n_h
    for task in prange((rows + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        column_best = np.empty(width, x_pad.dtype)
        column_key = np.empty(width, winner.dtype)
        column_index = np.empty(width, winner.dtype)  # each value's column in its block
        for j in range(width):
            column_index[j] = j // n_c
        for row in range(task * ROWS_PER_TASK, min(rows, (task + 1) * ROWS_PER_TASK)):
            i = row // n_h
            h = row - i * n_h
            for first in range(0, n_w, block):
                last = min(n_w, first + block)
                size = ((last - 1 - first) * sw + pw) * n_c
                _column_maxima(
                    image_rows[i], h * sh, first * sw * n_c, ph, pw, column_index, column_best[:size], column_key[:size]
                )
                _window_maxima(column_best, column_key, sw, pw, out[i, h, first:last], winner[i, h, first:last])


@njit(cache=True, inline="always")
def _column_maxima(image_rows, top, start, ph, pw, column_index, column_best, column_key):
    """Each column's maximum over the window's rows ``image_rows[top : top + ph]`` (each row
    ``(W_pad * n_C,)``, columns and channels flat) from value ``start`` on, and its key
    ``p * pw + col`` (``col`` from ``column_index``), into ``column_best`` and ``column_key``
    (n_cols * n_C,). Each row of the window is one long vectorised run whatever ``n_C``."""
    size = column_best.size
    first = image_rows[top, start : start + size]
    for j in range(size):
        column_best[j] = first[j]
        column_key[j] = column_index[j]
    for p in range(1, ph):
        line = image_rows[top + p, start : start + size]
        row_key = p * pw
        for j in range(size):
            value = line[j]
            # Strict, so ties keep the earlier row; a NaN always wins (PyTorch's test), so the
            # column's maximum is NaN and its key the last NaN's.
            take = (value > column_best[j]) | (value != value)
            column_best[j] = value if take else column_best[j]
            column_key[j] = column_index[j] + row_key if take else column_key[j]


@njit(cache=True, inline="always")
def _window_maxima(column_best, column_key, sw, pw, values, offsets):
    """Each window's maximum over its ``pw`` column maxima (flat, ``(n_cols * n_C,)``), into
    ``values`` and ``offsets`` (n_W, n_C). In window ``v`` the offset ``p * pw + q`` is the key
    ``p * pw + col`` less ``v * sw``, so keys order a window's elements as offsets do; its columns
    come in order of ``q``, not of the offset, so ties take the smaller key and NaN the larger: the
    window's first maximum, or its last NaN."""
    n_w, n_c = values.shape
    for v in range(n_w):
        best, won = values[v], offsets[v]
        shift = v * sw
        start = shift * n_c
        first_best, first_key = column_best[start : start + n_c], column_key[start : start + n_c]
        to_offset = shift if pw == 1 else 0
        for c in range(n_c):
            best[c] = first_best[c]
            won[c] = first_key[c] - to_offset
        for q in range(1, pw):
            # The last comparison also turns the keys into offsets: no pass of its own (a pass
            # along a few channels costs mostly its set-up).
            to_offset = shift if q == pw - 1 else 0
            start = (shift + q) * n_c
            candidate, candidate_key = column_best[start : start + n_c], column_key[start : start + n_c]
            for c in range(n_c):
                value, key = candidate[c], candidate_key[c]
                best_value, best_key = best[c], won[c]
                take = (
                    (value > best_value)
                    | ((value == best_value) & (key < best_key))
                    | ((value != value) & ((best_value == best_value) | (key > best_key)))
                )
                best[c] = value if take else best_value
                won[c] = (key if take else best_key) - to_offset


@kernel()
def max_pool_backward(dout, winner, ph, pw, sh, sw, tiled, dx_pad):
    """``dx_pad[i, h*sh + p, v*sw + q, c] += dout[i, h, v, c]`` where ``winner[i, h, v, c] == p*pw + q``.

    dx_pad (m, H_pad, W_pad, n_C). When the windows ``tiled`` it exactly (stride == pool size, no
    leftover rows), each element is written once, ``dout`` or 0, and the output rows are shared out
    between threads; otherwise each image is zeroed first and its windows, which may overlap,
    accumulate, one image per thread at a time.
    """
    m, n_h = dout.shape[0], dout.shape[1]
    if tiled:
        for row in prange(m * n_h):
            i = row // n_h
            _route_row(
                dout[i, row - i * n_h], winner[i, row - i * n_h], dx_pad[i], row - i * n_h, ph, pw, sh, sw, False
            )
    else:
        for i in prange(m):
            dx_pad[i] = 0.0
            for h in range(n_h):
                _route_row(dout[i, h], winner[i, h], dx_pad[i], h, ph, pw, sh, sw, True)


@njit(cache=True, inline="always")
def _route_row(grads, won, dx_image, h, ph, pw, sh, sw, accumulate):
    """One output row's gradients ``grads (n_W, n_C)`` to their winners in ``dx_image``. The
    innermost loop is a select along the channels (no branch, no division), so it vectorises."""
    n_w, n_c = grads.shape
    for p in range(ph):
        line = dx_image[h * sh + p]
        for q in range(pw):
            offset = won.dtype.type(p * pw + q)
            for v in range(n_w):
                target, grad, w = line[v * sw + q], grads[v], won[v]
                if accumulate:
                    for c in range(n_c):
                        target[c] += grad[c] if w[c] == offset else 0.0
                else:
                    for c in range(n_c):
                        target[c] = grad[c] if w[c] == offset else 0.0
