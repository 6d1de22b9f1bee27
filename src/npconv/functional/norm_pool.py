"""Batch normalisation, ReLU and the max pool that reads them: forward in one pass, backward in two.

``max_pool(relu(batchnorm(x)))`` in training mode, for pool windows that tile the input (stride
equal to the window, no padding: the course's Happy model and ``smallres``'s stem). The batch norm's
statistics take their pass over ``x`` as alone; then each window's values are normalised, clipped
and reduced to their maximum and its position in registers, and the full-size normalised array is
never written or read back (Happy's ``(16, 64, 64, 32)`` float32 batch: about half the time of the
two passes it replaces). The outputs and both caches are those of :func:`batchnorm_forward` with
``relu=True`` followed by :func:`pool2d_forward`, bit for bit, so the two backward passes run on
them unchanged.

Backward, the pool sends each window's gradient to its winner alone, so batch norm's two passes
can read its gradient from the pooled ``dout`` and the winners instead of the full-size, mostly
zero array the pool's backward writes (:func:`batchnorm_relu_maxpool_backward`; ``smallres``'s
stem, ``(32, 64, 64, 16)`` float32: see the compiled module). Its sums are the two passes' in
another order: equal to rounding.
"""

from __future__ import annotations

import numpy as np

from ..errors import check_float_array
from ._shapes import as_pair, check_dout, output_size
from ._tier import tiered
from ._workspace import aligned_empty
from .batchnorm import (
    BatchMoments,
    BatchNormCache,
    _as_rows,
    _batch_statistics,
    _channel_params,
    _check_eps,
    _check_moments,
    _input_gradient_constants,
    batchnorm_backward,
    batchnorm_forward,
)
from .pool import WINNER_DTYPE, PoolCache, pool2d_backward, pool2d_forward


def batchnorm_relu_maxpool_forward(x, gamma, beta, pool_size, eps=1e-3, moments: BatchMoments | None = None):
    """``max_pool(relu(batchnorm(x)))``, the batch norm in training mode, windows ``pool_size``
    with stride ``pool_size`` and no padding (rows and columns past the last window are left out,
    as ``"valid"`` pooling does).

    Parameters
    ----------
    x : ndarray, shape (m, n_H_prev, n_W_prev, n_C)
    gamma, beta : ndarray, shape (n_C,)
    pool_size : int or (ph, pw)
    eps, moments : as :func:`batchnorm_forward`'s

    Returns
    -------
    out : ndarray, shape (m, n_H_prev // ph, n_W_prev // pw, n_C)
    (norm_cache, pool_cache) : what ``batchnorm_forward(x, gamma, beta, eps, relu=True)`` and
        ``pool2d_forward(that output, pool_size, mode="max")`` return as their caches
    """
    _check_eps(eps)
    pool = as_pair(pool_size, "pool_size")
    x = check_float_array(x, "x", 4)
    x2 = _as_rows(x, "x")
    gamma, beta = _channel_params(x2, gamma=gamma, beta=beta)
    _check_moments(moments, x2.shape[1])
    out_size = output_size(x.shape[1:3], pool, pool, ((0, 0), (0, 0)), "pool window")
    return _forward(x2, gamma, beta, eps, x.shape, pool, out_size, moments)


def _forward_numpy(x2, gamma, beta, eps, shape, pool, out_size, moments):
    """The two forward passes as they are."""
    normalised, norm_cache = batchnorm_forward(x2.reshape(shape), gamma, beta, eps, relu=True, moments=moments)
    out, pool_cache = pool2d_forward(normalised, pool, mode="max")
    return out, (norm_cache, pool_cache)


