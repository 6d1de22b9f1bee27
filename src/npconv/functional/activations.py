"""Activation kernels: relu, sigmoid, softmax, tanh, linear.

Each forward caches its *output*: every derivative here is cheaper to write in terms of
``a = g(z)`` than of ``z`` (``relu' = a > 0``, ``sigmoid' = a (1 - a)``, ``tanh' = 1 - a^2``).
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError, check_float_array, expected
from ._shapes import check_dout
from ._tier import tiered
from ._workspace import aligned_empty


def relu_forward(x):
    """``a = max(z, 0)``; shapes any, dtype kept.  Returns ``(a, cache)``."""
    x = check_float_array(x, "x")
    out = np.maximum(x, 0)  # memory-bound: a compiled parallel pass gained at most 1.25x
    return out, out


def relu_backward(dout, cache):
    """``dz = da * (a > 0)`` (the subgradient 0 at ``z = 0``, as Keras and PyTorch)."""
    out = cache
    return _relu_gradient(check_dout(dout, out.shape), out)


def _relu_gradient_numpy(dout, out):
    # Multiplying by the boolean mask: one fused ufunc pass, where np.where needs the mask and a
    # select (several times slower on SIGNS-sized float32 arrays).
    return dout * (out > 0)


@tiered(_relu_gradient_numpy, applies=lambda dout, out: out.flags.c_contiguous)
def _relu_gradient(kernels, dout, out):
    """``dout * (out > 0)`` in one parallel pass: 1.3-1.6x NumPy's."""
    dout = np.ascontiguousarray(dout, dtype=np.result_type(dout, out))
    dx = aligned_empty(dout.shape, dout.dtype)
    kernels.elementwise.relu_gradient(dout.reshape(-1), out.reshape(-1), dx.reshape(-1))
    return dx


def sigmoid_forward(x):
    """``a = 1 / (1 + exp(-z))`` without overflow: ``exp`` only ever sees ``-|z|``.

    ``z >= 0``: ``1 / (1 + e)``; ``z < 0``: ``e / (1 + e)``, with ``e = exp(-|z|)`` in (0, 1].
    """
    x = check_float_array(x, "x")
    e = np.exp(-np.abs(x))
    out = 1 / (1 + e)
    np.multiply(out, e, out=out, where=x < 0)
    return out, out


def sigmoid_backward(dout, cache):
    """``dz = da * a * (1 - a)``."""
    out = cache
    dout = check_dout(dout, out.shape)
    return dout * out * (1 - out)


def softmax_forward(x, axis=-1):
    """``a = exp(z - max(z)) / sum(exp(z - max(z)))`` along ``axis`` (default the last, the classes).

    Subtracting the maximum changes nothing mathematically and keeps ``exp`` at most 1.
    """
    x = check_float_array(x, "x")
    if x.ndim == 0:
        raise ShapeError(expected("x", "an array with at least one axis", x))
    out = x - x.max(axis=axis, keepdims=True)
    np.exp(out, out=out)
    out /= out.sum(axis=axis, keepdims=True)
    return out, (out, axis)


def softmax_backward(dout, cache):
    """``dz = a * (da - sum(da * a, axis))``: the softmax Jacobian applied without forming it."""
    out, axis = cache
    dout = check_dout(dout, out.shape)
    dx = dout * out
    dx -= out * dx.sum(axis=axis, keepdims=True)
    return dx


def tanh_forward(x):
    """``a = tanh(z)``."""
    x = check_float_array(x, "x")
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    """``dz = da * (1 - a^2)``."""
    out = cache
    dout = check_dout(dout, out.shape)
    return dout * (1 - out * out)


def linear_forward(x):
    """The identity ``a = z`` (Keras's ``"linear"`` activation); the output is ``x`` itself."""
    x = check_float_array(x, "x")
    return x, x.shape


def linear_backward(dout, cache):
    """``dz = da``."""
    return check_dout(dout, cache)
