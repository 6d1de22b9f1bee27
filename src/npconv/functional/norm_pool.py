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
    batchnorm_backward,
    batchnorm_forward,
)
from .conv import conv2d_backward, direct_weight_backward
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


def pooled_training_forward(kernels, x2, gamma, beta, eps, shape, pool, out_size, moments):
    """:func:`batchnorm_relu_maxpool_forward` compiled: the statistics' pass (none when ``moments``
    are given), then the affine map, ReLU and the pool in one pass; ``(out, (norm_cache,
    pool_cache))``. Unchecked: the arguments as that function leaves them (a training step that
    checked its first batch calls it directly, :class:`~npconv.engine.steps.ConvBatchStatistics`)."""
    norm_cache = _batch_statistics(kernels.batchnorm, x2, gamma, beta, eps, shape, True, moments)
    out = aligned_empty((shape[0], *out_size, shape[3]), x2.dtype)
    winner = aligned_empty(out.shape, WINNER_DTYPE)
    fused = kernels.norm_pool
    fused.scale_shift_max_pool(x2.reshape(shape), norm_cache.scale, norm_cache.offset, True, *pool, out, winner)
    return out, (norm_cache, PoolCache(tuple(shape), pool, pool, ((0, 0), (0, 0)), "max", winner, None))


_forward = tiered(_forward_numpy)(pooled_training_forward)


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
    return _backward(_checked_dout(dout, norm_cache, pool_cache), norm_cache, pool_cache)


def _checked_dout(dout, norm_cache, pool_cache) -> np.ndarray:
    """``dout`` as a C-contiguous array in the batch norm's dtype, the caches checked to be a
    training batch norm's and a max pool's of one batch."""
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
    return np.ascontiguousarray(dout)


def _backward_numpy(dout, norm_cache, pool_cache):
    """The two backward passes as they are."""
    return batchnorm_backward(pool2d_backward(dout, pool_cache), norm_cache)


def _tiles_input(dout, norm_cache, pool_cache) -> bool:
    """Whether the pool's windows tiled its input (stride equal to the window, no padding)."""
    return pool_cache.stride == pool_cache.pool and pool_cache.pads == ((0, 0), (0, 0))


@tiered(_backward_numpy, applies=_tiles_input)
def _backward(kernels, dout, norm_cache, pool_cache):
    """Batch norm's two compiled backward passes, each reading its gradient at the winners."""
    x, constants, dgamma, dbeta = _winner_sums(kernels, dout, norm_cache, pool_cache)
    (ph, pw), (a, b, c, scale, offset) = pool_cache.pool, constants
    dx = aligned_empty(x.shape, x.dtype)
    kernels.norm_pool.winner_input_gradient(
        dout, pool_cache.winner, x, a, b, c, scale, offset, norm_cache.relu, ph, pw, dx
    )
    return dx, dgamma, dbeta


def _winner_sums(kernels, dout, norm_cache, pool_cache):
    """The compiled backward's first pass, its sums read at the winners: ``(x, constants, dgamma,
    dbeta)``, ``x`` the batch norm's input ``(m, H, W, C)`` and ``constants`` its ``(a, b, c0, scale,
    offset)`` in x's dtype, ``dx = a * g - b * x + c0`` with ``g`` ReLU's mask of the routed
    gradient (``scale``, ``offset``: the forward's map)."""
    rows, centred, gamma, inv_std, mean, _, shape, scale, offset, relu = norm_cache
    x = rows.reshape(shape)
    if centred:  # a NumPy-tier forward stored x - mean
        mean = np.zeros_like(mean)
    winner, (ph, pw) = pool_cache.winner, pool_cache.pool
    dbeta, centred_product = kernels.norm_pool.winner_gradient_sums(dout, winner, x, mean, scale, offset, relu, ph, pw)
    dgamma, *constants = kernels.batchnorm.input_gradient_constants(
        dbeta, centred_product, gamma, inv_std, mean, rows.shape[0]
    )
    a, b, c = (constant.astype(x.dtype) for constant in constants)
    return x, (a, b, c, scale, offset), dgamma.astype(x.dtype), dbeta.astype(x.dtype)


def conv_batchnorm_relu_maxpool_weight_backward(dout, conv_cache, norm_cache: BatchNormCache, pool_cache: PoolCache):
    """Gradients of a first layer, a convolution whose output a training batch norm (+ ReLU) and a
    max pool read, without the input's: ``(dw, db, dgamma, dbeta)``, as
    ``conv2d_backward(batchnorm_relu_maxpool_backward(dout, ...)[0], conv_cache, need_dx=False)``
    and the batch norm's gradients give them, bit for bit.

    ``dout`` is the gradient of the pool's output; ``conv_cache`` the convolution's forward cache.
    Where the compiled direct kernel ran the convolution, its filters fill whole vectors and the
    pool's windows are 2 x 2 tiles, the weight gradient's tiles compute the batch norm's input
    gradient at each position as they read it (from its input, the pool's winners and ``dout``):
    that full-size array (8 MB a ``smallres`` batch) is never written. Otherwise, the two
    backwards.
    """
    dout = _checked_dout(dout, norm_cache, pool_cache)
    return _weight_backward(dout, conv_cache, norm_cache, pool_cache)


def _weight_backward_in_two(dout, conv_cache, norm_cache, pool_cache):
    """The two backwards, the batch norm's input gradient written between them."""
    dx, dgamma, dbeta = _backward(dout, norm_cache, pool_cache)
    _, dw, db = conv2d_backward(dx, conv_cache, need_dx=False)
    return dw, db, dgamma, dbeta


def _routes(dout, conv_cache, norm_cache, pool_cache) -> bool:
    """Whether the weight gradient's tiles take the batch norm's gradient as they read it."""
    from .compiled.conv import filter_lanes, reads_each_gradient_once

    z_shape, n_k = tuple(norm_cache.shape), norm_cache.shape[-1]
    n_taps = conv_cache.w.shape[0] * conv_cache.w.shape[1] * conv_cache.w.shape[2]
    return (
        conv_cache.layout == "direct"
        and reads_each_gradient_once(n_taps, n_k, norm_cache.rows.dtype)
        and not norm_cache.centred
        and pool_cache.pool == (2, 2)
        and _tiles_input(dout, norm_cache, pool_cache)
        and filter_lanes(n_k, norm_cache.rows.dtype) == n_k
        and z_shape[0] == conv_cache.x_shape[0]
        and z_shape[-1] == conv_cache.w.shape[3]
    )


@tiered(_weight_backward_in_two, applies=_routes)
def _weight_backward(kernels, dout, conv_cache, norm_cache, pool_cache):
    """:func:`conv_batchnorm_relu_maxpool_weight_backward`'s weight gradient with the routed tiles."""
    x, (a, b, c, scale, offset), dgamma, dbeta = _winner_sums(kernels, dout, norm_cache, pool_cache)
    constants = np.stack([a, b, c, scale, offset])  # all in x's dtype: a compiled forward's cache
    dw, db = direct_weight_backward(x, conv_cache, (dout, pool_cache.winner, constants, bool(norm_cache.relu)))
    return dw, db, dgamma, dbeta
