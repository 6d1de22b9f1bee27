"""A model chosen by cross-validation is its best fold, picked by that fold's own score: its card and
``npconv evaluate`` quote the folds' mean +- std, not that score (issue 30)."""

from __future__ import annotations

import json

import pytest

import npconv
from npconv.cli import main

QUICK = ["--epochs", "1", "--arch", "tiny", "--image-size", "16", "--quiet", "--no-report"]


@pytest.fixture(scope="module")
def cv_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("cv") / "cv.npz"
    assert main(["train", "--folds", "2", "--out", str(path), *QUICK]) == 0
    return path


def test_the_card_gives_the_cross_validated_mean_and_no_best_fold_score(cv_model):
    from npconv.serve.card import model_card
    from npconv.serve.inference import Predictor

    model = npconv.load_model(cv_model)
    card = model_card(Predictor(model), cv_model.name)
    cv = model.metadata["cross_validation"]
    assert card["held_out_accuracy"] is None
    assert card["cross_validation"] == {
        "k": 2,
        "mean_accuracy": cv["mean_accuracy"],
        "std_accuracy": cv["std_accuracy"],
    }


def test_evaluate_puts_the_cross_validated_mean_first(cv_model, capsys):
    assert main(["evaluate", str(cv_model), "builtin:smiles"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    cv = npconv.load_model(cv_model).metadata["cross_validation"]
    assert first.startswith(f"model: 2-fold cross-validated accuracy {cv['mean_accuracy']:.3f} ± ")
    assert f"fold {cv['saved_fold']}'s, the best by its own score" in first
    assert main(["evaluate", str(cv_model), "builtin:smiles", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cross_validation"]["k"] == 2


def test_a_model_without_cross_validation_keeps_its_held_out_accuracy(tmp_path, capsys):
    from npconv.serve.card import model_card
    from npconv.serve.inference import Predictor

    path = tmp_path / "one.npz"
    assert main(["train", "--out", str(path), *QUICK]) == 0
    model = npconv.load_model(path)
    assert (
        model_card(Predictor(model), path.name)["held_out_accuracy"] == model.metadata["trained"]["held_out_accuracy"]
    )
    capsys.readouterr()
    assert main(["evaluate", str(path), "builtin:smiles"]) == 0
    assert not capsys.readouterr().out.startswith("model:")
