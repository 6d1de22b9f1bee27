"""Augmentation kernels: shape and dtype kept, seeded, identity at factor 0, exact geometry."""
from __future__ import annotations

import numpy as np
import pytest

from npconv.data.augment import random_brightness, random_flip, random_rotation, random_translation

KERNELS = [
    (random_flip, {"mode": "horizontal_and_vertical"}),
    (random_translation, {"height_factor": 0.2, "width_factor": 0.2}),
    (random_rotation, {"factor": 0.1}),
    (random_rotation, {"factor": 0.1, "interpolation": "nearest"}),
    (random_brightness, {"max_delta": 0.2}),
]


@pytest.fixture
def batch():
    return np.random.default_rng(0).random((8, 9, 7, 3)).astype(np.float32)


@pytest.mark.parametrize("kernel, kwargs", KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_shape_dtype_seed_and_no_mutation(batch, kernel, kwargs, dtype):
    x = (batch * 255).astype(dtype) if dtype == np.uint8 else batch.astype(dtype)
    before = x.copy()
    a = kernel(x, np.random.default_rng(5), **kwargs)
    b = kernel(x, np.random.default_rng(5), **kwargs)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert np.array_equal(a, b) and np.array_equal(x, before) and a is not x


@pytest.mark.parametrize("kernel, kwargs", [
    (random_translation, {"height_factor": 0.0, "width_factor": 0.0}),
    (random_rotation, {"factor": 0.0}),
    (random_rotation, {"factor": 0.0, "interpolation": "nearest"}),
    (random_brightness, {"max_delta": 0.0}),
])
def test_identity_at_factor_zero(batch, kernel, kwargs):
    assert np.array_equal(kernel(batch, np.random.default_rng(1), **kwargs), batch)


def test_flips_are_exact_mirrors(batch):
    out = random_flip(batch, np.random.default_rng(2), "horizontal")
    flipped = [np.array_equal(o, x[:, ::-1]) for o, x in zip(out, batch)]
    kept = [np.array_equal(o, x) for o, x in zip(out, batch)]
    assert all(f != k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)
    out = random_flip(batch, np.random.default_rng(2), "vertical")
    assert all(np.array_equal(o, x[::-1]) or np.array_equal(o, x) for o, x in zip(out, batch))


def test_translation_shifts_whole_pixels_with_zero_fill():
    x = np.arange(1, 26, dtype=np.float64).reshape(1, 5, 5, 1)
    out = random_translation(x, np.random.default_rng(0), (0.2, 0.2), (-0.4, -0.4))  # 1 down, 2 left
    expected = np.zeros_like(x)
    expected[0, 1:, :3] = x[0, :4, 2:]
    assert np.array_equal(out, expected)


def test_rotation_quarter_turn_is_counter_clockwise():
    x = np.random.default_rng(0).random((2, 6, 6, 2))
    assert np.allclose(random_rotation(x, np.random.default_rng(0), (0.25, 0.25)),
                       np.rot90(x, 1, axes=(1, 2)))


def test_brightness_one_delta_per_image_and_clipping(batch):
    out = random_brightness(batch, np.random.default_rng(3), 0.3)
    delta = (out - batch).reshape(len(batch), -1)
    assert np.allclose(delta, delta[:, :1], atol=1e-6) and np.abs(delta).max() <= 0.3 + 1e-6
    clipped = random_brightness(batch, np.random.default_rng(3), 0.3, value_range=(0.0, 1.0))
    assert out.min() < 0 and out.max() > 1  # the same deltas, so clipping has work to do
    np.testing.assert_array_equal(clipped, np.clip(out, 0.0, 1.0))


def test_bad_arguments(batch):
    with pytest.raises(ValueError, match="height_factor"):
        random_translation(batch, np.random.default_rng(0), height_factor=(0.3, 0.1))
    with pytest.raises(ValueError, match="mode"):
        random_flip(batch, np.random.default_rng(0), "diagonal")
    with pytest.raises(ValueError, match="x"):
        random_flip(batch[0], np.random.default_rng(0))
