"""The ``npconv`` command line, run in-process through ``main([...])`` on tiny data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import phone_photo, require
from PIL import Image

import npconv
from npconv.cli import main

QUICK = ["--epochs", "1", "--arch", "tiny", "--image-size", "16", "--quiet"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *words):
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("npconv: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained on the built-in synthetic faces (class names: not smiling, smiling)."""
    folder = tmp_path_factory.mktemp("trained")
    model = folder / "faces.npz"
    assert main(["train", "--out", str(model), *QUICK]) == 0
    return model


def _image_folder(root: Path, classes=("cats", "dogs"), n=6) -> Path:
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = (rng.random((20, 24, 3)) * 100 + 120 * k).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_train_on_the_builtin_set_writes_model_and_report(trained, capsys):
    report = trained.with_name("faces_report")
    for picture in ("samples", "history", "confusion_matrix", "misclassified", "filters", "feature_maps", "gradcam"):
        assert (report / f"{picture}.png").stat().st_size > 1000
    metrics = json.loads((report / "metrics.json").read_text())
    held_out = metrics["held_out"]
    model = npconv.load_model(trained)
    meta = model.metadata
    # 600 built-in faces, 15% held out; the figures agree with each other and with the model file.
    assert held_out["n"] == np.sum(held_out["confusion_matrix"]) == 90 and meta["trained"]["examples"] == 510
    assert held_out["correct"] == np.trace(held_out["confusion_matrix"])
    assert held_out["accuracy"] == held_out["correct"] / held_out["n"] == meta["trained"]["held_out_accuracy"]
    assert metrics["arch"] == "tiny"
    assert meta["class_names"] == ["not smiling", "smiling"]
    assert meta["input_shape"] == [16, 16, 3] and meta["value_scale"] == 255 and meta["app"] == "tiny"


def test_the_report_says_what_it_counts_and_shows_the_picture_it_maps(tmp_path, capsys, monkeypatch):
    from npconv import explain_plots, viz

    figures = {}

    def recorded(plot):
        def record(*args, **kwargs):
            figures[plot.__name__] = fig = plot(*args, **kwargs)
            return fig

        record.__name__ = plot.__name__
        return record

    for name in ("plot_confusion_matrix", "plot_misclassified", "plot_feature_maps", "plot_filters"):
        monkeypatch.setattr(viz, name, recorded(getattr(viz, name)))
    monkeypatch.setattr(explain_plots, "plot_right_and_wrong", recorded(explain_plots.plot_right_and_wrong))
    code, _, err = run(capsys, "train", "--out", tmp_path / "m.npz", *QUICK)
    assert code == 0, err
    text = {
        name: " ".join(a.get_text() for a in fig.findobj(lambda a: hasattr(a, "get_text")))
        for name, fig in figures.items()
    }
    assert "Confusion matrix of the 90 validation pictures" in text["plot_confusion_matrix"]
    assert "of the 90 validation pictures" in text["plot_misclassified"]
    assert "validation picture 0" in figures["plot_feature_maps"].axes[0].get_title()
    assert figures["plot_feature_maps"].axes[0].images[0].get_array().shape == (16, 16, 3)
    assert any("largest |weight|" in ax.get_ylabel() for ax in figures["plot_filters"].axes)
    assert "Grad-CAM on the 90 validation pictures: right / wrong" in text["plot_right_and_wrong"]
    shown = [ax for ax in figures["plot_right_and_wrong"].axes if ax.get_images()]
    assert len(shown) == 12 and shown[0].get_images()[0].get_array().shape == (16, 16, 3)  # 6 per class


def test_train_says_where_the_data_came_from(tmp_path, capsys):
    code, out, _ = run(capsys, "train", "--out", tmp_path / "m.npz", "--no-report", *QUICK[:-1], "--quiet")
    assert code == 0
    assert "builtin:smiles" in out and "NPCONV_DATA=" in out
    assert "validation accuracy" in out and "model saved to" in out
    assert not (tmp_path / "m_report").exists()


def test_train_creates_the_output_folder_and_refuses_a_folder_as_model(tmp_path, capsys):
    # the README's main job writes to runs/, which a fresh clone does not have
    code, out, _ = run(capsys, "train", "--out", tmp_path / "runs" / "m.npz", "--no-report", *QUICK)
    assert code == 0 and (tmp_path / "runs" / "m.npz").is_file()
    code, _, err = run(capsys, "train", "--out", tmp_path / "runs", *QUICK)
    assert_one_line_error(code, err, "--out", "folder", "model.npz")


