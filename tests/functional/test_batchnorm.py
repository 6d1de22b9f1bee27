"""Batch normalisation, training and inference mode, against numerical gradients and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npconv.errors import ShapeError
from npconv.functional.batchnorm import (
    batchnorm_backward,
    batchnorm_forward,
    batchnorm_inference_backward,
    batchnorm_inference_forward,
    fold_batchnorm,
)
from npconv.functional.conv import conv2d_forward
from npconv.functional.dense import dense_forward
from npconv.functional.padding import bordered_empty
from npconv.gradcheck import gradcheck

# Every test runs once per kernel tier: the NumPy reference and the compiled (Numba) kernels.
pytestmark = pytest.mark.usefixtures("tier")

TOL = dict(rtol=1e-9, atol=1e-11)


def params(rng, n_c):
    return {"gamma": 1 + 0.5 * rng.standard_normal(n_c), "beta": rng.standard_normal(n_c)}


@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 2, 4)])
def test_training_gradients(shape, rng):
    # dx is orthogonal to the constants and to xhat, so it is small next to the loss: a larger step
    # keeps the finite differences' rounding (~1e-16 / eps) well below it.
    gradcheck(
        batchnorm_forward, batchnorm_backward, {"x": rng.standard_normal(shape), **params(rng, shape[-1])}, eps=1e-5
    )


def test_inference_gradients(rng):
    inputs = {"x": rng.standard_normal((2, 3, 2, 4)), **params(rng, 4)}
    stats = {"moving_mean": rng.standard_normal(4), "moving_var": rng.random(4) + 0.5}
    gradcheck(
        lambda x, gamma, beta: batchnorm_inference_forward(x, gamma, beta, **stats),
        batchnorm_inference_backward,
        inputs,
    )


def test_training_output_is_normalised_and_cache_has_biased_statistics(rng):
    x = 3 + 2 * rng.standard_normal((8, 5, 5, 3))
    out, cache = batchnorm_forward(x, np.ones(3), np.zeros(3), eps=1e-12)
    rows = out.reshape(-1, 3)
    np.testing.assert_allclose(rows.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(rows.var(0), 1, rtol=1e-9)
    np.testing.assert_allclose(cache.mean, x.reshape(-1, 3).mean(0), rtol=1e-12)
    np.testing.assert_allclose(cache.var, x.reshape(-1, 3).var(0), rtol=1e-12)  # ddof=0


def test_inference_with_the_batch_statistics_equals_training(rng):
    x = rng.standard_normal((4, 3, 3, 2))
    p = params(rng, 2)
    out, cache = batchnorm_forward(x, **p)
    same, _ = batchnorm_inference_forward(x, **p, moving_mean=cache.mean, moving_var=cache.var)
    np.testing.assert_allclose(same, out, rtol=1e-12, atol=1e-12)


def test_accepts_non_contiguous_input(rng):
    x = rng.standard_normal((3, 4, 5, 2))
    view = x.transpose(0, 2, 1, 3)
    out, cache = batchnorm_forward(view, np.ones(2), np.zeros(2))
    expected, expected_cache = batchnorm_forward(np.ascontiguousarray(view), np.ones(2), np.zeros(2))
    np.testing.assert_array_equal(out, expected)
    dout = rng.standard_normal(x.shape).transpose(0, 2, 1, 3)  # a non-contiguous view too
    for grad, expected_grad in zip(
        batchnorm_backward(dout, cache), batchnorm_backward(np.ascontiguousarray(dout), expected_cache)
    ):
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", ["training", "inference"])
def test_float32_is_kept_and_matches_float64(mode):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 8, 8, 4))
    dout = rng.standard_normal(x.shape)
    p = params(rng, 4)
    stats = {"moving_mean": rng.standard_normal(4), "moving_var": rng.random(4) + 0.5}

    def run(dtype):
        cast = {k: v.astype(dtype) for k, v in p.items()}
        if mode == "training":
            out, cache = batchnorm_forward(x.astype(dtype), **cast)
            return (out, *batchnorm_backward(dout.astype(dtype), cache))
        out, cache = batchnorm_inference_forward(x.astype(dtype), **cast, **stats)
        return (out, *batchnorm_inference_backward(dout.astype(dtype), cache))

    for a32, a64 in zip(run(np.float32), run(np.float64)):
        assert a32.dtype == np.float32
        np.testing.assert_allclose(a32, a64, rtol=1e-5, atol=2e-5 * np.abs(a64).max())


@pytest.mark.parametrize("rows", [65536, 65536 + 100, 300])
def test_float32_column_sums_are_accurate_at_happy_model_size(rows):
    rng = np.random.default_rng(0)
    x = (5 + rng.standard_normal((rows, 32))).astype(np.float32)
    _, cache = batchnorm_forward(x, np.ones(32, np.float32), np.zeros(32, np.float32))
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(cache.mean, x64.mean(0), rtol=1e-6)
    np.testing.assert_allclose(cache.var, x64.var(0), rtol=1e-5)


# ----- PyTorch (NCHW: torch normalises over every axis but dim 1) -----


def to_nchw(torch, a):
    return torch.tensor(np.moveaxis(a, -1, 1).copy(), requires_grad=True)


def from_nchw(t):
    return np.moveaxis(t.detach().numpy(), 1, -1)


@settings(max_examples=12, deadline=None)
@given(
    shape=st.tuples(st.integers(2, 5), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
    eps=st.sampled_from([1e-3, 1e-5]),
)
def test_training_matches_torch(torch, shape, eps):
    rng = np.random.default_rng(sum(shape))
    x, dout = 2 + 3 * rng.standard_normal(shape), rng.standard_normal(shape)
    p = params(rng, shape[-1])
    out, cache = batchnorm_forward(x, **p, eps=eps)
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)

    tx = to_nchw(torch, x)
    tg, tb = (torch.tensor(p[k], requires_grad=True) for k in ("gamma", "beta"))
    tout = torch.nn.functional.batch_norm(tx, None, None, tg, tb, training=True, eps=eps)
    tout.backward(torch.tensor(np.moveaxis(dout, -1, 1).copy()))
    np.testing.assert_allclose(out, from_nchw(tout), **TOL)
    np.testing.assert_allclose(dx, from_nchw(tx.grad), **TOL)
    np.testing.assert_allclose(dgamma, tg.grad.numpy(), **TOL)
    np.testing.assert_allclose(dbeta, tb.grad.numpy(), **TOL)


def test_training_moving_variance_differs_from_torch_by_bessel(torch, rng):
    """npconv (Keras) feeds the biased variance to the moving average; PyTorch the unbiased one."""
    x = rng.standard_normal((4, 3, 3, 2))
    _, cache = batchnorm_forward(x, np.ones(2), np.zeros(2))
    running_mean, running_var = torch.zeros(2), torch.zeros(2)
    torch.nn.functional.batch_norm(to_nchw(torch, x), running_mean, running_var, training=True, momentum=1.0)
    n = x.size // 2
    np.testing.assert_allclose(running_mean.numpy(), cache.mean, **TOL)
    np.testing.assert_allclose(running_var.numpy(), cache.var * n / (n - 1), **TOL)


def test_inference_matches_torch(torch, rng):
    shape = (3, 4, 2, 5)
    x, dout = rng.standard_normal(shape), rng.standard_normal(shape)
    p = params(rng, 5)
    mean, var = rng.standard_normal(5), rng.random(5) + 0.1
    out, cache = batchnorm_inference_forward(x, **p, moving_mean=mean, moving_var=var)
    dx, dgamma, dbeta = batchnorm_inference_backward(dout, cache)

    tx = to_nchw(torch, x)
    tg, tb = (torch.tensor(p[k], requires_grad=True) for k in ("gamma", "beta"))
    tout = torch.nn.functional.batch_norm(tx, torch.tensor(mean), torch.tensor(var), tg, tb, training=False, eps=1e-3)
    tout.backward(torch.tensor(np.moveaxis(dout, -1, 1).copy()))
    np.testing.assert_allclose(out, from_nchw(tout), **TOL)
    np.testing.assert_allclose(dx, from_nchw(tx.grad), **TOL)
    np.testing.assert_allclose(dgamma, tg.grad.numpy(), **TOL)
    np.testing.assert_allclose(dbeta, tb.grad.numpy(), **TOL)


# ----- batch norm followed by ReLU, in the same passes (relu=True) -----


def bn_relu_inputs(rng, shape):
    """Inputs whose outputs stay clear of ReLU's kink (finite differences cross no corner)."""
    x = rng.standard_normal(shape)
    x[np.abs(x) < 0.05] += 0.2
    return {"x": x, "gamma": np.array([1.5, -0.8, 0.6, 1.1][: shape[-1]]), "beta": np.zeros(shape[-1])}


