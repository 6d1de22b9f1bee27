"""The photo augmentations' compiled tier against their NumPy tier (the reference): the same random
draws, in the same order, and the same bits, whatever the number of threads (issue 30).

Per-image standardisation, whose sums the two tiers take in different orders, agrees to rounding:
tests/functional/test_standardize_tiers.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_same_bits_on_any_thread_count, require

from npconv.data import augment
from npconv.functional._tier import compiled_available, use_tier


@pytest.fixture(autouse=True)
def needs_numba():
    require(compiled_available(), "Numba is not installed (pip install numba)")


GAIN = augment.random_channel_gain
BLUR = augment.random_gaussian_blur
NOISE = augment.gaussian_noise
REFRAME = augment.random_reframe
TRANSLATE = augment.random_translation

CASES = [
    (GAIN, {"factor": 0.3, "brightness": 0.0, "value_range": (0.0, 1.0)}),
    (GAIN, {"factor": 0.0, "brightness": 0.5}),  # exposure alone, not clipped
    (GAIN, {"factor": (-0.5, 0.9), "brightness": 0.2, "value_range": (0.1, 0.8)}),
    (BLUR, {"max_sigma": 0.0}),  # the identity, in float arithmetic
    (BLUR, {"max_sigma": 1.5}),
    (BLUR, {"max_sigma": 3.0}),  # the widest the layer allows: every tap counts
    (NOISE, {"stddev": 0.0}),
    (NOISE, {"stddev": 0.08, "value_range": (0.0, 1.0)}),
    (NOISE, {"stddev": 0.3}),
    (TRANSLATE, {"height_factor": 0.3, "width_factor": 0.5}),
    (TRANSLATE, {"height_factor": (-1.0, 1.0), "width_factor": (-1.0, 1.0)}),  # some images shifted out
    (REFRAME, {"min_scale": 0.55, "max_degrees": 20, "probability": 0.5, "value_range": (0, 1)}),
    (REFRAME, {"min_scale": 0.6, "max_degrees": 0, "probability": 1.0, "value_range": (0, 1)}),  # no rotation
    (REFRAME, {"min_scale": 0.05, "max_degrees": 180, "probability": 1.0, "value_range": (0, 1)}),  # 1-pixel
    (REFRAME, {"min_scale": 0.9, "max_degrees": 45, "probability": 0.0, "value_range": (0, 1)}),  # none chosen
    (REFRAME, {"min_scale": 0.3, "max_degrees": 90, "probability": 0.8, "value_range": (-1, 2)}),
]
SHAPES = [(12, 16, 16, 3), (5, 9, 13, 3), (4, 20, 11, 1), (3, 2, 5, 3)]  # square, odd, grey, under 7 rows


def batch(shape, dtype, seed=0):
    """Random photos in [0, 1] with a plain border (what reframing's fill colour comes from) and a
    few values outside the range (what clipping is for)."""
    rng = np.random.default_rng(seed)
    x = rng.random(shape)
    x[:, :2] = x[:, -2:] = 0.7
    x[:, 3:5, 3:5] = rng.uniform(-0.2, 1.2, (shape[0], *x[:, 3:5, 3:5].shape[1:]))
    return x.astype(dtype)


def both_tiers(kernel, x, kwargs, seed=7):
    """Each tier's output and the next number its generator draws (the draws' count and order)."""
    results = []
    for tier in ("numpy", "compiled"):
        rng = np.random.default_rng(seed)
        with use_tier(tier):
            results.append((kernel(x, rng, **kwargs), rng.random()))
    return results


@pytest.mark.parametrize("kernel, kwargs", CASES, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_tier_gives_the_numpy_tiers_bits_and_draws(kernel, kwargs, shape, dtype):
    x = batch(shape, dtype)
    before = x.copy()
    (reference, next_reference), (fast, next_fast) = both_tiers(kernel, x, kwargs)
    assert fast.dtype == reference.dtype == x.dtype and fast.shape == x.shape
    np.testing.assert_array_equal(fast, reference)
    assert next_fast == next_reference
    np.testing.assert_array_equal(x, before)


def test_shifted_uint8_images_are_the_same_in_both_tiers():
    x = (batch((6, 9, 7, 3), np.float64).clip(0, 1) * 255).astype(np.uint8)
    (reference, _), (fast, _) = both_tiers(TRANSLATE, x, {"height_factor": 0.5, "width_factor": 0.5})
    assert fast.dtype == np.uint8
    np.testing.assert_array_equal(fast, reference)


def test_reframe_at_probability_one_changes_every_image_and_zero_none():
    x = batch((6, 24, 24, 3), np.float32)
    kwargs = {"min_scale": 0.5, "max_degrees": 30, "value_range": (0, 1)}
    (reference, _), (fast, _) = both_tiers(REFRAME, x, {**kwargs, "probability": 1.0})
    np.testing.assert_array_equal(fast, reference)
    assert all(not np.array_equal(a, b) for a, b in zip(fast, x))
    (_, _), (fast, _) = both_tiers(REFRAME, x, {**kwargs, "probability": 0.0})
    np.testing.assert_array_equal(fast, x)


def test_reframe_of_a_pillow_image_at_the_special_angles():
    """Pillow turns by 180 (and 90 on a square) with an exact transpose, not its affine map; the
    compiled tier's affine map must land on the same pixels."""
    x = batch((4, 10, 10, 3), np.float32)
    draws = (np.ones(4, bool), np.array([180.0, -180.0, 90.0, -90.0]), np.full((4, 2), 7), np.full((4, 2), 1))
    outputs = []
    for tier in ("numpy", "compiled"):
        with use_tier(tier):
            outputs.append(augment._reframe(x, *draws, 0.0, 1.0))
    np.testing.assert_array_equal(outputs[1], outputs[0])


def test_integer_and_four_channel_images_keep_to_the_numpy_tier():
    """uint8 images go through float64 and are rounded back, RGBA goes through Pillow's
    premultiplied alpha: both stay on the NumPy tier, with its results."""
    photos = (batch((4, 8, 8, 3), np.float64) * 255).clip(0, 255).astype(np.uint8)
    rgba = batch((4, 8, 8, 4), np.float32)
    for kernel, kwargs, x in [
        (GAIN, {"factor": 0.3}, photos),
        (BLUR, {"max_sigma": 1.5}, photos),
        (NOISE, {"stddev": 5.0}, photos),
        (REFRAME, {"min_scale": 0.5, "max_degrees": 20, "probability": 1.0, "value_range": (0, 255)}, photos),
        (REFRAME, {"min_scale": 0.5, "max_degrees": 20, "probability": 1.0, "value_range": (0, 1)}, rgba),
    ]:
        (reference, _), (fast, _) = both_tiers(kernel, x, kwargs)
        np.testing.assert_array_equal(fast, reference)


def test_same_bits_on_one_thread_two_threads_and_the_serial_build(monkeypatch):
    x = batch((9, 16, 16, 3), np.float32)

    def run():
        return [kernel(x, np.random.default_rng(1), **kwargs) for kernel, kwargs in CASES]

    assert_same_bits_on_any_thread_count(run, monkeypatch)
