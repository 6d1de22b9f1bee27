"""Batch normalisation over every axis but the last (the channels of NHWC, the features of (m, n)).

Training (batch statistics, ``N`` = number of rows once ``x`` is viewed as ``(N, C)``)::

    mean = sum_i x[i] / N,   var = sum_i (x[i] - mean)^2 / N   (biased, as Keras and PyTorch)
    xhat = (x - mean) / sqrt(var + eps),   out = gamma * xhat + beta

The layer keeps moving averages, Keras style: ``moving = moving * momentum + batch * (1 - momentum)``.
Keras feeds the *biased* batch variance into the moving variance (``cache.var`` here); PyTorch uses
the unbiased ``var * N / (N - 1)``. npconv follows Keras.

``relu=True`` applies ReLU to the output, ``max(out, 0)``, in the same passes (a model's
``BatchNormalization`` followed by ``ReLU`` runs so, see :mod:`npconv.engine.plan`); the backward
recomputes ReLU's mask ``x * scale + offset > 0`` from the input it reads anyway, with the scale and
offset the forward used (the same rounding, so the same mask).

Speed: a Happy-model batch is ``(64, 64, 64, 32)`` float32, i.e. ``(65536, 32)`` rows. In the NumPy
tier column sums are BLAS matrix-vector products with a vector of ones, in two levels (see
:func:`~npconv.functional._reduce.column_sum`); the compiled tier
(:mod:`npconv.functional.compiled.batchnorm`) makes two passes over the rows each way.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import ShapeError, check_float_array, expected
from ._reduce import column_sum
from ._shapes import check_dout
from ._tier import tiered
from ._workspace import aligned_empty
from .padding import Bordered


class BatchNormCache(NamedTuple):
    """What the training backward needs; ``mean`` and ``var`` feed the layer's moving averages."""

    rows: np.ndarray  # (N, C): x - mean when ``centred`` (NumPy tier), else x itself (compiled
    centred: bool  # tier, a view: no copy); xhat = (x - mean) * inv_std is never stored
    gamma: np.ndarray  # (C,)
    inv_std: np.ndarray  # (C,) 1 / sqrt(var + eps)
    mean: np.ndarray  # (C,) batch mean
    var: np.ndarray  # (C,) biased batch variance
    shape: tuple  # the input's shape
    scale: np.ndarray  # (C,) the forward's output before ReLU was rows * scale + offset
    offset: np.ndarray  # (C,)
    relu: bool  # whether ReLU followed


class BatchMoments(NamedTuple):
    """A batch's per-channel statistics, float64, as a convolution's kernel can give them
    (:func:`~npconv.functional.conv2d_forward_with_moments`): the batch norm reading its output
    then skips its own pass over it."""

    mean: np.ndarray  # (C,)
    var: np.ndarray  # (C,) biased


class ScaleShift(NamedTuple):
    """A training batch norm's output not yet written: ``x * scale + offset`` per channel, the map
    its forward applies last (``x`` the cache's rows in the input's shape: the input itself in the
    compiled tier, the input less the mean in the NumPy tier). A pass that reads the output anyway
    applies the map as it reads ``x`` (:func:`~npconv.functional.add_maxpool_forward`: a residual
    branch's batch norm), and the full-size output is never written; :meth:`value` writes it, with
    the forward's bits."""

    x: np.ndarray  # the input's shape
    scale: np.ndarray  # (C,)
    offset: np.ndarray  # (C,)

    @property
    def shape(self) -> tuple:
        return self.x.shape

    def value(self) -> np.ndarray:
        """The output the forward would have returned."""
        rows = self.x.reshape(-1, self.x.shape[-1])
        return _scale_shift(rows, self.scale, self.offset, False).reshape(self.x.shape)