@pytest.mark.parametrize("shape", [(7, 3), (2, 3, 2, 4)])
def test_training_with_relu_gradients(shape, rng):
    gradcheck(
        lambda x, gamma, beta: batchnorm_forward(x, gamma, beta, relu=True),
        batchnorm_backward,
        bn_relu_inputs(rng, shape),
        eps=1e-5,
    )


def test_inference_with_relu_gradients(rng):
    stats = {"moving_mean": np.zeros(4), "moving_var": np.ones(4) - 1e-3}  # xhat = x: clear of the kink
    gradcheck(
        lambda x, gamma, beta: batchnorm_inference_forward(x, gamma, beta, **stats, relu=True),
        batchnorm_inference_backward,
        bn_relu_inputs(rng, (2, 3, 2, 4)),
    )


@pytest.mark.parametrize("mode", ["training", "inference"])
def test_relu_option_is_batchnorm_then_relu(mode, rng):
    """The fused pass against the two kernels it replaces, with a channel that ReLU zeroes entirely
    (gamma = beta = 0: every output exactly 0, so no gradient reaches gamma or beta)."""
    from npconv.functional.activations import relu_backward, relu_forward

    x, dout = 1 + rng.standard_normal((6, 5, 4, 3)), rng.standard_normal((6, 5, 4, 3))
    gamma, beta = np.array([1.3, -0.7, 0.0]), np.array([0.2, 0.1, 0.0])
    stats = {"moving_mean": rng.standard_normal(3), "moving_var": rng.random(3) + 0.5}
    forward, backward = (
        (batchnorm_forward, batchnorm_backward)
        if mode == "training"
        else (lambda *a, **k: batchnorm_inference_forward(*a, **stats, **k), batchnorm_inference_backward)
    )
    out, cache = forward(x, gamma, beta, relu=True)
    plain, plain_cache = forward(x, gamma, beta)
    activated, relu_cache = relu_forward(plain)
    np.testing.assert_array_equal(out, activated)
    grads = backward(dout, cache)
    expected = backward(relu_backward(dout, relu_cache), plain_cache)
    for grad, expected_grad in zip(grads, expected):
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-14)
    assert grads[1][2] == 0 and grads[2][2] == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_with_relu_matches_torch(torch, rng, dtype):
    shape = (4, 5, 3, 4)
    x, dout = (2 + 3 * rng.standard_normal(shape)).astype(dtype), rng.standard_normal(shape).astype(dtype)
    p = {k: v.astype(dtype) for k, v in params(rng, 4).items()}
    out, cache = batchnorm_forward(x, **p, relu=True)
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)

    tx = to_nchw(torch, x)
    tg, tb = (torch.tensor(p[k], requires_grad=True) for k in ("gamma", "beta"))
    tout = torch.relu(torch.nn.functional.batch_norm(tx, None, None, tg, tb, training=True, eps=1e-3))
    tout.backward(torch.tensor(np.moveaxis(dout, -1, 1).copy()))
    tol = TOL if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out, from_nchw(tout), **tol)
    np.testing.assert_allclose(dx, from_nchw(tx.grad), **tol)
    np.testing.assert_allclose(dgamma, tg.grad.numpy(), **tol)
    np.testing.assert_allclose(dbeta, tb.grad.numpy(), **tol)


