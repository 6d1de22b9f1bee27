"""The training benchmark's printed tables (``train_speed.py`` measures; this module only prints)."""

from __future__ import annotations

from _timing import print_table
from epoch_profile import CLASSES

SHORT = {
    "torch_eager_nchw": "eager NCHW",
    "torch_eager_cl": "eager CL+fused",
    "torch_compile_nchw": "compile NCHW",
    "torch_compile_cl": "compile CL",
    "torch_bf16_cl": "bf16 CL (info)",
}
TIER_NAMES = {"compiled": "npconv", "numpy": "NumPy tier"}


def _fmt(value, fmt):
    return "-" if value is None else format(value, fmt)


def _table(rows: list[dict], headers: list[str]) -> None:
    print_table(rows, [(h, h, "s") for h in headers])


def print_report(rows, busy, memory, checks, tiers, configs, peak) -> None:
    tier = tiers[0]
    print(
        f"s/epoch, medians; ratio = npconv / PyTorch, median of the per-round ratios; fastest = the fastest "
        f"fp32 PyTorch configuration; GFLOP/s over the epoch, of peak = of {peak['gflops']:.0f} GFLOP/s "
        f"(sgemm, {peak['threads']} threads); bf16 is information only, not the target"
    )
    speed = []
    for r in rows:
        cells = {"model": r["model"]}
        for name in tiers:
            cells[f"{TIER_NAMES[name]} s"] = _fmt(r.get(f"{name}_s"), ".3f")
        for key in configs:
            entry = r["torch"][key]
            cells[SHORT[key]] = "unavail." if entry["unavailable"] else _fmt(entry["s_per_epoch"], ".3f")
        cells.update(
            {
                "fastest fp32": SHORT.get(r["best_fp32"], "-"),
                "ratio/fastest": _fmt(r[f"{tier}_ratio_best"], ".2f"),
                "ratio/NCHW": _fmt(r[f"{tier}_ratio"], ".2f"),
                "GFLOP/s": _fmt(r["gflops"][tier], ".0f"),
                "of peak": _fmt(r["of_peak"][tier], ".0%"),
                "torch fastest GFLOP/s": _fmt(r["gflops"].get(r["best_fp32"]), ".0f"),
            }
        )
        speed.append(cells)
    _table(speed, list(speed[0]))
    for r in rows:
        if r.get("note"):
            print(f"{r['model']}: {r['note']}; augmentation: {', '.join(r['augmentation'])}")

    print("\nPyTorch configurations (compile s = the warm-up epochs' time beyond steady epochs)")
    detail = [
        {
            "model": r["model"],
            "configuration": SHORT[k],
            "s/epoch": _fmt(e["s_per_epoch"], ".3f"),
            "warm-up s": "-" if not e["warmup_s"] else " + ".join(f"{w:.1f}" for w in e["warmup_s"]),
            "compile s": _fmt(e.get("compile_s"), ".1f"),
            "optimizer": e["optimizer"],
            "unavailable": e["unavailable"] or "",
        }
        for r in rows
        for k, e in r["torch"].items()
    ]
    _table(detail, list(detail[0]))

    print("\ninference latency, median ms (ratio: npconv / the faster of PyTorch's eager configurations)")
    latency = []
    for r in rows:
        cells = {"model": r["model"]}
        for name, lat in r["latency"].items():
            label = TIER_NAMES.get(name, SHORT.get(name))
            cells[f"{label} 1 img"] = _fmt(lat["one_ms"], ".2f")
            cells[f"{label} 64 img"] = _fmt(lat["batch64_ms"], ".1f")
        cells["ratio 1 img"] = _fmt(r["latency1_vs_best_eager"], ".2f")
        latency.append(cells)
    _table(latency, list(latency[0]))

    for r in rows:
        profiles = r["profile"]
        walls = ", ".join(f"{TIER_NAMES.get(n, SHORT.get(n))} {p['wall_s']:.3f} s" for n, p in profiles.items())
        print(f"\none epoch by op class, {r['model']} (seconds and share of the profiled epoch: {walls})")
        table = [
            {
                "class": cls,
                **{
                    f"{TIER_NAMES.get(n, SHORT.get(n))} {unit}": _fmt(p[key][cls], fmt)
                    for n, p in profiles.items()
                    for unit, key, fmt in (("s", "seconds", ".3f"), ("share", "share", ".0%"))
                },
            }
            for cls in CLASSES
        ]
        _table(table, list(table[0]))

    if busy:
        print(
            "\nbeside two busy loops on the two cores (median epoch seconds; slowdown = median of the "
            "rounds' busy / alone)"
        )
        names = ("npconv", "torch")
        print_table(
            busy,
            [("model", "model", "s")]
            + [
                (f"{n} {k}", f"{n} {k}", ".2f" if k == "slowdown" else ".3f")
                for n in names
                for k in ("alone_s", "busy_s", "slowdown")
            ],
        )
    for name, peak_mb in memory.items():
        print(
            f"\npeak memory, Happy model training at batch 64, {name} tier: NumPy traced "
            f"{peak_mb['traced_peak_mb']:.0f} MB, process max RSS {peak_mb['max_rss_mb']:.0f} MB",
            end="",
        )
    print("\n\ntargets (issue 33)")
    _table(
        [
            {
                "target": c["target"],
                "model": c["model"],
                "figure": _fmt(c["figure"], ".2f"),
                "met": "yes" if c["met"] else "NO",
            }
            for c in checks
        ],
        ["target", "model", "figure", "met"],
    )
