"""Many trainings at once: ``npconv train DATA --folds K`` with ``--jobs 1`` and ``--jobs N``.

Runs the command line as a user would (fresh processes, wall time, start-up included), checks that
both runs give the same fold accuracies and the same saved model, and writes
``benchmarks/results/jobs_speed.json``.

Run: ``python benchmarks/jobs_speed.py [--data signs] [--folds 5] [--jobs 2]`` (about 20 minutes for
SIGNS on an idle 2-core machine); needs the data directory (``NPCONV_DATA``) for named data sets.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import print_table, write_json


def train(data: str, folds: int, jobs: int, out: Path, extra: list[str]) -> dict:
    command = [
        "npconv",
        "train",
        data,
        "--folds",
        str(folds),
        "--jobs",
        str(jobs),
        "--out",
        str(out),
        "--no-report",
        "--quiet",
        *extra,
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    import npconv

    cv = npconv.load_model(out).metadata["cross_validation"]
    return {
        "command": " ".join(command),
        "seconds": seconds,
        "summary": done.stdout.strip().splitlines()[-1],
        "fold_accuracies": [f["accuracy"] for f in cv["folds"]],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="signs")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more npconv train options")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    import numpy as np

    import npconv

    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for jobs in (1, args.jobs):
            out = Path(tmp) / f"jobs{jobs}.npz"
            rows.append({"jobs": jobs, **train(args.data, args.folds, jobs, out, args.extra)})
            print(f"  --jobs {jobs}: {rows[-1]['seconds']:.0f} s", file=sys.stderr, flush=True)
        one, many = (npconv.load_model(Path(tmp) / f"jobs{j}.npz") for j in (1, args.jobs))
        same_model = all(np.array_equal(a.value, b.value) for a, b in zip(one.weights, many.weights))
    same_folds = rows[0]["fold_accuracies"] == rows[1]["fold_accuracies"]
    for row in rows:
        row["speed_up"] = rows[0]["seconds"] / row["seconds"]
    print_table(
        rows,
        [
            ("jobs", "--jobs", "d"),
            ("seconds", "wall s", ".0f"),
            ("speed_up", "speed-up", ".2f"),
            ("summary", "result", "s"),
        ],
    )
    print(f"same fold accuracies: {same_folds}; same saved model: {same_model}")
    path = write_json(
        "jobs_speed",
        {
            "data": args.data,
            "folds": args.folds,
            "rows": rows,
            "same_fold_accuracies": same_folds,
            "same_model": same_model,
        },
        args.json,
    )
    print(f"wrote {path}")
    return 0 if same_folds and same_model else 1


if __name__ == "__main__":
    sys.exit(main())
