"""Averaged models: :func:`npconv.apps.ensemble.average_models` and ``npconv train --ensemble N``."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import npconv
from npconv import callbacks as C
from npconv.apps import training
from npconv.apps.ensemble import average_models, members_of
from npconv.apps.recipes import Recipe
from npconv.apps.transfer import Pretrained
from npconv.cli import main
from npconv.data import Dataset


def _trained(arch: str, n_classes: int, seed: int, shape=(16, 16, 3)):
    """A model of ``arch`` initialised from ``seed``, with non-trivial batch-norm statistics."""
    npconv.utils.set_random_seed(seed)
    model = training.build(arch, shape, [str(k) for k in range(n_classes)], Recipe())
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, npconv.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    gamma * rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0, 0.2, beta.shape),
                    rng.normal(0, 0.2, mean.shape),
                    rng.uniform(0.5, 2.0, variance.shape),
                ]
            )
    return model


def _logits(model, x):
    """The model's output before its final sigmoid or softmax."""
    return model._forward(x.astype(np.float32), False, logits=True)


@pytest.mark.parametrize("arch, n_classes", [("smallres", 6), ("smallres", 2), ("tiny", 3)])
def test_the_average_applies_the_activation_to_the_mean_logit(arch, n_classes):
    members = [_trained(arch, n_classes, seed) for seed in range(3)]
    x = np.random.default_rng(9).random((5, 16, 16, 3)).astype(np.float32)
    before = [m.get_weights() for m in members]
    model = average_models(members)
    z = np.mean([_logits(m, x) for m in members], axis=0)
    z = z - z.max(axis=1, keepdims=True) if n_classes > 2 else z
    expected = 1 / (1 + np.exp(-z)) if n_classes == 2 else np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)
    for member, weights in zip(members, before):  # the members are left as they were
        for a, b in zip(member.get_weights(), weights):
            np.testing.assert_array_equal(a, b)
    names = [layer.name for layer in model.layers]
    assert names[0] == "image" and names[-2:] == ["average", "output"]
    assert {n.split("_")[0] for n in names[1:-2]} == {"m1", "m2", "m3"}
    assert model.count_params() == 3 * members[0].count_params()


def test_average_models_refuses_what_it_cannot_average():
    with pytest.raises(ValueError, match="at least 2 models"):
        average_models([_trained("tiny", 2, 0)])
    with pytest.raises(ValueError, match="same input and output shapes"):
        average_models([_trained("tiny", 2, 0), _trained("tiny", 3, 1)])


def _data(n=24, shape=(12, 12, 3)):
    rng = np.random.default_rng(3)
    y = np.arange(n) % 2
    x = (rng.random((n,) + shape) * 80 + 120 * y[:, None, None, None]).astype(np.uint8)
    return Dataset(x, y, ["not_smiling", "smiling"], "test")