def batch_moments_of_rows(kernels, row_moments: np.ndarray, per_row: int, n_c: int) -> BatchMoments:
    """The batch's moments from rows' ``(R, 3, C_pad)`` partials ``(first value, sum of values less
    it, sum of their squares)``, each over ``per_row`` values: Chan's rule in float64 (compiled)."""
    return BatchMoments(*kernels.batchnorm.combine_row_moments(row_moments, per_row, n_c))


class BatchNormInferenceCache(NamedTuple):
    """What the inference backward needs: the input and the fixed statistics."""

    x: np.ndarray  # (N, C) the input (a view, not a copy)
    moving_mean: np.ndarray  # (C,)
    inv_std: np.ndarray  # (C,) 1 / sqrt(moving_var + eps)
    gamma: np.ndarray  # (C,)
    shape: tuple
    scale: np.ndarray  # (C,) the output before ReLU was x * scale + offset
    offset: np.ndarray  # (C,)
    relu: bool  # whether ReLU followed


def _as_rows(x, name: str) -> np.ndarray:
    x = check_float_array(x, name)
    if x.ndim < 2:
        raise ShapeError(
            expected(
                name,
                "an array of at least 2 dimensions (m, ..., n_C)",
                x,
                "Batch normalisation needs a batch axis and a channel axis.",
            )
        )
    return np.ascontiguousarray(x).reshape(-1, x.shape[-1])


def _channel_params(x: np.ndarray, **params) -> list[np.ndarray]:
    """Each per-channel parameter as a ``(C,)`` array in ``x``'s dtype."""
    n_c = x.shape[-1]
    out = []
    for name, value in params.items():
        value = check_float_array(value, name)
        if value.shape != (n_c,):
            raise ShapeError(expected(name, f"shape ({n_c},), one value per channel of x {x.shape}", value))
        out.append(value.astype(x.dtype, copy=False))
    return out


def _check_eps(eps) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not eps > 0:
        raise ValueError(expected("eps", "a positive float (Keras's default is 1e-3)", eps))


def batchnorm_forward(
    x, gamma, beta, eps=1e-3, relu=False, moments: BatchMoments | None = None, deferred=False, out=None
):
    """Normalise with the batch's own statistics (training mode).

    Parameters
    ----------
    x : ndarray, shape (m, n_H, n_W, n_C) or (m, n_C) (any rank >= 2; the last axis is the channels)
    gamma, beta : ndarray, shape (n_C,)
    eps : float, added to the variance (Keras's default 1e-3; PyTorch's is 1e-5)
    relu : bool, return ``max(out, 0)`` (batch norm followed by ReLU, in the same passes)
    moments : the batch's mean and variance when they are known already (the convolution that wrote
        ``x`` took them, :func:`~npconv.functional.conv2d_forward_with_moments`); else computed here
    deferred : return the output as a :class:`ScaleShift`, the map not yet applied, for a pass that
        reads it anyway to apply (without ``relu``)
    out : optional :class:`~npconv.functional.padding.Bordered` buffer to write the output into,
        inside its zero border (the padded input of the convolution that reads it: no padding pass
        then); the output returned is its ``interior``

    Returns
    -------
    out : ndarray, shape and dtype of ``x`` (a :class:`ScaleShift` when ``deferred``)
    cache : BatchNormCache, with ``.mean`` and ``.var`` (biased) for the moving averages
    """
    _check_eps(eps)
    if deferred and (relu or out is not None):
        raise ValueError("batchnorm_forward: deferred=True writes no output (no relu, no out)")
    x2 = _as_rows(x, "x")
    gamma, beta = _channel_params(x2, gamma=gamma, beta=beta)
    _check_moments(moments, x2.shape[1])
    _check_out(out, np.shape(x), x2.dtype, "out")
    return _normalise(x2, gamma, beta, eps, np.shape(x), bool(relu), moments, bool(deferred), out)