def test_train_with_folds(tmp_path, capsys):
    code, out, _ = run(capsys, "train", "--out", tmp_path / "cv.npz", "--folds", "2", "--no-report", *QUICK)
    assert code == 0, out
    assert "2-fold cross-validation accuracy" in out and "±" in out
    cv = npconv.load_model(tmp_path / "cv.npz").metadata["cross_validation"]
    assert cv["k"] == 2 and len(cv["folds"]) == 2


def test_train_on_an_image_folder_then_evaluate_it(tmp_path, capsys):
    data = _image_folder(tmp_path / "pets")
    model = tmp_path / "pets.npz"
    code, out, err = run(capsys, "train", data, "--out", model, "--val-split", "0.5", *QUICK[:-1])
    assert code == 0, err
    assert "cats, dogs" in out
    code, out, _ = run(capsys, "evaluate", model, data, "--json")
    result = json.loads(out)
    assert code == 0 and result["n"] == 12
    assert set(result) >= {"accuracy", "loss", "n", "per_class", "confusion_matrix"}
    assert set(result["per_class"]) == {"cats", "dogs"}
    assert np.sum(result["confusion_matrix"]) == 12


def test_evaluate_prints_a_table(trained, capsys):
    code, out, _ = run(capsys, "evaluate", trained, "builtin:smiles")
    assert code == 0
    assert "accuracy" in out and "precision" in out and "confusion matrix" in out


def test_evaluate_refuses_other_classes(trained, tmp_path, capsys):
    data = _image_folder(tmp_path / "pets", n=2)
    code, _, err = run(capsys, "evaluate", trained, data)
    assert_one_line_error(code, err, "cats", "not smiling")


def test_predict_any_photo_and_the_door(trained, tmp_path, capsys):
    rgba = tmp_path / "face.png"
    Image.fromarray(np.zeros((50, 40, 4), np.uint8)).save(rgba)
    gray = tmp_path / "gray.jpg"
    Image.fromarray(np.full((30, 30), 200, np.uint8)).save(gray)
    code, out, _ = run(capsys, "predict", trained, rgba, gray)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(rgba))
    assert all(("the door opens" in l) or ("the door stays shut" in l) for l in lines)
    code, out, _ = run(capsys, "predict", trained, rgba, "--json")
    entry = json.loads(out)
    # What the model itself says of the photo: transparent black RGBA is black RGB (alpha dropped), all zeros.
    p_smiling = float(npconv.load_model(trained).predict(np.zeros((1, 16, 16, 3), np.float32))[0, 0])
    expected = {"not smiling": 1 - p_smiling, "smiling": p_smiling}
    assert entry["probabilities"] == pytest.approx(expected, rel=1e-6)
    smiling = p_smiling > 0.5
    assert entry["class"] == ("smiling" if smiling else "not smiling") and entry["door_opens"] is smiling
    assert entry["probability"] == pytest.approx(max(p_smiling, 1 - p_smiling), rel=1e-6)


def test_predict_on_a_photo_equals_predict_on_the_picture_as_training_prepares_it(trained, tmp_path, capsys):
    # A model trained at 16 px on 64 px pictures (an .h5 set's are resized by fit_to_input, the area
    # filter) must say the same of such a picture saved as a photo file; Pillow's bilinear did not.
    from npconv.apps.datasets import fit_to_input, to_float
    from npconv.data.synthetic import make_smiley_faces

    pictures = make_smiley_faces(n=4, image_size=64, seed=3).x
    model = npconv.load_model(trained)
    for i, picture in enumerate(pictures):
        photo = tmp_path / f"picture{i}.png"
        Image.fromarray(picture).save(photo)
        code, out, _ = run(capsys, "predict", trained, photo, "--json")
        assert code == 0
        p_smiling = float(model.predict(to_float(fit_to_input(picture[None], (16, 16, 3))))[0, 0])
        assert json.loads(out)["probabilities"]["smiling"] == p_smiling


def test_predict_a_48_megapixel_phone_photo(trained, tmp_path, capsys):
    """8000 x 6000 is over the 25 MP a decode may hold; the JPEG decodes at 1/8 and gets its verdict,
    the one the same photo gets at a size that decodes in full."""
    from npconv.data.synthetic import make_smiley_faces

    face = make_smiley_faces(n=1, image_size=64, seed=5).x[0]
    photo = phone_photo(face, tmp_path / "IMG_0001.jpg")
    code, out, err = run(capsys, "predict", trained, photo, "--json")
    assert code == 0, err
    small = tmp_path / "small.jpg"
    Image.open(photo).resize((800, 600), Image.Resampling.BOX).save(small, quality=95)
    _, small_out, _ = run(capsys, "predict", trained, small, "--json")
    p, p_small = json.loads(out)["probabilities"]["smiling"], json.loads(small_out)["probabilities"]["smiling"]
    assert p == pytest.approx(p_small, abs=0.02)


