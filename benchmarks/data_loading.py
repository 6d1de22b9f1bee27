"""Data-loading benchmark: how long npconv takes to have each data set in memory as uint8 arrays.

Rows (median wall seconds of ``--repeats`` calls after one untimed warm-up, so image files are read
from the operating system's page cache: the figures are decoding and resizing, not disk):

* ``synthetic``: ``make_smiley_faces(600)``, the built-in set ``npconv train`` uses without data.
  Target < 2 s.
* ``smiles-200``: ``load_dataset("smiles", max_per_class=100, color_mode="grayscale")``: 200 JPEGs,
  the first 100 of each class, decoded by ``load_image_folder``'s worker threads. Target < 5 s.
* ``smiles-200-cached``: the same with ``cache=True`` once the cache is filled (a fresh cache folder
  per run): the ``.npz`` read-back.
* ``smiles-all``, ``sld-all``: every image of ``smiles/`` (64x64 grayscale) and of
  ``sign-language-digits/`` (100x100 RGB photos resized to 64x64), no cache.
* ``signs-h5``: ``load_signs_dataset()``: both course ``.h5`` files (1,200 images).

The targets are the bounds the unit tests once asserted; they live here because a timed assertion
fails on a loaded machine. Run: ``NPCONV_DATA=/path/to/datasets python benchmarks/data_loading.py
[--repeats 5]``; prints a table and writes ``benchmarks/results/data_loading.json``.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from _timing import median_seconds, print_table, write_json

from npconv.data import load_dataset, load_signs_dataset, make_smiley_faces
from npconv.data.folders import WORKERS
from npconv.data.paths import data_dir as resolve_data_dir


def rows(repeats: int, data_dir) -> list[dict]:
    smiles = {"source": "smiles", "data_dir": data_dir, "max_per_class": 100, "color_mode": "grayscale"}
    cases = [
        ("synthetic", "make_smiley_faces(600): 64x64 RGB", 2.0, lambda: make_smiley_faces(600, seed=0).x),
        ("smiles-200", "smiles/, 100 per class, 64x64 grayscale", 5.0, lambda: load_dataset(**smiles).x),
        (
            "smiles-200-cached",
            "the same, cache=True (cache filled)",
            None,
            lambda: load_dataset(**smiles, cache=True).x,
        ),
        (
            "smiles-all",
            "smiles/, every image, 64x64 grayscale",
            None,
            lambda: load_dataset("smiles", data_dir=data_dir, color_mode="grayscale").x,
        ),
        (
            "sld-all",
            "sign-language-digits/, 100x100 JPEG to 64x64 RGB",
            None,
            lambda: load_dataset("sign-language-digits", data_dir=data_dir).x,
        ),
        ("signs-h5", "train_signs.h5 + test_signs.h5, 64x64 RGB", None, lambda: load_signs_dataset(data_dir)[0:3:2]),
    ]
    out = []
    for row_id, what, target, load in cases:
        loaded = {}
        seconds = median_seconds(lambda: loaded.update(x=load()), repeats)
        images = sum(len(x) for x in loaded["x"]) if isinstance(loaded["x"], tuple) else len(loaded["x"])
        out.append(
            {
                "id": row_id,
                "what": what,
                "images": images,
                "seconds": seconds,
                "target_s": target,
                "met": None if target is None else seconds < target,
            }
        )
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="where to write the JSON (default benchmarks/results/)")
    args = parser.parse_args()
    data_dir = resolve_data_dir(None)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XDG_CACHE_HOME"] = cache  # a fresh cache: the warm-up call fills it
        results = rows(args.repeats, data_dir)
    print(
        f"Median wall seconds of {args.repeats} calls after one warm-up; "
        f"image folders decoded on {WORKERS} threads; data from {data_dir}."
    )
    print_table(
        results,
        [
            ("id", "row", "s"),
            ("what", "what", "s"),
            ("images", "images", "d"),
            ("seconds", "seconds", ".3f"),
            ("target_s", "target (s)", "g"),
            ("met", "met", ""),
        ],
    )
    load_average = os.getloadavg()[0]  # the machine is shared: a busy one stretches every row
    print(f"load average (1 min) at the end: {load_average:.2f}")
    path = write_json(
        "data_loading",
        {
            "unit": "seconds (median)",
            "repeats": args.repeats,
            "workers": WORKERS,
            "load_average_1min": load_average,
            "rows": results,
        },
        args.json,
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
