"""Per-image standardisation's compiled tier against its NumPy tier: the same results to the
dtype's rounding (their sums run in different orders), caches either backward takes, and the same
bits whatever the number of threads. Gradient checks under both tiers:
tests/layers/test_photo_augmentation.py."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_same_bits_on_any_thread_count

from npconv.functional._tier import use_tier
from npconv.functional.standardize import standardize_backward, standardize_forward

pytestmark = pytest.mark.usefixtures("needs_numba")


def assert_close_to_rounding(fast, reference, x, scale):
    """Equal to within the rounding of a sum of an image's ``N`` values (a few roundings per 64
    terms, as each tier sums them), divided by the image's scale: the error of its mean grows by
    ``1 / s_i`` (near-blank images: ``s_i`` is the floor, ``1 / sqrt(N)``)."""
    m = x.shape[0]
    n = x.size // m
    bound = (16 + n / 64) * np.finfo(x.dtype).eps * np.abs(x).reshape(m, -1).max(axis=1) / scale.reshape(m)
    error = np.abs(fast.astype(np.float64) - reference).reshape(m, -1).max(axis=1)
    assert np.all(error <= bound * np.maximum(1, np.abs(reference).reshape(m, -1).max(axis=1))), (error, bound)


def images(shape, dtype, seed=0):
    """Images of different exposures and contrasts; image 1 blank, image 2 nearly so (the floor)."""
    rng = np.random.default_rng(seed)
    x = rng.random(shape) * rng.uniform(0.1, 3, (shape[0],) + (1,) * (len(shape) - 1)) + rng.uniform(-1, 1)
    x[1] = 0.3
    x[2] = 0.5 + 1e-5 * x[2]
    return x.astype(dtype)


@pytest.mark.parametrize("shape", [(6, 64, 64, 3), (4, 7, 5, 1), (3, 10), (5, 3, 3, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("forward_tier, backward_tier", [("numpy", "compiled"), ("compiled", "numpy")])
def test_tiers_agree_and_take_each_others_caches(shape, dtype, forward_tier, backward_tier):
    x = images(shape, dtype)
    dout = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    results = {}
    for tier in ("numpy", "compiled"):
        with use_tier(tier):
            y, cache = standardize_forward(x)
            results[tier] = (y, standardize_backward(dout, cache), cache)
    with use_tier(forward_tier):
        _, cache = standardize_forward(x)
    with use_tier(backward_tier):
        crossed = standardize_backward(dout, cache)
    (y_ref, dx_ref, cache_ref), (y_fast, dx_fast, cache_fast) = results["numpy"], results["compiled"]
    assert y_fast.dtype == dx_fast.dtype == crossed.dtype == dtype
    scale = cache_ref[1]
    assert_close_to_rounding(y_fast, y_ref, x, scale)
    assert_close_to_rounding(dx_fast, dx_ref, x, scale)
    assert_close_to_rounding(crossed, dx_ref, x, scale)
    for fast, ref in zip(cache_fast, cache_ref):
        assert fast.shape == ref.shape and fast.dtype == ref.dtype
    np.testing.assert_array_equal(cache_fast[2], cache_ref[2])  # the floor taken for the same images
    assert cache_fast[2].ravel()[1] and np.abs(y_fast[1]).max() < 1e-5  # a blank image: 0, not NaN


def test_same_bits_on_one_thread_two_threads_and_the_serial_build(monkeypatch):
    x = images((5, 12, 12, 3), np.float32)
    dout = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)

    def run():
        y, cache = standardize_forward(x)
        return y, standardize_backward(dout, cache)

    assert_same_bits_on_any_thread_count(run, monkeypatch)
