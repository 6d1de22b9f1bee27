"""batchnorm_relu_maxpool_forward: batch norm (training mode), ReLU and the max pool that reads them
in one forward pass give the two forward passes' outputs and caches bit for bit, so the two backward
passes run on them unchanged. batchnorm_relu_maxpool_backward equals those two passes to rounding
(its sums run in another order), its numerical gradient and PyTorch's."""

import numpy as np
import pytest
from conftest import assert_same_bits_on_any_thread_count

from npconv.errors import ShapeError
from npconv.functional import (
    batchnorm_backward,
    batchnorm_forward,
    batchnorm_inference_forward,
    batchnorm_relu_maxpool_backward,
    batchnorm_relu_maxpool_forward,
    conv2d_backward,
    conv2d_forward,
    conv_batchnorm_relu_maxpool_weight_backward,
    pool2d_backward,
    pool2d_forward,
)
from npconv.functional._tier import use_tier
from npconv.gradcheck import gradcheck

pytestmark = pytest.mark.usefixtures("tier")

# (x shape, pool): Happy's and smallres's stems small, leftover rows and columns, a 3 x 2 window,
# few and many channels (the pool's two-stage and per-offset paths)
CASES = [
    ((3, 8, 8, 32), 2),
    ((4, 9, 10, 16), 2),
    ((2, 12, 11, 3), (3, 2)),
    ((2, 6, 6, 40), 3),
]


def two_passes(x, gamma, beta, pool):
    normalised, norm_cache = batchnorm_forward(x, gamma, beta, relu=True)
    out, pool_cache = pool2d_forward(normalised, pool, mode="max")
    return out, (norm_cache, pool_cache)


def random_case(rng, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    x[:, :3, :3, :] = 0.25  # a constant patch: tied windows, and all-zero ones after ReLU
    return x, 1 + 0.5 * rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])


def assert_caches_equal(fused, plain):
    for a, b in zip(fused, plain):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        elif isinstance(a, tuple):
            assert_caches_equal(a, b)
        else:
            assert a == b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, pool", CASES)
def test_equals_the_two_forward_passes(rng, dtype, shape, pool):
    x, gamma, beta = random_case(rng, shape, dtype)
    out, caches = batchnorm_relu_maxpool_forward(x, gamma, beta, pool)
    out_plain, caches_plain = two_passes(x, gamma, beta, pool)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, out_plain)
    assert_caches_equal(caches, caches_plain)
    dout = rng.standard_normal(out.shape).astype(dtype)
    for fused, plain in zip(
        batchnorm_backward(pool2d_backward(dout, caches[1]), caches[0]),
        batchnorm_backward(pool2d_backward(dout, caches_plain[1]), caches_plain[0]),
    ):
        np.testing.assert_array_equal(fused, plain)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # a NaN channel's statistics
def test_nan_and_infinities_follow_the_pools_rules(rng):
    x, gamma, beta = random_case(rng, (2, 4, 4, 16), np.float32)
    x[0, 0, 1, 3] = np.nan  # the window's last NaN wins; the whole channel's statistics are NaN
    x[1, 2, 2, 5] = np.inf
    out, (_, pool_cache) = batchnorm_relu_maxpool_forward(x, gamma, beta, 2)
    out_plain, (_, plain_cache) = two_passes(x, gamma, beta, 2)
    np.testing.assert_array_equal(out, out_plain)
    np.testing.assert_array_equal(pool_cache.winner, plain_cache.winner)


def test_same_bits_on_any_thread_count(rng, monkeypatch, needs_numba):
    x, gamma, beta = random_case(rng, (4, 16, 16, 16), np.float32)

    def run():
        out, (norm_cache, pool_cache) = batchnorm_relu_maxpool_forward(x, gamma, beta, 2)
        return out, pool_cache.winner, norm_cache.scale

    assert_same_bits_on_any_thread_count(run, monkeypatch)


def test_refuses_a_batch_that_is_not_of_images(rng):
    with pytest.raises(ShapeError, match="x: expected a 4-D array"):
        batchnorm_relu_maxpool_forward(rng.standard_normal((4, 8, 3)), np.ones(3), np.zeros(3), 2)
    with pytest.raises(ShapeError, match="pool window height"):
        batchnorm_relu_maxpool_forward(rng.standard_normal((1, 2, 8, 3)), np.ones(3), np.zeros(3), 3)


