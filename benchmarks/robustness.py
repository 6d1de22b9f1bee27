"""How the app models hold up on pictures unlike their data set's, and whether they say so (issue 30).

For a trained SIGNS model (``--model``; default: ``npconv train signs`` into ``runs/benchmarks/
signs.npz``, trained here when missing), on the 120 pictures of ``test_signs.h5`` as they are and
changed by each of :data:`npconv.data.corruptions.CORRUPTIONS` (grayscale, dimmed, washed out,
zoomed out, mirrored, JPEG q10, blurred, rotated 25, noise, white balance; see that module for how
each is made), in front of a cluttered background (their wall replaced by crops of the Happy
House's scenes, :func:`npconv.data.corruptions.cluttered_background`), and on the Sign Language
Digits photos of 0, 1, 2, 4 and 5 (other people's hands, another camera; 100 px resized to 64 by
the area filter, as ``npconv predict`` resizes a photo):

* accuracy, mean top probability and expected calibration error (15 bins), raw;
* the same after the model's calibration (temperature scaling, :mod:`npconv.apps.calibration`),
  with the fraction of pictures the verdict calls "unsure" and the accuracy on the others.

The ten changed sets' pictures pooled give the headline ECE ("changed"; the cluttered set is
reported beside them, not pooled, so that the headline stays the issue's). Pictures of nothing the
model knows: 60 of uniform random noise, 60 blank walls (uniform colours), 60 faces (SMILEsmileD
photos, grey copied to RGB): the fraction called "unsure" (ideally all).

With ``--torch-recipe FILE`` (or ``default``; repeatable) also the PyTorch twin of the SIGNS model
trained with that recipe on the same sets (``robustness_torch.py``); with ``--no-signs``, only the
twins. With ``--smiles-model PATH`` also the smile model zero-shot on the 150 pictures of
``test_happy.h5``, as they are and changed.

Run: ``NPCONV_DATA=/path/to/datasets python benchmarks/robustness.py [--model M.npz]
[--torch-recipe default] [--smiles-model S.npz] [--out FILE]``; prints the tables and writes
``benchmarks/results/robustness.json`` (or ``--out``) with its provenance. ``--markdown JSON...``
prints the tables of results files for the docs.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path

import numpy as np
from _timing import print_table, write_json

import npconv as nc
from npconv.apps import calibration, datasets
from npconv.apps.heads import probabilities
from npconv.apps.model_info import metadata
from npconv.data import find_file
from npconv.data.corruptions import CORRUPTIONS, cluttered_background

RUNS = Path(__file__).resolve().parents[1] / "runs" / "benchmarks"
SLD_DIGITS = ("0", "1", "2", "4", "5")
N_OOD = 60
CLUTTERED = "cluttered background"
SIGNS_SHAPE = (64, 64, 3)  # what npconv train signs builds, and its PyTorch twin


def measure(model, x_uint8: np.ndarray, y: np.ndarray | None) -> dict:
    """The row of one set for an npconv model: its probabilities, and its calibration's verdicts."""
    meta = metadata(model)
    x = datasets.to_float(x_uint8, meta.get("value_scale", 255))
    probs = probabilities(model.predict(x, batch_size=256)).astype(np.float64)
    verdicts = calibration.judge(model, x, probs)
    distances = None if verdicts[0]["distance"] is None else [v["distance"] for v in verdicts]
    calibrated = np.stack([v["probabilities"] for v in verdicts])
    return scores(probs, calibrated, np.array([v["unsure"] for v in verdicts]), y, distances)


def scores(probs, calibrated, unsure, y, distances=None) -> dict:
    """Accuracy, mean top probability, ECE, raw and calibrated, and the unsure fraction of one set."""
    row = {
        "n": int(len(probs)),
        "top_p": float(probs.max(1).mean()),
        "top_p_cal": float(calibrated.max(1).mean()),
        "unsure": float(unsure.mean()),
        "distance_median": None if distances is None else float(np.median(distances)),
    }
    if y is not None:
        pred = probs.argmax(1)
        sure = ~unsure
        row.update(
            accuracy=float(np.mean(pred == y)),
            ece=calibration.expected_calibration_error(probs, y),
            ece_cal=calibration.expected_calibration_error(calibrated, y),
            accuracy_sure=float(np.mean(pred[sure] == y[sure])) if sure.any() else None,
        )
    row["_probs"], row["_cal"], row["_y"] = probs, calibrated, y
    return row


