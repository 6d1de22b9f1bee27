"""Choose a recipe by k-fold cross-validation with several training seeds, never by one split.

For data set ``D`` and each variant of its recipe (``--variant NAME:FIELD=VALUE,...``), every fold of
a k-fold stratified split (folds of seed 0, the same for every variant and seed, so variants are
compared on the same images) trains one model per training seed and keeps its probabilities on the
fold's held-out images. From those the table scores, per variant:

* ``single``: one model, the mean over seeds of the cross-validated accuracy (and its per-seed spread);
* ``tta:shift`` / ``tta:flip``: the same models, predictions averaged over shifted / mirrored views
  (:mod:`npconv.apps.tta`; flips only for a model trained with flips);
* ``ensemble of n``: the first n seeds' models averaged as ``npconv train --ensemble n`` does, by
  their mean logit (the argmax of the mean log-probability), for n = 2 .. ``--seeds``;

so test-time augmentation and averaging are measured without training anything again.

Which images: never the held-out data of ``benchmarks/accuracy.py``. SIGNS: ``train_signs.h5`` only.
sign-language-digits and smiles: the training part of the recipe's 15% split of seed 0 (the part
``npconv train`` trains on). Probabilities are kept in ``runs/cv/KEY/<hash of the recipe>/`` (not
committed), so an interrupted run resumes where it stopped and a variant measured once is scored again
without training; the summary rows, with every fold's accuracy per seed, are merged into
``benchmarks/results/accuracy.json`` (row ids ``signs-cv``, ``sld-cv``, ``smiles-cv``).

Run: ``NPCONV_DATA=... python benchmarks/recipe_cv.py sld --seeds 3 --variant base: --variant
ls:label_smoothing=0.1`` (``--folds`` 5 by default; ``--quick`` is a smoke test on 600 images,
1 epoch, no JSON).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from _timing import RESULTS, print_table, write_json
from accuracy import cli_data
from provenance import provenance
from npconv.apps import RECIPES, datasets, training
from npconv.apps import tta as test_time
from npconv.data import kfold_indices

DATA = {"signs": "signs", "sld": "sign-language-digits", "smiles": "smiles"}
CACHE = Path(__file__).resolve().parents[1] / "runs" / "cv"


def cv_data(key: str, recipe, data_dir, quick: bool):
    """``(data, described)``: the images cross-validated for data set ``key``: what ``npconv train``
    trains on, loaded as ``accuracy.py`` loads it (:func:`accuracy.cli_data`), its held-out part left out."""
    data, _, held_out = cli_data(DATA[key], recipe, data_dir, quick)
    return data, f"the {len(data)} training images of npconv train {DATA[key]} (held out, never read: {held_out})"


def parse_variant(text: str, base) -> tuple[str, object]:
    """``"NAME:field=value,field=value"`` -> ``(NAME, recipe)``; each value is read as the type of the
    base recipe's field (``label_smoothing=0`` is the float 0.0: the same recipe, the same cache)."""
    name, _, changes = text.partition(":")
    fields = {f.name for f in dataclasses.fields(base)}
    updates = {}
    for item in filter(None, changes.split(",")):
        key, _, value = item.partition("=")
        if key not in fields:
            sys.exit(f"--variant {text!r}: {key!r} is not a recipe field ({', '.join(sorted(fields))})")
        current = getattr(base, key)
        if isinstance(current, bool):
            updates[key] = value.lower() in ("1", "true", "yes", "on")
        elif isinstance(current, (int, float)):
            updates[key] = type(current)(float(value) if isinstance(current, float) else int(value))
        else:
            updates[key] = None if value.lower() == "none" else value
    return name, dataclasses.replace(base, **updates)


def trained_recipe(recipe):
    """The recipe each fold's model trains with: one model (this script averages seeds itself) and no
    test-time augmentation (it scores every view itself)."""
    return dataclasses.replace(recipe, ensemble=1, tta=None)


def cache_folder(key: str, recipe, quick: bool) -> Path:
    """Where a variant's fold probabilities are kept: named by a hash of the recipe trained, so a
    changed recipe never reads another's models (``recipe.json`` in it says which recipe it is)."""
    fields = json.dumps(vars(trained_recipe(recipe)), sort_keys=True, default=list)
    folder = CACHE / ("quick" if quick else "") / key / hashlib.sha1(fields.encode()).hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "recipe.json").write_text(fields + "\n")
    return folder


def fold_probabilities(path: Path, data, recipe, train_idx, test_idx, seed: int) -> dict:
    """The fold's held-out probabilities under each view (``plain``, ``shift``, ``flip``), cached in ``path``."""
    if path.exists():
        with np.load(path) as saved:
            return dict(saved)
    start = time.perf_counter()
    result = training.train(data.subset(train_idx), trained_recipe(recipe), recipe.arch, seed=seed, verbose=0)
    x = datasets.to_float(data.x[test_idx])
    modes = ["shift"] + (["flip"] if test_time.trained_with_flips(result.model.metadata) else [])
    probs = {"plain": test_time.predict(result.model, x)}
    probs.update({m: test_time.predict(result.model, x, m) for m in modes})
    probs = {k: training.probabilities(v) for k, v in probs.items()}
    probs["seconds"] = np.array(time.perf_counter() - start)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **probs)
    return probs


