"""Training speed: npconv vs PyTorch (CPU) on the course's Happy and SIGNS models and ``smallres``.

Both frameworks train the same architecture with the same batch size, optimiser (Adam, lr 1e-3),
float32 data and thread count, in one process, alternating epochs (``--pairs`` rounds of npconv's
compiled tier, npconv's NumPy tier, PyTorch), so each ratio npconv/PyTorch is measured under the
same machine load; the table gives the median of the per-round ratios. Also reported: inference
latency (one image, a batch of 64), peak memory of a Happy training run at batch 64, and each conv
layer's achieved GFLOP/s (forward + backward, both tiers) against this machine's measured float32
matrix-multiply peak. The JSON's provenance records the load average: above ~1 on a 2-core machine,
other work shares the cores, and parallel kernels (BLAS's, Numba's, PyTorch's) suffer most.

Run: ``python benchmarks/train_speed.py [--pairs 5]`` (about 3 minutes on an idle 2-core machine);
writes ``benchmarks/results/train_speed.json``. On a busy machine, compare the work instead of the
wall time: every library on one thread, CPU seconds of this process::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \
        python benchmarks/train_speed.py --clock cpu --json benchmarks/results/train_speed_cpu1.json
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

import _timing
from _timing import median_seconds, print_table, write_json
import npconv as nc
from npconv import functional as F
from npconv.functional._tier import compiled_available, use_tier
from npconv.apps import convolutional_model, happyModel
from npconv.apps.residual import smallres

try:
    import torch
    from torch import nn

    import torch_twins
except ImportError:
    sys.exit("train_speed needs PyTorch for the side-by-side: pip install torch==2.13.0")

HAPPY = {"name": "Happy (course)", "m": 600, "batch": 16, "classes": 1}
SIGNS = {"name": "SIGNS (course)", "m": 1080, "batch": 64, "classes": 6}
SMALLRES = {"name": "smallres (no augmentation)", "m": 1080, "batch": 32, "classes": 6}
# npconv's kernel tiers, timed in turn (the compiled one is the default; see npconv.functional._tier)
TIERS = ("compiled", "numpy") if compiled_available() else ("numpy",)


# --- the two course models in npconv (npconv.apps holds them, written as in the course) -----------
def happy_npconv():
    model = happyModel()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def signs_npconv():
    model = convolutional_model((64, 64, 3))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def smallres_npconv():
    model = smallres((64, 64, 3), 6, flip=False, translate=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# --- the same in PyTorch: torch_twins.py ----------------------------------------------------------
def torch_epoch(net, opt, loss_fn, x, y, batch, gen):
    perm = torch.randperm(len(x), generator=gen)
    net.train()
    for start in range(0, len(x), batch):
        idx = perm[start:start + batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        opt.step()


def data(case, rng):
    x = rng.random((case["m"], 64, 64, 3), dtype=np.float32)
    y = rng.integers(0, max(case["classes"], 2), size=case["m"])
    return x, y


def speed_rows(pairs):
    rng = np.random.default_rng(0)
    rows = []
    cases = ((HAPPY, happy_npconv, torch_twins.happy_course), (SIGNS, signs_npconv, torch_twins.signs_course),
             (SMALLRES, smallres_npconv, torch_twins.smallres))
    for case, build_np, build_torch in cases:
        x, y = data(case, rng)
        nc.utils.set_random_seed(0)
        model = build_np()
        torch.manual_seed(0)
        net = build_torch()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
        xt = torch.tensor(x.transpose(0, 3, 1, 2).copy())
        if case["classes"] == 1:
            yt, loss_fn = torch.tensor(y[:, None], dtype=torch.float32), nn.BCEWithLogitsLoss()
        else:
            yt, loss_fn = torch.tensor(y), nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(0)
        fit_np = lambda: model.fit(x, y, batch_size=case["batch"], epochs=1, verbose=0)  # noqa: E731
        fit_torch = lambda: torch_epoch(net, opt, loss_fn, xt, yt, case["batch"], gen)  # noqa: E731
        runs = {tier: [] for tier in TIERS}
        runs["torch"] = []
        for round_ in range(pairs + 1):  # round 0 warms up: compilation, allocations, thread pools
            for tier in TIERS:
                with use_tier(tier):
                    seconds = median_seconds(fit_np, 1, 0)
                if round_:
                    runs[tier].append(seconds)
            seconds = median_seconds(fit_torch, 1, 0)
            if round_:
                runs["torch"].append(seconds)
        row = {"model": case["name"], "batch": case["batch"], "images": case["m"], "runs": runs,
               "torch_s": float(np.median(runs["torch"]))}
        for tier in TIERS:
            row[f"{tier}_s"] = float(np.median(runs[tier]))
            row[f"{tier}_ratio"] = float(np.median([a / b for a, b in zip(runs[tier], runs["torch"])]))
        one, batch64 = x[:1], x[:64]
        net.eval()
        with torch.no_grad():
            row["torch_latency1_ms"] = median_seconds(lambda: net(xt[:1]), 51) * 1e3
            row["torch_latency64_ms"] = median_seconds(lambda: net(xt[:64]), 11) * 1e3
        row["npconv_latency1_ms"] = median_seconds(lambda: model.predict(one), 51) * 1e3
        row["npconv_latency64_ms"] = median_seconds(lambda: model.predict(batch64, batch_size=64), 11) * 1e3
        rows.append(row)
        print(f"  {case['name']}: done", flush=True)
    return rows


def peak_memory_mb(tier: str):
    """Peak memory of one Happy epoch at batch 64, in a fresh process that imports npconv alone, with
    the given tier: NumPy's traced peak (arrays and Python objects) and the process's peak resident
    size (Linux; with the compiled tier it includes Numba and LLVM, about 100 MB)."""
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
# VmHWM, not ru_maxrss: a child's ru_maxrss keeps its parent's size from before exec (PyTorch's here)
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(tracemalloc.get_traced_memory()[1] / 2**20, hwm_kb / 1024)
"""
    env = {**os.environ, "NPCONV_JIT": "1" if tier == "compiled" else "0"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    traced, rss = map(float, out.split())
    return {"traced_peak_mb": traced, "max_rss_mb": rss}


def conv_gflops():
    """Achieved GFLOP/s of conv layers' training work (forward + the backward products used), per tier."""
    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    peak = 2 * 1024 ** 3 / median_seconds(lambda: a @ a, 9) / 1e9
    layers = [("Happy conv0", (16, 70, 70, 3), (7, 7, 3, 32), 1, 0, False),
              ("SIGNS conv1", (64, 64, 64, 3), (4, 4, 3, 8), 1, "same", False),
              ("SIGNS conv2", (64, 8, 8, 8), (2, 2, 8, 16), 1, "same", True),
              ("smallres stem", (32, 64, 64, 3), (3, 3, 3, 16), 1, "same", False),
              ("smallres stage1", (32, 32, 32, 16), (3, 3, 16, 16), 1, "same", True),
              ("smallres stage3", (32, 8, 8, 64), (3, 3, 64, 64), 1, "same", True)]
    rows = []
    rng = np.random.default_rng(1)
    for name, xs, ws, stride, pad, need_dx in layers:
        x, w, b = rng.random(xs, dtype=np.float32), rng.random(ws, dtype=np.float32), np.zeros(ws[3], np.float32)
        out, _ = F.conv2d_forward(x, w, b, stride, pad)
        dout = np.ones_like(out)
        gemm = 2 * out.size * ws[0] * ws[1] * ws[2]  # one GEMM's FLOPs: 2 * M * (fh*fw*C) * K
        flops = gemm * (3 if need_dx else 2)
        row = {"layer": name, "x": str(xs), "w": str(ws), "peak_gflops": peak}
        for tier in TIERS:
            with use_tier(tier):
                seconds = median_seconds(lambda: F.conv2d_backward(
                    dout, F.conv2d_forward(x, w, b, stride, pad)[1], need_dx=need_dx), 7)
            row[f"{tier}_ms"] = seconds * 1e3
            row[f"{tier}_gflops"] = flops / seconds / 1e9
            row[f"{tier}_of_peak"] = flops / seconds / 1e9 / peak
        rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="alternating npconv/PyTorch epoch pairs (>= 3)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or this process's CPU time (meaningful with one thread per library)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.clock == "cpu":
        _timing.CLOCK = time.process_time
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    print(f"clock: {args.clock}; threads: {threads} (PyTorch {torch.__version__}, NumPy {np.__version__}); npconv tiers {TIERS}; "
          f"{args.pairs} alternating rounds per model; load average {os.getloadavg()[0]:.1f}\n")
    started = time.perf_counter()
    rows = speed_rows(max(args.pairs, 3))
    print()
    print_table(rows, [("model", "model", "s"), ("batch", "batch", "d"), ("compiled_s", "npconv s/epoch", ".3f"),
                       ("numpy_s", "NumPy tier", ".3f"), ("torch_s", "torch s/epoch", ".3f"),
                       ("compiled_ratio", "ratio", ".2f"), ("numpy_ratio", "NumPy tier ratio", ".2f"),
                       ("npconv_latency1_ms", "npconv 1 img ms", ".2f"), ("torch_latency1_ms", "torch 1 img ms", ".2f"),
                       ("npconv_latency64_ms", "npconv 64 img ms", ".1f"), ("torch_latency64_ms", "torch 64 img ms", ".1f")])
    print("ratio = npconv/PyTorch epoch time, median of the per-round ratios (target <= 0.8)")
    memory = {tier: peak_memory_mb(tier) for tier in TIERS}
    for tier, peak in memory.items():
        print(f"\npeak memory, Happy model training at batch 64, {tier} tier: NumPy traced "
              f"{peak['traced_peak_mb']:.0f} MB, process max RSS {peak['max_rss_mb']:.0f} MB (target <= 375)", end="")
    print()
    gflops = conv_gflops()
    print()
    print_table(gflops, [("layer", "conv layer (train step)", "s"), ("x", "x", "s"), ("w", "w", "s")]
                + [(f"{tier}_{key}", f"{tier} {label}", fmt) for tier in TIERS
                   for key, label, fmt in (("ms", "ms", ".2f"), ("gflops", "GFLOP/s", ".1f"), ("of_peak", "of peak", ".0%"))]
                + [("peak_gflops", "sgemm peak", ".0f")])
    path = write_json("train_speed", {"clock": args.clock, "pairs": args.pairs, "rows": rows, "memory": memory, "conv_gflops": gflops,
                                      "targets": {"ratio": 0.8, "max_rss_mb": 375, "latency1": "<= PyTorch's"},
                                      "seconds": time.perf_counter() - started}, args.json)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
