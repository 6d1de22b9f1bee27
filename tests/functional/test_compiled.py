"""The compiled (Numba) tier against the NumPy tier, on the shapes and options where they differ.

``test_conv.py``, ``test_pool.py`` and ``test_batchnorm.py`` (beside this file) run every test
under both tiers (against the course loops, numerical gradients and PyTorch); this file holds the
two tiers against each other directly, in float32 and float64 (how the tier is chosen: test_tier.py).
"""

import numpy as np
import pytest
from conftest import assert_same_bits_on_any_thread_count

from npconv import functional as F
from npconv.functional._tier import use_tier

pytestmark = pytest.mark.usefixtures("needs_numba")


def both_tiers(run):
    """``run()`` under each tier; returns ``(numpy_results, compiled_results)``."""
    with use_tier("numpy"):
        reference = run()
    with use_tier("compiled"):
        fast = run()
    return reference, fast


def assert_all_close(reference, fast, dtype):
    # float32 sums of thousands of terms, accumulated in different orders by the two tiers
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for a, b in zip(reference, fast):
        assert b.dtype == a.dtype
        np.testing.assert_allclose(b, a, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape, kernel, filters, stride, padding, layout",
    [
        ((3, 20, 18, 3), (4, 4), 8, 1, "same", "direct"),  # SIGNS's first layer: tap pairs (float64: half vectors)
        ((2, 12, 12, 2), (3, 3), 3, 1, 1, "direct"),  # 3 filters: tap pairs in float32 and float64
        ((2, 10, 12, 1), (2, 3), 4, 1, "valid", "direct"),  # rows of 3 taps: no pairs, half vectors
        ((2, 17, 16, 1), (3, 2), 5, 1, ((2, 0), (0, 1)), "direct"),  # grayscale, uneven padding, odd K
        ((2, 22, 22, 3), (7, 7), 6, 1, "valid", "direct"),  # Happy's first layer: no padding
        ((2, 16, 16, 16), (3, 3), 16, 1, "same", "direct"),  # smallres's first stage: tap pairs, two vectors
        ((2, 11, 19, 4), (3, 3), 12, 1, "same", "direct"),  # tap pairs, the second vector partly filled
        ((2, 12, 12, 3), (3, 3), 16, 1, "same", "direct"),  # 9-tap rows: no pairs, one vector
        ((2, 13, 12, 3), (3, 3), 11, 1, "same", "direct"),  # an RGB 3 x 3 window: 27 taps, one tile
        ((2, 14, 12, 1), (9, 3), 10, 1, "same", "direct"),  # 27 taps not in runs of 9: scattered
        ((3, 8, 8, 8), (2, 2), 16, 1, "same", "direct"),  # 8 x 8 (SIGNS's second layer): narrow tiles
        ((2, 11, 13, 12), (3, 3), 37, 1, 1, "direct"),  # rows not a multiple of a tile; 2 + half vectors
        ((2, 10, 9, 20), (3, 3), 20, 1, "same", "direct"),  # two vectors, the second partly filled
        ((2, 12, 12, 4), (3, 3), 64, 1, "same", "direct"),  # filters in two two-vector blocks
        ((3, 3, 3, 8), (2, 2), 16, 1, "same", "rows"),  # rows narrower than any tile: GEMM
        ((2, 9, 9, 3), (3, 3), 4, 2, 1, "channel_major"),  # strided: the channel-major GEMM
        ((2, 17, 16, 8), (3, 3), 4, 1, 3, "rows"),  # padding beyond f - 1: GEMM and col2im
        ((2, 9, 9, 8), (3, 3), 4, 2, 0, "rows"),  # strided col2im
        ((2, 16, 16, 8), (1, 1), 12, 1, "valid", "direct"),  # 1 x 1: the channels are the taps
        ((2, 8, 8, 32), (1, 1), 64, 1, "same", "direct"),  # smallres's last projection: four vectors
        ((2, 16, 16, 8), (1, 1), 12, 2, "valid", "rows"),  # strided 1 x 1: GEMM
        ((2, 5, 4, 8), (1, 1), 12, 1, "valid", "pointwise"),  # rows narrower than a tile: GEMM
    ],
)
def test_conv_tiers_agree(rng, dtype, shape, kernel, filters, stride, padding, layout):
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((*kernel, shape[3], filters)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)

    def run():
        out, cache = F.conv2d_forward(x, w, b, stride, padding)
        dout = np.linspace(-1, 1, out.size, dtype=dtype).reshape(out.shape)
        return (out, *F.conv2d_backward(dout, cache))

    with use_tier("compiled"):
        assert F.conv2d_forward(x, w, b, stride, padding)[1].layout == layout
    assert_all_close(*both_tiers(run), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape, filters",
    [
        ((3, 48, 64, 3), 32),  # Happy-like rows: two bands an image (two-vector tiles)
        ((40, 8, 8, 4), 16),  # small images: 32 to a band, the last band short (one vector)
        ((5, 20, 20, 3), 8),  # half vectors
        ((4, 40, 36, 3), 16),  # an RGB window's 27 taps in one tile (float32)
        ((2, 50, 41, 2), 20),  # a partly filled vector, rows not a divisor of the band
    ],
)
def test_the_direct_weight_gradient_sums_the_bias_gradient_in_its_bands(rng, dtype, shape, filters):
    """The compiled weight gradient takes the bias's sums from the output gradient it has loaded for
    the first tile of taps, band by band: each band and each filter counted once."""
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((3, 3, shape[3], filters)).astype(dtype)
    with use_tier("compiled"):
        out, cache = F.conv2d_forward(x, w, np.zeros(filters, dtype), 1, "same")
        dout = rng.standard_normal(out.shape).astype(dtype)
        _, dw, db = F.conv2d_backward(dout, cache)
        _, dw_alone, no_db = F.conv2d_backward(dout, F.conv2d_forward(x, w, None, 1, "same")[1])
    assert cache.layout == "direct" and no_db is None
    np.testing.assert_array_equal(dw_alone, dw)
    expected = dout.astype(np.float64).sum(axis=(0, 1, 2))
    np.testing.assert_allclose(db, expected, rtol=0, atol=(2e-4 if dtype == np.float32 else 1e-11))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape, window",
    [
        ((3, 12, 20, 16), (3, 3)),  # smallres's 16-channel stage: 3 window rows of 3 positions
        ((40, 8, 8, 32), (2, 2)),  # 4 positions (3 + 1), two channel vectors, 32 images to a band
        ((2, 9, 13, 16), (1, 1)),  # one position
        ((2, 9, 13, 16), (1, 5)),  # 5 positions (3 + 2)
        ((2, 70, 41, 16), (2, 3)),  # 6 positions, several bands an image, the last one short
    ],
)
def test_weight_gradient_tiles_along_the_channels_give_the_filter_tiles_bits(rng, dtype, shape, window):
    """With one vector of filters over whole vectors of channels, the weight gradient's tiles run
    along the channels; the same sums through the filter-vector tiles (the output gradient padded
    to two vectors of filters, the padding's gradients zero) give the same bits, bias included."""
    from npconv.functional._tier import load_compiled
    from npconv.functional.compiled._simd import VECTOR_BYTES
    from npconv.functional.conv import tap_offsets

    kernels = load_compiled().conv
    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    (m, h_pad, w_pad, n_c), (fh, fw) = shape, window
    n_h, n_w = h_pad - fh + 1, w_pad - fw + 1
    x_pad = rng.standard_normal(shape).astype(dtype)
    grads = np.zeros((m, n_h, n_w, 2 * lanes), dtype)
    grads[..., : lanes - 3] = rng.standard_normal((m, n_h, n_w, lanes - 3))  # a partly filled vector
    offsets, n_taps = tap_offsets(fh, fw, n_c, w_pad), fh * fw * n_c
    one_vector = np.ascontiguousarray(grads[..., :lanes])
    dw, db = kernels.conv_weight_grads(x_pad, one_vector, 0, 0, n_h, n_w, offsets, n_taps, True, None)
    dw_wide, db_wide = kernels.conv_weight_grads(x_pad, grads, 0, 0, n_h, n_w, offsets, n_taps, True, None)
    np.testing.assert_array_equal(dw, dw_wide[:, :lanes])
    np.testing.assert_array_equal(db, db_wide[:lanes])
    expected = np.einsum("ihwc,ihwk->ck", x_pad[:, :n_h, :n_w].astype(np.float64), one_vector.astype(np.float64))
    np.testing.assert_allclose(dw[:n_c], expected, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape, pool, stride, padding",
    [
        ((3, 16, 16, 8), 8, None, "valid"),  # SIGNS's 8x8 pool: the windows tile the input
        ((2, 9, 7, 3), 2, None, "valid"),  # a leftover row and column get no gradient
        ((2, 7, 7, 2), 3, 2, "valid"),  # overlapping windows accumulate
        ((2, 5, 6, 3), 2, None, "same"),  # -inf padding never wins
    ],
)
def test_max_pool_tiers_agree(rng, dtype, shape, pool, stride, padding):
    x = rng.standard_normal(shape).astype(dtype)

    def run():
        out, cache = F.pool2d_forward(x, pool, stride, padding, mode="max")
        dout = rng.standard_normal(out.shape).astype(dtype)
        return out, cache.winner, F.pool2d_backward(dout, cache)

    rng_state = rng.bit_generator.state
    reference = run_with(run, "numpy")
    rng.bit_generator.state = rng_state
    fast = run_with(run, "compiled")
    for a, b in zip(reference, fast):
        np.testing.assert_array_equal(b, a)  # max pooling only copies values: exactly equal


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_c", [1, 3, 8, 16, 64])
@pytest.mark.parametrize(
    "pool, stride, padding",
    [
        (2, None, "valid"),
        (3, 2, "same"),
        (4, None, "valid"),
        (8, None, "valid"),
        ((2, 3), (1, 2), "same"),
        (2, 3, "valid"),
    ],
)
def test_max_pool_ties_nan_and_inf_give_the_numpy_tiers_bits(rng, monkeypatch, dtype, n_c, pool, stride, padding):
    """Small integers (ties between a window's rows and columns), -inf and NaN: the compiled kernels
    (by rows then columns with few channels, by window offsets with many) pick the NumPy tier's
    winners and route the gradients as it does, on any thread count."""
    x = rng.integers(0, 3, (2, 17, 137, n_c)).astype(dtype)  # wide: rows reduced in blocks of windows
    x[rng.random(x.shape) < 0.1] = -np.inf
    x[rng.random(x.shape) < 0.03] = np.nan

    def run():
        out, cache = F.pool2d_forward(x, pool, stride, padding, mode="max")
        dout = np.linspace(-1, 1, out.size, dtype=dtype).reshape(out.shape)
        return out, cache.winner, F.pool2d_backward(dout, cache)

    reference, fast = both_tiers(run)
    for a, b in zip(reference[:2], fast[:2]):
        np.testing.assert_array_equal(b, a)
    # where windows overlap, the tiers add an input's shares in different orders
    np.testing.assert_allclose(fast[2], reference[2], rtol=1e-6, atol=1e-6)
    assert_same_bits_on_any_thread_count(run, monkeypatch)


