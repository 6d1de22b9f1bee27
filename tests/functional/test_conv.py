"""conv2d: the vectorised kernel equals the course's loops, its own numerical gradient, and PyTorch.

Read this file to learn how ``npconv.functional.conv2d_forward`` behaves: NHWC input ``(m, H, W, C)``,
kernels ``(f_h, f_w, C, K)``, biases ``(K,)`` or the course's ``(1, 1, 1, K)``, and TensorFlow's
``padding="same"`` rule.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from npconv import course
from npconv.errors import ShapeError
from npconv.functional import conv2d_backward, conv2d_forward
from npconv.gradcheck import gradcheck

# Every test runs once per kernel tier: the NumPy reference and the compiled (Numba) kernels.
pytestmark = pytest.mark.usefixtures("tier")


def random_conv(rng, m=2, size=(7, 6), c=3, kernel=(3, 3), k=4, dtype=np.float64):
    x = rng.standard_normal((m, *size, c)).astype(dtype)
    w = rng.standard_normal((*kernel, c, k)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    return x, w, b


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 3),
    n_h=st.integers(1, 9),
    n_w=st.integers(1, 9),
    n_c=st.sampled_from([1, 3, 8, 10]),
    n_k=st.integers(1, 4),
    f=st.integers(1, 4),
    stride=st.integers(1, 3),
    pad=st.integers(0, 3),
    seed=st.integers(0, 2**31),
)
def test_forward_and_backward_equal_the_course_loops(m, n_h, n_w, n_c, n_k, f, stride, pad, seed):
    assume(f <= min(n_h, n_w) + 2 * pad)  # a kernel larger than the padded image is an error; tested below
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, n_h, n_w, n_c))
    w = rng.standard_normal((f, f, n_c, n_k))
    b = rng.standard_normal((1, 1, 1, n_k))
    hparameters = {"pad": pad, "stride": stride}
    z_loop, cache_loop = course.conv_forward(x, w, b, hparameters)
    z_fast, cache_fast = conv2d_forward(x, w, b, stride=stride, padding=pad)
    np.testing.assert_allclose(z_fast, z_loop, rtol=1e-12, atol=1e-12)

    dz = rng.standard_normal(z_loop.shape)
    for fast, loop in zip(conv2d_backward(dz, cache_fast), course.conv_backward(dz, cache_loop)):
        np.testing.assert_allclose(fast, loop, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("n_w", range(1, 10))
def test_input_narrower_than_its_padded_output(rng, n_w):
    """Padding of ``f - 1`` makes the output wider than the input. The compiled input gradient (the
    direct kernel writing rows of the input's width) once took inputs narrower than its tile and
    wrote past their rows: wrong gradients, then a crash (found by the test above, n_w 6, pad 2)."""
    x, w, b = random_conv(rng, m=1, size=(2, n_w), c=1, kernel=(3, 3), k=1)
    z_loop, cache_loop = course.conv_forward(x, w, b.reshape(1, 1, 1, -1), {"pad": 2, "stride": 1})
    z_fast, cache_fast = conv2d_forward(x, w, b, padding=2)
    np.testing.assert_allclose(z_fast, z_loop, rtol=1e-12, atol=1e-12)
    dz = rng.standard_normal(z_loop.shape)
    for fast, loop in zip(conv2d_backward(dz, cache_fast), course.conv_backward(dz, cache_loop)):
        np.testing.assert_allclose(fast.reshape(loop.shape), loop, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize(
    "kernel,stride,padding",
    [
        ((3, 3), 1, 0),
        ((3, 2), (2, 1), 1),
        ((2, 4), (1, 3), "same"),
        ((4, 4), 2, "same"),
        ((1, 1), 1, "valid"),
        ((3, 3), 3, ((0, 2), (1, 0))),
    ],
)
@pytest.mark.parametrize("channels", [3, 8])  # channel-major and row patch layouts
def test_numerical_gradients(rng, kernel, stride, padding, channels):
    x, w, b = random_conv(rng, size=(7, 6), c=channels, kernel=kernel)
    gradcheck(lambda x, w, b: conv2d_forward(x, w, b, stride, padding), conv2d_backward, {"x": x, "w": w, "b": b})


def test_same_padding_follows_tensorflow(rng):
    # TF: out = ceil(in / s); an even kernel pads one more at the bottom/right.
    x, w, b = random_conv(rng, size=(64, 64), kernel=(4, 4))
    out, cache = conv2d_forward(x, w, b, padding="same")
    assert out.shape[1:3] == (64, 64) and cache.pads == ((1, 2), (1, 2))
    out, cache = conv2d_forward(x, w, b, stride=2, padding="same")  # total 31*2+4-64 = 2
    assert out.shape[1:3] == (32, 32) and cache.pads == ((1, 1), (1, 1))


def test_dtype_is_kept_and_float32_matches_float64(rng):
    x, w, b = random_conv(rng)
    out64, cache64 = conv2d_forward(x, w, b, padding="same")
    out32, cache32 = conv2d_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), padding="same")
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-5)
    dout = rng.standard_normal(out64.shape)
    for g32, g64 in zip(conv2d_backward(dout.astype(np.float32), cache32), conv2d_backward(dout, cache64)):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4)


def test_bias_gradient_comes_back_in_the_shape_given(rng):
    x, w, b = random_conv(rng)
    _, cache = conv2d_forward(x, w, b.reshape(1, 1, 1, -1))
    dout = rng.standard_normal((2, 5, 4, 4))
    db = conv2d_backward(dout, cache)[2]
    assert db.shape == (1, 1, 1, 4)
    np.testing.assert_allclose(db, dout.sum(axis=(0, 1, 2), keepdims=True), rtol=1e-12)


def test_first_layer_skips_the_input_gradient(rng):
    x, w, b = random_conv(rng)
    out, cache = conv2d_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward(dout, cache, need_dx=False)
    _, dw_full, db_full = conv2d_backward(dout, cache)
    assert dx is None
    np.testing.assert_array_equal(dw, dw_full)  # the weight gradients do not change
    np.testing.assert_array_equal(db, db_full)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_pytorch_on_random_shapes(torch, dtype):
    functional = torch.nn.functional
    rng = np.random.default_rng(1)
    tol = 1e-9 if dtype == np.float64 else 2e-4
    for _ in range(25):
        m, n_k = rng.integers(1, 4, size=2)
        n_c = int(rng.choice([1, 3, 8, 12]))
        fh, fw = rng.integers(1, 5, size=2)
        sh, sw = rng.integers(1, 4, size=2)
        padding = ["same", "valid", int(rng.integers(0, 3))][rng.integers(0, 3)]
        x, w, b = random_conv(
            rng, m=m, size=tuple(rng.integers(5, 12, size=2)), c=n_c, kernel=(fh, fw), k=n_k, dtype=dtype
        )
        out, cache = conv2d_forward(x, w, b, (sh, sw), padding)
        (top, bottom), (left, right) = cache.pads
        tdtype = torch.float64 if dtype == np.float64 else torch.float32
        xt = torch.tensor(x.transpose(0, 3, 1, 2), dtype=tdtype, requires_grad=True)
        wt = torch.tensor(np.ascontiguousarray(w.transpose(3, 2, 0, 1)), dtype=tdtype, requires_grad=True)
        bt = torch.tensor(b, dtype=tdtype, requires_grad=True)
        yt = functional.conv2d(functional.pad(xt, (left, right, top, bottom)), wt, bt, stride=(sh, sw))
        np.testing.assert_allclose(out, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=tol, atol=tol)
        dout = rng.standard_normal(out.shape).astype(dtype)
        yt.backward(torch.tensor(np.ascontiguousarray(dout.transpose(0, 3, 1, 2)), dtype=tdtype))
        dx, dw, db = conv2d_backward(dout, cache)
        np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=tol, atol=tol)
        np.testing.assert_allclose(dw, wt.grad.numpy().transpose(2, 3, 1, 0), rtol=tol, atol=tol)
        np.testing.assert_allclose(db, bt.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("channels, filters", [(3, 4), (16, 20)])
def test_a_one_by_one_kernel_over_rows_a_tile_wide(rng, channels, filters):
    """Rows of 16 pixels: the compiled tier runs a 1 x 1 kernel direct (its taps are the channels),
    the NumPy tier as one GEMM; both against the course's loops and their numerical gradient."""
    x, w, b = random_conv(rng, size=(3, 16), c=channels, kernel=(1, 1), k=filters)
    gradcheck(lambda x, w, b: conv2d_forward(x, w, b), conv2d_backward, {"x": x, "w": w, "b": b})
    z_loop, cache_loop = course.conv_forward(x, w, b.reshape(1, 1, 1, -1), {"pad": 0, "stride": 1})
    z_fast, cache_fast = conv2d_forward(x, w, b)
    np.testing.assert_allclose(z_fast, z_loop, rtol=1e-12, atol=1e-12)
    dz = rng.standard_normal(z_loop.shape)
    for fast, loop in zip(conv2d_backward(dz, cache_fast), course.conv_backward(dz, cache_loop)):
        np.testing.assert_allclose(fast.reshape(loop.shape), loop, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_one_by_one_kernel_matches_pytorch(torch, rng, dtype):
    """``smallres``'s projections' shapes, small: 16 -> 32 and 32 -> 64 channels, rows a tile wide."""
    functional, tol = torch.nn.functional, 1e-9 if dtype == np.float64 else 2e-4
    for channels, filters, size in ((16, 32, (4, 16)), (32, 64, (8, 8))):
        x, w, b = random_conv(rng, size=size, c=channels, kernel=(1, 1), k=filters, dtype=dtype)
        out, cache = conv2d_forward(x, w, b)
        xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
        wt = torch.tensor(np.ascontiguousarray(w.transpose(3, 2, 0, 1)), requires_grad=True)
        yt = functional.conv2d(xt, wt, torch.tensor(b))
        np.testing.assert_allclose(out, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=tol, atol=tol)
        dout = rng.standard_normal(out.shape).astype(dtype)
        yt.backward(torch.tensor(np.ascontiguousarray(dout.transpose(0, 3, 1, 2))))
        dx, dw, _ = conv2d_backward(dout, cache)
        np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=tol, atol=tol)
        np.testing.assert_allclose(dw, wt.grad.numpy().transpose(2, 3, 1, 0), rtol=tol, atol=tol)


@pytest.mark.parametrize("size, channels, kernel", [((5, 16), 16, (3, 3)), ((5, 6), 3, (2, 2)), ((5, 16), 8, (1, 1))])
def test_without_a_bias_the_backward_skips_its_gradient(rng, size, channels, kernel):
    """``b=None``: the same outputs and gradients as a zero bias (direct, channel-major and 1 x 1
    layouts), and ``db`` is ``None`` instead of a sum over the whole output gradient."""
    x, w, _ = random_conv(rng, size=size, c=channels, kernel=kernel)
    zero = np.zeros(w.shape[-1])
    out, cache = conv2d_forward(x, w, None, padding="same")
    out_zero, cache_zero = conv2d_forward(x, w, zero, padding="same")
    np.testing.assert_array_equal(out, out_zero)
    dout = rng.standard_normal(out.shape)
    for need_dx in (True, False):
        dx, dw, db = conv2d_backward(dout, cache, need_dx=need_dx)
        dx_zero, dw_zero, _ = conv2d_backward(dout, cache_zero, need_dx=need_dx)
        assert db is None
        np.testing.assert_array_equal(dw, dw_zero)
        if need_dx:
            np.testing.assert_array_equal(dx, dx_zero)


def test_bad_input_is_explained(rng):
    x, w, b = random_conv(rng)
    with pytest.raises(ShapeError, match=r"w: expected 3 input channels"):
        conv2d_forward(x, w[:, :, :2], b)
    with pytest.raises(ShapeError, match=r"b: expected shape \(4,\) or \(1, 1, 1, 4\)"):
        conv2d_forward(x, w, b[:3])
    with pytest.raises(ShapeError, match=r"kernel height.*padding='same'"):
        conv2d_forward(x, rng.standard_normal((9, 3, 3, 4)), b)
    with pytest.raises(ShapeError, match=r"x\[None\]"):
        conv2d_forward(x[0], w, b)
    with pytest.raises(TypeError, match=r"floating-point.*255"):
        conv2d_forward(x.astype(np.uint8), w, b)
    with pytest.raises(ValueError, match=r"padding: expected one of 'same', 'valid'"):
        conv2d_forward(x, w, b, padding="full")
    with pytest.raises(ValueError, match=r"stride: expected an integer or a pair of integers >= 1"):
        conv2d_forward(x, w, b, stride=0)


@pytest.mark.parametrize("channels", [3, 16])
def test_workspace_reuse_gives_the_pure_results(rng, channels):
    from npconv.functional._workspace import Workspace

    workspace = Workspace()
    for size in [(9, 9), (9, 9), (5, 7)]:  # same shape twice, then a smaller batch reuses the buffers
        x, w, b = random_conv(rng, size=size, c=channels, dtype=np.float32)
        pure_out, pure_cache = conv2d_forward(x, w, b, padding="same")
        out, cache = conv2d_forward(x, w, b, padding="same", workspace=workspace)
        np.testing.assert_array_equal(out, pure_out)
        dout = np.ones_like(out)
        for g, pure_g in zip(conv2d_backward(dout, cache), conv2d_backward(dout, pure_cache)):
            np.testing.assert_array_equal(g, pure_g)


def test_backward_names_a_wrong_dout(rng):
    x, w, b = random_conv(rng)
    out, cache = conv2d_forward(x, w, b)
    with pytest.raises(ShapeError, match=r"dout: expected an array of the forward output's shape \(2, 5, 4, 4\)"):
        conv2d_backward(out[:, :-1], cache)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "size, channels, kernel, stride",
    [
        ((9, 11), 16, (3, 3), 1),  # direct: whole vectors of input channels (smallres's first stage)
        ((9, 10), 12, (3, 3), 1),  # direct: the last vector of input channels partly filled
        ((9, 10), 3, (2, 2), 1),  # direct: a few input channels
        ((7, 7), 5, (3, 3), 2),  # strided: the patch-matrix backward
    ],
)
def test_dx_plus_is_added_to_the_input_gradient(rng, dtype, size, channels, kernel, stride):
    """``dx_plus + dx``, bit for bit, whether the kernel adds it as it writes ``dx`` or NumPy after
    it: a residual block's two gradients of one input, summed in one pass."""
    x, w, b = random_conv(rng, size=size, c=channels, kernel=kernel, k=16, dtype=dtype)
    out, cache = conv2d_forward(x, w, b, stride=stride, padding="same")
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx_plus = rng.standard_normal(x.shape).astype(dtype)
    dx, dw, db = conv2d_backward(dout, cache)
    summed, dw_summed, db_summed = conv2d_backward(dout, cache, dx_plus=dx_plus)
    np.testing.assert_array_equal(summed, dx_plus + dx)
    np.testing.assert_array_equal(dw_summed, dw)
    np.testing.assert_array_equal(db_summed, db)
    with pytest.raises(ShapeError, match=r"dx_plus: expected an array of the input's shape"):
        conv2d_backward(dout, cache, dx_plus=dx_plus[:, 1:])
    with pytest.raises(ShapeError, match=r"with need_dx=True"):
        conv2d_backward(dout, cache, need_dx=False, dx_plus=dx_plus)


