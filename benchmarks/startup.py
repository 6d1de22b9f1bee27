"""Start-up cost: ``import npconv``, the compiled kernels' first calls, and ``npconv train`` end to end.

The compiled tier's kernels are compiled by Numba on their first call ever and cached on disk
(``cache=True``); later processes load them from the cache. Measured here, each in fresh processes:

* ``import npconv``: Numba is not imported at this point (it loads at the first kernel call);
* kernel start-up: the first training step of the course models and ``smallres`` minus a second
  one, with a cold cache (an empty ``NUMBA_CACHE_DIR``: the first run after an install or an edit),
  a warm cache (every later run), and the NumPy tier (``NPCONV_JIT=0``) for reference;
* ``npconv train signs --epochs 1`` (the course's SIGNS data, default recipe), cold, warm and
  NumPy tier (wall time, start-up included).

Run: ``python benchmarks/startup.py [--repeats 3]``; writes ``benchmarks/results/startup.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import print_table, write_json

SRC = Path(__file__).resolve().parent.parent / "src"

FIRST_STEPS = """
import time
t0 = time.perf_counter()
import numpy as np
import npconv
from npconv.apps import convolutional_model, happyModel
from npconv.apps.residual import smallres
t1 = time.perf_counter()
def steps(repeat):
    for build, loss, k in ((happyModel, "binary_crossentropy", 2),
                           (lambda: convolutional_model((64, 64, 3)), "sparse_categorical_crossentropy", 6),
                           (lambda: smallres(flip=False, translate=0), "sparse_categorical_crossentropy", 6)):
        model = build()
        model.compile(optimizer="adam", loss=loss)
        x = np.random.default_rng(0).random((4, 64, 64, 3), dtype=np.float32)
        model.fit(x, np.arange(4) % k, batch_size=4, epochs=1, verbose=0)
        model.predict(x[:1])
steps(0)
t2 = time.perf_counter()
steps(1)
t3 = time.perf_counter()
print(t1 - t0, (t2 - t1) - (t3 - t2))
"""


def run(code_or_args, env, python_code=True):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])), **env}
    args = [sys.executable, "-c", code_or_args] if python_code else [sys.executable, *code_or_args]
    start = time.perf_counter()
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--data",
        default="signs",
        help="data set for the npconv train row (default signs, "
        "found through NPCONV_DATA; the row is left out when it is missing)",
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = {"NUMBA_CACHE_DIR": str(Path(tmp) / "numba")}
        imports = [float(run(FIRST_STEPS, {"NPCONV_JIT": "0"})[1].split()[0]) for _ in range(args.repeats)]
        rows.append(
            {
                "what": "import npconv",
                "cold_s": None,
                "warm_s": statistics.median(imports),
                "numpy_tier_s": statistics.median(imports),
            }
        )
        # cold: the first process compiles into the empty cache; warm: later processes load it
        cold = float(run(FIRST_STEPS, cache)[1].split()[1])
        warm = statistics.median(float(run(FIRST_STEPS, cache)[1].split()[1]) for _ in range(args.repeats))
        numpy_tier = statistics.median(
            float(run(FIRST_STEPS, {"NPCONV_JIT": "0"})[1].split()[1]) for _ in range(args.repeats)
        )
        rows.append(
            {
                "what": "first training steps (3 models) minus second",
                "cold_s": cold,
                "warm_s": warm,
                "numpy_tier_s": numpy_tier,
            }
        )
        train = [
            "-m",
            "npconv",
            "train",
            args.data,
            "--epochs",
            "1",
            "--quiet",
            "--no-report",
            "--out",
            str(Path(tmp) / "model.npz"),
        ]
        cache2 = {"NUMBA_CACHE_DIR": str(Path(tmp) / "numba-train")}
        try:
            cold = run(train, cache2, python_code=False)[0]
        except subprocess.CalledProcessError as error:  # no such data here: say so, keep the other rows
            print(f"npconv train {args.data}: left out ({error.stderr.strip().splitlines()[-1][:200]})")
        else:
            warm = statistics.median(run(train, cache2, python_code=False)[0] for _ in range(args.repeats))
            numpy_tier = statistics.median(
                run(train, {"NPCONV_JIT": "0"}, python_code=False)[0] for _ in range(args.repeats)
            )
            rows.append(
                {
                    "what": f"npconv train {args.data} --epochs 1 (wall)",
                    "cold_s": cold,
                    "warm_s": warm,
                    "numpy_tier_s": numpy_tier,
                }
            )
    print_table(
        rows,
        [
            ("what", "what", "s"),
            ("cold_s", "compiled, cold cache s", ".2f"),
            ("warm_s", "compiled, warm cache s", ".2f"),
            ("numpy_tier_s", "NumPy tier s", ".2f"),
        ],
    )
    path = write_json("startup", {"repeats": args.repeats, "rows": rows}, args.json)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
