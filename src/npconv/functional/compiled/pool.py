"""Compiled max pooling: one pass over the input, by window offsets or by rows then columns.

The NumPy tier makes ``ph * pw`` strided passes over the whole batch (64 for an 8x8 pool), each
reading a slice and updating the running maximum and the winner. Here each output row (its values
and winners, in L1 cache) is computed in one go. With many channels the innermost loops run along
them, once per window offset and window (:func:`_max_over_offsets`). With few, such a loop is a
single vector whose set-up (the arrays' overlap checks, entering and leaving the loop) costs more
than its work, so each output row, a block of windows at a time, first takes each padded column's
maximum over the window's rows, reading each input row as one contiguous run of columns and
channels (:func:`_column_maxima`), then each window's maximum over its column maxima
(:func:`_window_maxima`): SIGNS's 8x8 pool of 8 channels takes a fifth of the time (0.6 against
3.4 ms a batch of 64, two cores). Backward, where the windows tile the input, runs the same way
round for few channels: each window's gradient spread over its columns, then each input row written
as one run.

Same results and the same cache as the NumPy tier: ``winner`` holds the offset ``p * pw + q`` of
the first maximum in the window's row-major order (ties keep the earlier offset, as PyTorch); a
window holding NaN gives NaN (as NumPy's max) and its winner is its last NaN (as PyTorch's). The
innermost loops are branch-free selects on 32-bit lanes (an int32 winner: a uint8 one beside
float32 values kept LLVM from vectorising them).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import kernel

#: The sources these kernels inline, hashed: Numba caches them by this file alone (see ``_jit``).
INLINED_SOURCES = "97bb75677132e40a"

__all__ = ["max_pool_forward", "max_pool_backward", "add_max_pool"]


#: Output rows per ``prange`` task: each task allocates its column scratch once.
ROWS_PER_TASK = 16
#: About how many values of an input row a block of windows reads: runs long enough to vectorise
#: well, scratch (three such rows) small enough to stay in L1 cache beside the input.
BLOCK_VALUES = 1024
#: From this many bytes of channels per pixel (32 float32) the loops along the channels are long
#: enough: the forward pass goes by window offsets, as fast there as by rows then columns.
LONG_CHANNELS_BYTES = 128


@kernel()
def max_pool_forward(x_pad, ph, pw, sh, sw, out, winner):
    """``out[i, h, v, c] = max_{p<ph, q<pw} x_pad[i, h*sh + p, v*sw + q, c]``; ``winner`` its offset.

    x_pad (m, H_pad, W_pad, n_C) padded with -inf; out (m, n_H, n_W, n_C) and winner (same shape,
    int32), written in place. ``prange`` over the output rows of the whole batch, each reduced by
    window offsets (:data:`LONG_CHANNELS_BYTES` of channels or more), else in blocks of
    :data:`ROWS_PER_TASK` rows (each block's scratch allocated once), a block of windows at a time
    reduced over the window's rows (:func:`_column_maxima`), then over its columns
    (:func:`_window_maxima`).
    """
    m, n_h, n_w, n_c = out.shape
    if n_c * out.itemsize >= LONG_CHANNELS_BYTES:
        for row in prange(m * n_h):
            i = row // n_h
            _max_over_offsets(
                x_pad[i], (row - i * n_h) * sh, ph, pw, sw, out[i, row - i * n_h], winner[i, row - i * n_h]
            )
        return
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


@kernel()
def add_max_pool(a, a_scale, a_offset, b, b_scale, b_offset, ph, pw, relu, out, winner):
    """:func:`max_pool_forward` of ``a + b`` for windows that tile it (stride = window, no padding),
    the sum never written whole: each output row's ``ph`` input rows are added into a scratch that
    stays in L1 cache, then reduced there by window offsets (the same maxima, winners, ties and NaN);
    with ``relu``, each output row then clipped as ``np.maximum(out, 0)`` clips.

    a, b (m, H, W, n_C) with ``H >= n_H * ph`` and ``W >= n_W * pw`` (rows and columns past the
    last window left out); out and winner (m, n_H, n_W, n_C), int32 winners, written in place.
    ``a_scale`` and ``a_offset`` (n_C,), or both empty: the branch is ``a * a_scale + a_offset`` per
    channel (a batch norm's output, with :func:`~.batchnorm.scale_shift`'s rounding), mapped as it is
    read; the same for ``b``.
    """
    m, n_h, n_w, n_c = out.shape
    width = n_w * pw * n_c  # the values of an input row the windows read
    zero = out.dtype.type(0)
    a_rows = a.reshape(m, a.shape[1], a.shape[2] * n_c)
    b_rows = b.reshape(m, b.shape[1], b.shape[2] * n_c)
    a_mapped, b_mapped = a_scale.size > 0, b_scale.size > 0
    rows = m * n_h
    for task in prange((rows + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        sums = np.empty((ph, width), a.dtype)
        # Each map's constants along a row, so that its loop runs along the row as the sum's does.
        maps = np.empty((4, width if a_mapped or b_mapped else 0), a.dtype)
        for j in range(maps.shape[1]):
            c = j % n_c
            if a_mapped:
                maps[0, j], maps[1, j] = a_scale[c], a_offset[c]
            if b_mapped:
                maps[2, j], maps[3, j] = b_scale[c], b_offset[c]
        for row in range(task * ROWS_PER_TASK, min(rows, (task + 1) * ROWS_PER_TASK)):
            i = row // n_h
            h = row - i * n_h
            for p in range(ph):
                first, second, target = a_rows[i, h * ph + p], b_rows[i, h * ph + p], sums[p]
                if a_mapped and b_mapped:
                    for j in range(width):
                        target[j] = (first[j] * maps[0, j] + maps[1, j]) + (second[j] * maps[2, j] + maps[3, j])
                elif a_mapped:
                    for j in range(width):
                        target[j] = (first[j] * maps[0, j] + maps[1, j]) + second[j]
                elif b_mapped:
                    for j in range(width):
                        target[j] = first[j] + (second[j] * maps[2, j] + maps[3, j])
                else:
                    for j in range(width):
                        target[j] = first[j] + second[j]
            _max_over_offsets(sums.reshape(ph, n_w * pw, n_c), 0, ph, pw, pw, out[i, h], winner[i, h])
            if relu:
                pooled = out[i, h].reshape(n_w * n_c)
                for j in range(pooled.size):  # np.maximum(., 0)'s bits: NaN kept, -0.0 to 0.0
                    value = pooled[j]
                    pooled[j] = value if value > zero or value != value else zero


@njit(cache=True, inline="always")
def _max_over_offsets(image, top, ph, pw, sw, values, offsets):
    """One output row's maxima ``values`` and winners ``offsets`` (n_W, n_C), each window offset in
    turn: the loops run along the channels, long enough with many of them."""
    n_w, n_c = values.shape
    first = image[top]
    for v in range(n_w):
        best, won, source = values[v], offsets[v], first[v * sw]
        for c in range(n_c):
            best[c] = source[c]
            won[c] = 0
    for p in range(ph):
        line = image[top + p]
        for q in range(pw):
            if p == 0 and q == 0:
                continue
            offset = offsets.dtype.type(p * pw + q)
            for v in range(n_w):
                best, won, candidate = values[v], offsets[v], line[v * sw + q]
                for c in range(n_c):
                    value = candidate[c]
                    take = _row_wins(value, best[c])  # the offsets come in order here
                    best[c] = value if take else best[c]
                    won[c] = offset if take else won[c]


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
            take = _row_wins(value, column_best[j])
            column_best[j] = value if take else column_best[j]
            column_key[j] = column_index[j] + row_key if take else column_key[j]


@njit(cache=True, inline="always")
def _row_wins(value, best):
    """Whether a later ``value`` replaces ``best``: strict, so ties keep the earlier one; a NaN
    always wins (PyTorch's test), so a maximum over NaN is NaN and its winner the last NaN."""
    return (value > best) | (value != value)


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
def max_pool_backward(dout, winner, ph, pw, sh, sw, tiled, dx_pad, activation):
    """``dx_pad[i, h*sh + p, v*sw + q, c] += g[i, h, v, c]`` where ``winner[i, h, v, c] == p*pw + q``,
    ``g = dout``, or where ``activation`` (like ``dout``; empty for none) holds a ReLU's output of
    the pool's, ``g = dout * (activation > 0)``: ReLU's gradient taken as each row is routed.

    dx_pad (m, H_pad, W_pad, n_C). When the windows ``tiled`` it exactly (stride == pool size, no
    leftover rows), each element is written once, ``g`` or 0, and the output rows are shared out
    between threads (with few channels, by :func:`_spread_rows`); otherwise each image is zeroed
    first and its windows, which may overlap, accumulate, one image per thread at a time.
    """
    m, n_h, n_w, n_c = dout.shape
    masked = activation.size > 0
    passed = activation if masked else dout  # read only where masked: one array type either way
    if not tiled:
        for i in prange(m):
            dx_pad[i] = 0.0
            for h in range(n_h):
                _route_row(dout[i, h], passed[i, h], masked, winner[i, h], dx_pad[i], h, ph, pw, sh, sw, True)
        return
    # A pixel's channels in less than one 256-bit vector, or in at most two with a window of 3 rows
    # or more: the loops along them are short, so each output row is spread over its columns
    # first and each padded row then written as one run.
    if n_c * dout.itemsize < 32 or (n_c * dout.itemsize <= 64 and ph >= 3):
        _spread_rows(dout, passed, masked, winner, ph, pw, sh, dx_pad)
        return
    for row in prange(m * n_h):
        i, h = row // n_h, row % n_h
        _route_row(dout[i, h], passed[i, h], masked, winner[i, h], dx_pad[i], h, ph, pw, sh, sw, False)


@njit(cache=True, inline="always")
def _spread_rows(dout, passed, masked, winner, ph, pw, sh, dx_pad):
    """The tiled backward pass, blocks of :data:`ROWS_PER_TASK` output rows shared out between
    threads: each output row's gradients spread over its columns (:func:`_spread_to_columns`), then
    each padded row written as one contiguous run."""
    m, n_h, n_w, n_c = dout.shape
    width = n_w * pw * n_c  # a padded row, flat
    dx_rows = dx_pad.reshape(m, dx_pad.shape[1], width)
    rows = m * n_h
    for task in prange((rows + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        column_grad = np.empty(width, dout.dtype)
        column_key = np.empty(width, winner.dtype)
        for row in range(task * ROWS_PER_TASK, min(rows, (task + 1) * ROWS_PER_TASK)):
            i = row // n_h
            h = row - i * n_h
            _spread_to_columns(dout[i, h], passed[i, h], masked, winner[i, h], pw, column_grad, column_key)
            for p in range(ph):
                line, row_key = dx_rows[i, h * sh + p], winner.dtype.type(p * pw)
                for j in range(width):
                    line[j] = column_grad[j] if column_key[j] == row_key else 0.0


@njit(cache=True, inline="always")
def _spread_to_columns(grads, passed, masked, won, pw, column_grad, column_key):
    """Each window's gradient ``grads (n_W, n_C)`` (:func:`_masked`) copied to its ``pw`` columns of
    a tiled row, ``column_grad (n_W * pw * n_C,)``, with the key ``winner - q``: the key is
    ``p * pw`` exactly where the window's winner lies in that column, at row ``p``."""
    n_w, n_c = grads.shape
    for v in range(n_w):
        grad, relu_out, w = grads[v], passed[v], won[v]
        for q in range(pw):
            start = (v * pw + q) * n_c
            target_grad, target_key = column_grad[start : start + n_c], column_key[start : start + n_c]
            for c in range(n_c):
                target_grad[c] = _masked(grad[c], relu_out[c], masked)
                target_key[c] = w[c] - q


@njit(cache=True, inline="always")
def _masked(grad, relu_out, masked):
    """``grad``, or with ``masked`` ReLU's gradient ``grad * (relu_out > 0)`` (NaN * 0 is NaN, as
    NumPy's)."""
    return grad * (relu_out > 0) if masked else grad


@njit(cache=True, inline="always")
def _route_row(grads, passed, masked, won, dx_image, h, ph, pw, sh, sw, accumulate):
    """One output row's gradients ``grads (n_W, n_C)`` (:func:`_masked`) to their winners in
    ``dx_image``. The innermost loop is a select along the channels (no branch, no division), so it
    vectorises."""
    n_w, n_c = grads.shape
    for p in range(ph):
        line = dx_image[h * sh + p]
        for q in range(pw):
            offset = won.dtype.type(p * pw + q)
            for v in range(n_w):
                target, grad, relu_out, w = line[v * sw + q], grads[v], passed[v], won[v]
                if accumulate:
                    for c in range(n_c):
                        target[c] += _masked(grad[c], relu_out[c], masked) if w[c] == offset else 0.0
                else:
                    for c in range(n_c):
                        target[c] = _masked(grad[c], relu_out[c], masked) if w[c] == offset else 0.0
