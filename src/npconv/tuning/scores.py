"""Scoring a search's variants from their jobs, and the files it writes.

Per variant and seed, every training image is predicted once, by the model of the fold that held
it out (its *out-of-fold* probabilities, :meth:`SearchResult.out_of_fold`); an ensemble's models
are averaged as an averaged model predicts (the mean log-probability), and a variant's ``tta`` view
is used where it has one. The variant's accuracy is the mean over every fold and seed (its
``std`` too, as ``npconv train --folds`` reports), and each seed's cross-validated accuracy and
errors are kept. The best variant has the highest mean (the first of equals, in grid order).

``DIR/results.json``: the data, folds, seeds and, per variant, its fields, its full recipe, mean
and std, and every fold and seed; ``DIR/results.png``: mean +- std per variant, every fold and
seed as a dot; ``DIR/best_recipe.json``: the best variant's recipe (``npconv train --recipe``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..apps.recipe_files import fields_json, recipe_json, write_recipe
from ..saving import atomic_write


def combine(probabilities: list[np.ndarray]) -> np.ndarray:
    """One model's ``(n, K)`` probabilities as they are; several models' as an averaged model
    predicts, ``softmax(mean log p)`` (the mean logit's prediction)."""
    if len(probabilities) == 1:
        return probabilities[0]
    logs = np.mean(np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-30, 1.0)), axis=0)
    p = np.exp(logs - logs.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


@dataclass
class SearchResult:
    """Every variant's scores, and the jobs' results (``results``: job key -> JobResult)."""

    search: object  # the Plan
    results: dict
    rows: list[dict]  # per variant, what results.json says about it
    best: int  # index of the best variant

    @property
    def trained(self) -> int:
        """How many jobs this run trained (the others came from the cache)."""
        return sum(1 for r in self.results.values() if not r.cached)

    @property
    def best_variant(self):
        return self.search.variants[self.best]

    def out_of_fold(self, variant: int, seed: int, view: str | None = None, members: int | None = None):
        """``(n, K)`` probabilities of every training image from the fold model that held it out, for
        ``variant`` (an index) and ``seed``: under test-time view ``view`` (default the variant's
        ``tta``, else ``"plain"``), of its first ``members`` models (default all)."""
        search = self.search
        key = search.data_key[variant]
        recipe = search.variants[variant].recipe
        view = view or recipe.tta or "plain"
        data = search.datasets[key]
        out = None
        for i, (_, test_idx) in enumerate(search.splits[key]):
            keys = search.members[(variant, seed, i)][:members]
            p = combine([self.results[k].probabilities[view] for k in keys])
            if out is None:
                out = np.zeros((len(data), p.shape[1]))
            out[test_idx] = p
        return out


def score(search, results: dict) -> SearchResult:
    """The :class:`SearchResult` of ``search`` from its jobs' ``results``."""
    outcome = SearchResult(search, results, [], 0)
    for v, variant in enumerate(search.variants):
        key = search.data_key[v]
        y = search.datasets[key].y
        runs, per_seed = [], []
        for s in range(search.seeds):
            pred = outcome.out_of_fold(v, s).argmax(axis=1)
            for i, (_, test_idx) in enumerate(search.splits[key]):
                correct = int(np.sum(pred[test_idx] == y[test_idx]))
                runs.append(
                    {
                        "seed": s,
                        "fold": i + 1,
                        "accuracy": correct / len(test_idx),
                        "correct": correct,
                        "n": int(len(test_idx)),
                        "seconds": round(sum(results[k].seconds for k in search.members[(v, s, i)]), 1),
                    }
                )
            per_seed.append({"seed": s, "accuracy": float(np.mean(pred == y)), "errors": int(np.sum(pred != y))})
        accuracies = [r["accuracy"] for r in runs]
        outcome.rows.append(
            {
                "variant": variant.name,
                "fields": fields_json(variant.changes),
                "recipe": recipe_json(variant.recipe),
                "mean_accuracy": float(np.mean(accuracies)),
                "std_accuracy": float(np.std(accuracies)),
                "seeds": per_seed,
                "runs": runs,
            }
        )
    means = [row["mean_accuracy"] for row in outcome.rows]
    outcome.best = int(np.argmax(means))
    return outcome


def summary(outcome: SearchResult) -> dict:
    """What ``results.json`` holds."""
    search = outcome.search
    return {
        "npconv": __version__,
        "data": search.data.source,
        "images": {key: described for key, described in search.described.items()},
        "folds": search.folds,
        "fold_seed": 0,
        "seeds": search.seeds,
        "training_seeds": "100 * seed + fold (an ensemble of N: N * (100 * seed + fold) + k)",
        "base_recipe": recipe_json(search.base),
        "best": outcome.rows[outcome.best]["variant"],
        "variants": outcome.rows,
    }


def write_results(outcome: SearchResult) -> None:
    """``results.json``, ``results.png`` and ``best_recipe.json`` in the search's folder (atomically)."""
    from ..viz import style
    from .plot import plot_variant_scores

    search = outcome.search
    search.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary(outcome), indent=2) + "\n"
    atomic_write(search.out / "results.json", lambda file: file.write(text.encode()))
    figure = plot_variant_scores(
        [row["variant"] for row in outcome.rows],
        [[r["accuracy"] for r in row["runs"]] for row in outcome.rows],
        outcome.best,
        title=f"{Path(str(search.data.source)).name}: {search.folds}-fold CV, "
        f"{search.seeds} seed{'s' if search.seeds > 1 else ''}",
    )
    with style():
        atomic_write(search.out / "results.png", lambda file: figure.savefig(file, format="png"))
    best = outcome.rows[outcome.best]
    write_recipe(
        search.out / "best_recipe.json",
        outcome.best_variant.recipe,
        {
            "variant": best["variant"],
            "fields": best["fields"],
            "mean_accuracy": best["mean_accuracy"],
            "std_accuracy": best["std_accuracy"],
            "folds": search.folds,
            "seeds": search.seeds,
            "data": search.data.source,
            "results": "results.json",
        },
    )