def two_backward_passes(dout, caches):
    return batchnorm_backward(pool2d_backward(dout, caches[1]), caches[0])


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("shape, pool", CASES)
def test_backward_equals_the_two_backward_passes(rng, dtype, tol, shape, pool):
    x, gamma, beta = random_case(rng, shape, dtype)
    out, caches = batchnorm_relu_maxpool_forward(x, gamma, beta, pool)
    dout = rng.standard_normal(out.shape).astype(dtype)
    fused = batchnorm_relu_maxpool_backward(dout, *caches)
    for got, want in zip(fused, two_backward_passes(dout, caches)):
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("stride, pool", [(None, 2), (1, 2), (2, 3)])
def test_backward_through_any_max_pool_of_a_batch_norm(rng, relu, stride, pool):
    """A cache of batchnorm_forward, with or without ReLU, and a max pool whose windows tile its
    input, overlap, or leave rows out."""
    x, gamma, beta = random_case(rng, (3, 9, 8, 16), np.float64)
    normalised, norm_cache = batchnorm_forward(x, gamma, beta, relu=relu)
    out, pool_cache = pool2d_forward(normalised, pool, stride, mode="max")
    dout = rng.standard_normal(out.shape)
    fused = batchnorm_relu_maxpool_backward(dout, norm_cache, pool_cache)
    for got, want in zip(fused, two_backward_passes(dout, (norm_cache, pool_cache))):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def test_backward_takes_a_cache_of_either_tier(rng, tier):
    x, gamma, beta = random_case(rng, (2, 8, 8, 16), np.float64)
    other = "numpy" if tier == "compiled" else "compiled"
    with use_tier(other):
        out, caches = batchnorm_relu_maxpool_forward(x, gamma, beta, 2)
    dout = rng.standard_normal(out.shape)
    for got, want in zip(batchnorm_relu_maxpool_backward(dout, *caches), two_backward_passes(dout, caches)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("shape, pool", CASES[1:3])
def test_backward_numerical_gradients(rng, shape, pool):
    x, gamma, beta = random_case(rng, shape, np.float64)
    x[:, :3, :3, :] += 1e-3 * rng.standard_normal((shape[0], 3, 3, shape[3]))  # no ties: a kink
    gradcheck(
        lambda x, gamma, beta: batchnorm_relu_maxpool_forward(x, gamma, beta, pool),
        lambda dout, caches: batchnorm_relu_maxpool_backward(dout, *caches),
        {"x": x, "gamma": gamma, "beta": beta},
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, pool", CASES)
def test_backward_matches_pytorch(torch, rng, dtype, shape, pool):
    functional = torch.nn.functional
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    tol = 1e-9 if dtype == np.float64 else 2e-4
    x = rng.standard_normal(shape).astype(dtype)  # no ties: PyTorch and npconv agree on every winner
    gamma, beta = (1 + 0.5 * rng.standard_normal(shape[-1])).astype(dtype), rng.standard_normal(shape[-1]).astype(dtype)
    out, caches = batchnorm_relu_maxpool_forward(x, gamma, beta, pool, eps=1e-3)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), dtype=tdtype, requires_grad=True)
    gt = torch.tensor(gamma, dtype=tdtype, requires_grad=True)
    bt = torch.tensor(beta, dtype=tdtype, requires_grad=True)
    normalised = functional.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-3)
    yt = functional.max_pool2d(functional.relu(normalised), pool)
    np.testing.assert_allclose(out, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=tol, atol=tol)
    dout = rng.standard_normal(out.shape).astype(dtype)
    yt.backward(torch.tensor(np.ascontiguousarray(dout.transpose(0, 3, 1, 2)), dtype=tdtype))
    dx, dgamma, dbeta = batchnorm_relu_maxpool_backward(dout, *caches)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=tol, atol=tol)
    np.testing.assert_allclose(dgamma, gt.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dbeta, bt.grad.numpy(), rtol=tol, atol=tol)


def test_backward_same_bits_on_any_thread_count(rng, monkeypatch, needs_numba):
    x, gamma, beta = random_case(rng, (4, 16, 17, 16), np.float32)
    out, caches = batchnorm_relu_maxpool_forward(x, gamma, beta, 2)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    assert_same_bits_on_any_thread_count(lambda: batchnorm_relu_maxpool_backward(dout, *caches), monkeypatch)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # a NaN channel's statistics
def test_backward_of_nan_and_infinities_as_the_two_passes(rng):
    x, gamma, beta = random_case(rng, (2, 4, 4, 16), np.float64)
    x[0, 0, 1, 3] = np.nan
    x[1, 2, 2, 5] = np.inf
    out, caches = batchnorm_relu_maxpool_forward(x, gamma, beta, 2)
    dout = rng.standard_normal(out.shape)
    for got, want in zip(batchnorm_relu_maxpool_backward(dout, *caches), two_backward_passes(dout, caches)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.nanmax(np.abs(want[np.isfinite(want)])))


