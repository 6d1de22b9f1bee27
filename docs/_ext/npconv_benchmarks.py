"""The benchmarks page, written from ``benchmarks/results/*.json`` when the docs build.

Every results JSON opens with its provenance (``benchmarks/provenance.py``: date, commit, command,
machine, libraries). For each benchmark and each machine the latest run is shown with that
provenance; the older files are listed by name. The targets (issue 33 and the accuracy targets in
``benchmarks/accuracy.py``) are checked against those runs, and a target that a run misses, or that
no run measured, says so. A results file of a kind this module does not know (a new benchmark, say
``robustness.json``) is shown as generic tables of its fields, so it appears on the page without a
change here.

The same figures make the README's two tables::

    python docs/_ext/npconv_benchmarks.py --readme          # print them
    python docs/_ext/npconv_benchmarks.py --update-readme   # rewrite them in README.md

``tests/test_docs_build.py`` fails when the README's tables differ from what this prints.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
README_START = "<!-- benchmark tables: python docs/_ext/npconv_benchmarks.py --update-readme -->"
README_END = "<!-- end of benchmark tables -->"

# The targets. Speed: issue 33 ("faster than PyTorch at its best"); accuracy: benchmarks/accuracy.py.
TRAIN_RATIO = 0.7  # npconv's epoch over PyTorch's fastest fp32 configuration
LATENCY_RATIO = 1.0  # one-image predict over PyTorch's fastest eval forward
BUSY_SLOWDOWN = 2.5  # an epoch beside two busy loops, over the same epoch alone
EPOCH_PEAK_SHARE = 0.45  # smallres's epoch GFLOP/s over the machine's measured sgemm peak
SIGNS_ACCURACY = 0.99  # npconv train signs, on test_signs.h5, every seed

# Known kinds, by the start of the file name; the page shows them in this order, then any others.
KINDS = {
    "train_speed": "Training speed against PyTorch",
    "ops": "Per operation",
    "startup": "Start-up",
    "accuracy": "Accuracy",
    "kernels": "Kernels: loops, NumPy, compiled, PyTorch",
    "jobs_speed": "Many trainings at once",
    "data_loading": "Data loading",
    "robustness": "Robustness",
}


@dataclass
class Result:
    path: Path
    kind: str
    data: dict

    @property
    def provenance(self) -> dict:
        return self.data.get("provenance") or {}

    @property
    def date(self) -> str:
        return self.provenance.get("date_utc") or ""

    @property
    def machine(self) -> str:
        machine = self.provenance.get("machine") or {}
        cpu = machine.get("cpu") or "unknown CPU"
        return f"{cpu}, {machine['cpus']} cores" if machine.get("cpus") else cpu


def load(results: Path = RESULTS) -> list[Result]:
    """Every results JSON, with its kind (the known prefix of its name, else its name)."""
    loaded = []
    for path in sorted(results.glob("*.json")):
        data = json.loads(path.read_text())
        kind = next((k for k in sorted(KINDS, key=len, reverse=True) if path.stem.startswith(k)), path.stem)
        loaded.append(Result(path, kind, data if isinstance(data, dict) else {"rows": data}))
    return loaded


def latest(results: list[Result]) -> dict[tuple[str, str], Result]:
    """The latest run of each kind on each machine, by the provenance's date."""
    chosen: dict[tuple[str, str], Result] = {}
    for result in results:
        key = (result.kind, result.machine)
        if key not in chosen or result.date > chosen[key].date:
            chosen[key] = result
    return chosen


# ---------------------------------------------------------------- formatting


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:#.{digits}g}".rstrip(".")  # '#' keeps the trailing zeros: 0.160, not 0.16
    if isinstance(value, (list, tuple)) and all(not isinstance(v, (dict, list)) for v in value):
        return ", ".join(fmt(v, digits) for v in value)
    return str(value)


def r2(value) -> str:
    """A ratio to two decimals, as the targets are written (0.70, not 0.7)."""
    return "—" if value is None else f"{value:.2f}"


def cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def verdict(met) -> str:
    return {True: "met", False: "**missed**", None: "**not measured**"}[met]


