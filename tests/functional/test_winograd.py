"""3 x 3 "same" convolutions by Winograd's F(2 x 2, 3 x 3) in the compiled tier.

``conv2d_forward`` and ``conv2d_backward`` take it for a 3 x 3 window padded by 1, stride 1, an even
output, and channels and filters in whole vectors (``smallres``'s stages); the forward, the input
gradient and the weight gradient each run it. Checked here against the course's loops, numerical
gradients and PyTorch, in float64 and float32, with the direct kernel's extras (a residual summed
into the input gradient, a bordered input and output gradient, the bias's gradient) and the same
bits on any thread count. The batch-norm moments it gives are checked with the direct kernel's, in
``test_batch_moments.py``.
"""

import numpy as np
import pytest
from conftest import assert_same_bits_on_any_thread_count

from npconv import course
from npconv.functional import conv2d_backward, conv2d_forward
from npconv.functional._tier import load_compiled, use_tier
from npconv.gradcheck import gradcheck

pytestmark = pytest.mark.usefixtures("needs_numba")

# (x shape, filters): whole vectors of channels and filters in float32 and float64 on AVX-512,
# AVX2 and SSE alike.
SHAPES = [
    ((2, 8, 8, 16), 16),  # one vector each way: smallres's first stage
    ((3, 6, 10, 16), 32),  # rows of 5 tiles; two filter vectors
    ((2, 4, 8, 32), 48),  # three filter vectors: a two-vector block and a one-vector one
    ((1, 12, 16, 16), 16),  # several blocks of tiles per image
]


@pytest.fixture
def winograd_calls(monkeypatch):
    """The number of calls each Winograd kernel gets (the tests below must reach them)."""
    kernels = load_compiled().winograd
    calls = {"conv3x3": 0, "conv3x3_weight_grads": 0}
    for name in calls:
        kernel = getattr(kernels, name)

        def counted(*args, kernel=kernel, name=name):
            calls[name] += 1
            return kernel(*args)

        monkeypatch.setattr(kernels, name, counted)
    return calls


def _random(rng, shape, filters, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal((3, 3, shape[3], filters)) / 3).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("shape, filters", SHAPES)
def test_forward_and_backward_equal_the_course_loops(rng, winograd_calls, shape, filters):
    x, w, b = _random(rng, shape, filters, np.float64)
    z_loop, cache_loop = course.conv_forward(x, w, b.reshape(1, 1, 1, -1), {"pad": 1, "stride": 1})
    with use_tier("compiled"):
        z, cache = conv2d_forward(x, w, b, 1, "same")
        dz = rng.standard_normal(z.shape)
        grads = conv2d_backward(dz, cache)
    assert winograd_calls == {"conv3x3": 2, "conv3x3_weight_grads": 1}  # forward, input gradient; weights
    np.testing.assert_allclose(z, z_loop, rtol=1e-12, atol=1e-12)
    for got, loop in zip(grads, course.conv_backward(dz, cache_loop)):
        np.testing.assert_allclose(got.reshape(loop.shape), loop, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("shape, filters", SHAPES[:2])
def test_float32_matches_float64(rng, winograd_calls, shape, filters):
    """The transforms' few extra adds (coefficients 0, 1 and 1/2) keep float32 within its rounding."""
    x, w, b = _random(rng, shape, filters, np.float64)
    with use_tier("compiled"):
        out64, cache64 = conv2d_forward(x, w, b, 1, "same")
        out32, cache32 = conv2d_forward(*(a.astype(np.float32) for a in (x, w, b)), 1, "same")
        dout = rng.standard_normal(out64.shape)
        grads64 = conv2d_backward(dout, cache64)
        grads32 = conv2d_backward(dout.astype(np.float32), cache32)
    assert winograd_calls["conv3x3_weight_grads"] == 2
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-5 * np.abs(out64).max())
    for g32, g64 in zip(grads32, grads64):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-5, atol=1e-5 * np.abs(g64).max())


