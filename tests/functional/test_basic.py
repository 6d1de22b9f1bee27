"""The elementwise and affine kernels: padding, dense, activations, dropout, flatten.

Each backward is checked three ways: against numerical gradients (float64), against PyTorch's
autograd, and for dtype preservation (float32 stays float32).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npconv.errors import ShapeError
from npconv.functional.activations import (
    linear_backward,
    linear_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    softmax_backward,
    softmax_forward,
    tanh_backward,
    tanh_forward,
)
from npconv.functional.dense import dense_backward, dense_forward
from npconv.functional.dropout import dropout_backward, dropout_forward
from npconv.functional.padding import zero_pad2d_backward, zero_pad2d_forward
from npconv.functional.reshape import flatten_backward, flatten_forward
from npconv.gradcheck import gradcheck

ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "softmax": (softmax_forward, softmax_backward),
    "tanh": (tanh_forward, tanh_backward),
    "linear": (linear_forward, linear_backward),
}
TOL = dict(rtol=1e-9, atol=1e-12)


def as_tuple(grads):
    """A backward's result as a tuple: one gradient or ``(dx, dparam, ...)``."""
    return grads if isinstance(grads, tuple) else (grads,)


def away_from_zero(rng, shape):
    """Random values with |x| >= 0.1, so relu's kink never sits inside a finite difference."""
    x = rng.standard_normal(shape)
    return x + 0.1 * np.sign(x)


# ----- numerical gradient checks (float64) -----


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradients(name, rng):
    forward, backward = ACTIVATIONS[name]
    gradcheck(forward, backward, {"x": away_from_zero(rng, (3, 5))})


def test_softmax_gradient_on_another_axis(rng):
    gradcheck(lambda x: softmax_forward(x, axis=0), softmax_backward, {"x": rng.standard_normal((4, 3))})


def test_dense_gradients(rng):
    inputs = {"x": rng.standard_normal((4, 5)), "w": rng.standard_normal((5, 3)), "b": rng.standard_normal(3)}
    gradcheck(dense_forward, dense_backward, inputs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_with_one_unit_gives_the_product_exactly(rng, dtype):
    """One unit's input gradient is an outer product (a broadcast multiply, not BLAS's k = 1 GEMM):
    each value is one product, so the bits are the GEMM's."""
    x, w = rng.standard_normal((16, 300)).astype(dtype), rng.standard_normal((300, 1)).astype(dtype)
    out, cache = dense_forward(x, w, np.zeros(1, dtype))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, _ = dense_backward(dout, cache)
    np.testing.assert_array_equal(dx, dout @ w.T)
    assert dx.dtype == dtype and dx.flags.c_contiguous
    gradcheck(
        dense_forward,
        dense_backward,
        {"x": x[:3, :6].astype(np.float64), "w": w[:6].astype(np.float64), "b": np.ones(1)},
    )


def test_dense_need_dx_false_skips_dx(rng):
    out, cache = dense_forward(rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), np.zeros(3))
    dout = rng.standard_normal(out.shape)
    dx, dw, db = dense_backward(dout, cache, need_dx=False)
    _, dw_full, db_full = dense_backward(dout, cache)
    assert dx is None
    np.testing.assert_array_equal(dw, dw_full)  # the weight gradients do not change
    np.testing.assert_array_equal(db, db_full)


@pytest.mark.parametrize("padding", [1, (2, 0), ((0, 1), (2, 3))])
def test_zero_pad_gradient(padding, rng):
    gradcheck(lambda x: zero_pad2d_forward(x, padding), zero_pad2d_backward, {"x": rng.standard_normal((2, 3, 2, 2))})


def test_flatten_gradient(rng):
    gradcheck(flatten_forward, flatten_backward, {"x": rng.standard_normal((2, 3, 2, 2))})


def test_dropout_gradient(rng):
    # A fresh generator per call: the numerical gradient needs the same mask every time.
    forward = lambda x: dropout_forward(x, 0.4, np.random.default_rng(1))  # noqa: E731
    gradcheck(forward, dropout_backward, {"x": rng.standard_normal((4, 6))})


