"""Timing helpers shared by the benchmarks: medians of repeats, tables, JSON output (with provenance)."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from provenance import provenance

RESULTS = Path(__file__).resolve().parent / "results"


CLOCK = time.perf_counter  # wall time; ``time.process_time`` for CPU time (train_speed --clock cpu)


def median_seconds(fn, repeats: int = 7, warmup: int = 1) -> float:
    """Median time of ``fn()`` by :data:`CLOCK` over ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = CLOCK()
        fn()
        times.append(CLOCK() - start)
    return statistics.median(times)


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    """Print ``rows`` as an aligned table; ``columns`` are (key, header, format) triples."""
    cells = [[header for _, header, _ in columns]]
    for row in rows:
        cells.append(["-" if row.get(key) is None else format(row[key], fmt) for key, _, fmt in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for n, r in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def write_json(name: str, payload: dict, path: str | None = None) -> Path:
    out = Path(path) if path else RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"provenance": provenance(), **payload}, indent=2))
    return out
