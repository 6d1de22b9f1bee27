"""Compiled element-wise passes of the training step: padding, ReLU's gradient, an epoch's shuffle,
random flips and shifts.

NumPy runs each of these on one core, and pads in two passes (fill the whole output, then copy the
interior); here each is one parallel pass: padding runs 3-4x NumPy's speed (its image rows copied as
flat runs: as 2-D slices of pixels it gained nothing with 3 channels). ReLU itself stays NumPy's:
it is memory-bound, and a parallel pass gained at most 1.25x. Element-wise work gives the same bits
however it is split.
"""

from __future__ import annotations

from numba import prange

from ._jit import kernel

#: The sources these kernels inline, hashed: Numba caches them by this file alone (see ``_jit``).
INLINED_SOURCES = "97bb75677132e40a"

__all__ = ["pad", "relu_gradient", "take_rows", "mirror", "shift"]

#: Values per parallel block of the flat passes.
BLOCK = 1 << 14


@kernel()
def pad(x, top, left, value, out):
    """``out[i, top + y, left + v] = x[i, y, v]``, ``value`` elsewhere; x (m, H, W * C) and
    out (m, H_pad, W_pad * C), image rows flattened (one contiguous run each), ``left`` counted
    in values (pixels x C); written in place, every value once."""
    m, n_h, row_len = x.shape
    for i in prange(m):
        for y in range(out.shape[1]):
            row = out[i, y]
            source = y - top
            if source < 0 or source >= n_h:
                row[:] = value
            else:
                row[:left] = value
                row[left + row_len :] = value
                row[left : left + row_len] = x[i, source]


@kernel()
def relu_gradient(dout, activation, dx):
    """``dx = dout * (activation > 0)`` over flat arrays (as NumPy computes it: NaN * 0 is NaN).

    Each block is indexed from 0 through slices: indexed from ``block * BLOCK``, Numba's negative
    index wrap-around stayed in the loop, which LLVM vectorised with gathers and scatters (5x
    slower than NumPy's pass on an AMD Zen 4)."""
    n = dout.size
    for block in prange((n + BLOCK - 1) // BLOCK):
        start, end = block * BLOCK, min(n, (block + 1) * BLOCK)
        gradient, kept, out = dout[start:end], activation[start:end], dx[start:end]
        for j in range(end - start):
            out[j] = gradient[j] * (kept[j] > 0)


@kernel()
def take_rows(x, order, out):
    """``out[r] = x[order[r]]`` for x (N, D) and out (len(order), D): an epoch's shuffled copy."""
    for r in prange(order.size):
        out[r] = x[order[r]]


@kernel()
def mirror(x, flip_rows, flip_columns, out):
    """``out[i] = x[i]`` mirrored up-down where ``flip_rows[i]`` and left-right where
    ``flip_columns[i]``; x and out (m, H, W, C), out written in place. A row that keeps its order
    is one contiguous copy; NumPy's copy from a reversed view went pixel by pixel everywhere."""
    m, n_h, n_w, n_c = x.shape
    for i in prange(m):
        for y in range(n_h):
            source = x[i, n_h - 1 - y] if flip_rows[i] else x[i, y]
            target = out[i, y]
            if flip_columns[i]:
                for v in range(n_w):
                    for c in range(n_c):
                        target[v, c] = source[n_w - 1 - v, c]
            else:
                target[:] = source


@kernel()
def shift(x, down, right, out):
    """``out[i, r, v] = x[i, r - down[i], v - right[i]]`` where that is inside the image, else 0;
    x and out (m, H, W * C), image rows flattened, ``right`` counted in values (pixels x C); out
    written in place, each row in at most three runs."""
    m, n_h, row_len = x.shape
    zero = out.dtype.type(0)
    for i in prange(m):
        lo, hi = max(0, right[i]), min(row_len, row_len + right[i])  # the row's values that come from x
        for r in range(n_h):
            target = out[i, r]
            source = r - down[i]
            if source < 0 or source >= n_h or lo >= hi:
                target[:] = zero
            else:
                target[:lo] = zero
                target[hi:] = zero
                target[lo:hi] = x[i, source, lo - right[i] : hi - right[i]]