def test_backward_refuses_caches_it_cannot_use(rng):
    x, gamma, beta = random_case(rng, (2, 8, 8, 4), np.float64)
    out, (norm_cache, pool_cache) = batchnorm_relu_maxpool_forward(x, gamma, beta, 2)
    dout = rng.standard_normal(out.shape)
    _, inference_cache = batchnorm_inference_forward(x, gamma, beta, np.zeros(4), np.ones(4), relu=True)
    with pytest.raises(TypeError, match="training-mode"):
        batchnorm_relu_maxpool_backward(dout, inference_cache, pool_cache)
    _, average_cache = pool2d_forward(x, 2, mode="average")
    with pytest.raises(ValueError, match="max pool"):
        batchnorm_relu_maxpool_backward(dout, norm_cache, average_cache)
    _, other_cache = pool2d_forward(x[:, :6], 2, mode="max")
    with pytest.raises(ValueError, match="one batch"):
        batchnorm_relu_maxpool_backward(rng.standard_normal((2, 3, 4, 4)), norm_cache, other_cache)
    with pytest.raises(ShapeError, match="dout"):
        batchnorm_relu_maxpool_backward(dout[:1], norm_cache, pool_cache)


# (x shape, kernel, filters, padding): RGB 3 x 3 windows of one vector of filters (float32: 16; float64:
# 8) with leftover rows and columns, 9 and 8 taps, a 1 x 1 kernel over two vectors (computed as the
# weight gradient reads them), and Happy's 7 x 7 and wider filters (the two backwards)
FIRST_LAYERS = [
    ((4, 16, 16, 3), 3, 16, "same"),
    ((3, 17, 15, 3), 3, 8, "same"),
    ((3, 13, 16, 1), 3, 16, "same"),
    ((2, 16, 16, 2), 2, 8, "same"),
    ((2, 12, 11, 3), 1, 32, "valid"),
    ((2, 20, 20, 3), 7, 32, "same"),
    ((2, 16, 16, 3), 3, 48, "same"),
]


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kernel, filters, padding", FIRST_LAYERS)
def test_a_first_layers_weight_gradient_through_the_norm_and_pool_equals_the_two_backwards(
    rng, dtype, shape, kernel, filters, padding, relu
):
    """conv_batchnorm_relu_maxpool_weight_backward: the weight, bias and batch norm gradients of the
    batch norm's backward and then the convolution's, bit for bit, whether the weight gradient's
    tiles compute the batch norm's input gradient as they read it or it is written first."""
    x = rng.standard_normal(shape).astype(dtype)
    w = (0.2 * rng.standard_normal((kernel, kernel, shape[3], filters))).astype(dtype)
    z, conv_cache = conv2d_forward(x, w, rng.standard_normal(filters).astype(dtype), 1, padding)
    gamma, beta = 1 + 0.3 * rng.standard_normal(filters), rng.standard_normal(filters)
    if relu:
        out, (norm_cache, pool_cache) = batchnorm_relu_maxpool_forward(z, gamma, beta, 2)
    else:  # a batch norm without ReLU whose output a max pool reads
        normalised, norm_cache = batchnorm_forward(z, gamma, beta)
        out, pool_cache = pool2d_forward(normalised, 2, mode="max")
    dout = rng.standard_normal(out.shape).astype(dtype)
    dz, dgamma, dbeta = batchnorm_relu_maxpool_backward(dout, norm_cache, pool_cache)
    _, dw, db = conv2d_backward(dz, conv_cache, need_dx=False)
    got = conv_batchnorm_relu_maxpool_weight_backward(dout, conv_cache, norm_cache, pool_cache)
    for a, b in zip(got, (dw, db, dgamma, dbeta)):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


def test_the_first_layers_backward_refuses_caches_of_other_layers(rng):
    x = rng.standard_normal((2, 8, 8, 3))
    z, conv_cache = conv2d_forward(x, rng.standard_normal((3, 3, 3, 4)), None, 1, "same")
    out, (norm_cache, pool_cache) = batchnorm_relu_maxpool_forward(z, np.ones(4), np.zeros(4), 2)
    with pytest.raises(TypeError, match="norm_cache: expected a training-mode"):
        conv_batchnorm_relu_maxpool_weight_backward(out, conv_cache, pool_cache, pool_cache)
