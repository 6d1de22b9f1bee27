"""Transfer learning: ``npconv train DATA --init MODEL`` and :mod:`npconv.apps.transfer`.

A model starts from a saved one: the layers both share take the saved weights, the output layer is
kept when the classes are the same and fresh otherwise, and the data is fed at the saved model's
input size and colour mode.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from PIL import Image

import npconv
from npconv.apps import get_arch
from npconv.apps.transfer import Pretrained, copy_matching_weights, same_classes
from npconv.cli import main

QUICK = ["--epochs", "1", "--quiet", "--no-report"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _faces_folder(root, classes=("not_smiling", "smiling"), n=8, size=24, channels=3):
    """Image folders of ``n`` small photos per class (class k is brighter), one sub-folder per class."""
    rng = np.random.default_rng(1)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            shape = (size, size, channels) if channels == 3 else (size, size)
            Image.fromarray((rng.random(shape) * 80 + 100 * k).astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def _happy_h5(path, n=20):
    """A file in the layout of the course's ``test_happy.h5`` (classes 0/1, 64x64 RGB)."""
    rng = np.random.default_rng(2)
    y = np.arange(n) % 2
    x = (rng.random((n, 64, 64, 3)) * 80 + 100 * y[:, None, None, None]).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f["test_set_x"], f["test_set_y"], f["list_classes"] = x, y, np.array([0, 1])
    return path


@pytest.fixture(scope="module")
def smile_model(tmp_path_factory):
    """A tiny 16 px grayscale smile model trained on a folder of faces (classes not smiling/smiling)."""
    root = tmp_path_factory.mktemp("pretrained")
    faces = _faces_folder(root / "smiles", channels=1)  # named so: the smiles recipe, grayscale
    out = root / "smiles.npz"
    assert (
        main(
            [
                "train",
                str(faces),
                "--out",
                str(out),
                "--arch",
                "smallres",
                "--image-size",
                "16",
                "--epochs",
                "2",
                "--quiet",
                "--no-report",
            ]
        )
        == 0
    )
    return out


def test_same_classes_matches_by_name_and_order():
    assert same_classes(["not_smiling", "smiling"], ["not smiling", "smiling"])
    assert same_classes(["not smiling", "smiling"], ["0", "1"])  # a course file's numbered classes
    assert not same_classes(["not smiling", "smiling"], ["smiling", "not smiling"])
    assert not same_classes(["a", "b"], ["a", "b", "c"])


def test_copy_matching_weights_keeps_the_head_only_for_the_same_classes():
    source = get_arch("smallres", (16, 16, 1), 2, widths=(4, 8))
    same = get_arch("smallres", (16, 16, 1), 2, widths=(4, 8))
    other = get_arch("smallres", (16, 16, 1), 5, widths=(4, 8))
    copied = copy_matching_weights(source, same, keep_head=True)
    assert copied == [layer.name for layer in same.layers if layer.weights]
    for a, b in zip(source.get_weights(), same.get_weights()):
        np.testing.assert_array_equal(a, b)
    fresh_head = other.layers[-1].get_weights()
    copied = copy_matching_weights(source, other, keep_head=False)
    assert "predictions" not in copied and len(copied) == len(same.layers[:-1]) - sum(
        1 for layer in same.layers[:-1] if not layer.weights
    )
    for a, b in zip(fresh_head, other.layers[-1].get_weights()):
        np.testing.assert_array_equal(a, b)  # untouched
    np.testing.assert_array_equal(
        other.get_layer("stem_conv").get_weights()[0], source.get_layer("stem_conv").get_weights()[0]
    )


def test_copy_skips_layers_whose_shapes_differ():
    source = get_arch("smallres", (16, 16, 1), 2, widths=(4, 8))
    wider = get_arch("smallres", (16, 16, 1), 2, widths=(4, 16))
    copied = copy_matching_weights(source, wider, keep_head=True)
    assert "stem_conv" in copied and "stage2_a_conv" not in copied and "predictions" not in copied


