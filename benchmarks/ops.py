"""Per-operation benchmark: every layer type of the three benchmark models and the apps' defaults, at
their real shapes, forward and backward separately, npconv (both tiers) next to PyTorch's same op.

Each op is timed as a layer in training mode: npconv's ``layer.forward(x, training=True)`` then
``layer.backward(dout)`` (with ``need_dx=False`` for a network's first layer, as the models run it),
PyTorch's module forward with autograd on, then ``y.backward(dout)`` (the input does not require a
gradient for a first layer). Each library makes a block of back-to-back calls, the blocks follow
each other and then again in reverse order, so each ratio npconv/PyTorch is measured under the same
machine load; the table gives medians and their ratio.
Convolutions and dense layers also get GFLOP/s and their share of this machine's measured sgemm
peak at that thread count (1024 x 1024 float32, NumPy's BLAS), counting a convolution's
multiply-adds as the direct convolution does them: for the 3 x 3 "same" layers that run by
Winograd's F(2 x 2, 3 x 3) (16 multiply-adds for its 36), an effective rate, which can pass the
peak. The optimiser step (Adam over each model's parameters) and the losses are ops too.

Each thread count runs in a fresh process (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and
``NUMBA_NUM_THREADS`` set before import; PyTorch's ``set_num_threads``).

Run: ``python benchmarks/ops.py [--threads 1 2] [--rounds 15] [--only SUBSTRING]``; writes
``benchmarks/results/ops.json``. About a minute on an idle 2-core machine once Numba's cache holds
the kernels (the first run compiles them for a few minutes more).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------------- the ops
def conv(filters, kernel, padding="same", use_bias=True, first=False):
    return ("conv", {"filters": filters, "kernel": kernel, "padding": padding, "use_bias": use_bias, "first": first})


#: (model, op label, kind and options, input shape). Shapes are those the models run: npconv runs a
#: ReLU that feeds a max pool after the pool (engine/plan.py), so its ReLU rows are the pooled size.
OPS = [
    ("Happy", "ZeroPadding2D(3)", ("pad", {"padding": 3}), (16, 64, 64, 3)),
    ("Happy", "Conv2D 7x7 3->32 valid (first)", conv(32, 7, "valid", first=True), (16, 70, 70, 3)),
    ("Happy", "BatchNormalization", ("bn", {"momentum": 0.99}), (16, 64, 64, 32)),
    ("Happy", "MaxPooling2D 2", ("maxpool", {"pool": 2}), (16, 64, 64, 32)),
    ("Happy", "ReLU", ("relu", {}), (16, 32, 32, 32)),
    ("Happy", "Dense 32768->1", ("dense", {"units": 1}), (16, 32768)),
    ("Happy", "sigmoid + binary cross-entropy", ("loss", {"classes": 1}), (16, 1)),
    ("Happy", "Adam step (37,633 weights)", ("adam", {"model": "happy"}), None),
    ("SIGNS", "Conv2D 4x4 3->8 same (first)", conv(8, 4, first=True), (64, 64, 64, 3)),
    ("SIGNS", "MaxPooling2D 8", ("maxpool", {"pool": 8}), (64, 64, 64, 8)),
    ("SIGNS", "ReLU", ("relu", {}), (64, 8, 8, 8)),
    ("SIGNS", "Conv2D 2x2 8->16 same", conv(16, 2), (64, 8, 8, 8)),
    ("SIGNS", "MaxPooling2D 4", ("maxpool", {"pool": 4}), (64, 8, 8, 16)),
    ("SIGNS", "Dense 64->6", ("dense", {"units": 6}), (64, 64)),
    ("SIGNS", "softmax + cross-entropy", ("loss", {"classes": 6}), (64, 6)),
    ("SIGNS", "Adam step (1,310 weights)", ("adam", {"model": "signs"}), None),
    ("smallres", "RandomFlip", ("flip", {}), (32, 64, 64, 3)),
    ("smallres", "RandomTranslation(0.1)", ("translate", {"factor": 0.1}), (32, 64, 64, 3)),
    ("smallres", "Conv2D 3x3 3->16 stem (first)", conv(16, 3, use_bias=False, first=True), (32, 64, 64, 3)),
    ("smallres", "BatchNormalization", ("bn", {"momentum": 0.9}), (32, 64, 64, 16)),
    ("smallres", "MaxPooling2D 2", ("maxpool", {"pool": 2}), (32, 64, 64, 16)),
    ("smallres", "ReLU", ("relu", {}), (32, 32, 32, 16)),
    ("smallres", "Conv2D 3x3 16->16", conv(16, 3, use_bias=False), (32, 32, 32, 16)),
    ("smallres", "BatchNormalization", ("bn", {"momentum": 0.9}), (32, 32, 32, 16)),
    ("smallres", "Add", ("add", {}), (32, 32, 32, 16)),
    ("smallres", "MaxPooling2D 2", ("maxpool", {"pool": 2}), (32, 32, 32, 16)),
    ("smallres", "Conv2D 3x3 16->32", conv(32, 3, use_bias=False), (32, 16, 16, 16)),
    ("smallres", "Conv2D 3x3 32->32", conv(32, 3, use_bias=False), (32, 16, 16, 32)),
    ("smallres", "Conv2D 1x1 16->32", conv(32, 1, use_bias=False), (32, 16, 16, 16)),
    ("smallres", "BatchNormalization", ("bn", {"momentum": 0.9}), (32, 16, 16, 32)),
    ("smallres", "ReLU", ("relu", {}), (32, 16, 16, 32)),
    ("smallres", "MaxPooling2D 2", ("maxpool", {"pool": 2}), (32, 16, 16, 32)),
    ("smallres", "Conv2D 3x3 32->64", conv(64, 3, use_bias=False), (32, 8, 8, 32)),
    ("smallres", "Conv2D 3x3 64->64", conv(64, 3, use_bias=False), (32, 8, 8, 64)),
    ("smallres", "Conv2D 1x1 32->64", conv(64, 1, use_bias=False), (32, 8, 8, 32)),
    ("smallres", "BatchNormalization", ("bn", {"momentum": 0.9}), (32, 8, 8, 64)),
    ("smallres", "MaxPooling2D 2", ("maxpool", {"pool": 2}), (32, 8, 8, 64)),
    ("smallres", "GlobalAveragePooling2D", ("gap", {}), (32, 4, 4, 64)),
    ("smallres", "Dropout(0.3)", ("dropout", {"rate": 0.3}), (32, 64)),
    ("smallres", "Dense 64->6", ("dense", {"units": 6}), (32, 64)),
    ("smallres", "Adam step (77,782 weights)", ("adam", {"model": "smallres"}), None),
]


# ------------------------------------------------------------------- one op in both frameworks
def build(kind, options, shape, rng):
    """``(npconv_fwd, npconv_bwd, torch_fwd, torch_bwd, flops)``: four callables (each backward
    runs right after its forward) and the forward's floating-point operations (``None`` if not a
    product)."""
    import torch
    from torch import nn

    from npconv import layers as L

    x = rng.random(shape, dtype=np.float32) if shape else None
    first = options.get("first", False)
    flops = None
    if kind == "adam":
        return _adam(options["model"])
    if kind == "loss":
        return _loss(options["classes"], shape[0], rng)
    if kind == "conv":
        f, k = options["kernel"], options["filters"]
        layer = L.Conv2D(k, f, padding=options["padding"], use_bias=options["use_bias"])
        pad = (f - 1) // 2 if options["padding"] == "same" else 0
        # TensorFlow's "same" for an even kernel pads one more at the bottom/right
        extra = (f - 1) - 2 * pad if options["padding"] == "same" else 0
        module = nn.Sequential(
            nn.ZeroPad2d((pad, pad + extra, pad, pad + extra)), nn.Conv2d(shape[3], k, f, bias=options["use_bias"])
        )
    elif kind == "pad":
        layer, module = L.ZeroPadding2D(options["padding"]), nn.ZeroPad2d(options["padding"])
    elif kind == "bn":
        layer = L.BatchNormalization(momentum=options["momentum"])
        module = nn.BatchNorm2d(shape[3], eps=1e-3, momentum=1 - options["momentum"])
    elif kind == "maxpool":
        layer, module = L.MaxPooling2D(options["pool"]), nn.MaxPool2d(options["pool"])
    elif kind == "relu":
        layer, module = L.ReLU(), nn.ReLU()
    elif kind == "dense":
        layer, module = L.Dense(options["units"]), nn.Linear(shape[1], options["units"])
    elif kind == "gap":
        layer, module = L.GlobalAveragePooling2D(), nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    elif kind == "dropout":
        layer, module = L.Dropout(options["rate"]), nn.Dropout(options["rate"])
    elif kind == "add":
        return _add(shape, rng)
    elif kind in ("flip", "translate"):
        return _augmentation(kind, options, x)
    else:
        raise ValueError(kind)
    layer.build(shape[1:])
    out = layer.forward(x, training=True)
    layer.backward(np.zeros_like(out), need_dx=not first)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    if kind == "conv":
        flops = 2 * out.size * f * f * shape[3]
    elif kind == "dense":
        flops = 2 * shape[0] * shape[1] * options["units"]

    def np_fwd():
        layer.forward(x, training=True)

    def np_bwd():
        layer.backward(dout, need_dx=not first)

    xt = torch.tensor(_nchw(x), requires_grad=not first)
    dt = torch.tensor(_nchw(dout))
    module.train()
    state = {}

    def torch_fwd():
        state["y"] = module(xt)

    def torch_bwd():
        state["y"].backward(dt)

    return np_fwd, np_bwd, torch_fwd, torch_bwd, flops


def _nchw(a):
    return a.transpose(0, 3, 1, 2).copy() if a.ndim == 4 else a


def _add(shape, rng):
    import torch

    from npconv import layers as L

    a, b = rng.random(shape, dtype=np.float32), rng.random(shape, dtype=np.float32)
    layer = L.Add()
    layer.build([shape[1:], shape[1:]])
    dout = rng.standard_normal(shape).astype(np.float32)
    at, bt = torch.tensor(_nchw(a), requires_grad=True), torch.tensor(_nchw(b), requires_grad=True)
    dt = torch.tensor(_nchw(dout))
    state = {}

    def torch_fwd():
        state["y"] = at + bt

    return (
        lambda: layer.forward([a, b], training=True),
        lambda: layer.backward(dout),
        torch_fwd,
        lambda: state["y"].backward(dt),
        None,
    )


def _augmentation(kind, options, x):
    """npconv's layer in training mode; PyTorch's idiom on a batch: a per-image flip by a mask, a
    per-image integer shift by ``affine_grid`` + ``grid_sample`` (nearest, zero fill), what
    torchvision's RandomAffine does on tensors. No backward (the first op of a model)."""
    import torch
    import torch.nn.functional as TF

    from npconv import layers as L

    layer = L.RandomFlip("horizontal") if kind == "flip" else L.RandomTranslation(options["factor"], options["factor"])
    layer.build(x.shape[1:])
    xt = torch.tensor(_nchw(x))
    m, _, n_h, n_w = xt.shape
    gen = torch.Generator().manual_seed(0)

    def torch_fwd():
        if kind == "flip":
            mask = torch.rand(m, generator=gen) < 0.5
            torch.where(mask[:, None, None, None], xt.flip(3), xt)
            return
        f = options["factor"]
        shift = torch.round((torch.rand(m, 2, generator=gen) * 2 - 1) * f * torch.tensor([n_w, n_h]))
        theta = torch.zeros(m, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, :, 2] = -2 * shift / torch.tensor([n_w, n_h])
        grid = TF.affine_grid(theta, list(xt.shape), align_corners=False)
        TF.grid_sample(xt, grid, mode="nearest", padding_mode="zeros", align_corners=False)

    return lambda: layer.forward(x, training=True), None, torch_fwd, None, None


