"""The layers that train a model on a learner's kind of photo (issue 30): grey copies, white balance,
blur, noise, and per-image standardisation. Each augmentation keeps shape and dtype, is seeded,
draws what its docstring says, and does nothing at inference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from npconv import layers as L
from npconv.apps import get_arch
from npconv.data import augment
from npconv.data.corruptions import CORRUPTIONS, background_colour
from npconv.functional.standardize import standardize_backward, standardize_forward
from npconv.gradcheck import gradcheck

KERNELS = [
    (augment.random_grayscale, {"probability": 0.5}),
    (augment.random_channel_gain, {"factor": 0.3, "brightness": 0.4}),
    (augment.random_gaussian_blur, {"max_sigma": 1.5}),
    (augment.gaussian_noise, {"stddev": 0.1}),
    (augment.random_reframe, {"min_scale": 0.5, "max_degrees": 25, "probability": 0.7, "value_range": (0, 1)}),
]


@pytest.fixture
def batch():
    return np.random.default_rng(0).random((40, 9, 7, 3)).astype(np.float32)


@pytest.mark.parametrize("kernel, kwargs", KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_kernels_keep_shape_and_dtype_are_seeded_and_leave_the_input_alone(batch, kernel, kwargs, dtype):
    x = (batch * 255).astype(dtype) if dtype == np.uint8 else batch.astype(dtype)
    before = x.copy()
    a, b = kernel(x, np.random.default_rng(5), **kwargs), kernel(x, np.random.default_rng(5), **kwargs)
    assert a.shape == x.shape and a.dtype == x.dtype and a is not x
    assert np.array_equal(a, b) and np.array_equal(x, before)


def test_grayscale_turns_about_the_asked_share_grey_with_pillows_luma(batch):
    out = augment.random_grayscale(batch, np.random.default_rng(1), probability=0.5)
    grey = np.array([np.allclose(o[..., 0], o[..., 1]) and np.allclose(o[..., 1], o[..., 2]) for o in out])
    assert 10 <= grey.sum() <= 30  # 40 draws of probability 1/2
    luma = batch[grey] @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(out[grey][..., 0], luma, rtol=1e-6)
    np.testing.assert_array_equal(out[~grey], batch[~grey])
    assert np.array_equal(augment.random_grayscale(batch, np.random.default_rng(1), 0.0), batch)


def test_channel_gains_are_one_per_channel_and_image_within_their_range(batch):
    out = augment.random_channel_gain(batch, np.random.default_rng(2), factor=0.2, brightness=0.3)
    gain = (out / batch).reshape(len(batch), -1, 3)
    np.testing.assert_allclose(gain, np.broadcast_to(gain[:, :1], gain.shape), rtol=1e-5)  # one per channel
    assert gain.min() >= 0.8 * 0.7 - 1e-6 and gain.max() <= 1.2 * 1.3 + 1e-6
    assert gain[:, 0].std(axis=0).min() > 0.05  # the draws vary
    clipped = augment.random_channel_gain(batch, np.random.default_rng(2), 0.2, 0.3, value_range=(0, 1))
    np.testing.assert_array_equal(clipped, np.clip(out, 0, 1))


def test_blur_keeps_a_flat_image_and_the_mean_and_smooths_an_edge():
    flat = np.full((3, 8, 8, 1), 0.25)
    np.testing.assert_allclose(augment.random_gaussian_blur(flat, np.random.default_rng(0), 2.0), flat)
    edge = np.zeros((50, 16, 16, 1))
    edge[:, :, 8:] = 1
    out = augment.random_gaussian_blur(edge, np.random.default_rng(0), 1.5)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), edge.mean(axis=(1, 2, 3)), atol=1e-12)
    steepest = np.abs(np.diff(out[:, 8, :, 0], axis=1)).max(axis=1)
    assert steepest.max() <= 1 and steepest.min() < 0.5  # a sigma near 1.5 spreads the step


def test_noise_has_zero_mean_and_a_spread_of_at_most_stddev():
    x = np.full((200, 16, 16, 1), 0.5)
    out = augment.gaussian_noise(x, np.random.default_rng(3), stddev=0.1) - x
    spread = out.reshape(200, -1).std(axis=1)
    assert abs(out.mean()) < 1e-3 and spread.max() < 0.11 and 0.04 < spread.mean() < 0.06  # U(0, 0.1)


@pytest.mark.parametrize(
    "layer, kernel, kwargs",
    [
        (lambda: L.RandomGrayscale(0.5, seed=3), augment.random_grayscale, {"probability": 0.5}),
        (
            lambda: L.RandomWhiteBalance(0.2, 0.3, value_range=(0, 1), seed=3),
            augment.random_channel_gain,
            {"factor": 0.2, "brightness": 0.3, "value_range": (0.0, 1.0)},
        ),
        (lambda: L.RandomGaussianBlur(1.2, seed=3), augment.random_gaussian_blur, {"max_sigma": 1.2}),
        (
            lambda: L.GaussianNoise(0.1, value_range=(0, 1), seed=3),
            augment.gaussian_noise,
            {"stddev": 0.1, "value_range": (0.0, 1.0)},
        ),
    ],
)
def test_layers_run_their_kernel_in_training_nothing_at_inference_and_round_trip(batch, layer, kernel, kwargs):
    out = layer()(batch, training=True)
    np.testing.assert_array_equal(out, kernel(batch, np.random.default_rng(3), **kwargs))
    assert out.dtype == batch.dtype and not np.array_equal(out, batch)
    np.testing.assert_array_equal(layer()(batch), batch)
    config = json.loads(json.dumps(layer().get_config()))
    assert type(layer()).from_config(config).get_config() == layer().get_config()


@pytest.mark.parametrize(
    "bad",
    [
        lambda: L.RandomGrayscale(1.5),
        lambda: L.RandomGaussianBlur(4),
        lambda: L.GaussianNoise(-1),
        lambda: L.RandomWhiteBalance(2),
    ],
)
def test_out_of_range_factors_are_named_errors(bad):
    with pytest.raises(ValueError):
        bad()


# ----------------------------------------------------------------------------- standardisation


def test_standardisation_gives_mean_0_std_1_and_ignores_exposure_and_contrast(batch, tier):
    y, _ = standardize_forward(batch)
    np.testing.assert_allclose(y.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(1, 2, 3)), 1, rtol=1e-4)
    np.testing.assert_allclose(standardize_forward(0.45 * batch + 0.2)[0], y, atol=1e-4)
    blank, _ = standardize_forward(np.full((2, 4, 4, 3), 0.7, np.float32))
    assert np.all(np.isfinite(blank)) and np.allclose(blank, 0)


def test_standardisation_gradient_matches_numerical_and_pytorch(torch, tier):
    x = np.random.default_rng(4).standard_normal((3, 4, 5, 2)) * 2 + 1
    x[2] = 0.5 + 1e-3 * x[2]  # a near-blank image: the floor is active
    gradcheck(standardize_forward, standardize_backward, {"x": x})
    dout = np.random.default_rng(5).standard_normal(x.shape)
    xt = torch.tensor(x[:2], requires_grad=True)
    mean = xt.mean(dim=(1, 2, 3), keepdim=True)
    yt = (xt - mean) / ((xt - mean).pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt())
    (yt * torch.tensor(dout[:2])).sum().backward()
    y, cache = standardize_forward(x)
    np.testing.assert_allclose(y[:2], yt.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(standardize_backward(dout, cache)[:2], xt.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_smallres_takes_the_photo_options_and_trains_a_step():
    batch = np.random.default_rng(0).random((40, 16, 16, 3)).astype(np.float32)
    model = get_arch(
        "smallres",
        (16, 16, 3),
        3,
        widths=(4, 4, 4),
        grayscale=0.3,
        white_balance=0.2,
        brightness=0.3,
        blur=1.0,
        noise=0.05,
        zoom_out=0.4,
        rotation=20,
        standardize=True,
    )
    names = [layer.name for layer in model.layers]
    assert {
        "augment_grayscale",
        "augment_white_balance",
        "augment_blur",
        "augment_noise",
        "augment_reframe",
        "standardize",
    } <= set(names)
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(batch, np.arange(40) % 3, epochs=1, batch_size=20, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    plain = get_arch("smallres", (16, 16, 3), 3, widths=(4, 4, 4))
    assert not any(
        n.startswith("augment_") and n not in ("augment_flip", "augment_shift")
        for n in (layer.name for layer in plain.layers)
    )


# ----------------------------------------------------------------------------- the benchmark's changes


def test_corruptions_keep_shape_and_dtype_and_change_the_pictures():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    for name, change in CORRUPTIONS.items():
        out = change(x)
        assert out.shape == x.shape and out.dtype == np.uint8, name
        assert not np.array_equal(out, x), name
        np.testing.assert_array_equal(change(x), out, err_msg=name)  # deterministic
    grey = CORRUPTIONS["grayscale"](x)
    assert np.array_equal(grey[..., 0], grey[..., 2])
    assert np.array_equal(CORRUPTIONS["mirrored"](x), x[:, :, ::-1])


def test_zoom_out_centres_the_shrunk_picture_on_its_background_colour():
    x = np.full((1, 20, 20, 3), 200, np.uint8)
    x[0, 5:15, 5:15] = 10  # a dark square on a light wall
    out = CORRUPTIONS["zoomed out"](x)[0]
    assert background_colour(x[0]) == (200, 200, 200)
    assert (out[:3] == 200).all() and (out[:, :3] == 200).all()
    assert out[10, 10, 0] == 10 and (out < 100).sum() < (x[0] < 100).sum()


def test_reframe_shrinks_about_half_the_images_onto_their_background():
    x = np.full((40, 32, 32, 3), 0.8, np.float32)
    x[:, 8:24, 8:24] = 0.1  # a dark square on a light wall
    out = augment.random_reframe(x, np.random.default_rng(0), min_scale=0.5, max_degrees=20, probability=0.5)
    dark = (out[..., 0] < 0.45).reshape(40, -1).sum(axis=1)
    changed = dark < 16 * 16 - 10
    assert 10 <= changed.sum() <= 30 and np.array_equal(out[~changed], x[~changed])
    assert dark[changed].min() >= 0.5**2 * 16 * 16 * 0.7  # the square, smaller, still there
    np.testing.assert_allclose(out[changed][:, 0, 0], 0.8, atol=1 / 255)  # the wall around it
    layer = L.RandomReframe(0.5, degrees=20, probability=0.5, value_range=(0, 1), seed=3)
    np.testing.assert_array_equal(
        layer(x, training=True),
        augment.random_reframe(x, np.random.default_rng(3), min_scale=0.5, max_degrees=20, probability=0.5),
    )
    np.testing.assert_array_equal(layer(x), x)