def sign_language_digits(input_shape, data_dir) -> tuple[np.ndarray, np.ndarray]:
    """The Sign Language Digits photos of the digits SIGNS also has, labelled as SIGNS labels them."""
    folder = Path(data_dir or nc.data.data_dir()) / "sign-language-digits"
    data = datasets.load_for_input(str(folder), input_shape, cache=True)
    digit = np.array([int(data.class_names[k]) for k in data.y])
    keep = np.isin(digit, [int(d) for d in SLD_DIGITS])
    return data.x[keep], digit[keep]


def unknown_pictures(input_shape, data_dir) -> dict[str, np.ndarray]:
    """Pictures of nothing a hand-sign model knows: noise, blank walls, faces (uint8, the model's shape)."""
    n_H, n_W, n_C = input_shape
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (N_OOD, n_H, n_W, n_C), dtype=np.uint8)
    walls = np.broadcast_to(rng.integers(0, 256, (N_OOD, 1, 1, n_C), dtype=np.uint8), (N_OOD, n_H, n_W, n_C)).copy()
    walls[:4] = np.array([255, 128, 200, 0], np.uint8)[
        :, None, None, None
    ]  # white, mid grey, light grey, black among the random colours
    faces_dir = Path(data_dir or nc.data.data_dir()) / "smiles"
    faces = datasets.load_for_input(str(faces_dir), input_shape, cache=True)
    pick = np.random.default_rng(0).choice(len(faces), N_OOD, replace=False)
    return {"random noise": noise, "blank wall": walls, "faces (SMILEsmileD)": faces.x[pick]}


def picture_sets(x, y, scenes=None, extra: dict[str, tuple] | None = None) -> list[tuple]:
    """``(name, kind, x, y)`` of the clean set, each change of it, the cluttered background (with
    ``scenes``) and the ``extra`` sets ``{name: (x, y)}`` (``y`` None: pictures of nothing known)."""
    sets = [("as they are", "clean", x, y)]
    sets += [(name, "changed", change(x), y) for name, change in CORRUPTIONS.items()]
    if scenes is not None:
        sets.append((CLUTTERED, "cluttered", cluttered_background(x, scenes), y))
    for name, (xe, ye) in (extra or {}).items():
        sets.append((name, "other photos" if ye is not None else "unknown", xe, ye))
    return sets


def model_rows(score, sets: list[tuple]) -> list[dict]:
    """A row per set of :func:`picture_sets`, ``score(x, y)`` giving its figures (:func:`scores`)."""
    rows = []
    for name, kind, x, y in sets:
        rows.append({"set": name, "kind": kind, **score(x, y)})
        if kind in ("changed", "cluttered"):
            print(f"  {name}: {rows[-1]['accuracy']:.3f}", flush=True)
    return rows


def pooled(rows: list[dict], kind: str) -> dict:
    """ECE and accuracy of the pictures of every row of ``kind`` taken together."""
    chosen = [r for r in rows if r["kind"] == kind]
    probs, cal = np.concatenate([r["_probs"] for r in chosen]), np.concatenate([r["_cal"] for r in chosen])
    y = np.concatenate([r["_y"] for r in chosen])
    return {
        "set": f"all {kind} pooled",
        "kind": "pooled",
        "n": int(len(y)),
        "accuracy": float(np.mean(probs.argmax(1) == y)),
        "top_p": float(probs.max(1).mean()),
        "top_p_cal": float(cal.max(1).mean()),
        "ece": calibration.expected_calibration_error(probs, y),
        "ece_cal": calibration.expected_calibration_error(cal, y),
    }


def model_summary(model, path) -> dict:
    meta = model.metadata or {}
    cal = meta.get("calibration") or {}
    return {
        "file": str(path),
        "dataset": meta.get("dataset"),
        "recipe": meta.get("recipe"),
        "trained": meta.get("trained"),
        "calibration": {k: v for k, v in cal.items() if k != "features"} or None,
        "max_distance": (cal.get("features") or {}).get("max_distance"),
    }