def test_init_fine_tunes_at_the_pretrained_input_and_records_it(smile_model, tmp_path, capsys):
    happy = _happy_h5(tmp_path / "happy" / "test_happy.h5")
    out = tmp_path / "happy.npz"
    code, text, err = run(capsys, "train", happy, "--init", smile_model, "--out", out, "--epochs", "1", "--no-report")
    assert code == 0, err
    assert "starting from" in text and str(smile_model) in text
    model = npconv.load_model(out)
    assert model.input_shape[-3:] == (16, 16, 1)  # the pretrained model's size and colour mode
    origin = model.metadata["initialised_from"]
    assert origin["path"] == str(smile_model) and origin["layers_copied"] == origin["layers_with_weights"]
    assert model.metadata["recipe"]["batch_size"] == 16  # the fine-tuning recipe
    # Same classes (not smiling, smiling): the output layer started from the smile model's.
    pretrained = npconv.load_model(smile_model)
    assert model.metadata["class_names"] == ["not smiling", "smiling"]
    # The fine-tuned model reloads and keeps training from where it stopped.
    again = npconv.load_model(out)
    x = np.random.default_rng(0).random((4, 16, 16, 1)).astype(np.float32)
    np.testing.assert_allclose(again.predict(x), model.predict(x), rtol=1e-6)
    again.fit(x, np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    assert pretrained.count_params() == model.count_params()


def test_init_with_other_classes_gets_a_fresh_head(smile_model, tmp_path, capsys):
    pets = _faces_folder(tmp_path / "pets", classes=("cats", "dogs", "fish"), n=4)
    out = tmp_path / "pets.npz"
    code, _, err = run(capsys, "train", pets, "--init", smile_model, "--out", out, *QUICK)
    assert code == 0, err
    model = npconv.load_model(out)
    assert model.output_shape[-1] == 3
    origin = model.metadata["initialised_from"]
    assert origin["layers_copied"] == origin["layers_with_weights"] - 1  # all but the output layer


def test_init_refuses_another_arch_a_size_and_a_missing_file(smile_model, tmp_path, capsys):
    faces = _faces_folder(tmp_path / "faces")
    code, _, err = run(
        capsys, "train", faces, "--init", smile_model, "--arch", "tiny", "--out", tmp_path / "m.npz", *QUICK
    )
    assert code == 1 and "keeps its arch (smallres)" in err
    code, _, err = run(
        capsys, "train", faces, "--init", smile_model, "--image-size", "32", "--out", tmp_path / "m.npz", *QUICK
    )
    assert code == 1 and "Leave out --image-size" in err
    code, _, err = run(capsys, "train", faces, "--init", tmp_path / "nope.npz", "--out", tmp_path / "m.npz", *QUICK)
    assert code == 1 and "nope.npz" in err and "npconv train smiles" in err
    assert not (tmp_path / "m.npz").exists()


def test_pretrained_adapt_takes_size_colour_and_arch(smile_model):
    from npconv.apps.recipes import FINE_TUNE, recipe_for

    recipe = Pretrained.load(smile_model).adapt(recipe_for(FINE_TUNE))
    assert (recipe.image_size, recipe.color_mode, recipe.arch) == (16, "grayscale", "smallres")


def test_train_happy_without_the_course_train_file_says_what_works(tmp_path, capsys):
    _happy_h5(tmp_path / "data" / "happy" / "test_happy.h5")
    code, _, err = run(capsys, "train", "happy", "--data-dir", tmp_path / "data", "--out", tmp_path / "m.npz")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "train_happy.h5" in err and "--init runs/smiles.npz --folds 5" in err
    assert "npconv train smiles --out runs/smiles.npz" in err


def test_evaluate_warns_when_the_classes_differ(tmp_path, capsys):
    digits = _faces_folder(tmp_path / "digits", classes=("0", "1", "2"), n=6)
    model = tmp_path / "digits.npz"
    assert main(["train", str(digits), "--out", str(model), "--arch", "tiny", "--image-size", "16", *QUICK]) == 0
    two = _faces_folder(tmp_path / "two", classes=("0", "1"), n=3)
    code, out, err = run(capsys, "evaluate", model, two)
    assert code == 0 and "accuracy" in out
    assert "warning" in err and "2 classes" in err and "the model 3" in err


def test_phases_train_the_head_alone_first_when_fine_tuning():
    from npconv.apps.recipes import Recipe
    from npconv.apps.training import phases

    recipe = Recipe(epochs=10, frozen_epochs=3)
    assert phases(recipe, fine_tuning=True) == [(3, True), (7, False)]
    assert phases(recipe, fine_tuning=False) == [(10, False)]
    assert phases(Recipe(epochs=2, frozen_epochs=5), fine_tuning=True) == [(2, True)]


def test_head_only_phase_leaves_the_pretrained_layers_as_they_were(smile_model, tmp_path):
    from npconv.apps import datasets, training
    from npconv.apps.recipes import FINE_TUNE, recipe_for

    init = Pretrained.load(smile_model)
    recipe = init.adapt(recipe_for(FINE_TUNE)).replace(epochs=1, frozen_epochs=1)
    data = datasets.load(str(_happy_h5(tmp_path / "happy" / "test_happy.h5")), 16, "grayscale")
    result = training.train(data, recipe, init.arch, verbose=0, init=init)
    before = {layer.name: layer.get_weights() for layer in init.model.layers}
    for layer in result.model.layers[:-1]:  # weights and batch-norm statistics unchanged
        for old, new in zip(before[layer.name], layer.get_weights()):
            np.testing.assert_array_equal(old, new)
    head_old, head_new = before["predictions"][0], result.model.layers[-1].get_weights()[0]
    assert not np.array_equal(head_old, head_new)  # the head learned


def test_frozen_epochs_need_init(tmp_path, capsys):
    faces = _faces_folder(tmp_path / "faces")
    code, _, err = run(capsys, "train", faces, "--frozen-epochs", "2", "--out", tmp_path / "m.npz", *QUICK)
    assert code == 1 and "--init MODEL" in err and not (tmp_path / "m.npz").exists()


def test_frozen_epochs_from_the_command_line(smile_model, tmp_path, capsys):
    happy = _happy_h5(tmp_path / "happy" / "test_happy.h5")
    code, text, err = run(
        capsys,
        "train",
        happy,
        "--init",
        smile_model,
        "--frozen-epochs",
        "1",
        "--epochs",
        "2",
        "--out",
        tmp_path / "m.npz",
        "--no-report",
    )
    assert code == 0, err
    assert "1 epoch(s) with only the output layer training" in text
    assert npconv.load_model(tmp_path / "m.npz").metadata["recipe"]["frozen_epochs"] == 1
