"""How the app models hold up on pictures unlike their data set's, and whether they say so (issue 30).

For a trained SIGNS model (``--model``; default: ``npconv train signs`` into ``runs/benchmarks/
signs.npz``, trained here when missing), on the 120 pictures of ``test_signs.h5`` as they are and
changed by each of :data:`npconv.data.corruptions.CORRUPTIONS` (grayscale, dimmed, washed out,
zoomed out, mirrored, JPEG q10, blurred, rotated 25, noise, white balance; see that module for how
each is made), and on the Sign Language Digits photos of 0, 1, 2, 4 and 5 (other people's hands,
another camera; 100 px resized to 64 by the area filter, as ``npconv predict`` resizes a photo):

* accuracy, mean top probability and expected calibration error (15 bins), raw;
* the same after the model's calibration (temperature scaling, :mod:`npconv.apps.calibration`),
  with the fraction of pictures the verdict calls "unsure" and the accuracy on the others.

The changed sets' pictures pooled give the headline ECE ("changed"). Pictures of nothing the model
knows (``--ood``): 60 of uniform random noise, 60 blank walls (uniform colours), 60 faces (SMILEsmileD
photos, grey copied to RGB): the fraction called "unsure" (ideally all).

With ``--smiles-model PATH`` also the smile model zero-shot on the 150 pictures of
``test_happy.h5``, as they are and changed.

Run: ``NPCONV_DATA=/path/to/datasets python benchmarks/robustness.py [--model M.npz]
[--smiles-model S.npz] [--out FILE]``; prints the table and writes ``benchmarks/results/
robustness.json`` (or ``--out``) with its provenance.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from _timing import print_table, write_json

import npconv as nc
from npconv.apps import calibration, datasets
from npconv.apps.heads import probabilities
from npconv.apps.model_info import metadata
from npconv.data import find_file
from npconv.data.corruptions import CORRUPTIONS

RUNS = Path(__file__).resolve().parents[1] / "runs" / "benchmarks"
SLD_DIGITS = ("0", "1", "2", "4", "5")
N_OOD = 60


def measure(model, x_uint8: np.ndarray, y: np.ndarray | None) -> dict:
    """The row of one set: raw and calibrated accuracy, mean top probability, ECE, unsure fraction."""
    meta = metadata(model)
    x = datasets.to_float(x_uint8, meta.get("value_scale", 255))
    probs = probabilities(model.predict(x, batch_size=256)).astype(np.float64)
    verdicts = calibration.judge(model, x, probs)
    calibrated = np.stack([v["probabilities"] for v in verdicts])
    unsure = np.array([v["unsure"] for v in verdicts])
    row = {
        "n": int(len(x)),
        "top_p": float(probs.max(1).mean()),
        "top_p_cal": float(calibrated.max(1).mean()),
        "unsure": float(unsure.mean()),
        "distance_median": (
            None if verdicts[0]["distance"] is None else float(np.median([v["distance"] for v in verdicts]))
        ),
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


def model_rows(model, x, y, extra: dict[str, tuple] | None = None) -> list[dict]:
    """Rows for the clean set, each change of it, and the ``extra`` sets ``{name: (x, y)}``."""
    rows = [{"set": "as they are", "kind": "clean", **measure(model, x, y)}]
    for name, change in CORRUPTIONS.items():
        rows.append({"set": name, "kind": "changed", **measure(model, change(x), y)})
        print(f"  {name}: {rows[-1]['accuracy']:.3f}", flush=True)
    for name, (xe, ye) in (extra or {}).items():
        rows.append({"set": name, "kind": "other photos" if ye is not None else "unknown", **measure(model, xe, ye)})
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


def markdown(results: dict) -> str:
    """The results JSON's tables in Markdown (for docs/benchmarks/robustness.md)."""
    cols = [
        ("set", "pictures", "s"),
        ("n", "n", "d"),
        ("accuracy", "accuracy", ".3f"),
        ("top_p", "mean top p", ".3f"),
        ("ece", "ECE", ".3f"),
        ("ece_cal", "ECE calibrated", ".3f"),
        ("unsure", "called unsure", ".2f"),
    ]
    out = []
    for name, entry in results["models"].items():
        out += [
            f"{name} model `{entry['model']['file']}`:",
            "",
            "| " + " | ".join(h for _, h, _ in cols) + " |",
            "|" + "---|" * len(cols),
        ]
        for row in entry["rows"]:
            out.append("| " + " | ".join("-" if row.get(k) is None else format(row[k], f) for k, _, f in cols) + " |")
        out.append("")
    return "\n".join(out)


def default_signs_model(data_dir) -> Path:
    path = RUNS / "signs.npz"
    if not path.exists():
        from npconv.cli import main as npconv_main

        print(f"  training the default SIGNS model into {path} ...", flush=True)
        argv = ["train", "signs", "--out", str(path), "--no-report", "--quiet"]
        if npconv_main(argv + (["--data-dir", data_dir] if data_dir else [])) != 0:
            raise SystemExit("npconv train signs failed")
    return path


def signs_rows(args) -> dict:
    """The SIGNS model's rows: test_signs.h5 as it is and changed, other hands, pictures of nothing."""
    path = Path(args.model) if args.model else default_signs_model(args.data_dir)
    model = nc.load_model(path)
    shape = tuple(model.input_shape[1:])
    test = datasets.load_for_input(str(find_file("test_signs.h5", args.data_dir)), shape)
    print(f"SIGNS model {path}:", flush=True)
    extra = {"Sign Language Digits 0,1,2,4,5": sign_language_digits(shape, args.data_dir)}
    extra.update({name: (x, None) for name, x in unknown_pictures(shape, args.data_dir).items()})
    rows = model_rows(model, test.x, test.y, extra)
    rows.append(pooled(rows, "changed"))
    table(rows)
    return {"model": model_summary(model, path), "rows": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="SIGNS model (default: npconv train signs, kept in runs/benchmarks)")
    parser.add_argument("--smiles-model", help="smile model to try zero-shot on the Happy House")
    parser.add_argument("--no-signs", action="store_true", help="only the smile model's rows")
    parser.add_argument("--markdown", metavar="JSON", help="print the tables of a results JSON in Markdown, and stop")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", help="results JSON (default benchmarks/results/robustness.json)")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())))
        return 0
    results = {"models": {}}
    if not args.no_signs:
        results["models"]["signs"] = signs_rows(args)
    if args.smiles_model:
        smiles = nc.load_model(args.smiles_model)
        happy = datasets.load_for_input(str(find_file("test_happy.h5", args.data_dir)), smiles.input_shape[1:])
        print(f"\nsmile model {args.smiles_model}, zero-shot on test_happy.h5:", flush=True)
        rows = model_rows(smiles, happy.x, happy.y)
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
    out = write_json("robustness", {"corruptions": list(CORRUPTIONS), **results}, args.out)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