def test_train_with_an_ensemble_averages_members_of_their_own_seeds(tmp_path):
    data = _data()
    recipe = Recipe(epochs=2, batch_size=8, ensemble=3)
    result = training.train(data, recipe, "tiny", test=data, seed=5, verbose=0)
    model = result.model
    info = model.metadata["ensemble"]
    # seeds 3 * 5 + k: runs of different --seed share no model
    assert members_of(model) == 3 and info["seeds"] == [15, 16, 17] and len(info["held_out_accuracy"]) == 3
    # Each member is the model a single training of that seed makes.
    alone = training.train(data, Recipe(epochs=2, batch_size=8), "tiny", test=data, seed=16, verbose=0)
    for layer in alone.model.layers[1:]:  # all but the input
        for a, b in zip(layer.get_weights(), model.get_layer("m2_" + layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert info["held_out_accuracy"][1] == alone.evaluation["accuracy"]
    assert len(result.history["loss"]) == 2  # the members' mean per epoch
    np.testing.assert_allclose(
        result.history["loss"][0],
        np.mean(
            [
                training.train(data, Recipe(epochs=2, batch_size=8), "tiny", seed=s, verbose=0).history["loss"][0]
                for s in (15, 16, 17)
            ]
        ),
        rtol=1e-6,
    )
    path = tmp_path / "ensemble.npz"
    model.save(path)
    loaded = npconv.load_model(path)
    x = training.to_float(data.x)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert members_of(loaded) == 3
    loaded.fit(x, data.y, epochs=1, verbose=0)  # the average is an ordinary model: it trains on


def test_ctrl_c_during_a_later_member_keeps_the_members_trained_to_the_end():
    starts = []

    class InterruptSecondModel(C.Callback):
        def on_train_begin(self, logs=None):
            starts.append(self.model)

        def on_batch_end(self, batch, logs=None):
            if len(starts) == 2:
                raise KeyboardInterrupt

    result = training.train(
        _data(),
        Recipe(epochs=2, batch_size=8, ensemble=3),
        "tiny",
        seed=0,
        verbose=0,
        callbacks=[InterruptSecondModel()],
    )
    assert result.interrupted and result.model is starts[0] and members_of(result.model) == 1


def _faces(root, n=16):
    data = _data(n)
    for k, name in enumerate(data.class_names):
        (root / name).mkdir(parents=True)
        for i in np.flatnonzero(data.y == k):
            Image.fromarray(data.x[i]).save(root / name / f"{i}.png")
    return root


def test_cli_ensemble_prints_each_model(tmp_path, capsys):
    faces = _faces(tmp_path / "faces")
    out = tmp_path / "avg.npz"
    assert (
        main(
            [
                "train",
                str(faces),
                "--arch",
                "tiny",
                "--image-size",
                "12",
                "--epochs",
                "1",
                "--ensemble",
                "2",
                "--val-split",
                "0.25",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "2 models averaged" in printed and "(the 2 models alone: " in printed
    assert (tmp_path / "avg_report" / "history.png").is_file()  # the members' mean curves, titled so
    assert members_of(npconv.load_model(out)) == 2
    assert main(["train", str(faces), "--ensemble", "0"]) == 2
    assert "--ensemble: expected a positive integer" in capsys.readouterr().err


def test_init_from_an_average_fine_tunes_each_member_from_its_own(tmp_path, capsys):
    faces = _faces(tmp_path / "faces")
    pretrained = tmp_path / "avg.npz"
    assert (
        main(
            [
                "train",
                str(faces),
                "--arch",
                "smallres",
                "--image-size",
                "12",
                "--epochs",
                "1",
                "--ensemble",
                "2",
                "--out",
                str(pretrained),
                "--quiet",
                "--no-report",
            ]
        )
        == 0
    )
    tuned = tmp_path / "tuned.npz"
    # one epoch of the output layers alone: every other weight stays its own member's
    assert (
        main(
            [
                "train",
                str(faces),
                "--init",
                str(pretrained),
                "--epochs",
                "1",
                "--frozen-epochs",
                "1",
                "--out",
                str(tuned),
                "--quiet",
                "--no-report",
            ]
        )
        == 0
    )
    before, after = npconv.load_model(pretrained), npconv.load_model(tuned)
    assert members_of(after) == 2 and after.metadata["initialised_from"]["member"] == 1
    for k in (1, 2):
        for name in ("stem_conv", "stage1_a_bn", "stage3_b_conv"):
            for a, b in zip(
                before.get_layer(f"m{k}_{name}").get_weights(), after.get_layer(f"m{k}_{name}").get_weights()
            ):
                np.testing.assert_array_equal(a, b)
    assert not np.array_equal(
        before.get_layer("m1_stem_conv").get_weights()[0], before.get_layer("m2_stem_conv").get_weights()[0]
    )
    capsys.readouterr()
    assert main(["train", str(faces), "--init", str(pretrained), "--ensemble", "3", "--out", str(tuned)]) != 0
    assert "averages 2 models" in capsys.readouterr().err
    with pytest.raises(ValueError, match="member"):
        Pretrained.load(pretrained).initialise(after, member=2)
