"""Zero padding of the two spatial axes of an NHWC batch (the course's ``zero_pad``)."""

from __future__ import annotations

import numpy as np

from ..errors import check_float_array
from ._shapes import check_dout, explicit_padding


def zero_pad2d_forward(x, padding):
    """Pad height and width with zeros.

    Parameters
    ----------
    x : ndarray, shape (m, n_H, n_W, n_C)
    padding : int, (ph, pw) or ((top, bottom), (left, right))

    Returns
    -------
    out : ndarray, shape (m, top + n_H + bottom, left + n_W + right, n_C)
    cache : the padding amounts and the input shape
    """
    x = check_float_array(x, "x", ndim=4)
    (top, bottom), (left, right) = pads = explicit_padding(padding)
    m, n_h, n_w, n_c = x.shape
    # One zero-filled buffer and one slice assignment: faster than np.pad's general machinery.
    out = np.zeros((m, top + n_h + bottom, left + n_w + right, n_c), dtype=x.dtype)
    out[:, top : top + n_h, left : left + n_w, :] = x
    return out, (pads, x.shape)


def zero_pad2d_backward(dout, cache):
    """``dx`` is the interior of ``dout``: the padded border received no input."""
    ((top, bottom), (left, right)), x_shape = cache
    m, n_h, n_w, n_c = x_shape
    dout = check_dout(dout, (m, top + n_h + bottom, left + n_w + right, n_c))
    # A contiguous copy, so the caller may modify dx in place and the next GEMM reads it fast.
    return np.ascontiguousarray(dout[:, top : top + n_h, left : left + n_w, :])
