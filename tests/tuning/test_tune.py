"""Recipe searches (npconv.tuning) and recipe files: grids read as their fields' types, bad input
refused before any training, finished jobs cached so a stopped search resumes, the files it writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from npconv.apps import fitting
from npconv.apps.recipe_fields import check_recipe, parse_value
from npconv.apps.recipe_files import merge, read_recipe, recipe_from_json, write_recipe
from npconv.apps.recipes import RECIPES, Recipe
from npconv.jobs import JobsInterrupted, Progress
from npconv.tuning import parse_grid, parse_grids, plan, run, tune
from npconv.tuning.cache import job_hash
from npconv.tuning.scores import combine

BASE = Recipe(arch="tiny", epochs=1, batch_size=16, image_size=16)
SEARCH = dict(grids=["learning_rate=1e-3,3e-3"], folds=2, seeds=2, base=BASE, limit=64)


# ----------------------------------------------------------------------------- values and grids


@pytest.mark.parametrize(
    "field, text, value",
    [
        ("flip", "false", False),
        ("flip", "On", True),
        ("epochs", "12", 12),
        ("learning_rate", "2e-3", 0.002),
        ("weight_decay", "0", 0.0),
        ("color_mode", "grayscale", "grayscale"),
        ("tta", "none", None),
        ("widths", "16-32-64", (16, 32, 64)),
        ("widths", "(16,32,64)", (16, 32, 64)),
        ("widths", "none", None),
    ],
)
def test_values_are_read_as_their_fields_type(field, text, value):
    parsed = parse_value(field, text, "--grid")
    assert parsed == value and type(parsed) is type(value)


def test_grids_make_the_product_of_their_values():
    assert parse_grid("widths=16-32,(32,64,128)") == ("widths", [(16, 32), (32, 64, 128)])
    variants = parse_grids(["learning_rate=1e-3,2e-3", "flip=true,false"])
    assert variants == [
        {"learning_rate": 0.001, "flip": True},
        {"learning_rate": 0.001, "flip": False},
        {"learning_rate": 0.002, "flip": True},
        {"learning_rate": 0.002, "flip": False},
    ]
    assert parse_grids([]) == [{}]


@pytest.mark.parametrize(
    "grid, message",
    [
        ("learning_rat=1e-3", "expected a recipe field, got 'learning_rat'. The fields: arch (str), epochs (int)"),
        ("epochs=ten", "epochs as int (a whole number), got 'ten'"),
        ("epochs=2.5", "epochs as int"),
        ("flip=maybe", "flip as bool (true or false)"),
        ("widths=16-x", "widths as tuple or none"),
        ("epochs=0", "epochs as a positive whole number, got 0"),
        ("color_mode=sepia", "color_mode as one of rgb, grayscale"),
        ("tta=flop", "tta as one of flip, shift, flip+shift or none"),
        ("arch=resnet", "arch as one of smallres"),
        ("learning_rate", "expected FIELD=V1,V2[,...]"),
        ("learning_rate=", "values for learning_rate separated by commas"),
        ("epochs=1,,2", "values for epochs separated by commas"),
        ("epochs=1,1", "different values for epochs"),
    ],
)
def test_bad_grids_are_refused_with_what_fits(grid, message):
    with pytest.raises(ValueError) as info:
        parse_grids([grid])
    assert message in str(info.value)
    assert str(info.value).startswith(f"--grid {grid!r}")


def test_a_field_in_two_grids_is_refused():
    with pytest.raises(ValueError, match="each field in one grid, got epochs in several"):
        parse_grids(["epochs=1,2", "epochs=3"])


def test_a_bad_grid_is_refused_before_any_loading_or_training(tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr(fitting, "fit_one", no_training)
    monkeypatch.setattr("npconv.apps.datasets.load", no_training)
    with pytest.raises(ValueError, match="a recipe field"):
        tune("builtin:smiles", tmp_path / "search", grids=["learning_rat=1e-3"])
    with pytest.raises(ValueError, match="jobs: expected a positive"):
        tune("builtin:smiles", tmp_path / "search", grids=["epochs=1"], jobs=0)
    assert not (tmp_path / "search").exists()


# ----------------------------------------------------------------------------- recipe files


def test_a_recipe_file_round_trips_and_flags_override_it(tmp_path):
    recipe = RECIPES["smiles"].replace(learning_rate=1e-3, widths=(16, 32, 64), tta="shift")
    path = tmp_path / "best_recipe.json"
    write_recipe(path, recipe, {"variant": "learning_rate=0.001"})
    assert json.loads(path.read_text())["recipe"]["widths"] == [16, 32, 64]
    assert read_recipe(path) == recipe
    # fields the file leaves out keep the base recipe's; flags given beside it win
    partial = tmp_path / "partial.json"
    partial.write_text('{"epochs": 7, "weight_decay": 5e-4}')
    base = RECIPES["signs"]
    assert read_recipe(partial, base) == base.replace(epochs=7, weight_decay=5e-4)
    assert merge(base, partial, epochs=3, zoom=None) == base.replace(epochs=3, weight_decay=5e-4)
    assert merge(base, None, epochs=3) == base.replace(epochs=3)
    assert recipe_from_json({"weight_decay": 1}).weight_decay == 1.0  # an int is a float


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"epoch": 7}', "field 'epoch': expected a recipe field, got 'epoch'. The fields: arch (str), epochs (int)"),
        ('{"epochs": "7"}', "field 'epochs': expected epochs as int, got '7' (str)"),
        ('{"flip": 1}', "expected flip as bool, got 1 (int)"),
        ('{"widths": [16, "32"]}', "widths as positive whole numbers, one per stage"),
        ('{"batch_size": null}', "expected batch_size as int, got none"),
        ("[1, 2]", "expected a JSON object of recipe fields, got list"),
        ('{"recipe": {"epochs": 5}, "chosen": 1}', "field 'recipe': expected a recipe field"),
        ("epochs: 7", "expected a JSON object of recipe fields, got no JSON"),
    ],
)
def test_bad_recipe_files_are_refused_with_the_list_of_fields(tmp_path, content, message):
    path = tmp_path / "recipe.json"
    path.write_text(content)
    with pytest.raises(ValueError) as info:
        read_recipe(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_a_missing_recipe_file_says_where_one_comes_from(tmp_path):
    with pytest.raises(FileNotFoundError, match="best_recipe.json"):
        read_recipe(tmp_path / "nope.json")
    with pytest.raises(ValueError, match="epochs as a positive whole number"):
        check_recipe(Recipe(epochs=0))


# ----------------------------------------------------------------------------- a search


def test_a_search_scores_every_variant_and_writes_its_files(tmp_path):
    result = tune("builtin:smiles", tmp_path / "search", **SEARCH)
    assert result.trained == len(result.results) == 2 * 2 * 2  # variants x seeds x folds
    saved = json.loads((tmp_path / "search" / "results.json").read_text())
    assert [v["variant"] for v in saved["variants"]] == ["learning_rate=0.001", "learning_rate=0.003"]
    first = saved["variants"][0]
    assert first["fields"] == {"learning_rate": 0.001} and first["recipe"]["learning_rate"] == 0.001
    assert [(r["seed"], r["fold"]) for r in first["runs"]] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    accuracies = [r["accuracy"] for r in first["runs"]]
    assert first["mean_accuracy"] == pytest.approx(np.mean(accuracies))
    assert first["std_accuracy"] == pytest.approx(np.std(accuracies))
    assert sum(r["n"] for r in first["runs"]) == 2 * 64 and len(first["seeds"]) == 2
    best = read_recipe(tmp_path / "search" / "best_recipe.json")
    assert best == result.best_variant.recipe and saved["best"] == result.best_variant.name
    assert (tmp_path / "search" / "results.png").stat().st_size > 5000


def test_the_fold_accuracy_is_the_jobs_own_evaluation(tmp_path):
    result = tune("builtin:smiles", tmp_path / "search", **SEARCH)
    search = result.search
    for s in range(2):
        for i in range(2):
            (key,) = search.members[(0, s, i)]
            run_row = next(r for r in result.rows[0]["runs"] if (r["seed"], r["fold"]) == (s, i + 1))
            assert run_row["accuracy"] == result.results[key].evaluation["accuracy"]


class StopAfter(Progress):
    """Ctrl-C, as it were, once ``n`` jobs have finished."""

    def __init__(self, n):
        self.n, self.count = n, 0

    def finished(self, job, result):
        self.count += 1
        if self.count == self.n:
            raise KeyboardInterrupt


def _count_trainings(monkeypatch) -> list:
    trained = []
    fit_one = fitting.fit_one

    def counted(*args, **kwargs):
        trained.append(args[4])  # the seed
        return fit_one(*args, **kwargs)

    monkeypatch.setattr(fitting, "fit_one", counted)
    return trained


def test_a_stopped_search_resumes_without_training_its_finished_jobs_again(tmp_path, monkeypatch):
    trained = _count_trainings(monkeypatch)
    with pytest.raises(JobsInterrupted) as info:
        tune("builtin:smiles", tmp_path / "search", progress=StopAfter(3), **SEARCH)
    assert len(info.value.results) == 3 and len(trained) == 3
    entries = sorted(p.name for p in (tmp_path / "search" / "jobs").iterdir())
    assert len(entries) == 3 and all(not name.startswith(".") for name in entries)  # no half-written file
    assert not (tmp_path / "search" / "results.json").exists()
    trained.clear()
    resumed = tune("builtin:smiles", tmp_path / "search", **SEARCH)
    assert len(trained) == resumed.trained == 8 - 3
    assert sum(r.cached for r in resumed.results.values()) == 3
    again = tune("builtin:smiles", tmp_path / "search", **SEARCH)  # everything cached now
    assert again.trained == 0 and again.rows == resumed.rows


def test_a_search_stopped_on_worker_processes_resumes_the_same(tmp_path):
    with pytest.raises(JobsInterrupted):
        tune("builtin:smiles", tmp_path / "search", progress=StopAfter(2), jobs=2, **SEARCH)
    assert len(list((tmp_path / "search" / "jobs").glob("*.npz"))) == 2
    resumed = tune("builtin:smiles", tmp_path / "search", jobs=2, **SEARCH)
    assert resumed.trained == 8 - 2


def test_a_changed_recipe_data_or_fold_trains_again(tmp_path):
    index = np.arange(10)
    same = job_hash(BASE, "tiny", "data", index, index + 10, 0)
    assert (
        job_hash(
            Recipe(arch="tiny", epochs=1, batch_size=16, image_size=16), "tiny", "data", np.arange(10), index + 10, 0
        )
        == same
    )
    for other in (
        job_hash(BASE.replace(zoom=0.1), "tiny", "data", index, index + 10, 0),
        job_hash(BASE, "tiny", "other data", index, index + 10, 0),
        job_hash(BASE, "tiny", "data", index + 1, index + 10, 0),
        job_hash(BASE, "tiny", "data", index, index + 10, 1),
    ):
        assert other != same


def test_an_ensemble_or_tta_variant_is_scored_from_the_same_models(tmp_path):
    """ensemble=2 trains two models per fold and seed (one shared with ensemble=1); tta=shift needs
    no training of its own, only the shifted views' probabilities."""
    search = plan(
        "builtin:smiles", tmp_path / "search", ["ensemble=1,2", "tta=none,shift"], folds=2, seeds=1, base=BASE, limit=64
    )
    # fold i trains from t = i: one model from t, an ensemble of 2 from 2t and 2t + 1; fold 1 shares seed 0
    assert len(search.jobs) == 2 + 3
    assert [v.name for v in search.variants][1] == "ensemble=1 tta=shift"
    assert all(set(job.views) == {"plain", "shift"} for job in search.jobs)
    result = run(search)
    alone, averaged = result.out_of_fold(0, 0), result.out_of_fold(2, 0)
    members = [result.out_of_fold(2, 0, members=1)]
    assert alone.shape == averaged.shape == (64, 2)
    assert np.allclose(averaged.sum(axis=1), 1.0) and not np.array_equal(members[0], averaged)


def test_averaging_probabilities_predicts_as_an_averaged_model(rng):
    """The mean log-probability's argmax is the mean logit's, as npconv.apps.ensemble averages."""
    logits = rng.normal(size=(3, 50, 4))
    softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    mean = logits.mean(axis=0)
    np.testing.assert_allclose(combine(list(softmax)), np.exp(mean) / np.exp(mean).sum(-1, keepdims=True))
    z = rng.normal(size=(3, 50))
    p = 1 / (1 + np.exp(-z))
    binary = combine([np.stack([1 - q, q], axis=1) for q in p])
    np.testing.assert_allclose(binary[:, 1], 1 / (1 + np.exp(-z.mean(axis=0))))