def table(rows: list[dict]) -> None:
    print_table(
        rows,
        [
            ("set", "pictures", "s"),
            ("n", "n", "d"),
            ("accuracy", "accuracy", ".3f"),
            ("top_p", "mean top p", ".3f"),
            ("ece", "ECE", ".3f"),
            ("top_p_cal", "top p (cal.)", ".3f"),
            ("ece_cal", "ECE (cal.)", ".3f"),
            ("unsure", "unsure", ".3f"),
            ("accuracy_sure", "acc. when sure", ".3f"),
            ("distance_median", "median dist.", ".2f"),
        ],
    )


def markdown(results: list[dict]) -> str:
    """The tables of results JSON files in Markdown (for docs/benchmarks/robustness.md): one per
    model, then, for several models, their accuracy side by side."""
    cols = [
        ("set", "pictures", "s"),
        ("n", "n", "d"),
        ("accuracy", "accuracy", ".3f"),
        ("top_p", "mean top p", ".3f"),
        ("ece", "ECE", ".3f"),
        ("ece_cal", "ECE calibrated", ".3f"),
        ("unsure", "called unsure", ".2f"),
    ]
    models = {name: entry for result in results for name, entry in result["models"].items()}
    out = []
    for name, entry in models.items():
        about = entry["model"]
        if about.get("file"):
            out.append(f"{name} model `{about['file']}`:")
        else:
            fields = json.dumps(about["recipe_fields"])
            trained = f"{about['epochs']} epochs on {about['train_images']} pictures in {about['wall_s']:.0f} s"
            out.append(f"{name}: recipe `{fields}`, {trained}:")
        out += ["", "| " + " | ".join(h for _, h, _ in cols) + " |", "|" + "---|" * len(cols)]
        out += [_cells(row, cols) for row in entry["rows"]]
        out.append("")
    if len(models) > 1:
        sets = list(dict.fromkeys(row["set"] for entry in models.values() for row in entry["rows"]))
        out += ["Accuracy (for pictures of nothing: the share called unsure):", ""]
        out += ["| pictures | " + " | ".join(models) + " |", "|" + "---|" * (len(models) + 1)]
        for name in sets:
            cells = []
            for entry in models.values():
                row = next((r for r in entry["rows"] if r["set"] == name), {})
                value = row.get("accuracy", row.get("unsure"))
                cells.append("-" if value is None else f"{value:.3f}" if "accuracy" in row else f"unsure {value:.2f}")
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _cells(row: dict, cols) -> str:
    return "| " + " | ".join("-" if row.get(k) is None else format(row[k], f) for k, _, f in cols) + " |"


def default_signs_model(data_dir) -> Path:
    path = RUNS / "signs.npz"
    if not path.exists():
        from npconv.cli import main as npconv_main

        print(f"  training the default SIGNS model into {path} ...", flush=True)
        argv = ["train", "signs", "--out", str(path), "--no-report", "--quiet"]
        if npconv_main(argv + (["--data-dir", data_dir] if data_dir else [])) != 0:
            raise SystemExit("npconv train signs failed")
    return path


def signs_sets(shape, data_dir) -> list[tuple]:
    """The SIGNS model's sets: test_signs.h5 as it is and changed, in front of the Happy House's
    scenes (when test_happy.h5 is found), other hands, pictures of nothing."""
    test = datasets.load_for_input(str(find_file("test_signs.h5", data_dir)), shape)
    scenes = None
    if shape[-1] != 3:
        print("  a grey model: no cluttered-background row (the wall is found by its colour)", flush=True)
    else:
        try:
            scenes = datasets.load_for_input(str(find_file("test_happy.h5", data_dir)), shape).x
        except FileNotFoundError:
            print("  no test_happy.h5: no cluttered-background row", flush=True)
    extra = {"Sign Language Digits 0,1,2,4,5": sign_language_digits(shape, data_dir)}
    extra.update({name: (x, None) for name, x in unknown_pictures(shape, data_dir).items()})
    return picture_sets(test.x, test.y, scenes, extra)


def signs_rows(model, path, sets) -> dict:
    """The npconv SIGNS model's rows on :func:`signs_sets`."""
    print(f"SIGNS model {path}:", flush=True)
    rows = model_rows(partial(measure, model), sets)
    rows.append(pooled(rows, "changed"))
    table(rows)
    return {"model": model_summary(model, path), "rows": rows}