def test_predict_a_folder_classifies_each_image_in_it(trained, tmp_path, capsys):
    folder = tmp_path / "visitors"
    folder.mkdir()
    for name in ("b.png", "a.jpg", "c.png"):
        Image.new("RGB", (30, 30), (200, 150, 100)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    (folder / "inner").mkdir()
    (folder / ".DS_Store").write_bytes(b"\0\0")
    code, out, err = run(capsys, "predict", trained, folder)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [str(folder / n) for n in ("a.jpg", "b.png", "c.png")]
    assert all("the door" in line for line in lines)
    assert err.strip() == "npconv: warning: skipped 1 file(s) that are not images Pillow can read: notes.txt"
    code, out, _ = run(capsys, "predict", trained, folder, "--json")
    assert [entry["path"] for entry in json.loads(out)] == [str(folder / n) for n in ("a.jpg", "b.png", "c.png")]
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "predict", trained, empty)
    assert_one_line_error(code, err, "empty", "no image")


def test_explain_draws_a_picture_per_photo_of_the_photo_as_the_model_sees_it(trained, tmp_path, capsys, monkeypatch):
    from npconv import explain_plots
    from npconv.apps.photos import load_photos

    figures = []

    def recorded(*args, **kwargs):
        figures.append(original(*args, **kwargs))
        return figures[-1]

    original = explain_plots.plot_explanations
    monkeypatch.setattr(explain_plots, "plot_explanations", recorded)
    face = tmp_path / "face.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), np.uint8)).save(face)
    folder = tmp_path / "visitors"
    folder.mkdir()
    for name, colour in (("b.png", (200, 150, 100)), ("a.png", (90, 60, 30)), ("a.jpg", (20, 200, 20))):
        Image.new("RGB", (30, 30), colour).save(folder / name)
    out = tmp_path / "why"
    code, text, err = run(capsys, "explain", trained, face, folder, "--out", out)
    assert code == 0, err
    # a folder is its images, sorted, as npconv predict takes it; a.jpg and a.png share a stem
    photos = [face] + [folder / n for n in ("a.jpg", "a.png", "b.png")]
    pictures = [out / n for n in ("face.png", "a.png", "a_png.png", "b.png")]
    assert sorted(out.iterdir()) == sorted(pictures)
    assert all(Image.open(picture).size[0] > 500 for picture in pictures)
    _, predicted, _ = run(capsys, "predict", trained, face, folder, "--json")
    for line, photo, picture, entry in zip(text.strip().splitlines(), photos, pictures, json.loads(predicted)):
        assert line == f"{photo}: {entry['class']} ({entry['probability']:.2f}) -> {picture}"
    # the first panel is the photo as predict prepares it, titled with the verdict
    _, images = load_photos([face], (16, 16, 3))
    first = figures[0].axes[0]
    np.testing.assert_allclose(first.get_images()[0].get_array(), images[0] / 255.0, atol=1e-6)
    assert first.get_title().startswith(json.loads(predicted)[0]["class"] + " (")


def test_explain_refuses_an_unknown_class_or_layer_naming_the_valid_ones(trained, tmp_path, capsys):
    face = tmp_path / "face.png"
    Image.new("RGB", (30, 30), (200, 150, 100)).save(face)
    for option, value in (("--class", "smiling"), ("--class", "0")):
        code, text, err = run(capsys, "explain", trained, face, "--out", tmp_path / "why", option, value)
        assert code == 0, err
    out = tmp_path / "refused"
    code, _, err = run(capsys, "explain", trained, face, "--out", out, "--class", "happy")
    assert_one_line_error(code, err, "--class", "0 'not smiling', 1 'smiling'", "got 'happy'")
    code, _, err = run(capsys, "explain", trained, face, "--out", out, "--class", "2")
    assert_one_line_error(code, err, "--class", "got '2'")
    code, _, err = run(capsys, "explain", trained, face, "--out", out, "--layer", "nope")
    assert_one_line_error(code, err, "'nope', which is not a layer of this model", "'conv'")
    code, _, err = run(capsys, "explain", trained, face, "--out", out, "--layer", "predictions")
    assert_one_line_error(code, err, "'predictions' with output (None, 1)", "'conv'")
    assert not out.exists()  # refused before anything was written


