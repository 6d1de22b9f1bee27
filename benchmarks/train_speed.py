"""Training speed: npconv against PyTorch at its best (CPU) on the course's Happy and SIGNS models and ``smallres``.

Both libraries train the same architecture with the same batch size, optimiser (Adam, lr 1e-3),
float32 data and thread count. The last row, ``train_speed_workers.SIGNS_COMMAND``, trains what
``npconv train signs`` trains: the model its code builds and compiles from ``RECIPES["signs"]``
(photo augmentation, per-image standardisation, Adam with a cosine decay) on uint8 images scaled to
[0, 1]; PyTorch trains ``torch_twins.recipe_net`` on batches augmented by npconv's own layers
(torchvision is not a dependency), so both pay the same augmentation.

PyTorch runs in the configurations a practitioner would choose (``train_speed_workers.TORCH_CONFIGS``):
eager NCHW (its default), eager ``channels_last`` with ``Adam(fused=True)``, and ``torch.compile``
(inductor, default mode) in both layouts; npconv/PyTorch is taken against the fastest float32
configuration, model by model. A bf16-autocast configuration is
measured for information only: it is not float32 and not the target.

Each library and configuration runs in a process of its own (npconv's compiled tier, npconv's
NumPy tier, each PyTorch configuration), kept warm, and the processes take turns: one epoch each
per round, never two at once, with a pause between turns. So every ratio is measured under the
same machine load, and no library's idle threads run beside another's epoch. The tables give the
median of the per-round ratios. ``torch.compile``'s compile time is measured in the warm-up (its
first two epochs, less two steady epochs) and kept out of the epoch, with inductor's caches off
(``TORCHINDUCTOR_FORCE_DISABLE_CACHES``) so that it is a first run's compile time.

Also reported: the epoch's GFLOP/s (``epoch_work.FLOP_CONVENTION``) and its share of the machine's
sgemm peak, measured once per run; one epoch by op class in npconv and in PyTorch's eager
channels_last configuration (``epoch_profile``); inference latency (one image and a batch of 64,
median of 200 calls, npconv and PyTorch's eager configurations); the peak memory of a Happy
training run at batch 64; ``--busy``: each library's epochs alone and beside two busy loops, in turn
round by round.

Run: ``python benchmarks/train_speed.py [--rounds 5] [--busy]`` with nothing else on the machine
(about 10 minutes on an idle 2-core machine, 4-5 of them torch.compile's cold compiles; 12 with
``--busy``); writes ``benchmarks/results/train_speed.json``: ``peak``, ``torch_configs``, ``targets`` and
``target_checks`` (each target of issue 33 and whether it is met), and one entry of ``rows`` per
model with ``runs`` (every epoch's seconds by process), ``<process>_s`` (medians),
``<tier>_ratio`` (against eager NCHW, as before) and ``<tier>_ratio_best`` (against ``best_fp32``),
``torch`` (each configuration's settings, warm-up, compile time or why it is unavailable),
``flop_count``, ``gflops``, ``of_peak``, latencies and ``profile``. ``--quick``: one round of a few
batches, no memory or busy rows, written to a temporary file unless ``--json``: a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from train_speed_workers import SIGNS_CLASSES, SIGNS_COMMAND, SIGNS_COMMAND_NOTE, TORCH_CONFIGS, signs_recipe

#: name -> (images, batch, classes); SIGNS_COMMAND: train_signs.h5's 1080 images at the recipe's batch size
CASES = {
    "Happy (course)": (600, 16, 1),
    "SIGNS (course)": (1080, 64, 6),
    "smallres (no augmentation)": (1080, 32, 6),
    SIGNS_COMMAND: (1080, signs_recipe().batch_size, len(SIGNS_CLASSES)),
}
BUSY_CASES = ("SIGNS (course)", "smallres (no augmentation)")
SETTLE_S = 0.2  # between two turns: let the last one's idle threads stop spinning
BUSY_START_S = 0.5  # the busy loops running again before a round's busy epochs
LATENCY_CALLS = (100, 10)  # calls of one image and of a batch of 64 in each round's sample
#: issue 33's "done when"
TARGETS = {
    "ratio_vs_best_fp32": 0.7,
    "smallres_of_peak": 0.45,
    "latency1_vs_best_eager": 1.0,
    "busy_slowdown": 2.5,
    "max_rss_mb": 375,
}


class Runner:
    """One warm worker process: an npconv tier (``compiled``, ``numpy``) or a PyTorch configuration."""

    def __init__(self, name: str, case: str, images: int):
        self.name = name
        _, batch, classes = CASES[case]
        spec = {
            "library": "npconv" if name in ("compiled", "numpy") else name,
            "case": case,
            "images": images,
            "batch": batch,
            "classes": classes,
        }
        env = {**os.environ}
        if name in ("compiled", "numpy"):
            env["NPCONV_JIT"] = "1" if name == "compiled" else "0"
        elif TORCH_CONFIGS[name][2]:  # compile time as on a first run, not what an earlier run left cached
            env["TORCHINDUCTOR_FORCE_DISABLE_CACHES"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "train_speed_workers.py"), json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.info = None

    def wait_ready(self) -> Runner:
        """Wait for the warm-up; ``info`` is the worker's first answer (``ready``, ``warmup_s``, ...)."""
        self.info = self.ask(None)
        if not self.info["ready"]:
            self.close()
        return self

    def ask(self, request: str | None) -> dict:
        if request is not None:
            self.process.stdin.write(request + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} worker died (see its traceback above)")
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


