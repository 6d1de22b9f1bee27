"""2-D max and average pooling, and global pooling, vectorised over the batch.

For a window of size ``(ph, pw)`` and stride ``(sh, sw)``::

    max:     A[i, h, w, c] = max(A_prev_pad[i, h*sh : h*sh+ph, w*sw : w*sw+pw, c])
    average: A[i, h, w, c] = mean of the same window's unpadded elements

Max pooling records which window offset won (the first one, on ties, as PyTorch does) so backward
routes each gradient to exactly one input. Two vectorised strategies, never a loop over pixels:

* non-overlapping windows (stride == pool size, Keras's default): the padded input is reshaped to
  ``(m, n_H, ph, n_W, pw, n_C)`` and each pass is one reduction or one broadcast over the whole batch;
  on the SIGNS model's 8x8 pool this is 64x fewer NumPy calls than the offset loop;
* overlapping windows: a loop over the ``ph * pw`` window offsets, each one strided slice of the batch.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import check_choice, check_float_array
from ._shapes import Padding2D, as_pair, check_dout, output_size, resolve_padding
from .conv import pad_nhwc


class PoolCache(NamedTuple):
    x_shape: tuple            # (m, n_H_prev, n_W_prev, n_C)
    pool: tuple[int, int]
    stride: tuple[int, int]
    pads: Padding2D
    mode: str
    winner: np.ndarray | None  # max: (m, n_H, n_W, n_C) index of the winning offset p * pw + q
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
    tiled = pool == stride
    if mode == "max":
        x_pad = pad_nhwc(x, pads, -np.inf)
        if tiled:
            out, winner = _max_of_tiles(_tiles(x_pad, pool, out_size))
        else:
            out, winner = _max_over_offsets(x_pad, pool, stride, out_size)
        return out, PoolCache(x.shape, pool, stride, pads, mode, winner, None)
    counts = _window_counts(x.shape[1:3], pool, stride, pads, out_size, x.dtype)
    x_pad = pad_nhwc(x, pads)
    out = _tiles(x_pad, pool, out_size).sum(axis=(2, 4)) if tiled else _sum_over_offsets(
        x_pad, pool, stride, out_size)
    out /= counts
    return out, PoolCache(x.shape, pool, stride, pads, mode, None, counts)


def pool2d_backward(dout, cache: PoolCache):
    """Gradient of :func:`pool2d_forward` with respect to its input, shape ``(m, n_H_prev, n_W_prev, n_C)``.

    Max: each window's gradient goes to its (first) maximum. Average: spread evenly over the window's
    unpadded elements. Overlapping windows accumulate.
    """
    x_shape, (ph, pw), (sh, sw), pads, mode, winner, counts = cache
    m, n_c = x_shape[0], x_shape[3]
    n_h, n_w = output_size(x_shape[1:3], (ph, pw), (sh, sw), pads, "pool window")
    dout = check_dout(dout, (m, n_h, n_w, n_c))
    (top, bottom), (left, right) = pads
    padded_hw = (x_shape[1] + top + bottom, x_shape[2] + left + right)
    share = dout / counts if mode == "average" else None
    if (ph, pw) == (sh, sw):
        tiles = _tile_gradient(dout, winner, share, (ph, pw))
        if padded_hw == (n_h * ph, n_w * pw) and not (top or bottom or left or right):
            return tiles  # windows cover the input exactly: nothing to place or crop
        padded = np.zeros((m, *padded_hw, n_c), dtype=dout.dtype)
        padded[:, :n_h * ph, :n_w * pw, :] = tiles
        return padded[:, top:padded_hw[0] - bottom, left:padded_hw[1] - right, :]
    padded = np.zeros((m, *padded_hw, n_c), dtype=dout.dtype)
    for offset in range(ph * pw):
        p, q = divmod(offset, pw)
        target = padded[:, p:p + sh * n_h:sh, q:q + sw * n_w:sw, :]
        if mode == "max":
            target += np.where(winner == offset, dout, 0)
        else:
            target += share
    return padded[:, top:padded.shape[1] - bottom, left:padded.shape[2] - right, :]


def _offset_slice(x_pad, p, q, stride, out_size):
    (sh, sw), (n_h, n_w) = stride, out_size
    return x_pad[:, p:p + sh * n_h:sh, q:q + sw * n_w:sw, :]


def _tiles(x_pad, pool, out_size):
    """Non-overlapping windows as axes: ``(m, n_H, ph, n_W, pw, n_C)`` (a view unless cropped)."""
    (ph, pw), (n_h, n_w) = pool, out_size
    region = x_pad[:, :n_h * ph, :n_w * pw, :]
    return region.reshape(region.shape[0], n_h, ph, n_w, pw, region.shape[3])


def _max_of_tiles(tiles):
    """Each tile's maximum and the first offset ``p * pw + q`` that holds it."""
    m, n_h, ph, n_w, pw, n_c = tiles.shape
    out = tiles.max(axis=(2, 4))
    is_max = tiles == out[:, :, None, :, None, :]
    # argmax of booleans is the first True; the window axes must be last and adjacent for it
    is_max = is_max.transpose(0, 1, 3, 5, 2, 4).reshape(m, n_h, n_w, n_c, ph * pw)
    winner = is_max.argmax(axis=-1).astype(np.uint8 if ph * pw <= 256 else np.int32)
    return out, winner