def test_train_with_the_accuracy_options(tmp_path, capsys):
    model = tmp_path / "m.npz"
    code, out, err = run(
        capsys,
        "train",
        "--out",
        model,
        "--no-report",
        *QUICK,
        "--weight-decay",
        "0.01",
        "--label-smoothing",
        "0.1",
        "--zoom",
        "0.2",
        "--contrast",
        "0.3",
        "--tta",
        "shift",
        "--arch",
        "smallres",
    )  # an arch with zoom and contrast layers
    assert code == 0, err
    assert "with test-time augmentation (shift)" in out
    loaded = npconv.load_model(model)
    assert type(loaded.optimizer) is npconv.optimizers.AdamW and loaded.optimizer.weight_decay == 0.01
    assert loaded.loss.label_smoothing == 0.1
    recipe = loaded.metadata["recipe"]
    assert (recipe["zoom"], recipe["contrast"], recipe["tta"]) == (0.2, 0.3, "shift")
    code, _, err = run(capsys, "train", "--out", model, *QUICK, "--label-smoothing", "2")
    assert code == 2 and "--label-smoothing" in err


@pytest.mark.parametrize("flag, flips", [("--flip", True), ("--no-flip", False)])
def test_train_flip_options_override_the_recipe(flag, flips, tmp_path, capsys):
    # The built-in faces' recipe flips; SIGNS's does not: either way the flag decides.
    model = tmp_path / "m.npz"
    code, _, err = run(capsys, "train", "--out", model, "--no-report", *QUICK, "--arch", "smallres", flag)
    assert code == 0, err
    meta = npconv.load_model(model).metadata
    assert meta["recipe"]["flip"] is flips and meta["trained_with_flips"] is flips
    code, _, err = run(capsys, "train", "--out", model, *QUICK, "--flip=yes")
    assert code == 2 and "--flip" in err


def test_evaluate_and_predict_with_tta(trained, tmp_path, capsys):
    code, out, _ = run(capsys, "evaluate", trained, "builtin:smiles", "--tta", "shift", "--json")
    assert code == 0 and json.loads(out)["tta"] == "shift"
    code, out, _ = run(capsys, "evaluate", trained, "builtin:smiles", "--tta", "shift")
    assert code == 0 and "(test-time augmentation: shift)" in out
    # The tiny arch has no flip layer, so a bare --tta (flip) is refused with the alternative.
    code, _, err = run(capsys, "evaluate", trained, "builtin:smiles", "--tta")
    assert_one_line_error(code, err, "tta 'flip'", "tta='shift'")
    photo = tmp_path / "face.png"
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(photo)
    code, out, _ = run(capsys, "predict", trained, photo, "--tta", "shift", "--json")
    assert code == 0 and 0.5 <= json.loads(out)["probability"] <= 1


def test_summary_shows_layers_and_metadata(trained, capsys):
    code, out, _ = run(capsys, "summary", trained)
    assert code == 0
    assert "Total params" in out and "class_names" in out and "conv (Conv2D)" in out


def test_data_lists_what_it_finds(tmp_path, capsys):
    _image_folder(tmp_path / "smiles", classes=("not_smiling", "smiling"), n=1)
    code, out, _ = run(capsys, "data", "--data-dir", tmp_path)
    assert code == 0
    assert str(tmp_path) in out and "train_signs.h5" in out and "not found" in out
    assert "2 images in 2 classes" in out


def test_errors_are_one_line(trained, tmp_path, capsys):
    code, _, err = run(capsys, "train", tmp_path / "missing.h5", "--out", tmp_path / "m.npz", *QUICK)
    assert_one_line_error(code, err, "missing.h5")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(trained.read_bytes()[:500])
    code, _, err = run(capsys, "summary", corrupt)
    assert_one_line_error(code, err, "corrupt.npz")
    code, _, err = run(capsys, "train", "--arch", "resnet50", "--out", tmp_path / "m.npz")
    assert_one_line_error(code, err, "resnet50", "smallres")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    code, _, err = run(capsys, "predict", trained, text)
    assert_one_line_error(code, err, "notes.png")
    code, _, err = run(capsys, "predict", tmp_path / "none.npz", text)
    assert_one_line_error(code, err, "none.npz")


def test_a_misspelt_data_set_name_gets_the_nearest_name_and_the_list(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "train", "sings", "--data-dir", tmp_path, "--out", tmp_path / "m.npz")
    assert_one_line_error(
        code, err, "Did you mean 'signs'?", "signs, happy, smiles, sign-language-digits, builtin:smiles", "NPCONV_DATA"
    )
    code, _, err = run(capsys, "evaluate", tmp_path / "none.npz", "signs")  # the model is checked first
    assert_one_line_error(code, err, "none.npz")
    code, _, err = run(capsys, "train", "qwerty", "--data-dir", tmp_path)
    assert_one_line_error(code, err, "'qwerty'", "sign-language-digits")
    assert "Did you mean" not in err
    code, _, err = run(capsys, "train", tmp_path / "missing.h5", "--out", tmp_path / "m.npz")
    assert_one_line_error(code, err, "missing.h5")  # a path is not taken for a name
    assert "Did you mean" not in err


