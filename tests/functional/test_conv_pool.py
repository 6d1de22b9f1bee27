"""conv2d_maxpool_backward: backward through a convolution and its max pool in one step equals the
two backward passes (to rounding without the input gradient, bit for bit with it), its numerical
gradient, and PyTorch's, for every patch layout of the convolution's cache."""

import numpy as np
import pytest
from conftest import assert_same_bits_on_any_thread_count

from npconv.functional import conv2d_backward, conv2d_forward, conv2d_maxpool_backward, pool2d_backward, pool2d_forward
from npconv.gradcheck import gradcheck

pytestmark = pytest.mark.usefixtures("tier")

# (image size, channels, kernel, conv stride, conv padding, pool, pool stride, pool padding)
CASES = [
    ((16, 16), 3, 4, 1, "same", 8, 8, "same"),  # the SIGNS model's first layer: channel-major / direct
    ((10, 9), 3, 3, 1, "valid", 4, 3, "same"),  # a padded pool whose windows overlap
    ((10, 9), 9, 3, 1, "same", 3, 2, "valid"),  # many channels: the patch rows / direct
    ((9, 9), 5, 1, 1, "valid", 4, 4, "same"),  # 1 x 1 kernel: the input is the patch matrix
    ((11, 10), 3, 3, 2, "same", 2, 2, "same"),  # a strided convolution
]


def conv_then_pool(x, w, b, case):
    _, _, _, conv_stride, conv_padding, pool, pool_stride, pool_padding = case
    z, conv_cache = conv2d_forward(x, w, b, conv_stride, conv_padding)
    out, pool_cache = pool2d_forward(z, pool, pool_stride, pool_padding, "max")
    return out, (conv_cache, pool_cache)


def random_case(rng, case, m=3, k=4, dtype=np.float64, ties=False):
    size, c, kernel = case[:3]
    x = rng.standard_normal((m, *size, c)).astype(dtype)
    if ties:
        x[:, :3, :3, :] = 0.5  # a constant patch: tied convolution outputs, won by the first
    w = rng.standard_normal((kernel, kernel, c, k)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("case", CASES)
def test_equals_the_two_backward_passes(rng, case):
    x, w, b = random_case(rng, case, ties=True)
    out, (conv_cache, pool_cache) = conv_then_pool(x, w, b, case)
    dout = rng.standard_normal(out.shape)
    dx_two, dw_two, db_two = conv2d_backward(pool2d_backward(dout, pool_cache), conv_cache)
    dx, dw, db = conv2d_maxpool_backward(dout, conv_cache, pool_cache)
    np.testing.assert_array_equal(dx, dx_two)  # with dx: the two passes themselves
    np.testing.assert_array_equal(dw, dw_two)
    none, dw, db = conv2d_maxpool_backward(dout, conv_cache, pool_cache, need_dx=False)
    assert none is None and dw.shape == w.shape and db.shape == b.shape
    np.testing.assert_allclose(dw, dw_two, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, db_two, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("need_dx", [False, True])
def test_a_convolution_without_bias_gets_no_bias_gradient(rng, need_dx):
    case = CASES[0]
    x, w, b = random_case(rng, case)
    out, (conv_cache, pool_cache) = conv_then_pool(x, w, None, case)
    out_zero, (zero_conv_cache, zero_pool_cache) = conv_then_pool(x, w, np.zeros_like(b), case)
    np.testing.assert_array_equal(out, out_zero)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_maxpool_backward(dout, conv_cache, pool_cache, need_dx=need_dx)
    _, dw_zero, _ = conv2d_maxpool_backward(dout, zero_conv_cache, zero_pool_cache, need_dx=need_dx)
    assert db is None and (dx is None) == (not need_dx)
    np.testing.assert_array_equal(dw, dw_zero)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("need_dx", [False, True])
def test_numerical_gradients(rng, case, need_dx):
    x, w, b = random_case(rng, case, m=2, k=3)
    gradcheck(
        lambda x, w, b: conv_then_pool(x, w, b, case),
        lambda dout, caches: conv2d_maxpool_backward(dout, *caches, need_dx=need_dx),
        {"x": x, "w": w, "b": b},
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES)
def test_matches_pytorch(torch, rng, case, dtype):
    functional = torch.nn.functional
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    tol = 1e-9 if dtype == np.float64 else 2e-4
    x, w, b = random_case(rng, case, k=5, dtype=dtype)
    out, (conv_cache, pool_cache) = conv_then_pool(x, w, b, case)
    (c_top, c_bottom), (c_left, c_right) = conv_cache.pads
    (p_top, p_bottom), (p_left, p_right) = pool_cache.pads
    xt = torch.tensor(x.transpose(0, 3, 1, 2), dtype=tdtype)
    wt = torch.tensor(np.ascontiguousarray(w.transpose(3, 2, 0, 1)), dtype=tdtype, requires_grad=True)
    bt = torch.tensor(b, dtype=tdtype, requires_grad=True)
    zt = functional.conv2d(functional.pad(xt, (c_left, c_right, c_top, c_bottom)), wt, bt, stride=case[3])
    yt = functional.max_pool2d(functional.pad(zt, (p_left, p_right, p_top, p_bottom), value=-np.inf), case[5], case[6])
    np.testing.assert_allclose(out, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=tol, atol=tol)
    dout = rng.standard_normal(out.shape).astype(dtype)
    yt.backward(torch.tensor(np.ascontiguousarray(dout.transpose(0, 3, 1, 2)), dtype=tdtype))
    _, dw, db = conv2d_maxpool_backward(dout, conv_cache, pool_cache, need_dx=False)
    assert dw.dtype == dtype
    np.testing.assert_allclose(dw, wt.grad.numpy().transpose(2, 3, 1, 0), rtol=tol, atol=tol)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=tol, atol=tol)


def test_needs_a_max_pool(rng):
    x, w, b = random_case(rng, CASES[0])
    z, conv_cache = conv2d_forward(x, w, b, 1, "same")
    out, pool_cache = pool2d_forward(z, 8, mode="average")
    with pytest.raises(ValueError, match="max pool"):
        conv2d_maxpool_backward(out, conv_cache, pool_cache, need_dx=False)


def test_same_bits_on_any_thread_count(rng, monkeypatch, needs_numba):
    x, w, b = random_case(rng, CASES[0], m=16, k=8, dtype=np.float32)
    dout = rng.standard_normal(conv_then_pool(x, w, b, CASES[0])[0].shape).astype(np.float32)

    def run():  # the forward inside: the compiled tier's cache
        return conv2d_maxpool_backward(dout, *conv_then_pool(x, w, b, CASES[0])[1], need_dx=False)[1:]

    assert_same_bits_on_any_thread_count(run, monkeypatch)