def short_commit(provenance: dict) -> str:
    commit = provenance.get("commit") or "unknown commit"
    commit = commit[:7] if len(commit) >= 40 else commit
    return commit + (" (with uncommitted changes)" if provenance.get("uncommitted_changes") else "")


def provenance_block(result: Result) -> str:
    p = result.provenance
    if not p:
        return f"`{result.path.name}`: no provenance recorded.\n"
    versions = ", ".join(f"{name} {p[name]}" for name in ("python", "numpy", "numba", "torch") if p.get(name))
    threads = ", ".join(f"{k}={v}" for k, v in (p.get("threads_env") or {}).items())
    load_avg = (p.get("machine") or {}).get("load_average_1_5_15_min")
    items = [
        f"file: `benchmarks/results/{result.path.name}`",
        f"date: {p.get('date_utc', '?')}, commit {short_commit(p)}",
        f"command: `{p.get('command', '?')}`",
        f"machine: {result.machine}; {(p.get('machine') or {}).get('system', '')}",
        f"libraries: {versions}; BLAS {p.get('blas', '?')}; npconv tier {p.get('npconv_tier', '?')}",
    ]
    if threads or p.get("numba_threads") or p.get("torch_threads"):
        items.append(
            f"threads: {threads or 'default'}; Numba {p.get('numba_threads', '?')}, "
            f"PyTorch {p.get('torch_threads', '—')}"
        )
    if load_avg:
        items.append("load average at the end (1, 5, 15 min): " + fmt(load_avg, 2))
    return "".join(f"- {item}\n" for item in items)


# ---------------------------------------------------------------- generic tables


def _scalar(value) -> bool:
    return not isinstance(value, (dict, list)) or (
        isinstance(value, list) and len(value) <= 8 and all(not isinstance(v, (dict, list)) for v in value)
    )


def generic(data, heading: str = "####") -> str:
    """Any JSON object as text: its scalar fields as a list, each list of objects as a table."""
    out = []
    if isinstance(data, dict):
        scalars = {k: v for k, v in data.items() if k != "provenance" and _scalar(v)}
        if scalars:
            out.append("".join(f"- {k}: {fmt(v)}\n" for k, v in scalars.items()))
        for key, value in data.items():
            if key == "provenance" or _scalar(value):
                continue
            out.append(f"{heading} {key}\n\n" + generic(value, heading + "#"))
    elif isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        columns = []
        for row in data:
            columns += [k for k, v in row.items() if k not in columns and k != "provenance" and _scalar(v)]
        out.append(table(columns, [[fmt(row.get(c)) for c in columns] for row in data]))
        nested = [
            (i, k)
            for i, row in enumerate(data)
            for k, v in row.items()
            if k != "provenance"
            and not _scalar(v)
            and isinstance(v, list)
            and v
            and all(isinstance(x, dict) for x in v)
        ]
        for i, key in nested:
            label = ", ".join(f"{c} {fmt(data[i][c])}" for c in columns[:2])
            out.append(f"{heading} {key} ({label})\n\n" + generic(data[i][key], heading + "#"))
    elif isinstance(data, list):
        out.append(fmt(data) + "\n")
    else:
        out.append(fmt(data) + "\n")
    return "\n".join(out)


# ---------------------------------------------------------------- training speed


def _best_torch(row: dict):
    """PyTorch's fastest fp32 configuration in a row, if the run measured several: (seconds, name)."""
    configs = row.get("torch_configs") or row.get("torch_fp32") or {}
    if isinstance(configs, dict) and configs:
        seconds = {name: v if isinstance(v, (int, float)) else (v or {}).get("seconds") for name, v in configs.items()}
        seconds = {k: v for k, v in seconds.items() if isinstance(v, (int, float))}
        if seconds:
            name = min(seconds, key=seconds.get)
            return seconds[name], name
    for key in ("torch_best_s", "best_torch_s"):
        if isinstance(row.get(key), (int, float)):
            return row[key], row.get("torch_best_config", "fastest configuration")
    return None, None


