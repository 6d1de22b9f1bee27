"""A batch norm's statistics from the convolution that writes its input.

The compiled direct convolution sums each output row's values (less the row's first) and their
squares as its tiles compute them (``conv2d_forward_with_moments``), and the batch norm takes those
moments instead of a pass of its own (``batchnorm_forward(..., moments=...)``). Checked here against
float64 two-pass statistics of the same output, on the shapes where the tiles differ: a last tile
moved back over columns already counted, narrow rows, partly filled and several filter vectors,
1 x 1 kernels, the Winograd kernel's tiles of two rows, and a mean far from zero next to the spread.
"""

import numpy as np
import pytest
from conftest import assert_same_bits_on_any_thread_count

from npconv import functional as F
from npconv.errors import ShapeError
from npconv.functional._tier import use_tier

pytestmark = pytest.mark.usefixtures("needs_numba")

SHAPES = [
    # (x shape, kernel, filters, padding)
    ((3, 16, 13, 3), 3, 16, "same"),  # 13 columns: the last tile moved back over counted ones
    ((2, 9, 9, 2), 3, 8, "same"),  # rows narrower than a tile (half tiles), half vectors
    ((2, 11, 18, 12), 3, 37, 1),  # two vectors and a partly filled half
    ((2, 13, 19, 16), 3, 12, "same"),  # tap pairs on two vectors, the second partly filled
    ((2, 22, 22, 3), 7, 32, "valid"),  # Happy's first layer's shape of kernel
    ((2, 8, 8, 32), 1, 64, "same"),  # 1 x 1, two two-vector blocks
    ((2, 8, 10, 16), 3, 48, "same"),  # Winograd's F(2 x 2, 3 x 3): rows of 5 tiles, three filter vectors
]


def _float64_moments(out):
    rows = out.astype(np.float64).reshape(-1, out.shape[-1])
    return rows.mean(axis=0), rows.var(axis=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kernel, filters, padding", SHAPES)
@pytest.mark.parametrize("offset", [0.0, 100.0])
def test_the_convolution_gives_its_outputs_moments(rng, dtype, shape, kernel, filters, padding, offset):
    """The output is the plain forward's, bit for bit, and its moments are those of the output (an
    offset of 100 against a spread of about 1: no cancellation in the squares)."""
    x = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal((kernel, kernel, shape[3], filters)) / kernel).astype(dtype)
    b = (offset + rng.standard_normal(filters)).astype(dtype)
    with use_tier("compiled"):
        out, cache, moments = F.conv2d_forward_with_moments(x, w, b, 1, padding)
        plain, _ = F.conv2d_forward(x, w, b, 1, padding)
    assert cache.layout == "direct" and isinstance(moments, F.BatchMoments)
    np.testing.assert_array_equal(out, plain)
    mean, var = _float64_moments(out)
    assert moments.mean.dtype == moments.var.dtype == np.float64
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(moments.mean, mean, rtol=rtol, atol=rtol * np.sqrt(var.max()))
    np.testing.assert_allclose(moments.var, var, rtol=10 * rtol)


def test_only_the_direct_kernel_gives_moments(rng):
    x = rng.standard_normal((2, 9, 9, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    with use_tier("numpy"):
        assert F.conv2d_forward_with_moments(x, w, None, 1, "same")[2] is None
    with use_tier("compiled"):
        out, cache, moments = F.conv2d_forward_with_moments(x, w, None, 2, "same")  # strided: a GEMM
    assert cache.layout != "direct" and moments is None


def test_the_moments_are_the_same_bits_on_any_thread_count(rng, monkeypatch):
    x = rng.standard_normal((4, 24, 24, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 16)).astype(np.float32)

    def run():
        _, _, moments = F.conv2d_forward_with_moments(x, w, None, 1, "same")
        return moments

    assert_same_bits_on_any_thread_count(run, monkeypatch)


@pytest.mark.parametrize("tier", ["numpy", "compiled"])
@pytest.mark.parametrize("relu", [False, True])
def test_a_batch_norm_takes_the_moments_it_is_given(rng, tier, relu):
    """Given the moments of its input, the forward equals the one that computes them (to rounding),
    its cache holds them for the moving averages, and its backward is the same function of them."""
    x = (3 + rng.standard_normal((4, 6, 6, 5))).astype(np.float64)
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    moments = F.BatchMoments(*_float64_moments(x))
    with use_tier(tier):
        out, cache = F.batchnorm_forward(x, gamma, beta, relu=relu, moments=moments)
        expected, expected_cache = F.batchnorm_forward(x, gamma, beta, relu=relu)
        dout = rng.standard_normal(x.shape)
        grads, expected_grads = F.batchnorm_backward(dout, cache), F.batchnorm_backward(dout, expected_cache)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(cache.mean, moments.mean)
    np.testing.assert_array_equal(cache.var, moments.var)
    for got, want in zip(grads, expected_grads):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("tier", ["numpy", "compiled"])
def test_the_fused_batch_norm_relu_pool_takes_them_too(rng, tier):
    x = rng.standard_normal((3, 8, 8, 16)).astype(np.float32)
    gamma, beta = np.ones(16, np.float32), np.zeros(16, np.float32)
    moments = F.BatchMoments(*_float64_moments(x))
    with use_tier(tier):
        out, (cache, _) = F.batchnorm_relu_maxpool_forward(x, gamma, beta, 2, moments=moments)
        expected, _ = F.batchnorm_relu_maxpool_forward(x, gamma, beta, 2)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(cache.mean, moments.mean.astype(np.float32))


@pytest.mark.parametrize(
    "moments",
    [F.BatchMoments(np.zeros(4), np.ones(4)), (np.zeros(5), np.ones(5)), F.BatchMoments(np.zeros(5), np.ones(3))],
    ids=["channels", "not BatchMoments", "variance"],
)
def test_moments_of_another_shape_are_refused(rng, moments):
    x = rng.standard_normal((2, 3, 3, 5))
    with pytest.raises(ShapeError, match=r"moments: expected a BatchMoments of 5 channels"):
        F.batchnorm_forward(x, np.ones(5), np.zeros(5), moments=moments)
    with pytest.raises(ShapeError, match=r"moments: expected a BatchMoments of 5 channels"):
        F.batchnorm_relu_maxpool_forward(x, np.ones(5), np.zeros(5), 1, moments=moments)
