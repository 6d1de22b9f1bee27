"""Padding of the two spatial axes of an NHWC batch: the ``ZeroPadding2D`` layer's (the course's
``zero_pad``), and the padded copies the convolution and pooling kernels read."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import check_float_array, expected
from ._shapes import Padding2D, check_dout, explicit_padding
from ._tier import tiered
from ._workspace import Workspace, aligned_empty, scratch


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
    out = aligned_empty((m, top + n_h + bottom, left + n_w + right, n_c), x.dtype)
    return _fill_padded(x, top, left, 0.0, out), (pads, x.shape)


def zero_pad2d_backward(dout, cache):
    """``dx`` is the interior of ``dout``: the padded border received no input."""
    ((top, bottom), (left, right)), x_shape = cache
    m, n_h, n_w, n_c = x_shape
    dout = check_dout(dout, (m, top + n_h + bottom, left + n_w + right, n_c))
    # A contiguous copy, so the caller may modify dx in place and the next GEMM reads it fast.
    return np.ascontiguousarray(dout[:, top : top + n_h, left : left + n_w, :])


def pad_nhwc(
    x: np.ndarray, pads: Padding2D, value: float = 0.0, workspace: Workspace | None = None, name: str = "x_pad"
) -> np.ndarray:
    """``x`` with ``pads`` added around its two spatial axes; ``x`` itself when there is nothing to add.
    With a ``workspace``, the result is its buffer ``name`` (valid until the next call that uses it)."""
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return x
    m, n_h, n_w, n_c = x.shape
    padded = scratch(workspace, name, (m, n_h + top + bottom, n_w + left + right, n_c), x.dtype)
    return _fill_padded(x, top, left, value, padded)


class Bordered(NamedTuple):
    """An NHWC batch written inside a zero border, as a convolution reads its padded input (or its
    padded output gradient): ``padded[:, top : top + H, left : left + W]`` is ``interior``, the rest
    of ``padded`` zeros. Made by :func:`bordered_empty` for a layer to write into; the convolution
    then reads ``padded`` with no padding pass of its own."""

    padded: np.ndarray  # (m, H + top + bottom, W + left + right, C), C-contiguous
    pads: Padding2D  # ((top, bottom), (left, right))
    interior: np.ndarray  # (m, H, W, C), a view of padded


def bordered_empty(shape: tuple, pads: Padding2D, dtype, workspace: Workspace | None = None, name: str = "x_pad"):
    """A :class:`Bordered` buffer for an ``(m, H, W, C)`` batch with ``pads`` of zeros around its two
    spatial axes: the border written, the interior for a kernel to fill. With a ``workspace``, its
    buffer ``name``, as :func:`pad_nhwc`'s, whose border is written only when its shape changed
    (:meth:`~._workspace.Workspace.bordered`)."""
    (top, bottom), (left, right) = pads
    m, n_h, n_w, n_c = shape
    padded_shape = (m, n_h + top + bottom, n_w + left + right, n_c)
    workspace = workspace or Workspace()
    padded = workspace.bordered(name, padded_shape, pads, dtype)
    kept = workspace.views.get(name)
    if kept is not None and kept.padded is padded and kept.pads == pads:
        return kept  # the buffer kept from the last call: its interior view too
    workspace.views[name] = buffer = Bordered(padded, pads, padded[:, top : top + n_h, left : left + n_w])
    return buffer


def check_bordered(padded, x: np.ndarray, pads: Padding2D, name: str) -> np.ndarray:
    """``padded`` if it is a C-contiguous array of ``x``'s dtype with ``pads`` around ``x``, and ``x``
    its interior (the same memory), as :func:`bordered_empty` gives them; else a ``ValueError``.
    That the border holds zeros is the writer's promise."""
    (top, bottom), (left, right) = pads
    m, n_h, n_w, n_c = x.shape
    shape = (m, n_h + top + bottom, n_w + left + right, n_c)
    if (
        not isinstance(padded, np.ndarray)
        or padded.shape != shape
        or padded.dtype != x.dtype
        or not padded.flags.c_contiguous
        or x.strides != padded.strides
        or x.ctypes.data != padded.ctypes.data + (top * shape[2] + left) * n_c * x.itemsize
    ):
        raise ValueError(
            expected(
                name,
                f"a C-contiguous {shape} array of dtype {x.dtype} whose interior [:, {top}:{top + n_h}, "
                f"{left}:{left + n_w}] is the array given beside it",
                padded,
                "Make both with npconv.functional.padding.bordered_empty, or leave it out.",
            )
        )
    return padded


def _fill_padded_numpy(x, top, left, value, padded):
    """``padded`` (``x``'s shape plus the padding) holding ``value`` with ``x`` at ``(top, left)``."""
    m, n_h, n_w, n_c = x.shape
    padded.fill(value)
    padded[:, top : top + n_h, left : left + n_w, :] = x
    return padded


@tiered(_fill_padded_numpy)
def _fill_padded(kernels, x, top, left, value, padded):
    """:func:`_fill_padded_numpy` in one parallel pass, every value written once."""
    m, n_h, n_w, n_c = x.shape
    kernels.elementwise.pad(
        np.ascontiguousarray(x).reshape(m, n_h, n_w * n_c),
        top,
        left * n_c,
        x.dtype.type(value),
        padded.reshape(m, padded.shape[1], -1),
    )
    return padded