def train_ratio(row: dict):
    """(npconv / PyTorch's best fp32, met?) or (None, None) where only one PyTorch configuration ran."""
    for key in ("ratio_best", "best_ratio", "compiled_ratio_best"):
        if isinstance(row.get(key), (int, float)):
            return row[key], row[key] <= TRAIN_RATIO
    best, _ = _best_torch(row)
    if best and row.get("compiled_s"):
        ratio = row["compiled_s"] / best
        return ratio, ratio <= TRAIN_RATIO
    return None, None


def train_speed(result: Result) -> str:
    d = result.data
    rows = d.get("rows") or []
    out = []
    header = [
        "model (images, batch)",
        "npconv compiled tier",
        "NumPy tier",
        "PyTorch (eager NCHW)",
        "npconv / PyTorch",
        "NumPy tier / PyTorch",
        f"npconv / PyTorch's best fp32 (target ≤ {TRAIN_RATIO})",
    ]
    body = []
    for row in rows:
        ratio, met = train_ratio(row)
        best = (
            f"{r2(ratio)} ({verdict(met)})"
            if ratio is not None
            else "**not measured**: this run timed PyTorch's default configuration only"
        )
        body.append(
            [
                f"{row.get('model')} ({row.get('images')}, {row.get('batch')})",
                f"{fmt(row.get('compiled_s'))} s",
                f"{fmt(row.get('numpy_s'))} s",
                f"{fmt(row.get('torch_s'))} s",
                f"**{r2(row.get('compiled_ratio'))}**",
                r2(row.get("numpy_ratio")),
                best,
            ]
        )
    rounds = d.get("rounds") or d.get("pairs")
    out.append(
        f"Seconds per epoch, the median of {fmt(rounds)} rounds; each library in its own warm "
        "process, taking turns. A ratio is the median of the per-round ratios.\n\n" + table(header, body)
    )
    notes = [f"- {row.get('model')}: {row['note']}." for row in rows if row.get("note")]
    if notes:
        out.append("\n".join(notes) + "\n")
    latency = [
        [
            row.get("model"),
            f"{fmt(row.get('npconv_latency1_ms'))} ms",
            f"{fmt(row.get('torch_best_latency1_ms', row.get('torch_latency1_ms')))} ms",
            _latency_cell(row),
            f"{fmt(row.get('npconv_latency64_ms'))} ms",
            f"{fmt(row.get('torch_latency64_ms'))} ms",
        ]
        for row in rows
        if "npconv_latency1_ms" in row
    ]
    if latency:
        out.append(
            table(
                [
                    "model",
                    "one image, npconv",
                    "one image, PyTorch (faster eager layout)",
                    f"ratio (target ≤ {LATENCY_RATIO})",
                    "batch of 64, npconv",
                    "batch of 64, PyTorch eager NCHW",
                ],
                latency,
            )
        )
    busy = d.get("busy") or []
    if busy:
        out.append(
            table(
                [
                    "model (beside two busy loops)",
                    "npconv alone / busy",
                    "npconv slowdown",
                    "PyTorch alone / busy",
                    "PyTorch slowdown",
                ],
                [
                    [
                        b.get("model"),
                        f"{fmt(b.get('npconv alone_s'))} / {fmt(b.get('npconv busy_s'))} s",
                        f"{r2(b.get('npconv slowdown'))}x ({verdict(_busy_met(b))}, target ≤ {BUSY_SLOWDOWN}x)",
                        f"{fmt(b.get('torch alone_s'))} / {fmt(b.get('torch busy_s'))} s",
                        f"{r2(b.get('torch slowdown'))}x",
                    ]
                    for b in busy
                ],
            )
        )
    memory = d.get("memory") or {}
    if memory:
        limit = (d.get("targets") or {}).get("max_rss_mb")

        def rss(m: dict) -> str:
            text = f"{fmt(m.get('max_rss_mb'))} MB"
            return text + (f" ({verdict(m.get('max_rss_mb', 1e9) <= limit)}, target ≤ {limit} MB)" if limit else "")

        out.append(
            table(
                ["peak memory, Happy at batch 64", "max RSS", "traced peak (Python allocations)"],
                [[tier, rss(m), f"{fmt(m.get('traced_peak_mb'))} MB"] for tier, m in memory.items()],
            )
        )
    extra = {
        k: v
        for k, v in d.items()
        if k not in ("provenance", "rows", "busy", "memory", "rounds", "pairs", "targets", "seconds", "clock")
    }
    if extra:
        out.append("Other fields of this run:\n\n" + generic(extra))
    return "\n".join(out)


