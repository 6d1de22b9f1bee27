"""2-D convolution, vectorised: im2col (a strided view, copied once) and one BLAS GEMM.

Forward, for every example ``i``, output position ``(h, w)`` and filter ``k``::

    Z[i, h, w, k] = sum(X_pad[i, h*sh : h*sh+fh, w*sw : w*sw+fw, :] * W[:, :, :, k]) + b[k]

which is the matrix product ``cols @ W2`` with ``cols[(i, h, w), (p, q, c)] = X_pad[i, h*sh+p, w*sw+q, c]``
of shape ``(m * n_H * n_W, fh * fw * n_C)`` and ``W2 = W.reshape(fh * fw * n_C, K)``. Backward is two more
products: ``dW2 = cols.T @ dZ2`` and ``dcols = dZ2 @ W2.T``, the latter scattered back onto the input
windows (col2im).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..errors import ShapeError, check_float_array, expected
from ._shapes import Padding2D, as_pair, output_size, resolve_padding


class ConvCache(NamedTuple):
    cols: np.ndarray          # (m * n_H * n_W, fh * fw * n_C), the im2col matrix of the padded input
    w: np.ndarray             # (fh, fw, n_C, K) in the dtype of x
    b_shape: tuple            # the shape of the bias given, so db comes back in it
    x_shape: tuple            # (m, n_H_prev, n_W_prev, n_C)
    stride: tuple[int, int]
    pads: Padding2D


def conv2d_forward(x, w, b, stride=1, padding=0):
    """Convolve a batch of NHWC images with ``K`` filters.

    Parameters
    ----------
    x : ndarray, shape (m, n_H_prev, n_W_prev, n_C)
    w : ndarray, shape (fh, fw, n_C, K)
    b : ndarray, shape (K,) or the course's (1, 1, 1, K)
    stride : int or (sh, sw)
    padding : int, (ph, pw), ((top, bottom), (left, right)), ``"valid"`` or ``"same"`` (TensorFlow's rule)

    Returns
    -------
    out : ndarray, shape (m, n_H, n_W, K), dtype of ``x``
    cache : ConvCache for :func:`conv2d_backward`
    """
    x = check_float_array(x, "x", 4)
    w = check_float_array(w, "w", 4).astype(x.dtype, copy=False)
    b = check_float_array(b, "b")
    m, n_h_prev, n_w_prev, n_c = x.shape
    fh, fw, w_c, n_k = w.shape
    if w_c != n_c:
        raise ShapeError(expected("w", f"{n_c} input channels in w.shape[2] to match x of shape {x.shape}",
                                  w, "Kernels are (f_h, f_w, n_C_prev, n_C)."))
    if b.size != n_k or b.shape not in ((n_k,), (1, 1, 1, n_k)):
        raise ShapeError(expected("b", f"shape ({n_k},) or (1, 1, 1, {n_k})", b, "One bias per filter."))
    stride = as_pair(stride, "stride")
    pads = resolve_padding(padding, (n_h_prev, n_w_prev), (fh, fw), stride)
    n_h, n_w = output_size((n_h_prev, n_w_prev), (fh, fw), stride, pads, "conv2d kernel")

    cols = im2col(pad_nhwc(x, pads), (fh, fw), stride, (n_h, n_w))
    out = cols @ w.reshape(-1, n_k)
    out += b.reshape(n_k).astype(x.dtype, copy=False)
    return out.reshape(m, n_h, n_w, n_k), ConvCache(cols, w, b.shape, x.shape, stride, pads)


def conv2d_backward(dout, cache: ConvCache, need_dx: bool = True):
    """Gradients of :func:`conv2d_forward`.

    ``dout`` has shape (m, n_H, n_W, K). Returns ``(dx, dw, db)``: ``dx`` like ``x`` (``None`` when
    ``need_dx`` is false, which saves a GEMM and the col2im for a network's first layer), ``dw`` like
    ``w``, ``db`` shaped like the ``b`` given to forward.
    """
    cols, w, b_shape, x_shape, stride, pads = cache
    fh, fw, n_c, n_k = w.shape
    m, n_h, n_w, _ = dout.shape
    dout2 = np.asarray(dout, dtype=w.dtype).reshape(-1, n_k)
    dw = (cols.T @ dout2).reshape(w.shape)
    db = dout2.sum(axis=0).reshape(b_shape)
    if not need_dx:
        return None, dw, db
    dcols = (dout2 @ w.reshape(-1, n_k).T).reshape(m, n_h, n_w, fh, fw, n_c)
    padded_shape = (m, x_shape[1] + sum(pads[0]), x_shape[2] + sum(pads[1]), n_c)
    dx_pad = col2im(dcols, padded_shape, stride)
    (top, bottom), (left, right) = pads
    return dx_pad[:, top:padded_shape[1] - bottom, left:padded_shape[2] - right, :], dw, db


def pad_nhwc(x: np.ndarray, pads: Padding2D, value: float = 0.0) -> np.ndarray:
    """``x`` with ``pads`` added around its two spatial axes; ``x`` itself when there is nothing to add."""
    if not any(pads[0] + pads[1]):
        return x
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value)


def window_view(x_pad: np.ndarray, kernel, stride, out_size) -> np.ndarray:
    """A read-only view ``v[i, h, w, p, q, c] = x_pad[i, h*sh + p, w*sw + q, c]`` (no copy)."""
    (fh, fw), (sh, sw), (n_h, n_w) = kernel, stride, out_size
    s_m, s_h, s_w, s_c = x_pad.strides
    return as_strided(x_pad, (x_pad.shape[0], n_h, n_w, fh, fw, x_pad.shape[3]),
                      (s_m, s_h * sh, s_w * sw, s_h, s_w, s_c), writeable=False)


def im2col(x_pad: np.ndarray, kernel, stride, out_size) -> np.ndarray:
    """The ``(m * n_H * n_W, fh * fw * n_C)`` patch matrix of a padded NHWC batch, one copy of the view."""
    windows = window_view(x_pad, kernel, stride, out_size)
    return windows.reshape(-1, kernel[0] * kernel[1] * x_pad.shape[3])


def col2im(dcols: np.ndarray, padded_shape, stride) -> np.ndarray:
    """Scatter-add patch gradients ``dcols (m, n_H, n_W, fh, fw, n_C)`` back onto the padded input.

    One strided slice per kernel offset ``(p, q)``: ``fh * fw`` vectorised additions, however large the
    batch, and overlapping windows (stride < kernel) accumulate correctly.
    """
    _, n_h, n_w, fh, fw, _ = dcols.shape
    sh, sw = stride
    dx_pad = np.zeros(padded_shape, dtype=dcols.dtype)
    for p in range(fh):
        for q in range(fw):
            dx_pad[:, p:p + sh * n_h:sh, q:q + sw * n_w:sw, :] += dcols[:, :, :, p, q, :]
    return dx_pad
