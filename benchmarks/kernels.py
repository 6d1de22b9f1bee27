"""Kernel benchmark: the course's loops vs npconv's vectorised kernels vs PyTorch (CPU).

Prints a table (median seconds of several repeats, and ratios measured in the same run) and writes
``benchmarks/results/kernels.json``. Run: ``python benchmarks/kernels.py [--repeats 7] [--quick]``.
"""
from __future__ import annotations

import argparse

import numpy as np

from _timing import median_seconds, print_table, write_json
from npconv import course
from npconv import functional as F

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # the table still compares the two NumPy tiers
    torch = None


def to_torch(a, grad=False):
    return torch.tensor(np.ascontiguousarray(a.transpose(0, 3, 1, 2)), requires_grad=grad)


def conv_case(name, m, size, c, f, k, stride, pad, loop_tier):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, size, size, c)).astype(np.float32)
    w = (rng.standard_normal((f, f, c, k)) * 0.1).astype(np.float32)
    b = np.zeros(k, np.float32)
    out, cache = F.conv2d_forward(x, w, b, stride, pad)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    row = {"kernel": name, "shape": f"x{x.shape} w{w.shape} s{stride} p{pad}"}
    row["fast_fwd"] = median_seconds(lambda: F.conv2d_forward(x, w, b, stride, pad), REPEATS)
    row["fast_bwd"] = median_seconds(lambda: F.conv2d_backward(dout, cache), REPEATS)
    if loop_tier:
        hp = {"pad": pad, "stride": stride}
        b4 = b.reshape(1, 1, 1, k)
        _, loop_cache = course.conv_forward(x, w, b4, hp)
        row["loop_fwd"] = median_seconds(lambda: course.conv_forward(x, w, b4, hp), 1, 0)
        row["loop_bwd"] = median_seconds(lambda: course.conv_backward(dout, loop_cache), 1, 0)
    if torch is not None:
        xt, wt = to_torch(x, True), torch.tensor(np.ascontiguousarray(w.transpose(3, 2, 0, 1)), requires_grad=True)
        bt, dt = torch.tensor(b, requires_grad=True), to_torch(dout)

        def torch_fwd():
            with torch.no_grad():
                TF.conv2d(xt, wt, bt, stride=stride, padding=pad)
        yt = TF.conv2d(xt, wt, bt, stride=stride, padding=pad)
        row["torch_fwd"] = median_seconds(torch_fwd, REPEATS)
        row["torch_bwd"] = median_seconds(
            lambda: torch.autograd.grad(yt, (xt, wt, bt), dt, retain_graph=True), REPEATS)
    return row


def pool_case(name, m, size, c, f, stride, mode, loop_tier):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, size, size, c)).astype(np.float32)
    out, cache = F.pool2d_forward(x, f, stride, mode=mode)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    row = {"kernel": name, "shape": f"x{x.shape} f{f} s{stride}"}
    row["fast_fwd"] = median_seconds(lambda: F.pool2d_forward(x, f, stride, mode=mode), REPEATS)
    row["fast_bwd"] = median_seconds(lambda: F.pool2d_backward(dout, cache), REPEATS)
    if loop_tier:
        hp = {"f": f, "stride": stride}
        _, loop_cache = course.pool_forward(x, hp, mode)
        row["loop_fwd"] = median_seconds(lambda: course.pool_forward(x, hp, mode), 1, 0)
        row["loop_bwd"] = median_seconds(lambda: course.pool_backward(dout, loop_cache, mode), 1, 0)
    if torch is not None:
        xt, dt = to_torch(x, True), to_torch(dout)
        op = TF.max_pool2d if mode == "max" else TF.avg_pool2d

        def torch_fwd():
            with torch.no_grad():
                op(xt, f, stride)
        yt = op(xt, f, stride)
        row["torch_fwd"] = median_seconds(torch_fwd, REPEATS)
        row["torch_bwd"] = median_seconds(lambda: torch.autograd.grad(yt, xt, dt, retain_graph=True), REPEATS)
    return row


def main():
    global REPEATS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="skip the (slow) loop tier on larger shapes")
    parser.add_argument("--json", default=None, help="where to write the JSON (default benchmarks/results/)")
    args = parser.parse_args()
    REPEATS = args.repeats
    rows = [
        # small shapes where the loop tier finishes in seconds
        conv_case("conv course-size", 4, 16, 3, 3, 8, 1, 1, True),
        pool_case("maxpool course-size", 4, 16, 8, 2, 2, "max", True),
        pool_case("avgpool course-size", 4, 16, 8, 2, 2, "average", True),
        # the course models' layers at training batch sizes
        conv_case("conv Happy conv0 (b16)", 16, 70, 3, 7, 32, 1, 0, False),
        conv_case("conv SIGNS conv1 (b64)", 64, 64, 3, 4, 8, 1, 2, False),
        conv_case("conv 3x3 32->32 (b32)", 32, 32, 32, 3, 32, 1, 1, False),
        pool_case("maxpool Happy 2x2 (b16)", 16, 64, 32, 2, 2, "max", False),
        pool_case("maxpool SIGNS 8x8 (b64)", 64, 64, 8, 8, 8, "max", False),
    ]
    for row in rows:
        for phase in ("fwd", "bwd"):
            if row.get(f"loop_{phase}"):
                row[f"speedup_{phase}"] = row[f"loop_{phase}"] / row[f"fast_{phase}"]
            if row.get(f"torch_{phase}"):
                row[f"ratio_{phase}"] = row[f"fast_{phase}"] / row[f"torch_{phase}"]
    ms = "8.2f"
    print("Seconds are medians; times in ms. speedup = loop / vectorised; ratio = npconv / PyTorch.")
    print_table([{**r, **{k: v * 1e3 for k, v in r.items() if k.split("_")[0] in ("loop", "fast", "torch")}}
                 for r in rows], [
        ("kernel", "kernel", "s"), ("loop_fwd", "loop fwd", ms), ("fast_fwd", "npconv fwd", ms),
        ("torch_fwd", "torch fwd", ms), ("speedup_fwd", "speedup", ".0f"), ("ratio_fwd", "ratio", ".2f"),
        ("loop_bwd", "loop bwd", ms), ("fast_bwd", "npconv bwd", ms), ("torch_bwd", "torch bwd", ms),
        ("speedup_bwd", "speedup", ".0f"), ("ratio_bwd", "ratio", ".2f"),
    ])
    path = write_json("kernels", {"unit": "seconds (median)", "repeats": REPEATS, "rows": rows}, args.json)
    print(f"\nwrote {path}")


REPEATS = 7
if __name__ == "__main__":
    main()