def _latency_ratio(row: dict):
    """``(ratio, against PyTorch's faster eager configuration)``: the run's own ratio where it took
    one (the median of per-round ratios), else one image against eager NCHW."""
    if row.get("latency1_vs_best_eager") is not None:
        return row["latency1_vs_best_eager"], True
    ours, theirs = row.get("npconv_latency1_ms"), row.get("torch_latency1_ms")
    return (ours / theirs if ours and theirs else None), False


def _epoch_peak_share(rows) -> float | None:
    """The compiled tier's share of the sgemm peak over the epoch of ``smallres (no augmentation)``
    (``train_speed.py``'s ``of_peak``, the row its own target check reads), or ``None``."""
    for row in rows:
        if row.get("model") == "smallres (no augmentation)":
            return (row.get("of_peak") or {}).get("compiled")
    return None


def _latency_cell(row: dict) -> str:
    ratio, against_best = _latency_ratio(row)
    if ratio is None:
        return "—"
    if against_best:
        return f"{r2(ratio)} ({verdict(ratio <= LATENCY_RATIO)})"
    # Against PyTorch's default only: a ratio above 1 is missed whatever its best is, one under 1 is unproven.
    return (
        f"{r2(ratio)} (**missed**)"
        if ratio > LATENCY_RATIO
        else f"{r2(ratio)} against eager NCHW (against the best: **not measured**)"
    )


def _busy_met(busy_row: dict):
    slowdown = busy_row.get("npconv slowdown")
    return None if slowdown is None else slowdown <= BUSY_SLOWDOWN


# ---------------------------------------------------------------- other known kinds


def ops(result: Result) -> str:
    out = []
    for run in result.data.get("runs") or []:
        rows = run.get("rows") or []
        out.append(f"#### {run.get('threads')} thread(s); measured sgemm peak {fmt(run.get('peak_gflops'))} GFLOP/s\n")
        out.append(
            "GFLOP/s count a convolution's multiply-adds as the direct convolution does them; for the 3 x 3 "
            '"same" layers, which run by Winograd\'s F(2 x 2, 3 x 3), they are an effective rate.\n'
        )
        out.append(
            table(
                [
                    "model",
                    "op",
                    "input",
                    "forward ms (npconv / PyTorch)",
                    "backward ms (npconv / PyTorch)",
                    "ratio fwd / bwd",
                    "GFLOP/s fwd / bwd",
                ],
                [
                    [
                        r.get("model"),
                        r.get("op"),
                        f"`{tuple(r.get('shape') or ())}`",
                        f"{fmt(r.get('compiled_fwd_ms'))} / {fmt(r.get('torch_fwd_ms'))}",
                        f"{fmt(r.get('compiled_bwd_ms'))} / {fmt(r.get('torch_bwd_ms'))}",
                        f"{_bold_above_one(r.get('ratio_fwd'))} / {_bold_above_one(r.get('ratio_bwd'))}",
                        f"{fmt(r.get('gflops_fwd'))} / {fmt(r.get('gflops_bwd'))}" if r.get("flops") else "",
                    ]
                    for r in rows
                ],
            )
        )
    return "\n".join(out) or generic(result.data)


def _bold_above_one(ratio) -> str:
    return f"**{r2(ratio)}**" if isinstance(ratio, (int, float)) and ratio > 1 else r2(ratio)


def startup(result: Result) -> str:
    return table(
        ["what", "empty Numba cache", "warm cache", "NumPy tier"],
        [
            [r.get("what"), f"{fmt(r.get('cold_s'))} s", f"{fmt(r.get('warm_s'))} s", f"{fmt(r.get('numpy_tier_s'))} s"]
            for r in result.data.get("rows") or []
        ],
    )