# ----- the input, or the output gradient, already inside its zero padding -----


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kernel, filters, padding", [((2, 9, 11, 3), 3, 16, "same"), ((3, 8, 10, 8), 3, 32, 1)])
def test_a_bordered_input_and_output_gradient_give_the_padded_copies_bits(rng, dtype, shape, kernel, filters, padding):
    """``x_pad`` and ``dout_pad`` (written by the layer before, inside buffers whose border is zero):
    the same outputs and gradients as the padding passes they replace."""
    from npconv.functional.conv import direct_input_buffer, direct_output_gradient_buffer

    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((kernel, kernel, shape[3], filters)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    out, cache = conv2d_forward(x, w, b, 1, padding)
    dout = rng.standard_normal(out.shape).astype(dtype)
    want = conv2d_backward(dout, cache)
    buffer = direct_input_buffer(x.shape, dtype, w.shape, 1, padding)
    if buffer is None:  # the NumPy tier: no direct kernel to read one
        return
    x_pad, _, interior = buffer
    interior[...] = x
    out_bordered, cache = conv2d_forward(interior, w, b, 1, padding, x_pad=x_pad)
    np.testing.assert_array_equal(out_bordered, out)
    assert cache.cols is x_pad
    dout_pad, _, dout_interior = direct_output_gradient_buffer(cache)
    dout_interior[...] = dout
    for got, expected in zip(conv2d_backward(dout_interior, cache, dout_pad=dout_pad), want):
        np.testing.assert_array_equal(got, expected)
    _, dw, db = conv2d_backward(dout_interior, cache, need_dx=False, dout_pad=dout_pad)
    np.testing.assert_array_equal(dw, want[1])


def test_a_bordered_buffer_must_hold_the_array_given_beside_it(rng):
    from npconv.functional.padding import bordered_empty

    x = rng.standard_normal((2, 8, 9, 3))
    w = rng.standard_normal((3, 3, 3, 8))
    x_pad, _, interior = bordered_empty(x.shape, ((1, 1), (1, 1)), x.dtype)
    interior[...] = x
    with pytest.raises(ValueError, match=r"x_pad: expected a C-contiguous \(2, 10, 11, 3\) array"):
        conv2d_forward(x, w, None, 1, "same", x_pad=x_pad)  # x is not its interior
    with pytest.raises(ValueError, match="x_pad: expected"):
        conv2d_forward(interior, w, None, 1, "valid", x_pad=x_pad)  # another padding


def test_a_workspace_hands_out_its_bordered_buffer_again_while_its_border_stands():
    """The same ``Bordered`` (its interior view too) for the next batch of a shape, whose border the
    workspace kept; a new one, bordered anew, after another shape or another use of the buffer."""
    from npconv.functional._workspace import Workspace
    from npconv.functional.padding import bordered_empty

    ws, pads = Workspace(), ((1, 1), (2, 0))
    first = bordered_empty((2, 4, 5, 3), pads, np.float32, ws)
    first.interior[...] = 7
    assert bordered_empty((2, 4, 5, 3), pads, np.float32, ws) is first
    other = bordered_empty((2, 3, 5, 3), pads, np.float32, ws)
    assert other is not first and other.interior.shape == (2, 3, 5, 3)
    ws.get("x_pad", (2, 6, 7, 3), np.float32).fill(1)  # the buffer used for something else
    again = bordered_empty((2, 4, 5, 3), pads, np.float32, ws)
    assert again is not first
    inside = np.zeros(again.padded.shape, bool)
    inside[:, 1:5, 2:7] = True
    assert not again.padded[~inside].any()


def test_a_remembered_geometry_never_stands_for_an_argument_its_checks_refuse(rng):
    """The stride and padding rules are remembered per shape for Python's ints and strings: ``True``
    equals 1 and hashes as 1, yet a stride of ``True`` (or ``(True, 1)``) is refused after ``1``
    has been remembered; lists and NumPy ints take the same checks, unremembered."""
    x, w = rng.standard_normal((1, 9, 9, 2)), rng.standard_normal((3, 3, 2, 4))
    want = conv2d_forward(x, w, None, 1, 1)[0]
    for stride in (True, (True, 1), (1, True)):
        with pytest.raises(ValueError, match="stride: expected an integer or a pair of integers >= 1"):
            conv2d_forward(x, w, None, stride, 1)
    for stride, padding in (([1, 1], [1, 1]), (np.int64(1), (np.int64(1), 1)), ((1, 1), ((1, 1), (1, 1)))):
        np.testing.assert_array_equal(conv2d_forward(x, w, None, stride, padding)[0], want)
