"""Choose a recipe by k-fold cross-validation with several training seeds, never by one split.

A thin caller of :mod:`npconv.tuning` (what ``npconv tune`` runs), with the extra scores that chose
the defaults recorded in ``npconv/apps/recipes.py``. For data set ``D`` and each variant of its
recipe (``--variant NAME:FIELD=VALUE,...``), every fold of a k-fold stratified split (folds of seed
0, the same for every variant and seed) trains one model per training seed (fold ``i`` of seed
``s`` from ``100 * s + i``) and keeps its probabilities on the fold's held-out images. From those
the table scores, per variant:

* ``single``: one model, the cross-validated accuracy per seed (its errors, and every fold's accuracy);
* ``tta:shift`` / ``tta:flip``: the same models, predictions averaged over shifted / mirrored views
  (:mod:`npconv.apps.tta`; flips only for a model trained with flips);
* ``ensemble of n``: the first n seeds' models averaged as ``npconv train --ensemble n`` does, by
  their mean logit (the argmax of the mean log-probability), for n = 2 .. ``--seeds``;

so test-time augmentation and averaging are measured without training anything again (each variant
trains one model per job: its ``ensemble`` and ``tta`` are set to 1 and none).

Which images: the training data only, as :class:`npconv.tuning.TrainingData` picks it: SIGNS,
``train_signs.h5``; sign-language-digits and smiles, the training part of the recipe's 15% split of
seed 0 (the part ``npconv train`` trains on). Jobs are cached in ``runs/cv/KEY/jobs/`` (not
committed) by a hash of what they train, so an interrupted run resumes where it stopped and a
variant measured once is scored again without training; ``runs/cv/KEY/`` also gets ``npconv tune``'s
results.json, results.png and best_recipe.json. The summary rows, with every fold's accuracy per
seed, are merged into ``benchmarks/results/accuracy.json`` (row ids ``signs-cv``, ``sld-cv``,
``smiles-cv``).

Run: ``NPCONV_DATA=... python benchmarks/recipe_cv.py sld --seeds 3 --variant base: --variant
ls:label_smoothing=0.1 --jobs 2`` (``--folds`` 5 by default; ``--cluster tcp://host:8786`` for a
Dask cluster; ``--quick`` is a smoke test on 600 images, 1 epoch, no JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from _timing import RESULTS, print_table, write_json
from accuracy import QUICK_IMAGES
from provenance import provenance

from npconv import tuning
from npconv.apps import RECIPES
from npconv.apps.recipe_fields import check_field, parse_value
from npconv.jobs import Bars, runner_for
from npconv.tuning.scores import combine

DATA = {"signs": "signs", "sld": "sign-language-digits", "smiles": "smiles"}
CACHE = Path(__file__).resolve().parents[1] / "runs" / "cv"
VIEWS = ("shift", "flip")


def parse_variant(text: str, quick: bool) -> tuple[str, dict]:
    """``"NAME:field=value,field=value"`` -> ``(NAME, changes)``, each value read as its field's type
    (``label_smoothing=0`` is the float 0.0: the same recipe, the same cache); every variant trains
    one model per job, without test-time augmentation (scored here from the same models)."""
    name, _, items = text.partition(":")
    changes = {}
    for item in filter(None, items.split(",")):
        field, _, value = item.partition("=")
        changes[check_field(field, f"--variant {text!r}")] = parse_value(field, value, f"--variant {text!r}")
    return name, {**changes, "ensemble": 1, "tta": None, **({"epochs": 1} if quick else {})}


def scores(result, v: int) -> dict:
    """Variant ``v``'s scores (see the module docstring) from its out-of-fold probabilities."""
    search = result.search
    key = search.data_key[v]
    y, splits = search.datasets[key].y, search.splits[key]
    first = result.results[search.members[(v, 0, 0)][0]]
    views = ["plain"] + [view for view in VIEWS if view in first.probabilities]  # flips: if trained with them

    def score(p, **about):
        return {
            **about,
            "errors": int(np.sum(p.argmax(1) != y)),
            "folds": [float(np.mean(p[te].argmax(1) == y[te])) for _, te in splits],
        }

    out = {}
    for view in views:
        per_seed = [result.out_of_fold(v, s, view) for s in range(search.seeds)]
        out["single" if view == "plain" else f"tta:{view}"] = [score(p, seed=s) for s, p in enumerate(per_seed)]
        for n in range(2, search.seeds + 1):  # the first n seeds' models averaged
            label = f"ensemble of {n}" + ("" if view == "plain" else f"+tta:{view}")
            out[label] = [score(combine(per_seed[:n]), seeds=list(range(n)))]
    return out