def accuracy_rows(result: Result) -> list[dict]:
    """The latest row of each (id, model, framework): the test-set figures, without the CV searches."""
    chosen: dict[tuple, dict] = {}
    for row in result.data.get("rows") or []:
        if "scores" in row:
            continue
        key = (row.get("id"), row.get("model"), row.get("framework"))
        if key not in chosen or str(row.get("measured", "")) >= str(chosen[key].get("measured", "")):
            chosen[key] = row
    return list(chosen.values())


def _accuracy_text(row) -> str:
    if row is None:
        return "—"
    text = f"{row['accuracy']:.3f}"
    if row.get("accuracy_std"):
        text += f" ± {row['accuracy_std']:.3f}"
    runs = row.get("runs")
    if isinstance(runs, list) and len(runs) > 1 and all(isinstance(r, dict) and "accuracy" in r for r in runs):
        text += " (" + ", ".join(f"{r['accuracy']:.3f}" for r in runs) + ")"
    return text


def accuracy_table(result: Result) -> str:
    rows = accuracy_rows(result)
    torch = {(r.get("id"), r.get("model")): r for r in rows if r.get("framework") == "pytorch"}
    body = []
    for row in (r for r in rows if r.get("framework") == "npconv"):
        twin = torch.get((row.get("id"), row.get("model")))
        target = row.get("target")
        body.append(
            [
                row.get("data"),
                row.get("model"),
                row.get("held_out"),
                _accuracy_text(row),
                _accuracy_text(twin),
                f"≥ {target}" if target is not None else "—",
                verdict(row.get("met")) if target is not None else "—",
                row.get("measured", ""),
            ]
        )
    return table(
        ["data set", "model", "held out", "npconv", "PyTorch, same net and recipe", "target", "met", "measured"], body
    )


def accuracy(result: Result) -> str:
    out = [
        "The latest run of each row. A target marked met holds for the mean, or for every seed where "
        "the target says so (`benchmarks/accuracy.py`).\n",
        accuracy_table(result),
    ]
    searches = [r for r in result.data.get("rows") or [] if "scores" in r]
    if searches:
        body = []
        for r in searches:
            scores = r["scores"]
            single = ", ".join(str(s.get("errors")) for s in scores.get("single", []))
            merged = "; ".join(
                f"{name}: " + ", ".join(str(s.get("errors")) for s in runs)
                for name, runs in scores.items()
                if name != "single"
            )
            body.append([r.get("id"), r.get("model"), fmt(r.get("seeds")), single, merged, r.get("measured", "")])
        out.append(
            "How the recipes were chosen (`benchmarks/recipe_cv.py`): errors summed over the folds of "
            "the training data, one figure per seed, for one model and for the views and averages "
            "scored from the same models.\n\n"
            + table(["search", "variant", "seeds", "errors, one model", "errors, other scorings", "measured"], body)
        )
    return "\n".join(out)


def kernels(result: Result) -> str:
    return (
        table(
            ["kernel", "shape", "loops (fwd / bwd)", "NumPy tier", "compiled tier", "PyTorch"],
            [
                [
                    r.get("kernel"),
                    f"`{r.get('shape')}`",
                    _pair(r, "loop"),
                    _pair(r, "numpy"),
                    _pair(r, "compiled"),
                    _pair(r, "torch"),
                ]
                for r in result.data.get("rows") or []
            ],
        )
        + f"\nSeconds, the median of {fmt(result.data.get('repeats'))} repeats.\n"
    )


def _pair(row, name) -> str:
    fwd, bwd = row.get(f"{name}_fwd"), row.get(f"{name}_bwd")
    return "—" if fwd is None and bwd is None else f"{fmt(fwd)} / {fmt(bwd)}"


RENDERERS = {"train_speed": train_speed, "ops": ops, "startup": startup, "accuracy": accuracy, "kernels": kernels}


def render(result: Result) -> str:
    """A run's tables; the generic ones where the file's structure is not the one expected."""
    renderer = RENDERERS.get(result.kind, generic)
    try:
        return renderer(result.data if renderer is generic else result)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        return (
            f"(Shown as generic tables: this file's structure is not the one the page knows for "
            f"`{result.kind}`, {type(exc).__name__}: {exc}.)\n\n" + generic(result.data)
        )