@tiered(_forward_numpy)
def _forward(kernels, x2, gamma, beta, eps, shape, pool, out_size, moments):
    """The statistics' pass (none when ``moments`` are given), then the affine map, ReLU and the
    pool in one compiled pass."""
    norm_cache = _batch_statistics(kernels.batchnorm, x2, gamma, beta, eps, shape, True, moments)
    out = aligned_empty((shape[0], *out_size, shape[3]), x2.dtype)
    winner = aligned_empty(out.shape, WINNER_DTYPE)
    fused = kernels.norm_pool
    fused.scale_shift_max_pool(x2.reshape(shape), norm_cache.scale, norm_cache.offset, True, *pool, out, winner)
    return out, (norm_cache, PoolCache(tuple(shape), pool, pool, ((0, 0), (0, 0)), "max", winner, None))


def batchnorm_relu_maxpool_backward(dout, norm_cache: BatchNormCache, pool_cache: PoolCache):
    """Gradients of :func:`batchnorm_relu_maxpool_forward`, or of any training-mode
    :func:`batchnorm_forward` (ReLU or not, as its cache says) whose output a max pool reads:
    ``batchnorm_backward(pool2d_backward(dout, pool_cache), norm_cache)`` but for the order of the
    batch norm's sums.

    ``dout`` (m, n_H, n_W, n_C) is the gradient of the pool's output. Where the pool's windows tile
    its input (stride equal to the window, no padding), the compiled tier reads the batch norm's
    gradient from ``dout`` and the winners without building it; otherwise the two passes run.

    Returns ``(dx, dgamma, dbeta)`` as :func:`batchnorm_backward` does.
    """
    if not isinstance(norm_cache, BatchNormCache):
        raise TypeError(
            f"norm_cache: expected a training-mode batchnorm_forward's cache (BatchNormCache), got "
            f"{type(norm_cache).__name__}; an inference cache's backward is batchnorm_inference_backward"
        )
    if pool_cache.mode != "max":
        raise ValueError(f"batchnorm_relu_maxpool_backward needs a max pool's cache, not an {pool_cache.mode} pool's")
    if tuple(pool_cache.x_shape) != tuple(norm_cache.shape):
        raise ValueError(
            f"the pool's input {tuple(pool_cache.x_shape)} is not the batch norm's output {tuple(norm_cache.shape)}: "
            "pass the caches of the forward passes of one batch"
        )
    dout = check_dout(dout, pool_cache.winner.shape).astype(norm_cache.rows.dtype, copy=False)
    return _backward(np.ascontiguousarray(dout), norm_cache, pool_cache)


def _backward_numpy(dout, norm_cache, pool_cache):
    """The two backward passes as they are."""
    return batchnorm_backward(pool2d_backward(dout, pool_cache), norm_cache)


def _tiles_input(dout, norm_cache, pool_cache) -> bool:
    """Whether the pool's windows tiled its input (stride equal to the window, no padding)."""
    return pool_cache.stride == pool_cache.pool and pool_cache.pads == ((0, 0), (0, 0))


@tiered(_backward_numpy, applies=_tiles_input)
def _backward(kernels, dout, norm_cache, pool_cache):
    """Batch norm's two compiled backward passes, each reading its gradient at the winners."""
    rows, centred, gamma, inv_std, mean, _, shape, scale, offset, relu = norm_cache
    x = rows.reshape(shape)
    if centred:  # a NumPy-tier forward stored x - mean
        mean = np.zeros_like(mean)
    winner, (ph, pw) = pool_cache.winner, pool_cache.pool
    fused = kernels.norm_pool
    dbeta, centred_product = fused.winner_gradient_sums(dout, winner, x, mean, scale, offset, relu, ph, pw)
    dgamma, constants = _input_gradient_constants(dbeta, centred_product, gamma, inv_std, mean, rows.shape[0])
    dx = aligned_empty(x.shape, x.dtype)
    a, b, c = (constant.astype(x.dtype) for constant in constants)
    fused.winner_input_gradient(dout, winner, x, a, b, c, scale, offset, relu, ph, pw, dx)
    return dx, dgamma.astype(x.dtype), dbeta.astype(x.dtype)
