"""2-D max and average pooling, and global pooling, vectorised over the batch.

For a window of size ``(ph, pw)`` and stride ``(sh, sw)``::

    max:     A[i, h, w, c] = max(A_prev_pad[i, h*sh : h*sh+ph, w*sw : w*sw+pw, c])
    average: A[i, h, w, c] = mean of the same window's unpadded elements

Both loop over the ``ph * pw`` offsets of the window, never over pixels: each offset is one strided
slice of the whole batch, so a ``2 x 2`` pool is four array operations whatever the image size. Max
pooling records which offset won (the first one, on ties, as PyTorch does) so backward routes each
gradient to exactly one input; where windows do not overlap (stride >= pool size, Keras's default),
backward writes each offset's share straight into its slice instead of accumulating. A window
holding NaN gives NaN (as NumPy's max) and sends its gradient to its last NaN (as PyTorch).

With the compiled tier (:mod:`npconv.functional._tier`) max pooling reads each window once instead
(:mod:`npconv.functional.compiled.pool`), with the same ``winner`` in the cache.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from ..errors import ShapeError, check_choice, check_float_array, expected
from ._shapes import Padding2D, as_pair, check_dout, output_size, resolve_padding
from ._tier import tiered
from ._workspace import aligned_empty
from .activations import relu_backward
from .padding import pad_nhwc

# The winners' dtype in both tiers: the compiled selects vectorise on 32-bit lanes beside float32
# values (with uint8 winners they did not).
WINNER_DTYPE = np.int32


class PoolCache(NamedTuple):
    x_shape: tuple  # (m, n_H_prev, n_W_prev, n_C)
    pool: tuple[int, int]
    stride: tuple[int, int]
    pads: Padding2D
    mode: str
    winner: np.ndarray | None  # max: (m, n_H, n_W, n_C) int32 index of the winning offset p * pw + q
    counts: np.ndarray | None  # average: (n_H, n_W, 1) number of unpadded elements per window


def pool2d_forward(x, pool_size, stride=None, padding="valid", mode="max"):
    """Max or average pooling of NHWC images.

    Parameters
    ----------
    x : ndarray, shape (m, n_H_prev, n_W_prev, n_C)
    pool_size : int or (ph, pw)
    stride : int or (sh, sw); defaults to ``pool_size`` (Keras)
    padding : ``"valid"``, ``"same"`` (TensorFlow's rule) or explicit amounts; padding never wins a max
        and is left out of an average
    mode : ``"max"`` or ``"average"``

    Returns ``(out (m, n_H, n_W, n_C), cache)``.
    """
    x = check_float_array(x, "x", 4)
    mode = check_choice(mode, "mode", {"max", "average"})
    pool = as_pair(pool_size, "pool_size")
    stride = pool if stride is None else as_pair(stride, "stride")
    pads = resolve_padding(padding, x.shape[1:3], pool, stride)
    out_size = output_size(x.shape[1:3], pool, stride, pads, "pool window")
    if mode == "max":
        out, winner = _max_pool(pad_nhwc(x, pads, -np.inf), pool, stride, out_size)
        return out, PoolCache(x.shape, pool, stride, pads, mode, winner, None)
    counts = _window_counts(x.shape[1:3], pool, stride, pads, out_size, x.dtype)
    out = _sum_over_offsets(pad_nhwc(x, pads), pool, stride, out_size)
    out /= counts
    return out, PoolCache(x.shape, pool, stride, pads, mode, None, counts)


def pool2d_backward(dout, cache: PoolCache, relu_out=None):
    """Gradient of :func:`pool2d_forward` with respect to its input, shape ``(m, n_H_prev, n_W_prev, n_C)``.

    Max: each window's gradient goes to its (first) maximum. Average: spread evenly over the window's
    unpadded elements. Overlapping windows accumulate.

    ``relu_out``: for max pooling, the output of a ReLU that read the pool's, ``max(out, 0)``: the
    gradient is then ``relu(pool(x))``'s, ``pool2d_backward(relu_backward(dout, relu_out), cache)``
    with ReLU's mask taken as each window's gradient is routed (no pass of its own).
    """
    x_shape, (ph, pw), (sh, sw), pads, mode, winner, counts = cache
    m, n_c = x_shape[0], x_shape[3]
    n_h, n_w = output_size(x_shape[1:3], (ph, pw), (sh, sw), pads, "pool window")
    dout = check_dout(dout, (m, n_h, n_w, n_c))
    if relu_out is not None:
        relu_out = check_float_array(relu_out, "relu_out")
        if mode != "max" or relu_out.shape != dout.shape:
            raise ShapeError(
                expected(
                    "relu_out",
                    f"a ReLU's output of a max pool's output, shape {dout.shape}",
                    relu_out if mode == "max" else f"{mode} pooling",
                    "Pass relu_out=None to get the pool's own gradient.",
                )
            )
    (top, bottom), (left, right) = pads
    padded_hw = (x_shape[1] + top + bottom, x_shape[2] + left + right)
    # Without overlaps each input gets one write (or none: rows past the last window, gaps between
    # windows); when the windows tile the padded input exactly, nothing needs zeroing first.
    tiled = (ph, pw) == (sh, sw) and padded_hw == (n_h * sh, n_w * sw)
    padded = _scatter_to_windows(dout, mode, winner, counts, (ph, pw), (sh, sw), padded_hw, tiled, relu_out)
    return padded[:, top : padded_hw[0] - bottom, left : padded_hw[1] - right, :]


def _scatter_to_windows_numpy(dout, mode, winner, counts, pool, stride, padded_hw, tiled, relu_out):
    """The padded input's gradient ``(m, H_pad, W_pad, n_C)``: one strided slice per window offset
    (``tiled``: the windows cover the padded input exactly once); ``dout`` first masked by
    ``relu_out > 0`` when given."""
    if relu_out is not None:
        dout = relu_backward(dout, relu_out)
    (ph, pw), (sh, sw) = pool, stride
    m, n_h, n_w, n_c = dout.shape
    overlapping = ph > sh or pw > sw
    padded = (np.empty if tiled else np.zeros)((m, *padded_hw, n_c), dtype=dout.dtype)
    share = dout / counts if mode == "average" else None
    for offset in range(ph * pw):
        target = _offset_slice(padded, *divmod(offset, pw), (sh, sw), (n_h, n_w))
        if overlapping:
            target += share if mode == "average" else dout * (winner == offset)
        elif mode == "average":
            target[...] = share
        else:
            np.multiply(dout, winner == offset, out=target)  # written in place: no temporary
    return padded


@tiered(_scatter_to_windows_numpy, applies=lambda dout, mode, *_: mode == "max")
def _scatter_to_windows(kernels, dout, mode, winner, counts, pool, stride, padded_hw, tiled, relu_out):
    """:func:`_scatter_to_windows_numpy` for max pooling, one compiled pass (ReLU's mask in it)."""
    (ph, pw), (sh, sw) = pool, stride
    padded = np.empty((dout.shape[0], *padded_hw, dout.shape[3]), dtype=dout.dtype)
    dout = np.ascontiguousarray(dout)
    activation = _no_activation(dout.dtype) if relu_out is None else np.ascontiguousarray(relu_out, dtype=dout.dtype)
    kernels.pool.max_pool_backward(dout, winner, ph, pw, sh, sw, tiled, padded, activation)
    return padded


@functools.lru_cache(maxsize=8)
def _no_activation(dtype) -> np.ndarray:
    """The compiled max pool backward's ``activation`` when no ReLU follows the pool: empty."""
    return np.empty((0, 0, 0, 0), dtype)


def _offset_slice(x_pad, p, q, stride, out_size):
    (sh, sw), (n_h, n_w) = stride, out_size
    return x_pad[:, p : p + sh * n_h : sh, q : q + sw * n_w : sw, :]


def _max_over_offsets(x_pad, pool, stride, out_size):
    """Running maximum over the window offsets, remembering the first offset that reached it."""
    ph, pw = pool
    best = _offset_slice(x_pad, 0, 0, stride, out_size).copy()
    winner = np.zeros(best.shape, dtype=WINNER_DTYPE)
    better = np.empty(best.shape, dtype=bool)
    for offset in range(1, ph * pw):
        candidate = _offset_slice(x_pad, *divmod(offset, pw), stride, out_size)
        np.greater(candidate, best, out=better)  # strict: ties keep the earlier offset
        np.maximum(best, candidate, out=best)
        # winner = where(better, offset, winner) as integer arithmetic (wrapping is harmless): one
        # ufunc pass instead of a masked copy, which made this loop the costliest step of a Happy batch.
        winner += better * (winner.dtype.type(offset) - winner)
    if np.isnan(best).any():  # NaN windows (a diverged network): rare, so not in the loop above
        _point_at_last_nan(x_pad, pool, stride, out_size, winner)
    return best, winner


@tiered(_max_over_offsets)
def _max_pool(kernels, x_pad, pool, stride, out_size):
    """Each window's maximum and the offset of its first maximum, ``(out, winner)``: one compiled
    pass that reads each window once."""
    out = aligned_empty((x_pad.shape[0], *out_size, x_pad.shape[3]), x_pad.dtype)
    winner = aligned_empty(out.shape, WINNER_DTYPE)
    kernels.pool.max_pool_forward(np.ascontiguousarray(x_pad), *pool, *stride, out, winner)
    return out, winner


def _point_at_last_nan(x_pad, pool, stride, out_size, winner):
    """Make ``winner`` the offset of each window's last NaN, where it has one (PyTorch's choice):
    ``np.maximum`` already made the value NaN, but ``greater`` never picks a NaN."""
    ph, pw = pool
    for offset in range(ph * pw):
        candidate = _offset_slice(x_pad, *divmod(offset, pw), stride, out_size)
        winner[np.isnan(candidate)] = offset


def _sum_over_offsets(x_pad, pool, stride, out_size):
    ph, pw = pool
    total = _offset_slice(x_pad, 0, 0, stride, out_size).copy()
    for offset in range(1, ph * pw):
        total += _offset_slice(x_pad, *divmod(offset, pw), stride, out_size)
    return total


def _window_counts(in_size, pool, stride, pads, out_size, dtype):
    """How many unpadded elements each window covers, shape ``(n_H, n_W, 1)``: rows times columns."""
    per_axis = []
    for n, f, s, (before, _), n_out in zip(in_size, pool, stride, pads, out_size):
        start = np.arange(n_out) * s - before
        per_axis.append(np.minimum(start + f, n) - np.maximum(start, 0))
    return (per_axis[0][:, None] * per_axis[1][None, :]).astype(dtype)[:, :, None]


class GlobalPoolCache(NamedTuple):
    x_shape: tuple
    mode: str
    winner: np.ndarray | None  # max: (m, n_C) flat spatial index of each channel's maximum


def global_pool2d_forward(x, mode="average"):
    """Pool each channel over the whole image: ``(m, n_H, n_W, n_C) -> (m, n_C)``."""
    x = check_float_array(x, "x", 4)
    mode = check_choice(mode, "mode", {"max", "average"})
    if mode == "average":
        # x.mean's own sum and division, without its Python (tens of microseconds a training step)
        n = x.shape[1] * x.shape[2]
        return np.add.reduce(x, axis=(1, 2)) / x.dtype.type(n), GlobalPoolCache(x.shape, mode, None)
    flat = x.reshape(x.shape[0], -1, x.shape[3])
    winner = flat.argmax(axis=1)
    out = np.take_along_axis(flat, winner[:, None, :], axis=1)[:, 0, :]
    return out, GlobalPoolCache(x.shape, mode, winner)


def global_pool2d_backward(dout, cache: GlobalPoolCache):
    """Gradient of :func:`global_pool2d_forward`: ``(m, n_C) -> (m, n_H, n_W, n_C)``."""
    m, n_h, n_w, n_c = cache.x_shape
    dout = check_dout(dout, (m, n_c))
    if cache.mode == "average":
        dx = np.empty(cache.x_shape, dout.dtype)
        dx[...] = (dout / (n_h * n_w))[:, None, None, :]
        return dx
    dx = np.zeros((m, n_h * n_w, n_c), dtype=dout.dtype)
    np.put_along_axis(dx, cache.winner[:, None, :], dout[:, None, :], axis=1)
    return dx.reshape(cache.x_shape)