def latency_rounds(runners: dict[str, Runner], names: list[str], rounds: int, quick: bool) -> dict[str, list[dict]]:
    """One-image and batch-of-64 latencies of each process in ``names``, ``rounds`` times in turn:
    one sample per process was as noisy as one epoch is."""
    request = "latency 10 3" if quick else f"latency {LATENCY_CALLS[0]} {LATENCY_CALLS[1]}"
    samples: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            time.sleep(SETTLE_S)
            samples[name].append(runners[name].ask(request))
    return samples


def ratio(ours: list[float], theirs: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(ours, theirs))


def speed_row(case: str, images: int, rounds: int, tiers, configs, peak: float, quick: bool) -> dict:
    """One model: every process's epochs in turn, the ratios, GFLOP/s, latencies and profiles."""
    if quick:  # warm-ups side by side: quicker, but their times (compile time) mean nothing
        started = {name: Runner(name, case, images) for name in (*tiers, *configs)}
        started = {name: runner.wait_ready() for name, runner in started.items()}
    else:  # one warm-up at a time
        started = {name: Runner(name, case, images).wait_ready() for name in (*tiers, *configs)}
    runners = {name: r for name, r in started.items() if r.info["ready"]}
    times = alternate(runners, rounds)
    row = {"model": case, "batch": CASES[case][1], "images": images, "runs": times}
    row.update({f"{name}_s": statistics.median(t) for name, t in times.items()})
    row["flop_count"] = runners[tiers[0]].info["flop_count"]
    if case == SIGNS_COMMAND:
        row.update(
            note=SIGNS_COMMAND_NOTE,
            recipe=runners[tiers[0]].info["recipe"],
            augmentation=runners[tiers[0]].info["augmentation"],
        )
    flops = row["flop_count"]["flops"]
    row["torch"] = {}
    for key in configs:
        label, layout, compiled, optimizer, dtype = TORCH_CONFIGS[key]
        info = started[key].info
        entry = {
            "label": label,
            "layout": layout,
            "torch_compile": compiled,
            "dtype": dtype,
            "optimizer": info.get("optimizer", optimizer),
            "unavailable": info.get("unavailable"),
            "warmup_s": info.get("warmup_s"),
            "keeps_freed_memory": info.get("keeps_freed_memory"),
            "s_per_epoch": row.get(f"{key}_s"),
        }
        if "augmentation" in info:  # npconv's layers, run on each of PyTorch's batches
            entry["augmentation"] = info["augmentation"]
        if compiled and entry["s_per_epoch"] is not None:
            entry["compile_s"] = sum(max(0.0, w - entry["s_per_epoch"]) for w in info["warmup_s"])
        row["torch"][key] = entry
    fp32 = [k for k in configs if k in times and TORCH_CONFIGS[k][4] == "fp32"]
    best = min(fp32, key=lambda k: row[f"{k}_s"]) if fp32 else None  # None: no fp32 configuration ran
    row.update(
        best_fp32=best,
        best_fp32_label=best and TORCH_CONFIGS[best][0],
        best_fp32_s=row.get(f"{best}_s"),
        torch_s=row.get("torch_eager_nchw_s"),
    )
    row["ratios"] = {tier: {k: ratio(times[tier], times[k]) for k in configs if k in times} for tier in tiers}
    for tier in tiers:
        row[f"{tier}_ratio"] = row["ratios"][tier].get("torch_eager_nchw")
        row[f"{tier}_ratio_best"] = row["ratios"][tier].get(best)
    row["gflops"] = {name: flops / row[f"{name}_s"] / 1e9 for name in times}
    row["of_peak"] = {name: g / peak for name, g in row["gflops"].items()}
    eager = [k for k in ("torch_eager_nchw", "torch_eager_cl") if k in runners]
    rounds_of = latency_rounds(runners, [tiers[0], *eager], 1 if quick else rounds, quick)
    row["latency"] = {
        name: {
            "one_ms": statistics.median(r["one_ms"] for r in samples),
            "batch64_ms": statistics.median(r["batch64_ms"] for r in samples),
            "rounds": samples,
        }
        for name, samples in rounds_of.items()
    }
    ours = row["latency"][tiers[0]]["one_ms"]
    row.update(
        torch_best_latency1_ms=min((row["latency"][k]["one_ms"] for k in eager), default=None),
        npconv_latency1_ms=ours,
        npconv_latency64_ms=row["latency"][tiers[0]]["batch64_ms"],
        # per round, against the faster eager configuration of that round; the median of those
        latency1_vs_best_eager=statistics.median(
            mine["one_ms"] / min(rounds_of[k][i]["one_ms"] for k in eager) for i, mine in enumerate(rounds_of[tiers[0]])
        )
        if eager
        else None,
    )
    if "torch_eager_nchw" in row["latency"]:
        row.update(
            torch_latency1_ms=row["latency"]["torch_eager_nchw"]["one_ms"],
            torch_latency64_ms=row["latency"]["torch_eager_nchw"]["batch64_ms"],
        )
    row["profile"] = {}
    for name in (tiers[0], "torch_eager_cl"):
        if name in runners:
            row["profile"][name] = runners[name].ask("profile")
            time.sleep(SETTLE_S)
    for runner in runners.values():
        runner.close()
    print(f"  {case}: done", file=sys.stderr, flush=True)
    return row


