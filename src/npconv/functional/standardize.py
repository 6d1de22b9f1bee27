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


def standardize_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``x (m, ...)`` -> ``(y, cache)``, ``y`` of the same shape and dtype."""
    axes = tuple(range(1, x.ndim))
    n = int(np.prod(x.shape[1:]))
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    std = np.sqrt((centred * centred).mean(axis=axes, keepdims=True))
    floored = std < 1.0 / np.sqrt(n)
    scale = np.where(floored, np.asarray(1.0 / np.sqrt(n), x.dtype), std).astype(x.dtype)
    y = centred / scale
    return y, (y, scale, floored)


def standardize_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """``dx (m, ...)`` of ``dout`` (see the module docstring)."""
    y, scale, floored = cache
    axes = tuple(range(1, dout.ndim))
    centred = dout - dout.mean(axis=axes, keepdims=True)
    through_std = np.where(floored, 0, (dout * y).mean(axis=axes, keepdims=True))
    return ((centred - y * through_std) / scale).astype(dout.dtype, copy=False)
