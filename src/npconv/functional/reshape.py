"""Flatten: ``(m, n_H, n_W, n_C) -> (m, n_H * n_W * n_C)``, the bridge from conv to dense layers."""

from __future__ import annotations

from math import prod

from ..errors import ShapeError, check_float_array, expected
from ._shapes import check_dout


def flatten_forward(x):
    """Keep the batch axis, merge the rest in C order (NHWC: channels vary fastest, as Keras).

    A view of ``x`` when ``x`` is contiguous. A 1-D ``x`` of shape ``(m,)`` becomes ``(m, 1)``.
    """
    x = check_float_array(x, "x")
    if x.ndim == 0:
        raise ShapeError(expected("x", "an array with a batch axis", x))
    return x.reshape(x.shape[0], prod(x.shape[1:])), x.shape


def flatten_backward(dout, cache):
    """``dx`` is ``dout`` reshaped back to the input's shape."""
    x_shape = cache
    return check_dout(dout, (x_shape[0], prod(x_shape[1:]))).reshape(x_shape)
