"""Per-image standardisation: each image to mean 0 and standard deviation 1 over all its values.

``y[i] = (x[i] - mu_i) / s_i``, ``mu_i = mean(x[i])``, ``s_i = max(std(x[i]), 1 / sqrt(N))`` over
the ``N = n_H * n_W * n_C`` values of image ``i`` (TensorFlow's ``per_image_standardization``; the
floor keeps a blank picture finite). An image changed by ``a * x + b`` (scalars ``a > 0``, ``b``:
dimmed, brightened, washed out) gives the same ``y`` unless values were clipped.

Backward, where the floor is not active: ``dx = (dy - mean(dy) - y * mean(dy * y)) / s`` per image;
where it is, ``s`` is a constant and ``dx = (dy - mean(dy)) / s``.
"""

from __future__ import annotations

import numpy as np

from ._tier import tiered
from ._workspace import aligned_empty


def standardize_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``x (m, ...)`` -> ``(y, cache)``, ``y`` of the same shape and dtype."""
    return _forward(x)


def standardize_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """``dx (m, ...)`` of ``dout`` (see the module docstring)."""
    return _backward(dout, cache)


def _forward_numpy(x):
    axes = tuple(range(1, x.ndim))
    n = int(np.prod(x.shape[1:]))
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    std = np.sqrt((centred * centred).mean(axis=axes, keepdims=True))
    floored = std < 1.0 / np.sqrt(n)
    scale = np.where(floored, np.asarray(1.0 / np.sqrt(n), x.dtype), std).astype(x.dtype)
    y = centred / scale
    return y, (y, scale, floored)


def _backward_numpy(dout, cache):
    y, scale, floored = cache
    axes = tuple(range(1, dout.ndim))
    centred = dout - dout.mean(axis=axes, keepdims=True)
    through_std = np.where(floored, 0, (dout * y).mean(axis=axes, keepdims=True))
    return ((centred - y * through_std) / scale).astype(dout.dtype, copy=False)


def _compiles(x) -> bool:
    return x.dtype in (np.float32, np.float64) and x.ndim >= 2 and x.size > 0


def _per_image(x) -> np.ndarray:
    """``x (m, ...)`` as contiguous ``(m, N)``."""
    return np.ascontiguousarray(x).reshape(x.shape[0], -1)


@tiered(_forward_numpy, applies=_compiles)
def _forward(kernels, x):
    """:func:`_forward_numpy` in two parallel passes over each image (3x faster on a
    (32, 64, 64, 3) batch); the same cache."""
    m = x.shape[0]
    y = aligned_empty(x.shape, x.dtype)
    scale, floored = np.empty(m, x.dtype), np.empty(m, bool)
    kernels.standardize.standardize_forward(_per_image(x), scale, floored, _per_image(y))
    per_image = (m,) + (1,) * (x.ndim - 1)
    return y, (y, scale.reshape(per_image), floored.reshape(per_image))


@tiered(_backward_numpy, applies=lambda dout, cache: _compiles(dout) and cache[0].dtype == dout.dtype)
def _backward(kernels, dout, cache):
    """:func:`_backward_numpy` in two parallel passes over each image."""
    y, scale, floored = cache
    m = dout.shape[0]
    dx = aligned_empty(dout.shape, dout.dtype)
    kernels.standardize.standardize_backward(
        _per_image(dout),
        _per_image(y),
        scale.reshape(m).astype(dout.dtype, copy=False),
        floored.reshape(m),
        _per_image(dx),
    )
    return dx