def _loss(classes, m, rng):
    import torch

    from npconv import losses

    if classes == 1:
        logits = rng.standard_normal((m, 1)).astype(np.float32)
        y = (rng.random((m, 1)) < 0.5).astype(np.float32)
        loss = losses.get("binary_crossentropy")
        lt = torch.tensor(logits, requires_grad=True)
        yt = torch.tensor(y)
        fn = torch.nn.BCEWithLogitsLoss()
    else:
        logits = rng.standard_normal((m, classes)).astype(np.float32)
        y = rng.integers(0, classes, m)
        loss = losses.get("sparse_categorical_crossentropy")
        lt = torch.tensor(logits, requires_grad=True)
        yt = torch.tensor(y)
        fn = torch.nn.CrossEntropyLoss()
    state = {}

    def torch_fwd():
        state["l"] = fn(lt, yt)

    # npconv's fused loss returns the value and the gradient together: its "forward" is both.
    return (lambda: loss.from_logits_and_grad(y, logits), lambda: None, torch_fwd, lambda: state["l"].backward(), None)


def _adam(model_name):
    """One Adam update of every trainable weight of the model (fresh gradients, as after backward)."""
    import torch

    sys.path.insert(0, HERE)
    import torch_twins

    import npconv as nc
    from npconv.apps import convolutional_model, happyModel
    from npconv.apps.residual import smallres

    model = {
        "happy": happyModel,
        "signs": lambda: convolutional_model((64, 64, 3)),
        "smallres": lambda: smallres((64, 64, 3), 6, flip=False, translate=0),
    }[model_name]()
    net = {"happy": torch_twins.happy_course, "signs": torch_twins.signs_course, "smallres": torch_twins.smallres}[
        model_name
    ]()
    opt = nc.optimizers.Adam(1e-3)
    weights = model.trainable_weights
    pairs = [(np.full_like(w.value, 1e-3), w.value) for w in weights]
    topt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    for p in net.parameters():
        p.grad = torch.full_like(p, 1e-3)
    return lambda: opt.apply_gradients(pairs), None, topt.step, None, None


