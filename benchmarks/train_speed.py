"""Training speed: npconv vs PyTorch (CPU) on the course's Happy and SIGNS models and ``smallres``.

Both frameworks train the same architecture with the same batch size, optimiser (Adam, lr 1e-3),
float32 data and thread count. Each library runs in a process of its own (npconv's compiled tier,
npconv's NumPy tier, PyTorch), kept warm, and the processes take turns: one epoch each per round,
never two at once, with a pause between turns. So every ratio npconv/PyTorch is measured under the
same machine load, and no library's idle threads (an OpenBLAS worker spins for about 0.1 s after a
call, PyTorch's OpenMP threads for about a millisecond) run beside another library's epoch, as
they did when the libraries shared one process (PyTorch's SIGNS epoch then took 0.4 to 5 s). The
table gives the median of the per-round ratios. Also reported: inference latency (one image and a
batch of 64, median of 200 calls each, in the same warm processes) and the peak memory of a Happy
training run at batch 64 (a fresh process per tier).

``--busy`` adds the machine-under-load rows: each library's median epoch alone and beside two
busy-looping processes (``python -c 'while True: pass'``) on the two cores.

Run: ``python benchmarks/train_speed.py [--rounds 5] [--busy]`` (about 6 minutes on an idle 2-core
machine, 10 with ``--busy``); writes ``benchmarks/results/train_speed.json``. The JSON's provenance
records the load average: run it with nothing else on the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

#: name -> (images, batch, classes)
CASES = {
    "Happy (course)": (600, 16, 1),
    "SIGNS (course)": (1080, 64, 6),
    "smallres (no augmentation)": (1080, 32, 6),
    "smallres (npconv train signs: shifts)": (1080, 32, 6),
}
BUSY_CASES = ("SIGNS (course)", "smallres (no augmentation)")
SETTLE_S = 0.2  # between two libraries' turns: let the last one's idle threads stop spinning


# ------------------------------------------------------------------ one library in one process
def worker(library: str, case: str) -> None:
    """Serve ``epoch`` and ``latency`` requests on stdin for one model; one JSON line per answer."""
    import numpy as np
    m, batch, classes = CASES[case]
    rng = np.random.default_rng(0)
    x = rng.random((m, 64, 64, 3), dtype=np.float32)
    y = rng.integers(0, max(classes, 2), size=m)
    if library == "torch":
        epoch, predict = _torch_model(case, x, y, batch, classes)
    else:
        epoch, predict = _npconv_model(case, x, y, batch)
    epoch()  # warm-up: compilation, allocations, thread pools
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = line.strip()
        if request == "epoch":
            start = time.perf_counter()
            epoch()
            print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)
        elif request == "latency":
            print(json.dumps({"one_ms": _median_ms(lambda: predict(x[:1]), 200),
                              "batch64_ms": _median_ms(lambda: predict(x[:64]), 30)}), flush=True)


def _median_ms(fn, calls: int) -> float:
    fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _npconv_model(case, x, y, batch):
    import npconv as nc
    from npconv.apps import convolutional_model, happyModel
    from npconv.apps.residual import smallres
    nc.utils.set_random_seed(0)
    if case.startswith("Happy"):
        model, loss = happyModel(), "binary_crossentropy"
    elif case.startswith("SIGNS"):
        model, loss = convolutional_model((64, 64, 3)), "sparse_categorical_crossentropy"
    else:
        shifts = 0.1 if "shifts" in case else 0
        model, loss = smallres((64, 64, 3), 6, flip=False, translate=shifts), "sparse_categorical_crossentropy"
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return (lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0),
            lambda xb: model.predict(xb, batch_size=64))


def _torch_model(case, x, y, batch, classes):
    import torch
    from torch import nn
    sys.path.insert(0, HERE)
    import torch_twins
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    torch.manual_seed(0)
    if case.startswith("Happy"):
        net = torch_twins.happy_course()
    elif case.startswith("SIGNS"):
        net = torch_twins.signs_course()
    elif "shifts" in case:
        net = torch_twins.smallres_signs()
    else:
        net = torch_twins.smallres()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy())
    if classes == 1:
        yt, loss_fn = torch.tensor(y[:, None], dtype=torch.float32), nn.BCEWithLogitsLoss()
    else:
        yt, loss_fn = torch.tensor(y), nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)

    def epoch():
        perm = torch.randperm(len(xt), generator=gen)
        net.train()
        for start in range(0, len(xt), batch):
            idx = perm[start:start + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()

    def predict(xb):
        net.eval()
        with torch.no_grad():
            return net(torch.from_numpy(xb.transpose(0, 3, 1, 2).copy()))
    return epoch, predict


# --------------------------------------------------------------------------------- the rounds
class Runner:
    """One warm worker process for a library and a case."""

    def __init__(self, library: str, case: str, env: dict | None = None):
        self.library = library
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", library, case], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        self.ask(None)

    def ask(self, request: str | None) -> dict:
        if request is not None:
            self.process.stdin.write(request + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.library} worker died (see its traceback above)")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def alternate(runners: dict[str, Runner], rounds: int) -> dict[str, list[float]]:
    """``rounds`` epochs of each runner, one at a time in turn."""
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            times[name].append(runner.ask("epoch")["seconds"])
            time.sleep(SETTLE_S)
    return times


def ratio(ours: list[float], theirs: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(ours, theirs))


def speed_rows(rounds: int, tiers) -> list[dict]:
    rows = []
    for case in CASES:
        runners = {tier: Runner("npconv", case, {"NPCONV_JIT": "1" if tier == "compiled" else "0"})
                   for tier in tiers}
        runners["torch"] = Runner("torch", case)
        times = alternate(runners, rounds)
        row = {"model": case, "batch": CASES[case][1], "images": CASES[case][0], "runs": times}
        for name in runners:
            row[f"{name}_s"] = statistics.median(times[name])
        for tier in tiers:
            row[f"{tier}_ratio"] = ratio(times[tier], times["torch"])
        for name in (tiers[0], "torch"):
            latency = runners[name].ask("latency")
            time.sleep(SETTLE_S)
            row[f"{'npconv' if name != 'torch' else 'torch'}_latency1_ms"] = latency["one_ms"]
            row[f"{'npconv' if name != 'torch' else 'torch'}_latency64_ms"] = latency["batch64_ms"]
        for runner in runners.values():
            runner.close()
        rows.append(row)
        print(f"  {case}: done", file=sys.stderr, flush=True)
    return rows


def busy_rows(rounds: int) -> list[dict]:
    """Each library's median epoch alone, then beside two busy loops."""
    rows = []
    for case in BUSY_CASES:
        runners = {"npconv": Runner("npconv", case), "torch": Runner("torch", case)}
        alone = alternate(runners, rounds)
        loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        try:
            time.sleep(1.0)
            busy = alternate(runners, rounds)
        finally:
            for loop in loops:
                loop.kill()
        for runner in runners.values():
            runner.close()
        row = {"model": case, "alone": alone, "busy": busy}
        for name in runners:
            row[f"{name} alone_s"] = statistics.median(alone[name])
            row[f"{name} busy_s"] = statistics.median(busy[name])
            row[f"{name} slowdown"] = row[f"{name} busy_s"] / row[f"{name} alone_s"]
        rows.append(row)
        print(f"  busy {case}: done", file=sys.stderr, flush=True)
    return rows