# ----- an inference batch norm folded into the layer before it -----


def stats(rng, n_c):
    return {**params(rng, n_c), "moving_mean": rng.standard_normal(n_c), "moving_var": rng.random(n_c) + 0.1}


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("eps", [1e-3, 1e-5])
def test_a_folded_convolution_is_the_convolution_then_the_batch_norm(rng, bias, eps):
    x, w = rng.standard_normal((3, 6, 7, 4)), rng.standard_normal((3, 2, 4, 5))
    b, p = rng.standard_normal(5) if bias else np.zeros(5), stats(rng, 5)
    z, _ = conv2d_forward(x, w, b, padding="same")
    expected, _ = batchnorm_inference_forward(z, eps=eps, **p)
    w_folded, b_folded = fold_batchnorm(w, b if bias else None, eps=eps, **p)
    assert w_folded.shape == w.shape and b_folded.shape == (5,)
    np.testing.assert_allclose(conv2d_forward(x, w_folded, b_folded, padding="same")[0], expected, **TOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_folded_dense_layer_keeps_its_dtype(rng, dtype):
    x, w, b, p = rng.standard_normal((5, 6)), rng.standard_normal((6, 3)), rng.standard_normal(3), stats(rng, 3)
    x, w, b = x.astype(dtype), w.astype(dtype), b.astype(dtype)
    expected, _ = batchnorm_inference_forward(dense_forward(x, w, b)[0], **p)
    w_folded, b_folded = fold_batchnorm(w, b, **p)
    assert w_folded.dtype == b_folded.dtype == dtype
    tol = TOL if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dense_forward(x, w_folded, b_folded)[0], expected, **tol)


