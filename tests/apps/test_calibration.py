"""Temperature scaling, the calibration error, and the verdict's checks, on numbers whose answer is
known (issue 30)."""

from __future__ import annotations

import numpy as np
import pytest

from npconv.apps import calibration as cal


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sampled(temperature_true: float, m: int = 4000, k: int = 4, seed: int = 0):
    """Logits ``z`` and labels drawn from ``softmax(z / T_true)``: the model's ``softmax(z)`` is
    miscalibrated by exactly ``T_true``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (m, k))
    truth = softmax(z / temperature_true)
    y = np.array([rng.choice(k, p=p) for p in truth])
    return softmax(z), y


@pytest.mark.parametrize("t_true", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_the_temperature_that_made_the_labels(t_true):
    probs, y = sampled(t_true)
    assert cal.fit_temperature(probs, y) == pytest.approx(t_true, rel=0.1)


def test_temperature_keeps_the_class_and_lowers_the_nll_and_ece_of_an_overconfident_model():
    probs, y = sampled(2.5)
    t = cal.fit_temperature(probs, y)
    calibrated = cal.with_temperature(probs, t)
    assert np.array_equal(calibrated.argmax(1), probs.argmax(1))
    np.testing.assert_allclose(calibrated.sum(1), 1)
    assert cal.negative_log_likelihood(calibrated, y) < cal.negative_log_likelihood(probs, y)
    assert cal.expected_calibration_error(calibrated, y) < 0.03 < cal.expected_calibration_error(probs, y)


def test_a_perfect_held_out_set_does_not_drive_the_temperature_to_its_bound():
    """With no mistake among m pictures, the fit asks for no certainty above about m / (m + 1)."""
    probs = softmax(np.array([[2.0, 0.0, 0.0]] * 50))  # right every time, 0.79 sure
    t = cal.fit_temperature(probs, np.zeros(50, int))
    assert 0.05 < t < 1 and cal.with_temperature(probs, t)[0, 0] == pytest.approx(50 / 51, abs=0.01)


def test_sigmoid_columns_scale_like_their_logit():
    z = np.array([-3.0, 0.5, 4.0])
    p = 1 / (1 + np.exp(-z))
    two = np.stack([1 - p, p], axis=1)
    np.testing.assert_allclose(cal.with_temperature(two, 2.0)[:, 1], 1 / (1 + np.exp(-z / 2)), rtol=1e-9)


def test_ece_by_hand():
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1, 0, 0])
    # bin of 0.95: accuracy 0.5, gap 0.45; bin of 0.6: accuracy 1, gap 0.4; each half the pictures
    assert cal.expected_calibration_error(probs, y) == pytest.approx(0.425)


def test_contrast_and_detail_tell_walls_and_noise_from_pictures():
    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(4, 32, 32, 3)), axis=1), axis=2)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    _, detail = cal.contrast_and_detail(smooth)
    wall_contrast, wall_detail = cal.contrast_and_detail(np.full((1, 32, 32, 3), 0.8))
    _, noise_detail = cal.contrast_and_detail(rng.random((1, 32, 32, 3)))
    assert wall_contrast[0] < 1e-9 and wall_detail[0] < 1e-9
    assert detail.max() < 0.4 and noise_detail[0] == pytest.approx(1.15, abs=0.05)
    _, dim_detail = cal.contrast_and_detail(0.4 * smooth + 0.1)
    np.testing.assert_allclose(dim_detail, detail)  # blind to exposure and contrast


def test_an_uncalibrated_model_gets_temperature_1_and_the_default_threshold():
    defaults = cal.calibration_of({})
    assert defaults["temperature"] == 1.0 and defaults["unsure_below"] == cal.DEFAULT_UNSURE_BELOW
    assert "features" not in defaults and "pictures" not in defaults