def test_usage_errors_exit_2_and_debug_shows_the_traceback(trained, tmp_path, capsys):
    code, _, err = run(capsys, "train", "--folds", "1")
    assert code == 2 and "--folds" in err
    code, _, _ = run(capsys, "frobnicate")
    assert code == 2
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    code, _, err = run(capsys, "predict", trained, text, "--debug")
    assert code == 1 and "Traceback" in err


def test_usage_errors_are_one_line_too(capsys):
    for argv in (["train", "--folds", "1"], ["frobnicate"], ["evaluate", "--no-such-option"], ["predict"]):
        code, _, err = run(capsys, *argv)
        assert code == 2
        assert_one_line_error(code, err, "--help")


def test_a_photo_given_as_data_points_to_predict_not_a_python_function(trained, tmp_path, capsys):
    photo = tmp_path / "me.png"
    Image.new("RGB", (20, 20)).save(photo)
    code, _, err = run(capsys, "evaluate", trained, photo)
    assert_one_line_error(code, err, "me.png", "predict")
    assert "load_image" not in err


def test_output_into_a_closed_pipe_ends_quietly(trained):
    """``npconv summary MODEL | head -1``: the reader is gone before npconv writes."""
    reader_gone = subprocess.Popen(
        [sys.executable, "-m", "npconv", "summary", str(trained)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    reader_gone.stdout.close()
    err = reader_gone.stderr.read().decode()
    assert reader_gone.wait(timeout=120) == 141
    assert err == "", err


def test_ctrl_c_saves_the_model_so_far(tmp_path, capsys, monkeypatch):
    from npconv import models

    step = models.Model._train_step
    calls = []

    def interrupted_step(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return step(self, *args)

    monkeypatch.setattr(models.Model, "_train_step", interrupted_step)
    model = tmp_path / "stopped.npz"
    code, out, err = run(capsys, "train", "--out", model, "--no-report", *QUICK[:1], "3", *QUICK[2:])
    assert code == 130
    assert "interrupted after 0 of 3 epochs" in err and "Traceback" not in err
    assert npconv.load_model(model).metadata["trained"]["interrupted"] is True


def test_python_m_npconv_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "npconv", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"npconv {npconv.__version__}"


def test_console_script_is_declared_and_installed():
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '[project.scripts]\nnpconv = "npconv.cli:main"\n' in pyproject
    script = Path(sys.executable).with_name("npconv")
    require(script.exists(), f"the console script is not installed beside {sys.executable} (pip install -e .)")
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"npconv {npconv.__version__}"


@pytest.mark.data
def test_real_signs_smoke(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NPCONV_DATA", str(data_dir))
    model = tmp_path / "signs.npz"
    code, out, err = run(
        capsys,
        "train",
        data_dir / "signs" / "test_signs.h5",
        "--out",
        model,
        "--epochs",
        "1",
        "--image-size",
        "32",
        "--no-report",
    )
    assert code == 0, err
    assert "(120 images, 6 classes" in out and "validation accuracy" in out
    code, out, _ = run(capsys, "evaluate", model, "signs", "--json")  # a bare name means test_signs.h5
    assert code == 0 and json.loads(out)["n"] == 120


def test_augmentation_flags_for_an_arch_without_augmentation_are_refused(tmp_path, capsys):
    for flag in (["--no-flip"], ["--zoom", "0.1"], ["--contrast", "0.2"]):
        code, _, err = run(capsys, "train", "--out", tmp_path / "m.npz", *QUICK, *flag)
        assert_one_line_error(code, err, flag[0].split("/")[0].replace("--no-", "--"), "arch tiny", "--arch smallres")
        assert not (tmp_path / "m.npz").exists()


def test_each_command_is_a_module_of_the_cli_package():
    """A new command (``explain``, ``tune``) is one module in ``npconv/cli/``: the parser finds it."""
    import argparse

    from npconv import cli

    modules = cli.command_modules()
    names = [m.__name__.rsplit(".", 1)[1] for m in modules]
    assert {"train", "tune", "evaluate", "predict", "explain", "summary", "export", "data", "serve"} <= set(names)
    assert names[:2] == ["train", "tune"]  # in HELP_ORDER
    commands = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for module in modules:
        name = module.__name__.rsplit(".", 1)[1]
        assert commands.choices[name].get_default("func") is module.run