def test_numerical_gradients(rng, winograd_calls):
    x, w, b = _random(rng, (1, 4, 8, 16), 16, np.float64)
    with use_tier("compiled"):
        gradcheck(lambda x, w, b: conv2d_forward(x, w, b, 1, "same"), conv2d_backward, {"x": x, "w": w, "b": b})
    assert winograd_calls["conv3x3_weight_grads"] > 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_pytorch(torch, rng, winograd_calls, dtype):
    functional = torch.nn.functional
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    tol = 1e-10 if dtype == np.float64 else 2e-5
    for shape, filters in SHAPES:
        x, w, b = _random(rng, shape, filters, dtype)
        with use_tier("compiled"):
            out, cache = conv2d_forward(x, w, b, 1, "same")
            dout = rng.standard_normal(out.shape).astype(dtype)
            dx, dw, db = conv2d_backward(dout, cache)
        xt = torch.tensor(x.transpose(0, 3, 1, 2), dtype=tdtype, requires_grad=True)
        wt = torch.tensor(np.ascontiguousarray(w.transpose(3, 2, 0, 1)), dtype=tdtype, requires_grad=True)
        bt = torch.tensor(b, dtype=tdtype, requires_grad=True)
        yt = functional.conv2d(xt, wt, bt, padding=1)
        yt.backward(torch.tensor(np.ascontiguousarray(dout.transpose(0, 3, 1, 2)), dtype=tdtype))
        for got, want in [
            (out, yt.detach().numpy().transpose(0, 2, 3, 1)),
            (dx, xt.grad.numpy().transpose(0, 2, 3, 1)),
            (dw, wt.grad.numpy().transpose(2, 3, 1, 0)),
            (db, bt.grad.numpy()),
        ]:
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    assert winograd_calls["conv3x3_weight_grads"] == len(SHAPES)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_residual_and_bordered_buffers_give_the_plain_calls_bits(rng, winograd_calls, dtype):
    """``dx_plus`` summed as the input gradient is written, and the input and output gradient read
    from zero-bordered buffers: the same bits as the plain calls, as with the direct kernel."""
    from npconv.functional.conv import direct_input_buffer, direct_output_gradient_buffer

    x, w, b = _random(rng, (2, 8, 10, 16), 32, dtype)
    with use_tier("compiled"):
        out, cache = conv2d_forward(x, w, b, 1, "same")
        dout = rng.standard_normal(out.shape).astype(dtype)
        dx, dw, db = conv2d_backward(dout, cache)
        dx_plus = rng.standard_normal(x.shape).astype(dtype)
        np.testing.assert_array_equal(conv2d_backward(dout, cache, dx_plus=dx_plus)[0], dx_plus + dx)
        x_pad, _, interior = direct_input_buffer(x.shape, dtype, w.shape, 1, "same")
        interior[...] = x
        bordered, cache = conv2d_forward(interior, w, b, 1, "same", x_pad=x_pad)
        np.testing.assert_array_equal(bordered, out)
        dout_pad, _, dout_interior = direct_output_gradient_buffer(cache)
        dout_interior[...] = dout
        for got, want in zip(conv2d_backward(dout_interior, cache, dout_pad=dout_pad), (dx, dw, db)):
            np.testing.assert_array_equal(got, want)
    assert winograd_calls["conv3x3_weight_grads"] == 3


def test_without_a_bias_the_backward_skips_its_gradient(rng, winograd_calls):
    x, w, b = _random(rng, (2, 8, 8, 16), 16, np.float32)
    with use_tier("compiled"):
        out, cache = conv2d_forward(x, w, None, 1, "same")
        dx, dw, db = conv2d_backward(np.ones_like(out), cache)
        _, with_bias = conv2d_forward(x, w, b, 1, "same")
        _, dw_with_bias, _ = conv2d_backward(np.ones_like(out), with_bias)
    assert db is None
    np.testing.assert_array_equal(dw, dw_with_bias)
    assert winograd_calls["conv3x3_weight_grads"] == 2


@pytest.mark.parametrize(
    "shape, filters, padding, stride",
    [
        ((2, 7, 8, 16), 16, "same", 1),  # odd output height
        ((2, 8, 8, 16), 16, "valid", 1),  # not padded
        ((2, 8, 8, 12), 16, "same", 1),  # channels not whole vectors
        ((2, 8, 8, 16), 16, "same", 2),  # strided
    ],
)
def test_other_shapes_keep_the_direct_kernel(rng, winograd_calls, shape, filters, padding, stride):
    x, w, b = _random(rng, shape, filters, np.float32)
    with use_tier("compiled"):
        out, cache = conv2d_forward(x, w, b, stride, padding)
        conv2d_backward(np.ones_like(out), cache)
    assert winograd_calls == {"conv3x3": 0, "conv3x3_weight_grads": 0}


@pytest.mark.parametrize("shape, filters", SHAPES[:3])
def test_the_same_bits_on_any_thread_count(rng, monkeypatch, shape, filters):
    x, w, b = _random(rng, shape, filters, np.float32)
    dout = rng.standard_normal((*shape[:3], filters)).astype(np.float32)

    def run():
        out, cache = conv2d_forward(x, w, b, 1, "same")
        return (out, *conv2d_backward(dout, cache))

    assert_same_bits_on_any_thread_count(run, monkeypatch)


def test_a_row_of_fewer_than_four_tiles_keeps_the_direct_kernel():
    """The products' tiles read rows of 4 tiles or more. On AVX-512 the direct kernel refuses
    outputs narrower than 8 anyway; on AVX2 it takes rows of 4, and a 2 x 4 output would have
    reached the Winograd kernel with a row of 2 tiles (read and written past the block)."""
    from npconv.functional.conv import _by_winograd

    same = ((1, 1), (1, 1))
    assert not _by_winograd((3, 3), same, (2, 4), 16, 16, np.dtype(np.float32))
    assert not _by_winograd((3, 3), same, (8, 6), 16, 16, np.dtype(np.float32))
    assert _by_winograd((3, 3), same, (2, 8), 16, 16, np.dtype(np.float32))
