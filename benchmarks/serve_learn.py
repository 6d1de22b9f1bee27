"""The ``/learn`` page's answers for a batch of one 64 x 64 photo: their size and time per click or step.

For each model given (``npconv train --arch happy|signs|smallres --image-size 64`` makes them), through
Starlette's ``TestClient`` (no network): open a sample, then every layer's maps with the backward pass,
the terms of the centre entry of every map that opens into terms, three steps and the update of each
layer with weights, and a rewind. Reports the largest answer and the slowest request of each kind
(after one warm-up pass, so Numba's compilation is not counted). The page's limit is 2 MB and 0.5 s.

Run: ``python benchmarks/serve_learn.py runs/happy.npz runs/signs.npz runs/smallres.npz`` (pin the cores
with ``taskset -c 0,1`` to measure on two); writes ``benchmarks/results/serve_learn.json``.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from _timing import print_table, write_json


def measure(path: str) -> list[dict]:
    from starlette.testclient import TestClient

    import npconv
    from npconv.serve import create_app

    worst = defaultdict(lambda: {"bytes": 0, "seconds": 0.0, "requests": 0})

    def call(kind, method, url, **kwargs):
        start = time.perf_counter()
        answer = getattr(client, method)(url, **kwargs)
        seconds = time.perf_counter() - start
        assert answer.status_code == 200, answer.text
        row = worst[kind]
        row["bytes"], row["seconds"] = max(row["bytes"], len(answer.content)), max(row["seconds"], seconds)
        row["requests"] += 1
        return answer.json()

    with TestClient(create_app(npconv.load_model(path), path)) as client:
        for warm_up in (True, False):
            if not warm_up:
                worst.clear()  # the first pass compiled and cached: not counted
            summary = call("sample (new session)", "post", "/api/learn/sample", json={"sample": 0})
            sid, label = summary["session"], summary["label"]
            base = {"session": sid, "label": label}
            for layer in summary["layers"]:
                maps = call("layer maps", "get", "/api/learn/layer", params={**base, "layer": layer["name"]})
                for which in maps["terms"]:
                    shown = maps["maps"][which]
                    centre = [
                        shown["rows"] // 2 if p == "r" else shown["cols"] // 2 if p == "c" else 0 if p == "k" else p
                        for p in shown["index"]
                    ]
                    call(
                        "terms",
                        "get",
                        "/api/learn/terms",
                        params={**base, "layer": layer["name"], "which": which, "index": ",".join(map(str, centre))},
                    )
            for _ in range(3):
                call("step", "post", "/api/learn/step", json=base)
                for layer in summary["layers"]:
                    if "dW" in layer["grads"]:
                        call("update", "get", "/api/learn/update", params={"session": sid, "layer": layer["name"]})
            call("rewind", "post", "/api/learn/rewind", json=base)
    return [{"model": path, "request": kind, **row} for kind, row in worst.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    rows = [row for path in args.models for row in measure(path)]
    for row in rows:
        row["kB"] = row["bytes"] / 1024
        row["ms"] = row["seconds"] * 1000
    print_table(
        rows,
        [
            ("model", "model", "s"),
            ("request", "request", "s"),
            ("requests", "n", "d"),
            ("kB", "largest answer (kB)", ".0f"),
            ("ms", "slowest (ms)", ".0f"),
        ],
    )
    write_json("serve_learn", {"rows": rows})


if __name__ == "__main__":
    main()