# ---------------------------------------------------------------- targets


def targets(chosen: dict[tuple[str, str], Result]) -> list[tuple[str, list[list[str]]]]:
    """Every target against the latest runs: per run (newest first), rows of target, figure, verdict."""
    groups = []
    speed = sorted((r for (kind, _), r in chosen.items() if kind == "train_speed"), key=lambda r: r.date, reverse=True)
    for result in speed:
        rows = []
        for row in result.data.get("rows") or []:
            ratio, met = train_ratio(row)
            figure = (
                r2(ratio)
                if ratio is not None
                else f"{r2(row.get('compiled_ratio'))} against PyTorch's default (eager NCHW) only"
            )
            rows.append(
                [f"training epoch ≤ {TRAIN_RATIO}x PyTorch's best fp32: {row.get('model')}", figure, verdict(met)]
            )
        for row in result.data.get("rows") or []:
            ratio, against_best = _latency_ratio(row)
            if ratio is None:
                continue
            met = ratio <= LATENCY_RATIO if against_best else (False if ratio > LATENCY_RATIO else None)
            rows.append(
                [
                    f"one-image predict ≤ {LATENCY_RATIO}x PyTorch's best: {row.get('model')}",
                    r2(ratio) + ("" if against_best else " against eager NCHW"),
                    verdict(met),
                ]
            )
        for b in result.data.get("busy") or []:
            rows.append(
                [
                    f"slowdown beside two busy loops ≤ {BUSY_SLOWDOWN}x: {b.get('model')}",
                    f"{r2(b.get('npconv slowdown'))}x",
                    verdict(_busy_met(b)),
                ]
            )
        share = _epoch_peak_share(result.data.get("rows") or [])
        rows.append(
            [
                f"`smallres` epoch at ≥ {EPOCH_PEAK_SHARE:.0%} of the measured sgemm peak",
                r2(share) if share is not None else "—",
                verdict(None if share is None else share >= EPOCH_PEAK_SHARE),
            ]
        )
        groups.append(
            (
                f"{result.machine}: `{result.path.name}`, {result.date[:10]}, commit {short_commit(result.provenance)}",
                rows,
            )
        )
    for (kind, machine), result in chosen.items():
        if kind != "accuracy":
            continue
        rows, measured = [], ""
        for row in accuracy_rows(result):
            if row.get("id") != "signs" or row.get("framework") != "npconv":
                continue
            measured = row.get("measured", "")
            runs = [r["accuracy"] for r in row.get("runs") or [] if isinstance(r, dict) and "accuracy" in r]
            worst = min(runs) if runs else row.get("accuracy_min", row.get("accuracy"))
            rows.append(
                [
                    f"SIGNS clean accuracy ≥ {SIGNS_ACCURACY}, every seed (`npconv train signs`)",
                    f"{_accuracy_text(row)}; worst seed {worst:.3f}",
                    verdict(worst >= SIGNS_ACCURACY),
                ]
            )
        if rows:
            groups.append((f"{machine}: `{result.path.name}`, measured {measured}", rows))
    return groups


def page(results_dir: Path = RESULTS) -> str:
    """The generated part of the benchmarks page."""
    results = load(results_dir)
    chosen = latest(results)
    out = [
        "## Targets against the latest runs\n",
        "Each target against the latest run of each machine. *Not measured* means that no results file "
        "holds the figure the target needs, so the target cannot be claimed.\n",
    ]
    for title, rows in targets(chosen):
        out.append(f"**{title}**\n\n" + table(["target", "figure", "verdict"], rows))
    kinds = list(KINDS) + sorted({kind for kind, _ in chosen} - set(KINDS))
    for kind in kinds:
        runs = sorted((r for (k, _), r in chosen.items() if k == kind), key=lambda r: r.date, reverse=True)
        if not runs:
            continue
        out.append(f"## {KINDS.get(kind, kind.replace('_', ' ').capitalize())}\n")
        for result in runs:
            out.append(f"### {result.machine}, {result.date[:10]}\n")
            out.append(provenance_block(result))
            out.append(render(result))
        older = sorted(r.path.name for r in results if r.kind == kind and r not in runs)
        if older:
            out.append(
                "Older runs of this benchmark (superseded on their machine): "
                + ", ".join(f"`{name}`" for name in older)
                + ".\n"
            )
    return "\n".join(out)