def _check_out(out, shape: tuple, dtype, name: str) -> None:
    """Refuse an ``out`` that is not a :class:`Bordered` buffer around an array of ``shape`` and ``dtype``."""
    if out is not None and not (
        isinstance(out, Bordered) and out.interior.shape == tuple(shape) and out.padded.dtype == dtype
    ):
        raise ValueError(
            expected(
                name,
                f"a zero-bordered buffer (npconv.functional.padding.bordered_empty) around shape {tuple(shape)} "
                f"and dtype {np.dtype(dtype)}",
                out if isinstance(out, np.ndarray) else type(out).__name__,
                "Pass out=None to have a new array returned.",
            )
        )


def _check_moments(moments, n_c: int) -> None:
    if moments is not None and (
        not isinstance(moments, BatchMoments) or np.shape(moments.mean) != (n_c,) or np.shape(moments.var) != (n_c,)
    ):
        raise ShapeError(expected("moments", f"a BatchMoments of {n_c} channels' mean and variance, or None", moments))


def _normalise_numpy(x2, gamma, beta, eps, shape, relu, moments, deferred, given_out):
    """:func:`batchnorm_forward` on the rows ``x2 (N, C)``: centre, then scale and shift."""
    n = x2.shape[0]
    mean = column_sum(x2) / n if moments is None else moments.mean.astype(x2.dtype)
    xc = x2 - mean
    # Two passes (centre, then square) rather than E[x^2] - E[x]^2, which cancels badly in float32.
    out = xc * xc
    var = column_sum(out) / n if moments is None else moments.var.astype(x2.dtype)
    inv_std = 1 / np.sqrt(var + eps)
    # out = xc * (gamma * inv_std) + beta, in the squares' buffer. xhat itself is never formed:
    # every pass over (N, C) costs milliseconds at (64, 64, 64, 32) float32, where the data leave the
    # cache (benchmarks/kernels.py times this kernel per tier).
    scale = gamma * inv_std
    cache = BatchNormCache(xc, True, gamma, inv_std, mean, var, shape, scale, beta, relu)
    if deferred:
        return ScaleShift(xc.reshape(shape), scale, beta), cache
    np.multiply(xc, scale, out=out)
    out += beta
    if relu:
        np.maximum(out, 0, out=out)
    return _written(out.reshape(shape), given_out), cache


def _written(result: np.ndarray, out):
    """``result``, copied into the :class:`Bordered` ``out``'s interior when one was given (the NumPy
    tier's way to fill it), and that interior returned."""
    if out is None:
        return result
    out.interior[...] = result
    return out.interior


def training_forward(kernels, x2, gamma, beta, eps, shape, relu, moments, deferred, out):
    """:func:`batchnorm_forward` in two compiled passes: moments (about the first row; none when
    given), then the affine map ``out = x * scale + (beta - mean * scale)`` (and ReLU): ``(out,
    cache)``. Unchecked: the arguments as :func:`batchnorm_forward` leaves them (a training step
    that checked its first batch calls it directly, :class:`~npconv.engine.steps.ConvBatchStatistics`)."""
    cache = _batch_statistics(kernels.batchnorm, x2, gamma, beta, eps, shape, relu, moments)
    if deferred:
        return ScaleShift(x2.reshape(shape), cache.scale, cache.offset), cache
    written = _scale_shift(x2, cache.scale, cache.offset, relu, out)
    return (written.reshape(shape) if out is None else written), cache


_normalise = tiered(_normalise_numpy)(training_forward)


def _rows_target(bn, x2: np.ndarray, out) -> tuple:
    """``(flat, layout, tile length)`` for a compiled kernel writing the rows ``x2 (N, C)``: a new
    array when ``out`` is None, else the :class:`Bordered` ``out``'s buffer, rows placed inside its
    border by ``layout`` (:func:`~npconv.functional.compiled.batchnorm._placed`) and tiles one
    image row long, so that none straddles the border between two rows."""
    if out is None:
        return aligned_empty((x2.size,), x2.dtype), (0, x2.size, 0, 1, 0), bn.tile_length(x2.shape[1])
    (top, bottom), (left, right) = out.pads
    _, h_pad, w_pad, n_c = out.padded.shape
    run = (w_pad - left - right) * n_c
    layout = ((top * w_pad + left) * n_c, run, (left + right) * n_c, h_pad - top - bottom, (top + bottom) * w_pad * n_c)
    return out.padded.reshape(-1), layout, run


