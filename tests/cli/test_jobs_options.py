"""``npconv train --jobs/--cluster/--recipe`` and ``npconv tune``: the command line over
:mod:`npconv.jobs` and :mod:`npconv.tuning` (their own tests: jobs/test_jobs.py,
tuning/test_tune.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import npconv
from npconv.cli import main

QUICK = ["--epochs", "1", "--arch", "tiny", "--image-size", "16"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def same_weights(a, b) -> bool:
    return all(
        np.array_equal(x.value, y.value) for x, y in zip(npconv.load_model(a).weights, npconv.load_model(b).weights)
    )


def test_train_folds_with_two_jobs_saves_the_model_one_job_saves(tmp_path, capsys):
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    code, out_one, _ = run(capsys, "train", "--folds", "2", "--out", one, "--no-report", "--quiet", *QUICK)
    assert code == 0
    code, out_two, _ = run(capsys, "train", "--folds", "2", "--jobs", "2", "--out", two, "--no-report", *QUICK)
    assert code == 0
    assert same_weights(one, two)

    def cv_line(out):
        return next(line for line in out.splitlines() if "cross-validation accuracy" in line).split(" in ")[0]

    assert cv_line(out_one) == cv_line(out_two)
    assert "fold 1/2" in out_two and "fold 2/2" in out_two


def test_an_ensemble_with_two_jobs_is_the_ensemble_of_one(tmp_path, capsys):
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    for path, jobs in ((one, "1"), (two, "2")):
        assert (
            run(capsys, "train", "--ensemble", "2", "--jobs", jobs, "--out", path, "--no-report", "--quiet", *QUICK)[0]
            == 0
        )
    assert same_weights(one, two)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--threads", "2"], ["--threads", "--jobs N"]),
        (["--jobs", "2", "--cluster", "tcp://127.0.0.1:1"], ["1 with a cluster", "Leave out --jobs"]),
        (["--jobs", "0"], ["positive integer"]),
    ],
)
def test_job_options_that_cannot_work_are_refused_before_training(argv, words, tmp_path, capsys):
    code, out, err = run(capsys, "train", *argv, "--out", tmp_path / "m.npz", *QUICK)
    assert code != 0 and "Traceback" not in err
    assert all(word in err for word in words), err
    assert not (tmp_path / "m.npz").exists()


def test_train_with_a_recipe_file_and_a_flag_over_it(tmp_path, capsys):
    recipe = tmp_path / "best_recipe.json"
    recipe.write_text(json.dumps({"epochs": 1, "batch_size": 8, "learning_rate": 0.01}))
    model = tmp_path / "m.npz"
    code, out, err = run(
        capsys,
        "train",
        "--recipe",
        recipe,
        "--batch-size",
        "16",
        "--arch",
        "tiny",
        "--image-size",
        "16",
        "--out",
        model,
        "--no-report",
    )
    assert code == 0, err
    trained_with = npconv.load_model(model).metadata["recipe"]
    assert (trained_with["epochs"], trained_with["learning_rate"], trained_with["batch_size"]) == (1, 0.01, 16)


@pytest.mark.parametrize(
    "content, words",
    [
        ({"epoch": 3}, ["'epoch'", "epochs (int)"]),
        ({"epochs": "many"}, ["epochs", "int"]),
        ([1, 2], ["a JSON object of recipe fields"]),
    ],
)
def test_a_bad_recipe_file_is_refused_with_the_fields(content, words, tmp_path, capsys):
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps(content))
    code, out, err = run(capsys, "train", "--recipe", recipe, "--out", tmp_path / "m.npz", *QUICK)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert all(word in err for word in words), err


def test_tune_writes_its_results_and_a_rerun_trains_nothing(tmp_path, capsys):
    out = tmp_path / "search"
    argv = ["tune", "--grid", "epochs=1,2", "--folds", "2", "--arch", "tiny", "--out", out]
    code, first, err = run(capsys, *argv)
    assert code == 0, err
    assert "2 variants x 1 seed(s) x 2 folds: 4 jobs, 0 already in" in first
    results = json.loads((out / "results.json").read_text())
    assert [v["variant"] for v in results["variants"]] == ["epochs=1", "epochs=2"]
    assert (out / "results.png").stat().st_size > 1000
    best = json.loads((out / "best_recipe.json").read_text())
    assert best["recipe"]["epochs"] in (1, 2)
    code, second, _ = run(capsys, *argv)
    assert code == 0 and "4 jobs, 4 already in" in second
    assert second.splitlines()[1:] == first.splitlines()[1:]  # the same table, from the cache
    model = tmp_path / "m.npz"
    assert (
        run(
            capsys,
            "train",
            "--recipe",
            out / "best_recipe.json",
            "--arch",
            "tiny",
            "--image-size",
            "16",
            "--out",
            model,
            "--no-report",
            "--quiet",
        )[0]
        == 0
    )


@pytest.mark.parametrize(
    "grid, words",
    [
        ("epoch=1,2", ["'epoch'", "The fields"]),
        ("epochs=one", ["epochs as int"]),
    ],
)
def test_tune_refuses_a_bad_grid_before_anything(grid, words, tmp_path, capsys):
    code, out, err = run(capsys, "tune", "--grid", grid, "--out", tmp_path / "s")
    assert code == 1 and all(word in err for word in words), err
    assert not (tmp_path / "s").exists()


def test_tune_needs_a_grid(tmp_path, capsys):
    code, out, err = run(capsys, "tune", "--out", tmp_path / "s")
    assert code == 1 and "--grid" in err