def rows_for_table(key: str, result, variant_scores: list[dict]) -> list[dict]:
    rows = []
    for v, (variant, scored) in enumerate(zip(result.search.variants, variant_scores)):
        n = len(result.search.datasets[result.search.data_key[v]])
        for label, runs in scored.items():
            errors = [x["errors"] for x in runs]
            rows.append(
                {
                    "data": key,
                    "variant": variant.name,
                    "scored": label,
                    "runs": len(runs),
                    "accuracy": 1 - np.mean(errors) / n,
                    "errors": " ".join(map(str, errors)),
                }
            )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", choices=sorted(DATA))
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:FIELD=VALUE,... a recipe variant (default: the recipe itself, 'base')",
    )
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per fold (default 3)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1, help="trainings at once on this machine")
    parser.add_argument("--cluster", help="a Dask scheduler's address, tcp://host:8786")
    parser.add_argument("--data-dir", help="data directory (default: $NPCONV_DATA)")
    parser.add_argument("--quick", action="store_true", help="600 images, 1 epoch: a smoke test, no JSON")
    args = parser.parse_args(argv)

    variants = [parse_variant(v, args.quick) for v in (args.variant or ["base:"])]
    runner = runner_for(args.jobs, args.cluster)
    folder = CACHE / ("quick" if args.quick else "") / args.data
    search = tuning.plan(
        DATA[args.data],
        folder,
        variants=variants,
        folds=args.folds,
        seeds=args.seeds,
        base=RECIPES[DATA[args.data]],
        data_dir=args.data_dir,
        views=VIEWS,
        limit=QUICK_IMAGES if args.quick else None,
    )
    print(f"{len(search.jobs)} jobs, {len(search.cached)} of them cached in {search.cache.folder}", flush=True)
    result = tuning.run(search, runner, Bars())
    variant_scores = [scores(result, v) for v in range(len(search.variants))]

    print()
    print_table(
        rows_for_table(args.data, result, variant_scores),
        [
            ("data", "data", "s"),
            ("variant", "variant", "s"),
            ("scored", "scored as", "s"),
            ("runs", "runs", "d"),
            ("accuracy", "CV accuracy", ".4f"),
            ("errors", "errors per run", "s"),
        ],
    )
    if args.quick:
        return 0
    path = RESULTS / "accuracy.json"
    saved = json.loads(path.read_text()) if path.exists() else {"rows": []}
    row_id = f"{args.data}-cv"
    stamp = {"measured": time.strftime("%Y-%m-%d %H:%M"), "commit": provenance()["commit"]}
    new = []
    for v, (variant, scored) in enumerate(zip(search.variants, variant_scores)):
        recipe = vars(tuning.trained_recipe(variant.recipe))
        new.append(
            {
                "id": row_id,
                "data": DATA[args.data],
                "framework": "npconv",
                "target": None,
                "held_out": f"{args.folds}-fold stratified CV (folds of seed 0) of the "
                f"{search.described[search.data_key[v]]}",
                "model": f"{recipe['arch']} variant {variant.name!r}",
                "epochs": recipe["epochs"],
                "batch": recipe["batch_size"],
                "recipe": recipe,
                "seeds": list(range(args.seeds)),
                "images": len(search.datasets[search.data_key[v]]),
                "scores": scored,
                **stamp,
            }
        )
    replaced = {(r["id"], r["model"]) for r in new}
    rows = [r for r in saved["rows"] if (r["id"], r.get("model")) not in replaced] + new
    write_json("accuracy", {"rows": rows})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