def twin_rows(spec: str, sets, args) -> tuple[str, dict]:
    """The PyTorch twin's rows (:mod:`robustness_torch`) on :func:`signs_sets`: its softmax, and a
    temperature fitted on the clean set as ``npconv train`` fits the npconv model's; "unsure" is
    only the calibrated top probability under the threshold (the npconv verdict's other checks
    need the npconv model)."""
    import robustness_torch

    _, _, x_clean, y_clean = sets[0]
    summary, predict = robustness_torch.train_twin(spec, x_clean.shape[1:], args)
    temperature = calibration.fit_temperature(predict(x_clean), y_clean)
    threshold = calibration.DEFAULT_UNSURE_BELOW
    summary["calibration"] = {"temperature": temperature, "unsure_below": threshold, "fitted_on": "as they are"}

    def score(x, y):
        probs = predict(x)
        calibrated = calibration.with_temperature(probs, temperature)
        return scores(probs, calibrated, calibrated.max(1) < threshold, y)

    name = f"signs, PyTorch twin ({summary['recipe_name']})"
    print(f"\n{name}:", flush=True)
    rows = model_rows(score, sets)
    rows.append(pooled(rows, "changed"))
    table(rows)
    return name, {"model": summary, "rows": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="SIGNS model (default: npconv train signs, kept in runs/benchmarks)")
    parser.add_argument("--smiles-model", help="smile model to try zero-shot on the Happy House")
    parser.add_argument("--no-signs", action="store_true", help="no npconv SIGNS model's rows")
    parser.add_argument(
        "--markdown", metavar="JSON", nargs="+", help="print the tables of results JSON files in Markdown, and stop"
    )
    parser.add_argument("--data-dir")
    parser.add_argument("--out", help="results JSON (default benchmarks/results/robustness.json)")
    robustness_torch_options(parser)
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown([json.loads(Path(path).read_text()) for path in args.markdown]))
        return 0
    results = {"models": {}}
    model = None
    if not args.no_signs:
        path = Path(args.model) if args.model else default_signs_model(args.data_dir)
        model = nc.load_model(path)
    if model is not None or args.torch_recipe:
        sets = signs_sets(tuple(model.input_shape[1:]) if model is not None else SIGNS_SHAPE, args.data_dir)
    if model is not None:
        results["models"]["signs"] = signs_rows(model, path, sets)
    for spec in args.torch_recipe or []:
        name, entry = twin_rows(spec, sets, args)
        results["models"][name] = entry
    if args.smiles_model:
        smiles = nc.load_model(args.smiles_model)
        happy = datasets.load_for_input(str(find_file("test_happy.h5", args.data_dir)), smiles.input_shape[1:])
        print(f"\nsmile model {args.smiles_model}, zero-shot on test_happy.h5:", flush=True)
        rows = model_rows(partial(measure, smiles), picture_sets(happy.x, happy.y))
        rows.append(pooled(rows, "changed"))
        table(rows)
        results["models"]["smiles on the Happy House"] = {
            "model": model_summary(smiles, args.smiles_model),
            "rows": rows,
        }
    for entry in results["models"].values():
        for row in entry["rows"]:
            for key in [k for k in row if k.startswith("_")]:
                del row[key]
    if args.quick and not args.out:
        print("\n--quick: a smoke test, no JSON written (unless --out)")
        return 0
    out = write_json("robustness", {"corruptions": list(CORRUPTIONS), **results}, args.out)
    print(f"\nwrote {out}")
    return 0


def robustness_torch_options(parser) -> None:
    group = parser.add_argument_group("the PyTorch twin (benchmarks/robustness_torch.py)")
    group.add_argument(
        "--torch-recipe",
        action="append",
        metavar="FILE",
        help="train the PyTorch twin of the SIGNS model with this recipe file ('default': the SIGNS recipe); "
        "repeat for several",
    )
    group.add_argument("--torch-seed", type=int, default=0)
    group.add_argument("--torch-threads", type=int, default=1, help="PyTorch's threads (default 1)")
    group.add_argument("--quick", action="store_true", help="twins of 1 epoch on 64 pictures; a JSON only with --out")


if __name__ == "__main__":
    sys.exit(main())