def busy_rows(rounds: int, tier: str) -> list[dict]:
    """npconv's and PyTorch's (eager NCHW) epochs alone and beside two busy loops, in turn: each
    round takes every process's epoch alone, then every one's with the loops running (stopped with
    ``SIGSTOP`` between), so that both sides of a round's ratio meet the same host. ``slowdown`` is
    the median of the rounds' ratios, as the other tables' are."""
    rows = []
    for case in BUSY_CASES:
        runners = {
            "npconv": Runner(tier, case, CASES[case][0]).wait_ready(),
            "torch": Runner("torch_eager_nchw", case, CASES[case][0]).wait_ready(),
        }
        alone = {name: [] for name in runners}
        busy = {name: [] for name in runners}
        loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        try:
            _signal(loops, signal.SIGSTOP)
            for _ in range(rounds):
                for name, seconds in alternate(runners, 1).items():
                    alone[name] += seconds
                _signal(loops, signal.SIGCONT)
                time.sleep(BUSY_START_S)
                for name, seconds in alternate(runners, 1).items():
                    busy[name] += seconds
                _signal(loops, signal.SIGSTOP)
        finally:
            for loop in loops:
                loop.kill()
        for runner in runners.values():
            runner.close()
        row = {"model": case, "alone": alone, "busy": busy}
        for name in runners:
            row[f"{name} alone_s"] = statistics.median(alone[name])
            row[f"{name} busy_s"] = statistics.median(busy[name])
            row[f"{name} slowdown"] = statistics.median(b / a for a, b in zip(alone[name], busy[name]))
        rows.append(row)
        print(f"  busy {case}: done", file=sys.stderr, flush=True)
    return rows


def _signal(processes, signum) -> None:
    """Send ``signum`` to each of ``processes``: the busy loops stop and go on without restarting."""
    for process in processes:
        process.send_signal(signum)


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