def _batch_statistics(bn, x2, gamma, beta, eps, shape, relu, moments=None) -> BatchNormCache:
    """The compiled tier's training cache for the rows ``x2 (N, C)``: the ``moments`` given, else one
    pass of moments about the first row (float64 sums); then the per-channel ``scale`` and
    ``offset`` of the affine map."""
    if moments is None:
        n = x2.shape[0]
        shift = x2[0]
        sums, squares = bn.channel_moments(x2, shift, bn.tile_length(x2.shape[1]))
        shifted_mean = sums / n
        var64 = np.maximum(squares / n - shifted_mean**2, 0.0)
        mean64 = shift + shifted_mean
    else:
        mean64, var64 = moments
    constants = np.empty((5, x2.shape[1]), x2.dtype)
    bn.normalising_constants(mean64, var64, gamma, beta, float(eps), constants)
    inv_std, mean, var, scale, offset = constants
    return BatchNormCache(x2, False, gamma, inv_std, mean, var, shape, scale, offset, relu)


def update_moving_statistics(moving_mean, moving_var, mean, var, momentum: float) -> None:
    """``moving = momentum * moving + (1 - momentum) * batch`` for the mean and the variance (Keras's
    rule), in place: ``moving_mean`` and ``moving_var`` ``(C,)``, the batch's ``mean`` and ``var``
    of C values (a training forward's cache's), the arithmetic in the moving arrays' dtype."""
    _update_moving(moving_mean, moving_var, mean.reshape(moving_mean.shape), var.reshape(moving_var.shape), momentum)


def _update_moving_numpy(moving_mean, moving_var, mean, var, momentum):
    for moving, batch in ((moving_mean, mean), (moving_var, var)):
        moving *= momentum
        moving += (1.0 - momentum) * batch


def _one_dtype(moving_mean, moving_var, mean, var, momentum) -> bool:
    """Whether the four arrays share one float dtype and the moving ones are contiguous (updated
    in place by the compiled loop)."""
    return (
        moving_mean.dtype == moving_var.dtype == mean.dtype == var.dtype
        and moving_mean.flags.c_contiguous
        and moving_var.flags.c_contiguous
    )


@tiered(_update_moving_numpy, applies=_one_dtype)
def _update_moving(kernels, moving_mean, moving_var, mean, var, momentum):
    """:func:`_update_moving_numpy` in one compiled call (its eight NumPy operations cost more than
    their arithmetic on ``(C,)`` arrays), the coefficients rounded to the dtype as NumPy does."""
    f = moving_mean.dtype.type
    kernels.batchnorm.update_moving(moving_mean, moving_var, mean, var, f(momentum), f(1.0 - momentum))


def batchnorm_backward(dout, cache, out=None):
    """Gradients of the training-mode forward, through the batch statistics.

    ``dbeta = sum(dout)``, ``dgamma = sum(dout * xhat)`` (sums over the ``N`` rows) and

    ``dx = (gamma * inv_std / N) * (N * dout - dbeta - xhat * dgamma)``,

    ``dout`` first masked by ReLU's ``out > 0`` when the forward applied it.

    Returns ``(dx, dgamma, dbeta)`` with ``dx`` shaped like the input: written inside the border of
    ``out`` when given (as :func:`batchnorm_forward`'s ``out``: the padded output gradient the
    convolution before reads), its interior returned.
    """
    rows = cache.rows
    d2 = np.ascontiguousarray(check_dout(dout, cache.shape), dtype=rows.dtype).reshape(rows.shape)
    _check_out(out, cache.shape, rows.dtype, "out")
    return _normalise_backward(d2, cache, out)


