"""Test-time augmentation: the views, the averaging, and the rule that flips need a flip-trained model."""

from __future__ import annotations

import numpy as np
import pytest

import npconv
from npconv.apps import training, tta
from npconv.apps.recipes import Recipe, recipe_for
from npconv.data import Dataset


def _model(flips: bool, n_classes: int = 3, shape=(8, 8, 3)):
    npconv.utils.set_random_seed(0)
    model = training.build("tiny", shape, [str(k) for k in range(n_classes)], Recipe())
    training.compile_for(model, 1e-3, 10)
    model.metadata["trained_with_flips"] = flips
    return model


def test_views_are_the_image_its_mirror_and_zero_filled_shifts():
    x = np.random.default_rng(0).random((2, 20, 40, 1))
    image, mirror, up, down, left, right = tta.views(x, "flip+shift")
    assert image is x
    np.testing.assert_array_equal(mirror, x[:, :, ::-1])
    # SHIFT = 0.05: 1 pixel of 20 rows, 2 of 40 columns.
    np.testing.assert_array_equal(down[:, 1:], x[:, :-1])
    np.testing.assert_array_equal(down[:, 0], 0)
    np.testing.assert_array_equal(up[:, :-1], x[:, 1:])
    np.testing.assert_array_equal(right[:, :, 2:], x[:, :, :-2])
    np.testing.assert_array_equal(left[:, :, :-2], x[:, :, 2:])
    np.testing.assert_array_equal(left[:, :, -2:], 0)
    assert len(tta.views(x, "flip")) == 2 and len(tta.views(x, "shift")) == 5


def test_shifted_moves_down_and_right_by_the_given_pixels():
    x = np.arange(1.0, 17.0).reshape(1, 4, 4, 1)
    expected = np.zeros_like(x)
    expected[0, 1:, :2] = x[0, :3, 2:]
    np.testing.assert_array_equal(tta.shifted(x, 1, -2), expected)


def test_predict_averages_the_outputs_of_the_views():
    model = _model(flips=True)
    x = np.random.default_rng(1).random((5, 8, 8, 3)).astype(np.float32)
    averaged = tta.predict(model, x, "flip")
    np.testing.assert_allclose(averaged, (model.predict(x) + model.predict(x[:, :, ::-1])) / 2, rtol=1e-6)
    assert averaged.dtype == np.float32
    np.testing.assert_allclose(averaged.sum(axis=1), 1, rtol=1e-6)  # still softmax rows
    np.testing.assert_array_equal(tta.predict(model, x, None), model.predict(x))


def test_flips_are_refused_for_a_model_trained_without_them():
    model = _model(flips=False)
    x = np.zeros((1, 8, 8, 3), np.float32)
    for mode in ("flip", "flip+shift"):
        with pytest.raises(ValueError, match="trained without them.*use tta='shift'"):
            tta.predict(model, x, mode)
    assert tta.predict(model, x, "shift").shape == (1, 3)


@pytest.mark.parametrize("off", [None, "", "none", "None", False])
def test_check_tta_reads_off_values_as_none(off):
    assert tta.check_tta(off, {}) is None


def test_check_tta_lists_the_modes():
    with pytest.raises(ValueError, match="'flip', 'shift', 'flip\\+shift'"):
        tta.check_tta("rotate", {"trained_with_flips": True})
    assert tta.check_tta("FLIP", {"trained_with_flips": True}) == "flip"


def test_older_models_answer_from_their_recipe():
    assert tta.trained_with_flips({"app": "smallres", "recipe": {"flip": True}})
    assert not tta.trained_with_flips({"app": "smallres", "recipe": {"flip": False}})
    assert not tta.trained_with_flips({"app": "happy", "recipe": {"flip": True}})  # no flip layer
    assert not tta.trained_with_flips({})


def test_build_records_whether_flips_were_trained():
    assert training.build("smallres", (16, 16, 3), ["a", "b"], Recipe(flip=True)).metadata["trained_with_flips"]
    assert not training.build("smallres", (16, 16, 3), list("abcdef"), Recipe(flip=False)).metadata[
        "trained_with_flips"
    ]
    assert training.build("smallres", (16, 16, 3), list("abcdef"), recipe_for("signs")).metadata["trained_with_flips"]
    assert not training.build("tiny", (16, 16, 3), ["a", "b"], Recipe(flip=True)).metadata["trained_with_flips"]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_evaluate_with_tta_scores_the_averaged_probabilities(n_classes):
    model = _model(flips=True, n_classes=n_classes)
    rng = np.random.default_rng(2)
    x = (rng.random((12, 8, 8, 3)) * 255).astype(np.uint8)
    y = rng.integers(0, n_classes, 12)
    result = training.evaluate(model, x, y, tta="flip+shift")
    outputs = tta.predict(model, x.astype(np.float32) / 255, "flip+shift")
    probs = np.concatenate([1 - outputs, outputs], axis=1) if n_classes == 2 else outputs
    assert result["tta"] == "flip+shift"
    np.testing.assert_allclose(result["probs"], probs, rtol=1e-6)
    assert result["accuracy"] == np.mean(probs.argmax(axis=1) == y)
    assert result["loss"] == pytest.approx(model.loss(y, outputs))
    assert training.evaluate(model, x, y)["tta"] is None


def test_train_refuses_flip_tta_before_training():
    data = Dataset(np.zeros((4, 8, 8, 3), np.uint8), np.array([0, 1, 0, 1]), ["a", "b"])
    with pytest.raises(ValueError, match="tta 'flip'"):
        training.train(data, Recipe(epochs=1, tta="flip"), "tiny", test=data, verbose=0)