def target_checks(rows, busy, memory, tier) -> list[dict]:
    """Each target of issue 33 with its figure and whether it is met."""
    checks = [
        {
            "target": f"npconv / fastest PyTorch fp32 <= {TARGETS['ratio_vs_best_fp32']}",
            "model": r["model"],
            "figure": r[f"{tier}_ratio_best"],
            "met": r[f"{tier}_ratio_best"] <= TARGETS["ratio_vs_best_fp32"],
        }
        for r in rows
        if r[f"{tier}_ratio_best"] is not None
    ]
    checks += [
        {
            "target": f"smallres epoch >= {TARGETS['smallres_of_peak']:.0%} of sgemm peak",
            "model": r["model"],
            "figure": r["of_peak"][tier],
            "met": r["of_peak"][tier] >= TARGETS["smallres_of_peak"],
        }
        for r in rows
        if r["model"] == "smallres (no augmentation)"
    ]
    checks += [
        {
            "target": "1-image predict <= 1.0x PyTorch's faster eager eval forward",
            "model": r["model"],
            "figure": r["latency1_vs_best_eager"],
            "met": r["latency1_vs_best_eager"] <= TARGETS["latency1_vs_best_eager"],
        }
        for r in rows
        if r["latency1_vs_best_eager"] is not None and r["model"] != SIGNS_COMMAND
    ]
    checks += [
        {
            "target": f"busy slowdown <= {TARGETS['busy_slowdown']}",
            "model": r["model"],
            "figure": r["npconv slowdown"],
            "met": r["npconv slowdown"] <= TARGETS["busy_slowdown"],
        }
        for r in busy
    ]
    checks += [
        {
            "target": f"Happy batch 64 max RSS <= {TARGETS['max_rss_mb']} MB",
            "model": f"{t} tier",
            "figure": m["max_rss_mb"],
            "met": m["max_rss_mb"] <= TARGETS["max_rss_mb"],
        }
        for t, m in memory.items()
    ]
    return checks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="epochs of each process, in turn (>= 3)")
    parser.add_argument("--busy", action="store_true", help="also the rows beside two busy loops")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 round of a few batches, no memory rows")
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="only the models whose name contains one of these (case-sensitive: SIGNS, signs)",
    )
    parser.add_argument(
        "--torch",
        nargs="+",
        default=list(TORCH_CONFIGS),
        choices=list(TORCH_CONFIGS),
        help="PyTorch configurations (default: all)",
    )
    parser.add_argument(
        "--tiers",
        nargs="+",
        default=None,
        choices=["compiled", "numpy"],
        help="npconv tiers (default: both where Numba is available)",
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    from _timing import write_json
    from epoch_work import sgemm_peak
    from train_speed_report import print_report

    from npconv.functional._tier import compiled_available

    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit("train_speed needs PyTorch for the side-by-side: pip install torch==2.13.0")
    tiers = args.tiers or (["compiled", "numpy"] if compiled_available() else ["numpy"])
    configs = args.torch
    cases = [c for c in CASES if not args.models or any(s in c for s in args.models)]
    rounds = 1 if args.quick else max(args.rounds, 3)
    started = time.perf_counter()
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count()))
    load_at_start = os.getloadavg()
    peak = sgemm_peak(threads, *((1024, 3) if args.quick else ()))
    print(
        f"{rounds} round(s) per model, one epoch of each process per round; sgemm peak {peak['gflops']:.0f} "
        f"GFLOP/s on {threads} threads; load average {load_at_start[0]:.1f}\n",
        flush=True,
    )
    rows = []
    for case in cases:
        images, batch, _ = CASES[case]
        rows.append(
            speed_row(
                case,
                min(images, 3 * batch + batch // 2) if args.quick else images,
                rounds,
                tiers,
                configs,
                peak["gflops"],
                args.quick,
            )
        )
    busy = busy_rows(rounds, tiers[0]) if args.busy else []
    memory = {} if args.quick else {tier: peak_memory_mb(tier) for tier in tiers}
    checks = target_checks(rows, busy, memory, tiers[0])
    print_report(rows, busy, memory, checks, tiers, configs, peak)
    json_path = args.json or (os.path.join(tempfile.gettempdir(), "train_speed_quick.json") if args.quick else None)
    path = write_json(
        "train_speed",
        {
            "rounds": rounds,
            "quick": args.quick,
            "peak": peak,
            "threads": threads,
            "load_average_at_start_1_5_15_min": list(load_at_start),
            "inductor_caches": "disabled: cold compiles",
            "torch_configs": {
                k: dict(zip(("label", "layout", "torch_compile", "optimizer", "dtype"), TORCH_CONFIGS[k]))
                for k in configs
            },
            "rows": rows,
            "busy": busy,
            "memory": memory,
            "targets": TARGETS,
            "target_checks": checks,
            "seconds": time.perf_counter() - started,
        },
        json_path,
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