def test_folding_matches_torch(torch, rng):
    # torch's own conv + batch norm fusion (the one its FX and quantisation passes use), OIHW filters
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    w, b, p = rng.standard_normal((3, 3, 4, 6)), rng.standard_normal(6), stats(rng, 6)
    t = {k: torch.tensor(v) for k, v in p.items()}
    tw, tb = fuse_conv_bn_weights(
        torch.tensor(w.transpose(3, 2, 0, 1).copy()),
        torch.tensor(b),
        t["moving_mean"],
        t["moving_var"],
        1e-3,
        t["gamma"],
        t["beta"],
    )
    w_folded, b_folded = fold_batchnorm(w, b, **p)
    np.testing.assert_allclose(w_folded, tw.detach().numpy().transpose(2, 3, 1, 0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b_folded, tb.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_folding_refuses_statistics_of_the_wrong_length_and_negative_variances(rng):
    w, p = rng.standard_normal((3, 3, 2, 4)), stats(rng, 4)
    with pytest.raises(ShapeError, match=r"beta: expected shape \(4,\), one value per output channel of w"):
        fold_batchnorm(w, None, **{**p, "beta": np.zeros(3)})
    with pytest.raises(ValueError, match="moving_var: expected non-negative variances"):
        fold_batchnorm(w, None, **{**p, "moving_var": -p["moving_var"]})
    with pytest.raises(ShapeError, match="w: expected a 4 or 2-D array"):
        fold_batchnorm(np.ones(4), None, **p)


# ----- bad input -----


def test_refuses_parameters_of_the_wrong_length(rng):
    with pytest.raises(ShapeError, match=r"gamma: expected shape \(3,\), one value per channel"):
        batchnorm_forward(rng.standard_normal((2, 4, 4, 3)), np.ones(4), np.zeros(3))


def test_refuses_one_dimensional_input():
    with pytest.raises(ShapeError, match="x: expected an array of at least 2 dimensions"):
        batchnorm_forward(np.ones(5), np.ones(5), np.zeros(5))


@pytest.mark.parametrize("eps", [0, -1e-3, "1e-3"])
def test_refuses_bad_eps(eps, rng):
    with pytest.raises(ValueError, match="eps: expected a positive float"):
        batchnorm_forward(rng.standard_normal((4, 2)), np.ones(2), np.zeros(2), eps=eps)


def test_inference_refuses_negative_moving_variance(rng):
    with pytest.raises(ValueError, match="moving_var: expected non-negative variances"):
        batchnorm_inference_forward(
            rng.standard_normal((4, 2)), np.ones(2), np.zeros(2), np.zeros(2), np.array([1.0, -1.0])
        )


def test_refuses_integer_input():
    with pytest.raises(TypeError, match="x: expected a floating-point array"):
        batchnorm_forward(np.ones((4, 2), dtype=int), np.ones(2), np.zeros(2))


# ----- writing the output (or dx) into the interior of a zero-bordered buffer -----


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (3, 8, 16, 16)])
def test_out_writes_the_interior_of_a_zero_bordered_buffer(rng, shape, dtype, relu):
    """``out`` given (a convolution's padded input, or its padded output gradient): the same values
    in its interior, the border untouched, the array itself returned."""
    x = (2 * rng.standard_normal(shape) + 1).astype(dtype)
    p = {k: v.astype(dtype) for k, v in params(rng, shape[3]).items()}
    dout = rng.standard_normal(shape).astype(dtype)
    want, cache = batchnorm_forward(x, **p, relu=relu)
    want_dx, want_dgamma, want_dbeta = batchnorm_backward(dout, cache)
    for run in ("forward", "backward"):
        buffer = bordered_empty(shape, ((1, 2), (2, 1)), dtype)
        padded, interior = buffer.padded, buffer.interior
        padded[:, 1:-2, 2:-1] = np.nan  # what the buffer held before
        if run == "forward":
            got, cache = batchnorm_forward(x, **p, relu=relu, out=buffer)
            np.testing.assert_array_equal(got, want)
        else:
            got, dgamma, dbeta = batchnorm_backward(dout, cache, out=buffer)
            np.testing.assert_array_equal(got, want_dx)
            np.testing.assert_array_equal(dgamma, want_dgamma)
            np.testing.assert_array_equal(dbeta, want_dbeta)
        assert got is interior
        border = np.ones(padded.shape, bool)
        border[:, 1:-2, 2:-1] = False
        assert not padded[border].any()