def _normalise_backward_numpy(d2, cache, out):
    """:func:`batchnorm_backward` on the rows' gradient ``d2 (N, C)``."""
    rows, centred, gamma, inv_std, mean, _, shape, scale, offset, relu = cache
    n = rows.shape[0]
    if relu:
        d2 = d2 * (_scale_shift_numpy(rows, scale, offset, False) > 0)
    xc = rows if centred else rows - mean
    dbeta = column_sum(d2)
    dx = d2 * xc
    dgamma = column_sum(dx) * inv_std  # sum(dout * xhat), with xhat = xc * inv_std
    # dx = gamma * inv_std * (dout - (xhat * dgamma + dbeta) / N), in the product's buffer.
    np.multiply(xc, inv_std * dgamma / n, out=dx)
    dx += dbeta / n
    np.subtract(d2, dx, out=dx)
    dx *= gamma * inv_std
    return _written(dx.reshape(shape), out), dgamma, dbeta


def training_backward(kernels, d2, cache, out):
    """:func:`batchnorm_backward` in one compiled call of two passes: the sums ``dbeta`` and
    ``sum(dout * xc)``, then ``dx = a * dout - b * xc - a * dbeta / N`` with ``a = gamma * inv_std``
    and ``b = a * inv_std * dgamma / N`` (``dout`` masked by ReLU's in both). Unchecked: ``d2`` the
    C-contiguous rows of the gradient, as :func:`batchnorm_backward` leaves them."""
    bn = kernels.batchnorm
    x2, centred, gamma, inv_std, mean, _, shape, scale, offset, relu = cache
    if centred:  # a NumPy-tier forward stored x - mean
        mean = np.zeros_like(mean)
    target, layout, length = _rows_target(bn, x2, out)
    sums_length = bn.tile_length(x2.shape[1])
    dgamma, dbeta = bn.training_backward(
        d2, x2, mean, gamma, inv_std, scale, offset, relu, sums_length, target, layout, length
    )
    dx = target.reshape(shape) if out is None else out.interior
    return dx, dgamma.astype(x2.dtype), dbeta.astype(x2.dtype)


_normalise_backward = tiered(_normalise_backward_numpy)(training_backward)


def batchnorm_inference_forward(x, gamma, beta, moving_mean, moving_var, eps=1e-3, relu=False):
    """Normalise with fixed statistics: ``out = gamma * (x - moving_mean) / sqrt(moving_var + eps) + beta``.

    Shapes as :func:`batchnorm_forward`; ``moving_mean`` and ``moving_var`` are ``(n_C,)``; ``relu``
    returns ``max(out, 0)``.
    """
    _check_eps(eps)
    x2 = _as_rows(x, "x")
    gamma, beta, moving_mean, moving_var = _channel_params(
        x2, gamma=gamma, beta=beta, moving_mean=moving_mean, moving_var=moving_var
    )
    if np.any(moving_var < 0):
        raise ValueError(expected("moving_var", "non-negative variances", moving_var))
    inv_std = 1 / np.sqrt(moving_var + eps)
    scale = gamma * inv_std
    # out = x * scale + (beta - moving_mean * scale): one compiled pass, or a multiply and an add.
    offset = beta - moving_mean * scale
    relu = bool(relu)
    out = _scale_shift(x2, scale, offset, relu)
    cache = BatchNormInferenceCache(x2, moving_mean, inv_std, gamma, np.shape(x), scale, offset, relu)
    return out.reshape(cache.shape), cache


def _scale_shift_numpy(x2, scale, offset, relu, out=None):
    """``x2 * scale + offset``, per channel, then ``max(., 0)`` when ``relu``: a multiply and an add
    (copied into ``out``, an array of the input's shape, when given)."""
    result = x2 * scale
    result += offset
    if relu:
        np.maximum(result, 0, out=result)
    return result if out is None else _written(result.reshape(out.interior.shape), out)