# ---------------------------------------------------------------- README


def readme_tables(results_dir: Path = RESULTS) -> str:
    """The README's speed and accuracy tables: the latest training-speed run on each machine, and the
    accuracy rows."""
    chosen = latest(load(results_dir))
    out = [README_START, ""]
    # the latest run on each machine, newest first, in one table: the ratios depend on the CPU
    speed = sorted((r for (k, _), r in chosen.items() if k == "train_speed"), key=lambda r: r.date, reverse=True)
    if speed:
        runs = "; ".join(
            f"`{r.provenance.get('command', '?')}`, {r.machine}, {r.date[:10]}, commit {short_commit(r.provenance)}"
            for r in speed
        )
        out.append(f"Training speed, seconds per epoch, two threads each ({runs}):")
        out.append("")
        body = []
        for result in speed:
            for row in result.data.get("rows") or []:
                ratio, met = train_ratio(row)
                body.append(
                    [
                        result.machine.split(",")[0],
                        row.get("model"),
                        f"{fmt(row.get('compiled_s'))} s",
                        f"{fmt(row.get('torch_s'))} s",
                        r2(row.get("compiled_ratio")),
                        f"{r2(ratio)} ({verdict(met)})" if ratio is not None else verdict(None),
                    ]
                )
        out.append(
            table(
                [
                    "CPU",
                    "model",
                    "npconv",
                    "PyTorch 2.13, eager NCHW",
                    "ratio",
                    f"against PyTorch's best fp32 (target ≤ {TRAIN_RATIO})",
                ],
                body,
            )
        )
    accuracy_runs = [r for (k, _), r in chosen.items() if k == "accuracy"]
    if accuracy_runs:
        result = max(accuracy_runs, key=lambda r: r.date)
        body = []
        rows = accuracy_rows(result)
        torch = {(r.get("id"), r.get("model")): r for r in rows if r.get("framework") == "pytorch"}
        for row in (r for r in rows if r.get("framework") == "npconv" and r.get("target") is not None):
            twin = torch.get((row.get("id"), row.get("model")))
            body.append(
                [
                    f"{row.get('data')}: {row.get('model')}",
                    row.get("held_out"),
                    _accuracy_text(row).split(" (")[0],
                    _accuracy_text(twin).split(" (")[0],
                    f"≥ {row.get('target')}",
                    verdict(row.get("met")),
                ]
            )
        out.append(f"Accuracy (`python benchmarks/accuracy.py`, `benchmarks/results/{result.path.name}`):")
        out.append("")
        out.append(table(["data set: model", "held out", "npconv", "PyTorch, same net", "target", "met"], body))
    out.append(README_END)
    return "\n".join(out)


def update_readme(readme: Path = ROOT / "README.md", results_dir: Path = RESULTS) -> bool:
    """Rewrite the README's tables between the markers; returns whether anything changed."""
    text = readme.read_text()
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    new = text[:start] + readme_tables(results_dir) + text[end:]
    if new != text:
        readme.write_text(new)
    return new != text


# ---------------------------------------------------------------- Sphinx


def _on_builder_inited(app) -> None:
    out = Path(app.srcdir) / "benchmarks" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    text = page(RESULTS)
    path = out / "results.inc"  # included by docs/benchmarks/index.md; not a page of its own
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def setup(app):
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="npconv's benchmark tables from benchmarks/results/*.json")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--readme", action="store_true", help="print the README's speed and accuracy tables")
    what.add_argument("--update-readme", action="store_true", help="rewrite those tables in README.md")
    args = parser.parse_args()
    if args.update_readme:
        print("README.md updated" if update_readme() else "README.md already up to date")
    elif args.readme:
        print(readme_tables())
    else:
        print(page())