def _tile_gradient(dout, winner, share, pool):
    """Backward of tiled pooling as one broadcast: ``(m, n_H * ph, n_W * pw, n_C)``."""
    (ph, pw) = pool
    m, n_h, n_w, n_c = dout.shape
    if share is not None:
        tiles = np.broadcast_to(share[:, :, None, :, None, :], (m, n_h, ph, n_w, pw, n_c)).copy()
    else:
        offsets = (np.arange(ph)[:, None] * pw + np.arange(pw)).reshape(1, 1, ph, 1, pw, 1)
        tiles = np.where(winner[:, :, None, :, None, :] == offsets, dout[:, :, None, :, None, :],
                         np.zeros((), dout.dtype))
    return tiles.reshape(m, n_h * ph, n_w * pw, n_c)


def _max_over_offsets(x_pad, pool, stride, out_size):
    """Running maximum over the window offsets, remembering the first offset that reached it."""
    ph, pw = pool
    best = _offset_slice(x_pad, 0, 0, stride, out_size).copy()
    winner = np.zeros(best.shape, dtype=np.uint8 if ph * pw <= 256 else np.int32)
    for offset in range(1, ph * pw):
        candidate = _offset_slice(x_pad, *divmod(offset, pw), stride, out_size)
        better = candidate > best  # strict: ties keep the earlier offset
        np.copyto(best, candidate, where=better)
        np.copyto(winner, offset, where=better)
    return best, winner


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
        return x.mean(axis=(1, 2)), GlobalPoolCache(x.shape, mode, None)
    flat = x.reshape(x.shape[0], -1, x.shape[3])
    winner = flat.argmax(axis=1)
    out = np.take_along_axis(flat, winner[:, None, :], axis=1)[:, 0, :]
    return out, GlobalPoolCache(x.shape, mode, winner)


def global_pool2d_backward(dout, cache: GlobalPoolCache):
    """Gradient of :func:`global_pool2d_forward`: ``(m, n_C) -> (m, n_H, n_W, n_C)``."""
    m, n_h, n_w, n_c = cache.x_shape
    dout = check_dout(dout, (m, n_c))
    if cache.mode == "average":
        return np.broadcast_to((dout / (n_h * n_w))[:, None, None, :], cache.x_shape).copy()
    dx = np.zeros((m, n_h * n_w, n_c), dtype=dout.dtype)
    np.put_along_axis(dx, cache.winner[:, None, :], dout[:, None, :], axis=1)
    return dx.reshape(cache.x_shape)
