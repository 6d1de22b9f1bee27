"""Augmentation kernels: shape and dtype kept, seeded, identity at factor 0, exact geometry."""

from __future__ import annotations

import numpy as np
import pytest

from npconv.data.augment import (
    random_brightness,
    random_contrast,
    random_flip,
    random_rotation,
    random_translation,
    random_zoom,
)

KERNELS = [
    (random_flip, {"mode": "horizontal_and_vertical"}),
    (random_translation, {"height_factor": 0.2, "width_factor": 0.2}),
    (random_rotation, {"factor": 0.1}),
    (random_rotation, {"factor": 0.1, "interpolation": "nearest"}),
    (random_brightness, {"max_delta": 0.2}),
    (random_zoom, {"height_factor": 0.3}),
    (
        random_zoom,
        {"height_factor": (-0.4, 0.2), "width_factor": 0.3, "fill_mode": "constant", "interpolation": "nearest"},
    ),
    (random_contrast, {"factor": 0.5}),
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


@pytest.mark.parametrize(
    "kernel, kwargs",
    [
        (random_translation, {"height_factor": 0.0, "width_factor": 0.0}),
        (random_rotation, {"factor": 0.0}),
        (random_rotation, {"factor": 0.0, "interpolation": "nearest"}),
        (random_brightness, {"max_delta": 0.0}),
        (random_zoom, {"height_factor": 0.0}),
        (random_zoom, {"height_factor": 0.0, "width_factor": 0.0, "fill_mode": "wrap", "interpolation": "nearest"}),
    ],
)
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
    assert np.allclose(random_rotation(x, np.random.default_rng(0), (0.25, 0.25)), np.rot90(x, 1, axes=(1, 2)))


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


# ----- zoom -----

# A 5x5 picture zoomed out exactly 2x: output pixel r reads source 2 + 2 (r - 2) = -2, 0, 2, 4, 6,
# so every read is a whole pixel and only the fill mode decides what lies outside.
ZOOM_OUT_2X_SOURCES = {
    "reflect": [1, 0, 2, 4, 3],  # d c b a | a b c d e | e d c b a
    "wrap": [3, 0, 2, 4, 1],  # a b c d e | a b c d e | a b c d e
    "nearest": [0, 0, 2, 4, 4],
}  # a a | a b c d e | e e


@pytest.mark.parametrize("fill_mode", sorted(ZOOM_OUT_2X_SOURCES))
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_zoom_out_fills_by_keras_fill_modes(fill_mode, interpolation):
    x = np.arange(1.0, 26.0).reshape(1, 5, 5, 1)
    out = random_zoom(x, np.random.default_rng(0), (1.0, 1.0), fill_mode=fill_mode, interpolation=interpolation)
    index = ZOOM_OUT_2X_SOURCES[fill_mode]
    np.testing.assert_array_equal(out, x[:, index][:, :, index])


def test_zoom_out_constant_fill_uses_fill_value():
    x = np.arange(1.0, 26.0).reshape(1, 5, 5, 1)
    out = random_zoom(x, np.random.default_rng(0), (1.0, 1.0), fill_mode="constant", fill_value=-1.0)
    expected = np.full_like(x, -1.0)
    expected[0, 1:4, 1:4] = x[0, 0::2, 0::2]
    np.testing.assert_array_equal(out, expected)


def test_zoom_in_keeps_the_centre_and_interpolates_between_pixels():
    # z = 0.5: output pixel r reads 2 + (r - 2) / 2, so (1, 1) is the mean of x[1:3, 1:3].
    x = np.random.default_rng(0).random((1, 5, 5, 2))
    out = random_zoom(x, np.random.default_rng(0), (-0.5, -0.5))
    np.testing.assert_allclose(out[0, 2, 2], x[0, 2, 2], rtol=1e-12)
    np.testing.assert_allclose(out[0, 1, 1], x[0, 1:3, 1:3].mean(axis=(0, 1)), rtol=1e-12)


def test_width_factor_zooms_the_columns_alone():
    x = np.arange(1.0, 26.0).reshape(1, 5, 5, 1)
    out = random_zoom(x, np.random.default_rng(0), 0.0, width_factor=(1.0, 1.0), fill_mode="nearest")
    np.testing.assert_array_equal(out, x[:, :, ZOOM_OUT_2X_SOURCES["nearest"]])


@pytest.mark.torch
@pytest.mark.parametrize("fill_mode, padding_mode", [("constant", "zeros"), ("nearest", "border")])
def test_bilinear_zoom_matches_torch_grid_sample(torch, fill_mode, padding_mode):
    # grid_sample(align_corners=True) reads pixel centres as we do; its "zeros" and "border" paddings
    # are our constant-0 and nearest fills.
    x = np.random.default_rng(0).random((6, 7, 9, 2))
    out = random_zoom(x, np.random.default_rng(4), 0.4, width_factor=(-0.3, 0.5), fill_mode=fill_mode)
    draw = np.random.default_rng(4)
    zoom_y, zoom_x = 1 + draw.uniform(-0.4, 0.4, 6), 1 + draw.uniform(-0.3, 0.5, 6)
    cy, cx = 3.0, 4.0
    src_y = cy + zoom_y[:, None, None] * (np.arange(7) - cy)[None, :, None] + 0 * np.arange(9)
    src_x = cx + zoom_x[:, None, None] * (np.arange(9) - cx)[None, None, :] + 0 * np.arange(7)[:, None]
    grid = np.stack([2 * src_x / 8 - 1, 2 * src_y / 6 - 1], axis=-1)
    theirs = torch.nn.functional.grid_sample(
        torch.tensor(x.transpose(0, 3, 1, 2)),
        torch.tensor(grid),
        mode="bilinear",
        padding_mode=padding_mode,
        align_corners=True,
    )
    np.testing.assert_allclose(out, theirs.numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "nearest", "constant"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_separable_sampling_equals_the_four_neighbour_sum(fill_mode, interpolation):
    from npconv.data.resample import sample, sample_axes

    rng = np.random.default_rng(0)
    x = rng.random((3, 6, 7, 2))
    src_y = rng.uniform(-9, 14, (3, 6))  # far outside: folded more than once
    src_x = rng.uniform(-9, 14, (3, 7))
    full = sample(
        x,
        np.broadcast_to(src_y[:, :, None], (3, 6, 7)),
        np.broadcast_to(src_x[:, None, :], (3, 6, 7)),
        interpolation,
        fill_mode,
        fill_value=0.7,
    )
    np.testing.assert_allclose(
        sample_axes(x, src_y, src_x, interpolation, fill_mode, fill_value=0.7), full, rtol=1e-12, atol=1e-12
    )


def test_zoom_bad_arguments(batch):
    with pytest.raises(ValueError, match="height_factor: expected bounds of at least -1"):
        random_zoom(batch, np.random.default_rng(0), (-1.5, 0.0))
    with pytest.raises(ValueError, match="fill_mode: expected one of"):
        random_zoom(batch, np.random.default_rng(0), 0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="interpolation"):
        random_zoom(batch, np.random.default_rng(0), 0.1, interpolation="cubic")


# ----- contrast -----


def test_contrast_scales_about_each_channel_mean(batch):
    out = random_contrast(batch.astype(np.float64), np.random.default_rng(1), 0.5)
    x = batch.astype(np.float64)
    mean = x.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(out.mean(axis=(1, 2), keepdims=True), mean, rtol=1e-12)
    scale = (out - mean) / (x - mean)  # one multiplier per image, all channels
    np.testing.assert_allclose(scale, scale[:, :1, :1, :1] * np.ones_like(scale), rtol=1e-9)
    assert np.all((scale[:, 0, 0, 0] >= 0.5) & (scale[:, 0, 0, 0] <= 1.5))


def test_contrast_pair_range_and_clipping(batch):
    out = random_contrast(batch, np.random.default_rng(2), (0.0, 2.0), value_range=(0.0, 1.0))
    assert out.min() >= 0 and out.max() <= 1
    spread = lambda a: a.std(axis=(1, 2))
    assert np.all(spread(random_contrast(batch, np.random.default_rng(2), (0.0, 2.0))) >= spread(batch) - 1e-6)


@pytest.mark.parametrize("factor", [-0.1, 1.5, (1.2, 0.0), (0.1, -1.0), True])
def test_contrast_bad_factor(batch, factor):
    with pytest.raises(ValueError, match="factor: expected a number in"):
        random_contrast(batch, np.random.default_rng(0), factor)