def run_with(run, tier):
    with use_tier(tier):
        return run()


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 5, 6, 3), (300, 7), (1, 2)])
def test_batchnorm_tiers_agree(rng, dtype, shape, relu):
    x = (rng.standard_normal(shape) * 3 + 100).astype(dtype)  # a large mean: no cancellation allowed
    gamma, beta = rng.standard_normal(shape[-1]).astype(dtype), rng.standard_normal(shape[-1]).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)

    def run():
        out, cache = F.batchnorm_forward(x, gamma, beta, relu=relu)
        return (out, cache.mean, cache.var, *F.batchnorm_backward(dout, cache))

    reference, fast = both_tiers(run)
    tol = dict(rtol=1e-3, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-8, atol=1e-10)
    for a, b in zip(reference, fast):
        assert b.dtype == a.dtype
        np.testing.assert_allclose(b, a, **tol)


def test_a_cache_outlives_a_tier_switch(rng):
    """A direct (compiled) convolution's cache is still differentiable after switching to NumPy."""
    x, w, b = rng.standard_normal((2, 16, 16, 3)), rng.standard_normal((3, 3, 3, 4)), np.zeros(4)
    dout = rng.standard_normal((2, 16, 16, 4))
    with use_tier("compiled"):
        out, cache = F.conv2d_forward(x, w, b, 1, "same")
    assert cache.layout == "direct"
    with use_tier("numpy"):
        grads = F.conv2d_backward(dout, cache)
        reference = F.conv2d_backward(dout, F.conv2d_forward(x, w, b, 1, "same")[1])
    for a, g in zip(reference, grads):
        np.testing.assert_allclose(g, a, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("forward_tier, backward_tier", [("numpy", "compiled"), ("compiled", "numpy")])
def test_batchnorm_cache_crosses_tiers(rng, forward_tier, backward_tier, relu):
    """A NumPy-tier cache stores x - mean, a compiled one x itself: either backward reads both
    (ReLU's mask recomputed from either, with the scale and offset that cache's forward used)."""
    x, dout = rng.standard_normal((50, 4)) + 3, rng.standard_normal((50, 4))
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    with use_tier(forward_tier):
        _, cache = F.batchnorm_forward(x, gamma, beta, relu=relu)
    with use_tier(backward_tier):
        grads = F.batchnorm_backward(dout, cache)
    with use_tier("numpy"):
        reference = F.batchnorm_backward(dout, F.batchnorm_forward(x, gamma, beta, relu=relu)[1])
    for a, g in zip(reference, grads):
        np.testing.assert_allclose(g, a, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_padding_and_relu_gradient_tiers_agree(rng, dtype):
    """Element-wise passes: the same bits in both tiers, NaN included (NumPy's NaN * 0 is NaN)."""
    from npconv.functional.padding import pad_nhwc

    x = rng.standard_normal((3, 5, 6, 4)).astype(dtype)
    for pads, value in [(((1, 2), (0, 3)), 0.0), (((2, 0), (1, 1)), -np.inf)]:
        padded = [run_with(lambda: pad_nhwc(x, pads, value).copy(), tier) for tier in ("numpy", "compiled")]
        np.testing.assert_array_equal(padded[1], padded[0])
    activation, _ = F.relu_forward(rng.standard_normal((4, 9, 7, 5)).astype(dtype))
    dout = rng.standard_normal(activation.shape).astype(dtype)
    dout[0, 0, 0, :] = np.nan
    grads = [run_with(lambda: F.relu_backward(dout, activation), tier) for tier in ("numpy", "compiled")]
    np.testing.assert_array_equal(grads[1], grads[0])


def test_an_epochs_shuffled_batches_are_the_same_in_both_tiers(rng):
    from npconv.engine.batches import shuffled_batches

    x = rng.standard_normal((50, 4, 5, 3)).astype(np.float32)
    y = np.arange(50)
    order = rng.permutation(50)
    for tier in ("numpy", "compiled"):
        batches = run_with(lambda: list(shuffled_batches(x, y, order, 16)), tier)
        assert [len(xb) for xb, _ in batches] == [16, 16, 16, 2]
        np.testing.assert_array_equal(np.concatenate([xb for xb, _ in batches]), x[order])
        np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), order)
        assert not any(np.shares_memory(xb, x) for xb, _ in batches)


@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_random_flips_are_the_same_in_both_tiers(rng, mode, dtype):
    from npconv.data.augment import random_flip

    x = (rng.random((9, 5, 7, 3)) * 200).astype(dtype)
    flipped = [run_with(lambda: random_flip(x, np.random.default_rng(3), mode), tier) for tier in ("numpy", "compiled")]
    np.testing.assert_array_equal(flipped[1], flipped[0])
    assert flipped[1].dtype == dtype