# ----- behaviour -----


def test_zero_pad_shapes_and_values(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    out, _ = zero_pad2d_forward(x, ((1, 2), (3, 0)))
    assert out.shape == (2, 6, 7, 5)
    np.testing.assert_array_equal(out, np.pad(x, ((0, 0), (1, 2), (3, 0), (0, 0))))


def test_flatten_is_a_view_in_nhwc_order(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    out, _ = flatten_forward(x)
    assert out.shape == (2, 60) and np.shares_memory(out, x)
    assert out[1, 5] == x[1, 0, 1, 0]  # channels vary fastest, as Keras's Flatten


def test_sigmoid_is_stable_for_huge_inputs():
    x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        out, _ = sigmoid_forward(x)
    np.testing.assert_allclose(out, [0.0, 1.9287498479639178e-22, 0.5, 1.0, 1.0], rtol=1e-12)


def test_softmax_is_stable_and_sums_to_one():
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        out, _ = softmax_forward(np.array([[1000.0, 1000.0, -1000.0]]))
    np.testing.assert_allclose(out, [[0.5, 0.5, 0.0]])


def test_dropout_scales_kept_units_and_repeats_with_the_seed():
    x = np.ones((200, 50))
    out, _ = dropout_forward(x, 0.25, np.random.default_rng(3))
    again, _ = dropout_forward(x, 0.25, np.random.default_rng(3))
    np.testing.assert_array_equal(out, again)
    assert set(np.unique(out)) == {0.0, 1 / 0.75}
    assert abs((out == 0).mean() - 0.25) < 0.02


@pytest.mark.parametrize("kwargs", [dict(rate=0.5, training=False), dict(rate=0.0)])
def test_dropout_identity_when_not_training(kwargs, rng):
    x = rng.standard_normal((3, 4))
    out, cache = dropout_forward(x, rng=rng, **kwargs)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(dropout_backward(np.ones_like(x), cache), np.ones_like(x))


# ----- dtypes -----


def _float32_cases(rng):
    x4 = rng.standard_normal((2, 4, 4, 3))
    x2 = rng.standard_normal((5, 4))
    w, b = rng.standard_normal((4, 3)), rng.standard_normal(3)
    cases = {name: (fwd, bwd, (x2,)) for name, (fwd, bwd) in ACTIVATIONS.items()}
    cases["dense"] = (dense_forward, dense_backward, (x2, w, b))
    cases["zero_pad"] = (functools.partial(zero_pad2d_forward, padding=1), zero_pad2d_backward, (x4,))
    cases["flatten"] = (flatten_forward, flatten_backward, (x4,))
    return cases


@pytest.mark.parametrize("name", sorted(_float32_cases(np.random.default_rng(0))))
def test_float32_is_kept_and_matches_float64(name):
    forward, backward, args = _float32_cases(np.random.default_rng(0))[name]
    out64, cache64 = forward(*args)
    out32, cache32 = forward(*(a.astype(np.float32) for a in args))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-6)
    grads64 = backward(np.ones_like(out64), cache64)
    grads32 = backward(np.ones_like(out32), cache32)
    for g32, g64 in zip(as_tuple(grads32), as_tuple(grads64)):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-5, atol=1e-5)


def test_dropout_keeps_float32(rng):
    out, cache = dropout_forward(np.ones((4, 5), np.float32), 0.5, rng)
    assert out.dtype == np.float32 and dropout_backward(np.ones_like(out), cache).dtype == np.float32


def test_dense_computes_in_the_dtype_of_x(rng):
    out, _ = dense_forward(rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((3, 4)), np.zeros(4))
    assert out.dtype == np.float32


# ----- PyTorch -----