@tiered(_scale_shift_numpy)
def _scale_shift(kernels, x2, scale, offset, relu, out=None):
    """``x2 * scale + offset`` (and ReLU) in one compiled pass, written into ``out`` when given."""
    bn = kernels.batchnorm
    target, layout, length = _rows_target(bn, x2, out)
    bn.scale_shift(x2, scale, offset, relu, target, layout, length)
    return target.reshape(x2.shape) if out is None else out.interior


def batchnorm_inference_backward(dout, cache):
    """The statistics are constants here: ``dx = dout * gamma / sqrt(moving_var + eps)``.

    ``dgamma = sum(dout * xhat)``, ``dbeta = sum(dout)``, ``dout`` first masked by ReLU's ``out > 0``
    when the forward applied it. Returns ``(dx, dgamma, dbeta)``.
    """
    x2, moving_mean, inv_std, gamma, shape, scale, offset, relu = cache
    d2 = np.ascontiguousarray(check_dout(dout, shape)).reshape(x2.shape)
    if relu:
        d2 = d2 * (_scale_shift_numpy(x2, scale, offset, False) > 0)
    work = x2 - moving_mean
    work *= d2
    dgamma = column_sum(work) * inv_std
    dbeta = column_sum(d2)
    np.multiply(d2, gamma * inv_std, out=work)
    return work.reshape(shape), dgamma, dbeta


def fold_batchnorm(w, b, gamma, beta, moving_mean, moving_var, eps=1e-3):
    """The weights of an affine layer followed by an inference batch norm, as one affine layer.

    ``norm(x @ w + b) = x @ w' + b'`` per output channel ``k``, with ``s = gamma / sqrt(moving_var + eps)``::

        w'[..., k] = w[..., k] * s[k],   b'[k] = (b[k] - moving_mean[k]) * s[k] + beta[k]

    Parameters
    ----------
    w : ndarray, a convolution's filters (fh, fw, n_C, K) or a dense layer's (n_in, K)
    b : ndarray, shape (K,), or ``None`` for a layer without a bias
    gamma, beta, moving_mean, moving_var : ndarray, shape (K,)
    eps : float, as the batch norm's

    Returns
    -------
    (w', b') in ``w``'s dtype and shapes ``w.shape`` and ``(K,)``, the per-channel constants
    computed in float64: the folded layer's outputs differ from the two layers' by rounding alone.
    """
    _check_eps(eps)
    w = check_float_array(w, "w", (4, 2))
    n_k = w.shape[-1]
    params = {"gamma": gamma, "beta": beta, "moving_mean": moving_mean, "moving_var": moving_var}
    params["b"] = np.zeros(n_k) if b is None else b
    for name, value in params.items():
        value = params[name] = check_float_array(value, name).astype(np.float64, copy=False)
        if value.shape != (n_k,):
            raise ShapeError(expected(name, f"shape ({n_k},), one value per output channel of w {w.shape}", value))
    if np.any(params["moving_var"] < 0):
        raise ValueError(expected("moving_var", "non-negative variances", params["moving_var"]))
    return folded_weights(
        w, params["b"], params["gamma"], params["beta"], params["moving_mean"], params["moving_var"], eps
    )


def folded_weights(w, b, gamma, beta, moving_mean, moving_var, eps):
    """:func:`fold_batchnorm` without its checks, for weights a model holds (``b`` an array), in
    their dtype as the batch norm's own inference computes them. A model folds on every inference
    call (its weights may have changed since the last), so this is a handful of operations on small
    arrays."""
    scale = gamma / np.sqrt(moving_var + eps)
    shift = (b - moving_mean) * scale + beta
    return w * scale.astype(w.dtype), shift.astype(w.dtype)