def peak_memory_mb(tier: str) -> dict:
    """Peak memory of one Happy epoch at batch 64 in a fresh process that imports npconv alone: NumPy's
    traced peak (arrays and Python objects) and the process's peak resident size (Linux; with the
    compiled tier it includes Numba and LLVM)."""
    code = """
import tracemalloc
import numpy as np
from npconv.apps import happyModel
x = np.random.default_rng(0).random((600, 64, 64, 3), dtype=np.float32)
y = np.arange(600) % 2
model = happyModel()
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
tracemalloc.start()
model.fit(x, y, batch_size=64, epochs=1, verbose=0)
# VmHWM, not ru_maxrss: a child's ru_maxrss keeps its parent's size from before exec
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(tracemalloc.get_traced_memory()[1] / 2**20, hwm_kb / 1024)
"""
    env = {**os.environ, "NPCONV_JIT": "1" if tier == "compiled" else "0"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    traced, rss = map(float, out.split())
    return {"traced_peak_mb": traced, "max_rss_mb": rss}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="epochs of each library, in turn (>= 3)")
    parser.add_argument("--busy", action="store_true", help="also the rows beside two busy loops")
    parser.add_argument("--json", default=None)
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    sys.path.insert(0, HERE)
    from _timing import print_table, write_json
    from npconv.functional._tier import compiled_available
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit("train_speed needs PyTorch for the side-by-side: pip install torch==2.13.0")
    tiers = ("compiled", "numpy") if compiled_available() else ("numpy",)
    started = time.perf_counter()
    print(f"{max(args.rounds, 3)} rounds per model, one epoch of each library per round, each library in "
          f"its own process; load average {os.getloadavg()[0]:.1f}\n")
    rows = speed_rows(max(args.rounds, 3), tiers)
    print_table(rows, [("model", "model", "s"), ("batch", "batch", "d"), ("compiled_s", "npconv s/epoch", ".3f"),
                       ("numpy_s", "NumPy tier", ".3f"), ("torch_s", "torch s/epoch", ".3f"),
                       ("compiled_ratio", "ratio", ".2f"), ("numpy_ratio", "NumPy tier ratio", ".2f"),
                       ("npconv_latency1_ms", "npconv 1 img ms", ".2f"), ("torch_latency1_ms", "torch 1 img ms", ".2f"),
                       ("npconv_latency64_ms", "npconv 64 img ms", ".1f"), ("torch_latency64_ms", "torch 64 img ms", ".1f")])
    print("ratio = npconv/PyTorch epoch time, median of the per-round ratios (target <= 0.8)")
    busy = busy_rows(max(args.rounds, 3)) if args.busy else []
    if busy:
        print("\nbeside two busy loops on the two cores (median epoch seconds; slowdown = busy / alone)")
        names = ("npconv", "torch")
        print_table(busy, [("model", "model", "s")] + [(f"{n} {k}", f"{n} {k}", ".2f" if k == "slowdown" else ".3f")
                                                     for n in names for k in ("alone_s", "busy_s", "slowdown")])
    memory = {tier: peak_memory_mb(tier) for tier in tiers}
    for tier, peak in memory.items():
        print(f"\npeak memory, Happy model training at batch 64, {tier} tier: NumPy traced "
              f"{peak['traced_peak_mb']:.0f} MB, process max RSS {peak['max_rss_mb']:.0f} MB (target <= 375)", end="")
    print()
    path = write_json("train_speed", {"rounds": args.rounds, "rows": rows, "busy": busy, "memory": memory,
                                      "targets": {"ratio": 0.8, "max_rss_mb": 375, "latency1": "<= PyTorch's",
                                                  "busy_slowdown": 2.5},
                                      "seconds": time.perf_counter() - started}, args.json)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