def run_variant(key, name, recipe, data, folds, seeds, quick) -> dict:
    """Train every (fold, seed) of one variant; the row with its scores (see the module docstring)."""
    y = data.y
    scores: dict[str, list] = {}
    ensemble = {}
    cache = cache_folder(key, recipe, quick)
    for seed in seeds:
        per_view: dict[str, np.ndarray] = {}
        for i, (train_idx, test_idx) in enumerate(folds):
            path = cache / f"seed{seed}_fold{i + 1}.npz"
            probs = fold_probabilities(path, data, recipe, train_idx, test_idx, seed=100 * seed + i)
            for view, p in probs.items():
                if view != "seconds":
                    per_view.setdefault(view, np.zeros((len(y), p.shape[1])))[test_idx] = p
            acc = np.mean(probs["plain"].argmax(1) == y[test_idx])
            print(f"  {key} {name} seed {seed} fold {i + 1}: {acc:.4f} ({float(probs['seconds']):.0f}s)",
                  flush=True)
        for view, p in per_view.items():
            label = "single" if view == "plain" else f"tta:{view}"
            scores.setdefault(label, []).append(
                {"seed": seed, "errors": int(np.sum(p.argmax(1) != y)),
                 "folds": [float(np.mean(p[te].argmax(1) == y[te])) for _, te in folds]})
            ensemble.setdefault(view, []).append(p)
    for view, ps in ensemble.items():
        for n in range(2, len(ps) + 1):   # the first n seeds' models averaged
            # npconv.apps.ensemble averages logits: the argmax of the mean log-probability is its prediction
            mean = np.mean(np.log(np.clip(ps[:n], 1e-30, 1.0)), axis=0)
            label = f"ensemble of {n}" + ("" if view == "plain" else f"+tta:{view}")
            scores[label] = [{"seeds": list(seeds[:n]), "errors": int(np.sum(mean.argmax(1) != y)),
                              "folds": [float(np.mean(mean[te].argmax(1) == y[te])) for _, te in folds]}]
    return {"variant": name, "recipe": vars(trained_recipe(recipe)).copy(), "scores": scores}


def rows_for_table(key: str, results: list[dict], n: int) -> list[dict]:
    rows = []
    for r in results:
        for label, runs in r["scores"].items():
            errors = [x["errors"] for x in runs]
            rows.append({"data": key, "variant": r["variant"], "scored": label, "runs": len(runs),
                         "accuracy": 1 - np.mean(errors) / n, "errors": " ".join(map(str, errors))})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", choices=sorted(DATA))
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME:FIELD=VALUE,... a recipe variant (default: the recipe itself, 'base')")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per fold (default 3)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--data-dir", help="data directory (default: $NPCONV_DATA)")
    parser.add_argument("--quick", action="store_true", help="600 images, 1 epoch: a smoke test, no JSON")
    args = parser.parse_args(argv)

    base = RECIPES[DATA[args.data]]
    variants = [parse_variant(v, base) for v in (args.variant or ["base:"])]
    if args.quick:
        variants = [(n, dataclasses.replace(r, epochs=1)) for n, r in variants]
    seeds = list(range(args.seeds))
    results = []
    for name, recipe in variants:
        # the same images and folds for every variant; loaded at the variant's size and colour mode
        data, described = cv_data(args.data, recipe, args.data_dir, args.quick)
        folds = list(kfold_indices(data.y, args.folds, seed=0))
        results.append(run_variant(args.data, name, recipe, data, folds, seeds, args.quick))

    print()
    print_table(rows_for_table(args.data, results, len(data)),
                [("data", "data", "s"), ("variant", "variant", "s"), ("scored", "scored as", "s"),
                 ("runs", "runs", "d"), ("accuracy", "CV accuracy", ".4f"), ("errors", "errors per run", "s")])
    if args.quick:
        return 0
    path = RESULTS / "accuracy.json"
    saved = json.loads(path.read_text()) if path.exists() else {"rows": []}
    row_id = f"{args.data}-cv"
    stamp = {"measured": time.strftime("%Y-%m-%d %H:%M"), "commit": provenance()["commit"]}
    new = [{"id": row_id, "data": DATA[args.data], "framework": "npconv", "target": None,
            "held_out": f"{args.folds}-fold stratified CV (folds of seed 0) of {described}",
            "model": f"{r['recipe']['arch']} variant {r['variant']!r}", "epochs": r["recipe"]["epochs"],
            "batch": r["recipe"]["batch_size"], "recipe": r["recipe"], "seeds": seeds, "images": len(data),
            "scores": r["scores"], **stamp} for r in results]
    replaced = {(r["id"], r["model"]) for r in new}
    rows = [r for r in saved["rows"] if (r["id"], r.get("model")) not in replaced] + new
    write_json("accuracy", {"rows": rows})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