@settings(max_examples=15, deadline=None)
@given(m=st.integers(1, 6), n_in=st.integers(1, 7), n_out=st.integers(1, 5))
def test_dense_matches_torch(torch, m, n_in, n_out):
    rng = np.random.default_rng(m * 100 + n_in * 10 + n_out)
    x, w, b = rng.standard_normal((m, n_in)), rng.standard_normal((n_in, n_out)), rng.standard_normal(n_out)
    dout = rng.standard_normal((m, n_out))
    out, cache = dense_forward(x, w, b)
    dx, dw, db = dense_backward(dout, cache)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.linear(tx, tw.T, tb)  # torch keeps (n_out, n_in)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), **TOL)
    for mine, theirs in [(dx, tx), (dw, tw), (db, tb)]:
        np.testing.assert_allclose(mine, theirs.grad.numpy(), **TOL)


@settings(max_examples=10, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), name=st.sampled_from(sorted(ACTIVATIONS)))
def test_activations_match_torch(torch, shape, name):
    rng = np.random.default_rng(len(shape))
    x = 3 * rng.standard_normal(shape)
    dout = rng.standard_normal(shape)
    forward, backward = ACTIVATIONS[name]
    out, cache = forward(x)
    dx = backward(dout, cache)
    tx = torch.tensor(x, requires_grad=True)
    torch_fn = {
        "relu": torch.relu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softmax": lambda t: torch.softmax(t, dim=-1),
        "linear": lambda t: t * 1,
    }[name]
    tout = torch_fn(tx)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), **TOL)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **TOL)


# ----- bad input -----


def test_dense_shape_mismatch_names_both_shapes(rng):
    with pytest.raises(ShapeError, match="w: expected 10 rows") as info:
        dense_forward(rng.standard_normal((4, 10)), rng.standard_normal((12, 3)), np.zeros(3))
    assert "(4, 10)" in str(info.value) and "(12, 3)" in str(info.value)


def test_dense_bias_shape_mismatch(rng):
    with pytest.raises(ShapeError, match="b: expected shape \\(3,\\)"):
        dense_forward(rng.standard_normal((4, 2)), rng.standard_normal((2, 3)), np.zeros(4))


def test_dense_refuses_images(rng):
    with pytest.raises(ShapeError, match="x: expected a 2-D array"):
        dense_forward(rng.standard_normal((2, 4, 4, 3)), rng.standard_normal((48, 3)), np.zeros(3))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_refuse_integers(name):
    with pytest.raises(TypeError, match="x: expected a floating-point array"):
        ACTIVATIONS[name][0](np.arange(4))


def test_backward_refuses_a_dout_of_the_wrong_shape(rng):
    _, cache = relu_forward(rng.standard_normal((3, 4)))
    with pytest.raises(ShapeError, match=r"dout: expected an array of the forward output's shape \(3, 4\)"):
        relu_backward(np.ones((3, 1)), cache)


def test_zero_pad_refuses_negative_padding_and_3d_input(rng):
    with pytest.raises(ValueError, match="padding"):
        zero_pad2d_forward(rng.standard_normal((1, 3, 3, 1)), -1)
    with pytest.raises(ShapeError, match="single image add the batch axis"):
        zero_pad2d_forward(rng.standard_normal((3, 3, 1)), 1)


@pytest.mark.parametrize("rate", [1.0, -0.1, "0.5", True])
def test_dropout_refuses_bad_rates(rate, rng):
    with pytest.raises(ValueError, match="rate: expected a number in \\[0, 1\\)"):
        dropout_forward(np.ones(3), rate, rng)


def test_dropout_refuses_legacy_random_state():
    with pytest.raises(TypeError, match="rng: expected a numpy.random.Generator"):
        dropout_forward(np.ones(3), 0.5, np.random.RandomState(0))


def test_flatten_refuses_scalars():
    with pytest.raises(ShapeError, match="batch axis"):
        flatten_forward(np.float64(1.0))


def test_dense_without_a_bias(rng):
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    out, cache = dense_forward(x, w, None)
    np.testing.assert_array_equal(out, x @ w)
    _, dw, _ = dense_backward(np.ones((4, 2)), cache)
    np.testing.assert_allclose(dw, x.T @ np.ones((4, 2)))
