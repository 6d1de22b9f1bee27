"""pool2d and global pooling: equal to the course's loops, numerically exact gradients, and PyTorch.

Max pooling sends each window's gradient to its first maximum (PyTorch's choice); average pooling
with ``padding="same"`` averages only the real pixels, as TensorFlow does.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from npconv import course
from npconv.functional import global_pool2d_backward, global_pool2d_forward, pool2d_backward, pool2d_forward
from npconv.gradcheck import gradcheck

# Every test runs once per kernel tier: the NumPy reference and the compiled (Numba) kernels.
pytestmark = pytest.mark.usefixtures("tier")


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 3),
    n_h=st.integers(1, 9),
    n_w=st.integers(1, 9),
    n_c=st.integers(1, 4),
    f=st.integers(1, 4),
    stride=st.integers(1, 3),
    mode=st.sampled_from(["max", "average"]),
    seed=st.integers(0, 2**31),
)
def test_forward_and_backward_equal_the_course_loops(m, n_h, n_w, n_c, f, stride, mode, seed):
    assume(f <= min(n_h, n_w))  # a window larger than the image is an error
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, n_h, n_w, n_c))
    hparameters = {"f": f, "stride": stride}
    a_loop, cache_loop = course.pool_forward(x, hparameters, mode=mode)
    a_fast, cache_fast = pool2d_forward(x, f, stride, mode=mode)
    np.testing.assert_allclose(a_fast, a_loop, rtol=1e-12, atol=1e-12)
    da = rng.standard_normal(a_loop.shape)
    np.testing.assert_allclose(
        pool2d_backward(da, cache_fast), course.pool_backward(da, cache_loop, mode), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize(
    "pool,stride,padding",
    [
        (2, None, "valid"),
        ((3, 2), (1, 2), "valid"),
        (3, 2, "same"),
        ((8, 8), (8, 8), "same"),
        (2, 1, 1),
        (2, None, "same"),  # tiled, padded only at the bottom/right: the gradient must be cropped there
    ],
)
def test_numerical_gradients(rng, mode, pool, stride, padding):
    x = rng.standard_normal((2, 9, 7, 3))
    gradcheck(lambda x: pool2d_forward(x, pool, stride, padding, mode), pool2d_backward, {"x": x})


@pytest.mark.parametrize("mode", ["max", "average"])
def test_global_pooling_gradients(rng, mode):
    x = rng.standard_normal((3, 5, 4, 2))
    out, _ = global_pool2d_forward(x, mode)
    assert out.shape == (3, 2)
    gradcheck(lambda x: global_pool2d_forward(x, mode), global_pool2d_backward, {"x": x})


def test_ties_send_the_gradient_to_the_first_maximum():
    x = np.zeros((1, 2, 2, 1))
    out, cache = pool2d_forward(x, 2)
    dx = pool2d_backward(np.ones_like(out), cache)
    assert dx[0, :, :, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]


@pytest.mark.parametrize("n_c", [1, 8, 16])
def test_ties_and_nan_across_a_windows_rows_and_columns_follow_its_row_major_order(n_c):
    # One 8x8 window per case, its candidates at (p=3, q=0), offset 24, and (p=1, q=5), offset 13:
    # tied maxima go to the first in row-major order (13, though its column comes later), two NaN
    # to the last (24); a window of equal values (here all -inf) to its first element.
    x = np.zeros((1, 8, 24, n_c))
    x[0, 3, 0] = x[0, 1, 5] = 1.0
    x[0, 3, 8] = x[0, 1, 13] = np.nan
    x[0, :, 16:] = -np.inf
    out, cache = pool2d_forward(x, 8)
    assert cache.winner[0, 0].tolist() == [[13] * n_c, [24] * n_c, [0] * n_c]
    np.testing.assert_array_equal(out[0, 0], [[1.0] * n_c, [np.nan] * n_c, [-np.inf] * n_c])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nan_in_a_window_gives_nan_as_pytorch(torch, dtype):
    # A diverged network's NaN must show, not be skipped: NaN first in a window, after its maximum,
    # twice, and alone in a window of -inf padding; the gradient goes to the last NaN, as PyTorch's.
    x = np.arange(2 * 5 * 5 * 2, dtype=dtype).reshape(2, 5, 5, 2)
    for i, h, w, c in [(0, 0, 0, 0), (0, 1, 3, 0), (0, 2, 3, 1), (0, 3, 2, 1), (1, 4, 4, 0), (1, 4, 4, 1)]:
        x[i, h, w, c] = np.nan
    for pool, stride, padding in [(2, None, "same"), (3, 1, "valid"), ((2, 3), (2, 1), "same")]:
        out, cache = pool2d_forward(x, pool, stride, padding)
        (top, bottom), (left, right) = cache.pads
        xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
        yt = torch.nn.functional.max_pool2d(
            torch.nn.functional.pad(xt, (left, right, top, bottom), value=-np.inf), pool, stride
        )
        expected = yt.detach().numpy().transpose(0, 2, 3, 1)
        assert np.isnan(out).any()
        np.testing.assert_array_equal(out, expected)  # NaN where PyTorch has NaN, equal elsewhere
        dout = np.arange(1, out.size + 1, dtype=dtype).reshape(out.shape)
        yt.backward(torch.tensor(np.ascontiguousarray(dout.transpose(0, 3, 1, 2))))
        np.testing.assert_array_equal(pool2d_backward(dout, cache), xt.grad.numpy().transpose(0, 2, 3, 1))


def test_same_average_counts_only_real_pixels():
    x = np.ones((1, 5, 5, 1), dtype=np.float32)
    out, _ = pool2d_forward(x, 2, padding="same", mode="average")
    assert out.dtype == np.float32 and out.shape == (1, 3, 3, 1)
    np.testing.assert_array_equal(out, 1.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_pytorch_on_random_shapes(torch, dtype):
    functional = torch.nn.functional
    rng = np.random.default_rng(2)
    tol = 1e-9 if dtype == np.float64 else 1e-5
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    for _ in range(25):
        x = rng.standard_normal((2, *rng.integers(4, 12, size=2), 3)).astype(dtype)
        pool = tuple(rng.integers(1, 4, size=2))
        stride = tuple(rng.integers(1, 4, size=2))
        padding = ["same", "valid"][rng.integers(0, 2)]
        for mode in ("max", "average"):
            out, cache = pool2d_forward(x, pool, stride, padding, mode)
            (top, bottom), (left, right) = cache.pads
            xt = torch.tensor(x.transpose(0, 3, 1, 2), dtype=tdtype, requires_grad=True)
            if mode == "max":
                yt = functional.max_pool2d(functional.pad(xt, (left, right, top, bottom), value=-np.inf), pool, stride)
            else:  # TensorFlow's "same" average: the sum over real pixels / their count
                ones = torch.ones_like(xt)
                window_sum = functional.avg_pool2d(
                    functional.pad(xt, (left, right, top, bottom)), pool, stride, divisor_override=1
                )
                count = functional.avg_pool2d(
                    functional.pad(ones, (left, right, top, bottom)), pool, stride, divisor_override=1
                )
                yt = window_sum / count
            np.testing.assert_allclose(out, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=tol, atol=tol)
            dout = rng.standard_normal(out.shape).astype(dtype)
            yt.backward(torch.tensor(np.ascontiguousarray(dout.transpose(0, 3, 1, 2)), dtype=tdtype))
            np.testing.assert_allclose(
                pool2d_backward(dout, cache), xt.grad.numpy().transpose(0, 2, 3, 1), rtol=tol, atol=tol
            )


def test_global_pooling_matches_pytorch(torch, rng):
    x = rng.standard_normal((3, 6, 5, 4))
    for mode, reduce in (("average", lambda t: t.mean(dim=(2, 3))), ("max", lambda t: t.amax(dim=(2, 3)))):
        out, cache = global_pool2d_forward(x, mode)
        xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
        yt = reduce(xt)
        np.testing.assert_allclose(out, yt.detach().numpy(), atol=1e-12)
        dout = rng.standard_normal(out.shape)
        yt.backward(torch.tensor(dout))
        np.testing.assert_allclose(
            global_pool2d_backward(dout, cache), xt.grad.numpy().transpose(0, 2, 3, 1), atol=1e-12
        )


def test_bad_input_is_explained(rng):
    x = rng.standard_normal((1, 4, 4, 2))
    with pytest.raises(ValueError, match=r"mode: expected one of 'average', 'max'"):
        pool2d_forward(x, 2, mode="min")
    with pytest.raises(ValueError, match=r"pool window height"):
        pool2d_forward(x, 5)
    with pytest.raises(ValueError, match=r"pool_size: expected an integer or a pair"):
        pool2d_forward(x, (2, 2, 2))


def test_backward_names_a_wrong_dout(rng):
    x = rng.standard_normal((1, 4, 4, 2))
    out, cache = pool2d_forward(x, 2)
    with pytest.raises(ValueError, match=r"dout: expected an array of the forward output's shape \(1, 2, 2, 2\)"):
        pool2d_backward(out[..., :1], cache)
    out, cache = global_pool2d_forward(x)
    with pytest.raises(ValueError, match=r"dout: expected .* shape \(1, 2\)"):
        global_pool2d_backward(out[:, :1], cache)


# A ReLU after a max pool (a residual block's end): its mask taken as the pool routes the gradient.
RELU_CASES = [
    ((3, 8, 10, 16), 2, None, "valid"),  # tiled, 16 channels: one output row per task
    ((2, 9, 7, 3), 2, None, "same"),  # tiled, few channels: rows spread over their columns
    ((2, 9, 7, 3), (3, 2), (1, 2), "valid"),  # overlapping windows: accumulated
    ((2, 8, 8, 32), 2, None, "valid"),
]


def relu_of_pool(x, pool, stride, padding):
    """``relu(max_pool(x))``, its output and the pool's cache."""
    pooled, cache = pool2d_forward(x, pool, stride, padding, "max")
    return np.maximum(pooled, 0), cache


