"""Kernel benchmark: the course's loops vs npconv's NumPy and compiled tiers vs PyTorch (CPU).

Every time is the median of ``--repeats`` calls after one untimed warm-up call (the loop tier's
too, with at most 3 repeats: a call takes seconds). Prints a table (ratios measured in the same run)
and writes ``benchmarks/results/kernels.json``.
Run: ``python benchmarks/kernels.py [--repeats 7] [--quick]``.
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import median_seconds, print_table, write_json

from npconv import course
from npconv import functional as F
from npconv.functional._tier import compiled_available, use_tier

TIERS = ("numpy", "compiled") if compiled_available() else ("numpy",)
LOOP_REPEATS = 3

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
    out, _ = F.conv2d_forward(x, w, b, stride, pad)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    row = {"kernel": name, "shape": f"x{x.shape} w{w.shape} s{stride} p{pad}"}
    for tier in TIERS:
        with use_tier(tier):
            cache = F.conv2d_forward(x, w, b, stride, pad)[1]
            row[f"{tier}_fwd"] = median_seconds(lambda: F.conv2d_forward(x, w, b, stride, pad), REPEATS)
            row[f"{tier}_bwd"] = median_seconds(lambda: F.conv2d_backward(dout, cache), REPEATS)
    if loop_tier:
        hp = {"pad": pad, "stride": stride}
        b4 = b.reshape(1, 1, 1, k)
        _, loop_cache = course.conv_forward(x, w, b4, hp)
        row["loop_fwd"] = median_seconds(lambda: course.conv_forward(x, w, b4, hp), LOOP_REPEATS)
        row["loop_bwd"] = median_seconds(lambda: course.conv_backward(dout, loop_cache), LOOP_REPEATS)
    if torch is not None:
        xt, wt = to_torch(x, True), torch.tensor(np.ascontiguousarray(w.transpose(3, 2, 0, 1)), requires_grad=True)
        bt, dt = torch.tensor(b, requires_grad=True), to_torch(dout)

        def torch_fwd():
            with torch.no_grad():
                TF.conv2d(xt, wt, bt, stride=stride, padding=pad)

        yt = TF.conv2d(xt, wt, bt, stride=stride, padding=pad)
        row["torch_fwd"] = median_seconds(torch_fwd, REPEATS)
        row["torch_bwd"] = median_seconds(lambda: torch.autograd.grad(yt, (xt, wt, bt), dt, retain_graph=True), REPEATS)
    return row


def pool_case(name, m, size, c, f, stride, mode, loop_tier):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, size, size, c)).astype(np.float32)
    out, _ = F.pool2d_forward(x, f, stride, mode=mode)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    row = {"kernel": name, "shape": f"x{x.shape} f{f} s{stride}"}
    for tier in TIERS:
        with use_tier(tier):
            cache = F.pool2d_forward(x, f, stride, mode=mode)[1]
            row[f"{tier}_fwd"] = median_seconds(lambda: F.pool2d_forward(x, f, stride, mode=mode), REPEATS)
            row[f"{tier}_bwd"] = median_seconds(lambda: F.pool2d_backward(dout, cache), REPEATS)
    if loop_tier:
        hp = {"f": f, "stride": stride}
        _, loop_cache = course.pool_forward(x, hp, mode)
        row["loop_fwd"] = median_seconds(lambda: course.pool_forward(x, hp, mode), LOOP_REPEATS)
        row["loop_bwd"] = median_seconds(lambda: course.pool_backward(dout, loop_cache, mode), LOOP_REPEATS)
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


def batchnorm_case(name, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    gamma, beta = np.ones(shape[-1], np.float32), np.zeros(shape[-1], np.float32)
    dout = rng.standard_normal(shape).astype(np.float32)
    row = {"kernel": name, "shape": f"x{x.shape}"}
    for tier in TIERS:
        with use_tier(tier):
            cache = F.batchnorm_forward(x, gamma, beta)[1]
            row[f"{tier}_fwd"] = median_seconds(lambda: F.batchnorm_forward(x, gamma, beta), REPEATS)
            row[f"{tier}_bwd"] = median_seconds(lambda: F.batchnorm_backward(dout, cache), REPEATS)
    if torch is not None:
        xt, dt = to_torch(x, True), to_torch(dout)
        bn = torch.nn.BatchNorm2d(shape[-1], eps=1e-3)

        def torch_fwd():
            with torch.no_grad():
                bn(xt)

        yt = bn(xt)
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
        batchnorm_case("batchnorm Happy (b16)", (16, 64, 64, 32)),
    ]
    fastest = TIERS[-1]  # the default tier: compiled when Numba is installed
    for row in rows:
        for phase in ("fwd", "bwd"):
            if row.get(f"loop_{phase}"):
                row[f"speedup_{phase}"] = row[f"loop_{phase}"] / row[f"numpy_{phase}"]
            if row.get(f"torch_{phase}"):
                row[f"ratio_{phase}"] = row[f"{fastest}_{phase}"] / row[f"torch_{phase}"]
    ms = "8.2f"
    print(f"Times in ms, medians. speedup = loop / NumPy tier; ratio = npconv ({fastest} tier) / PyTorch.")
    columns = [("kernel", "kernel", "s")]
    for phase in ("fwd", "bwd"):
        columns += [("loop_" + phase, "loop " + phase, ms)]
        columns += [(f"{tier}_{phase}", f"{tier} {phase}", ms) for tier in TIERS]
        columns += [
            (f"torch_{phase}", "torch " + phase, ms),
            (f"speedup_{phase}", "speedup", ".0f"),
            (f"ratio_{phase}", "ratio", ".2f"),
        ]
    print_table(
        [{**r, **{k: v * 1e3 for k, v in r.items() if k.split("_")[0] in ("loop", "torch", *TIERS)}} for r in rows],
        columns,
    )
    path = write_json("kernels", {"unit": "seconds (median)", "repeats": REPEATS, "rows": rows}, args.json)
    print(f"\nwrote {path}")


REPEATS = 7
if __name__ == "__main__":
    main()