# ------------------------------------------------------------------------- timing, per process
def sgemm_peak() -> float:
    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    for _ in range(3):
        a @ a
    times = []
    for _ in range(9):
        start = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - start)
    return 2 * 1024**3 / statistics.median(times) / 1e9


def measure(threads: int, rounds: int, only: str | None, tiers) -> dict:
    """Time every op in this process (its thread count fixed by the environment)."""
    import torch

    from npconv.functional._threads import blas_scope
    from npconv.functional._tier import use_tier

    torch.set_num_threads(threads)
    peak = sgemm_peak()
    rows = []
    for model, label, (kind, options), shape in OPS:
        if only and only.lower() not in f"{model} {label}".lower():
            continue
        rng = np.random.default_rng(0)
        built = {}
        for tier in tiers:
            with use_tier(tier):
                built[tier] = build(kind, options, shape, np.random.default_rng(0))
        _, _, torch_fwd, torch_bwd, flops = built[tiers[0]]
        times = {key: [] for key in [f"{t}_{p}" for t in (*tiers, "torch") for p in ("fwd", "bwd")]}
        runners = {tier: built[tier][:2] for tier in tiers}
        runners["torch"] = (torch_fwd, torch_bwd)
        # Each runner in a block of back-to-back calls, as in its own training loop, the blocks in
        # turn and then in the reverse order. Interleaving single calls with pauses between them
        # measured wake-ups instead: after a 5 ms pause PyTorch's Adam step took 2.4x as long on two
        # threads, after 0.15 s ten times as long; without pauses, one library's spinning idle
        # threads (OpenBLAS's for the NumPy tier, about 0.1 s) ran into the next one's call.
        for order in (list(runners), list(runners)[::-1]):
            for runner in order:
                fwd, bwd = runners[runner]
                # npconv's blocks keep BLAS to one thread, as its models' steps do (blas_scope):
                # OpenBLAS's spinning threads otherwise slowed the compiled kernels 2-4x here.
                with (
                    use_tier(runner if runner != "torch" else tiers[0]),
                    blas_scope() if runner != "torch" else contextlib.nullcontext(),
                ):
                    for call in range(WARMUP + rounds // 2 + rounds % 2):
                        _time(fwd, times[f"{runner}_fwd"], call >= WARMUP)
                        if bwd is not None:
                            _time(bwd, times[f"{runner}_bwd"], call >= WARMUP)
                if runner == "numpy":
                    time.sleep(0.15)  # OpenBLAS's threads spin for ~0.1 s; the next warm-up absorbs the wake-up
        row = {
            "model": model,
            "op": label,
            "shape": list(shape) if shape else None,
            "threads": threads,
            "flops": flops,
            "peak_gflops": peak,
        }
        for key, values in times.items():
            row[f"{key}_ms"] = statistics.median(values) * 1e3 if values else None
        for p in ("fwd", "bwd"):
            ours, theirs = times[f"{tiers[0]}_{p}"], times[f"torch_{p}"]
            row[f"ratio_{p}"] = statistics.median(ours) / statistics.median(theirs) if ours and theirs else None
            if flops and row[f"{tiers[0]}_{p}_ms"]:
                work = flops if p == "fwd" else flops * (1 if options.get("first") else 2)
                if kind == "dense" and p == "bwd":
                    work = 2 * flops
                row[f"gflops_{p}"] = work / row[f"{tiers[0]}_{p}_ms"] / 1e6
                row[f"of_peak_{p}"] = row[f"gflops_{p}"] / peak
        rows.append(row)
        print(f"  [{threads} thread{'s' if threads > 1 else ''}] {model}: {label}", file=sys.stderr, flush=True)
        del rng
    return {"threads": threads, "peak_gflops": peak, "rows": rows}


WARMUP = 3


def _time(fn, into, keep):
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    if keep:
        into.append(elapsed)


# ----------------------------------------------------------------------------------- report
def print_tables(runs, tiers) -> None:
    from _timing import print_table

    for run in runs:
        print(
            f"\n{run['threads']} thread(s); sgemm peak {run['peak_gflops']:.0f} GFLOP/s; times in ms, "
            "medians; ratio = npconv compiled / PyTorch"
        )
        columns = [("model", "model", "s"), ("op", "op", "s")]
        for p in ("fwd", "bwd"):
            columns += [(f"{tiers[0]}_{p}_ms", f"npconv {p}", ".2f")]
            if len(tiers) > 1:
                columns += [(f"{tiers[1]}_{p}_ms", f"NumPy tier {p}", ".2f")]
            columns += [
                (f"torch_{p}_ms", f"torch {p}", ".2f"),
                (f"ratio_{p}", f"ratio {p}", ".2f"),
                (f"gflops_{p}", "GFLOP/s", ".1f"),
                (f"of_peak_{p}", "of peak", ".0%"),
            ]
        print_table(run["rows"], columns)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", default=None, help="only ops whose 'model op' contains this text")
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, HERE)
    from npconv.functional._tier import compiled_available

    tiers = ["compiled", "numpy"] if compiled_available() else ["numpy"]
    if args.child is not None:
        print(json.dumps(measure(args.child, args.rounds, args.only, tiers)))
        return
    started = time.perf_counter()
    runs = []
    for n in args.threads:
        env = {
            **os.environ,
            "OMP_NUM_THREADS": str(n),
            "OPENBLAS_NUM_THREADS": str(n),
            "MKL_NUM_THREADS": str(n),
            "NUMBA_NUM_THREADS": str(n),
        }
        command = [sys.executable, __file__, "--child", str(n), "--rounds", str(args.rounds)]
        if args.only:
            command += ["--only", args.only]
        out = subprocess.run(
            command, env=env, capture_output=False, stdout=subprocess.PIPE, text=True, check=True
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    print_tables(runs, tiers)
    from _timing import write_json

    path = write_json(
        "ops",
        {"rounds": args.rounds, "tiers": tiers, "runs": runs, "seconds": time.perf_counter() - started},
        args.json,
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