@pytest.mark.parametrize("shape, pool, stride, padding", RELU_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_out_gives_the_relu_and_pool_backwards_bits(rng, shape, pool, stride, padding, dtype):
    from npconv.functional import relu_backward

    x = rng.standard_normal(shape).astype(dtype)
    out, cache = relu_of_pool(x, pool, stride, padding)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout.flat[:: max(1, dout.size // 7)] = np.nan  # NaN * 0 stays NaN where ReLU's mask is 0
    fused = pool2d_backward(dout, cache, relu_out=out)
    np.testing.assert_array_equal(fused, pool2d_backward(relu_backward(dout, out), cache))
    assert fused.dtype == dtype and np.isnan(fused).any()


@pytest.mark.parametrize("shape, pool, stride, padding", RELU_CASES[:3])
def test_relu_out_numerical_gradients(rng, shape, pool, stride, padding):
    x = rng.standard_normal(shape)

    def forward(x):
        out, cache = relu_of_pool(x, pool, stride, padding)
        return out, (out, cache)

    gradcheck(forward, lambda dout, cache: pool2d_backward(dout, cache[1], relu_out=cache[0]), {"x": x})


def test_relu_out_matches_pytorch(torch, rng):
    x = rng.standard_normal((2, 8, 10, 16)).astype(np.float32)
    out, cache = relu_of_pool(x, 2, None, "valid")
    dout = rng.standard_normal(out.shape).astype(np.float32)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    torch.relu(torch.nn.functional.max_pool2d(xt, 2)).backward(torch.tensor(dout.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(
        pool2d_backward(dout, cache, relu_out=out), xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6
    )


def test_relu_out_is_refused_where_it_cannot_apply(rng):
    x = rng.standard_normal((1, 4, 4, 2))
    out, cache = pool2d_forward(x, 2, mode="average")
    with pytest.raises(ValueError, match=r"relu_out: expected a ReLU's output of a max pool's output.*average pooling"):
        pool2d_backward(out, cache, relu_out=np.maximum(out, 0))
    out, cache = pool2d_forward(x, 2)
    with pytest.raises(ValueError, match=r"relu_out: expected .* shape \(1, 2, 2, 2\), got .*\(1, 2, 2, 1\)"):
        pool2d_backward(out, cache, relu_out=out[..., :1])