def test_out_must_be_a_bordered_buffer_around_the_output(rng):
    x = rng.standard_normal((2, 4, 5, 3))
    p = params(rng, 3)
    pads = ((1, 1), (1, 1))
    with pytest.raises(ValueError, match=r"out: expected a zero-bordered buffer .* around shape \(2, 4, 5, 3\)"):
        batchnorm_forward(x, **p, out=bordered_empty((2, 4, 5, 4), pads, x.dtype))
    with pytest.raises(ValueError, match="got array of shape"):
        batchnorm_forward(x, **p, out=np.empty((2, 4, 5, 3)))
    with pytest.raises(ValueError, match="dtype float64"):
        batchnorm_forward(x, **p, out=bordered_empty(x.shape, pads, np.float32))
    _, cache = batchnorm_forward(x, **p)
    with pytest.raises(ValueError, match="out: expected"):
        batchnorm_backward(x, cache, out=bordered_empty((2, 5, 4, 3), pads, x.dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum", [0.99, 0.9, 0.0, 1.0])
def test_moving_statistics_update_with_numpys_bits(rng, dtype, momentum):
    """``moving = momentum * moving + (1 - momentum) * batch``, in place, with the bits of NumPy's two
    in-place operations in the moving arrays' dtype (both tiers); NaN carries through."""
    from npconv.functional import update_moving_statistics

    moving = [rng.standard_normal(7).astype(dtype) for _ in range(2)]
    batch = [rng.standard_normal(7).astype(dtype) for _ in range(2)]
    batch[1][3] = np.nan
    want = [m.copy() for m in moving]
    for m, b in zip(want, batch):
        m *= momentum
        m += (1.0 - momentum) * b
    arrays = list(moving)
    update_moving_statistics(*moving, *batch, momentum)
    assert all(m is a for m, a in zip(moving, arrays))  # in place
    for got, expected in zip(moving, want):
        np.testing.assert_array_equal(got, expected)
    assert moving[0].dtype == dtype and np.isnan(moving[1][3])


def test_moving_statistics_of_another_dtype_update_as_numpy_does(rng):
    moving = [np.ones(3, np.float32), np.ones(3, np.float32)]
    batch = [rng.standard_normal(3), rng.standard_normal(3)]  # float64 statistics
    want = [m * np.float32(0.9) + 0.1 * b for m, b in zip(moving, batch)]
    from npconv.functional import update_moving_statistics

    update_moving_statistics(*moving, *batch, 0.9)
    for got, expected in zip(moving, want):
        np.testing.assert_allclose(got, expected.astype(np.float32), rtol=1e-6)
