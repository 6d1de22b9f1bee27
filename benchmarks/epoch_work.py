"""The arithmetic of a training epoch and the machine's peak, for the training benchmark's GFLOP/s.

An epoch's floating-point work is that of its convolutions and dense layers: per image, a layer
makes ``MACs = out_H * out_W * filters * f_H * f_W * n_C_prev`` multiply-adds (``n_in * units`` for
a dense layer), two FLOPs each, in each of three products: the forward pass, the weight gradient
and the input gradient. The first trainable layer's input gradient is needed by nothing, and
neither npconv nor PyTorch computes it, so that layer counts two products, not three (the issue's
rough figure counted three everywhere: ``flops_x3`` keeps it). Batch norm, ReLU, pooling, the loss
and the optimizer are not counted: their work is memory traffic, not arithmetic.

The peak is NumPy's float32 matrix product (``size x size``, the BLAS NumPy ships) at the thread
count the libraries run with, best of several calls, measured in a fresh process so that the
thread count is set before the BLAS starts its threads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

FLOP_CONVENTION = (
    "2 FLOPs per multiply-add of the convolutions and dense layers, x3 (forward, weight "
    "gradient, input gradient) except the first trainable layer, x2 (no input gradient); "
    "batch norm, ReLU, pooling, loss and optimizer not counted; a convolution's multiply-adds as "
    "the direct convolution does them (npconv's Winograd kernels, which take 3 x 3 'same' "
    "convolutions of whole vectors of channels, do 16 for its 36: for them, an effective rate)"
)


def epoch_flops(model, images: int) -> dict:
    """The FLOPs of one training epoch of ``images`` images through a built npconv ``model``.

    Returns ``{"flops": ..., "flops_x3": ..., "layers": [{"layer", "kind", "macs_per_image",
    "products"}, ...], "convention": ...}``; ``flops`` counts what training computes (see the
    module docstring), ``flops_x3`` three products for every layer.
    """
    from npconv import layers as L
    from npconv.engine.plan import plan_backward

    plan_backward(model._steps)  # what fit plans: which layer needs its input gradient
    rows = []
    for node in model._steps:
        # a convolution fused with its max pool counts as the convolution: the model's work, not the
        # fewer multiply-adds its weight gradient takes from the pool's winners
        layer = getattr(node.layer, "conv", node.layer)
        if isinstance(layer, L.Conv2D):
            out_h, out_w, filters = layer.compute_output_shape(layer.built_input_shape)
            f_h, f_w, n_c, _ = layer.kernel.shape
            macs, kind = out_h * out_w * filters * f_h * f_w * n_c, "convolution"
        elif isinstance(layer, L.Dense):
            macs, kind = layer.kernel.shape[0] * layer.kernel.shape[1], "dense"
        else:
            continue
        rows.append(
            {"layer": layer.name, "kind": kind, "macs_per_image": int(macs), "products": 3 if node.need_dx else 2}
        )
    return {
        "flops": sum(2 * r["macs_per_image"] * r["products"] for r in rows) * images,
        "flops_x3": sum(2 * r["macs_per_image"] * 3 for r in rows) * images,
        "layers": rows,
        "convention": FLOP_CONVENTION,
    }


_PEAK_CODE = """
import json, sys, time
import numpy as np
size, repeats = int(sys.argv[1]), int(sys.argv[2])
a = np.random.default_rng(0).random((size, size), dtype=np.float32)
b = np.random.default_rng(1).random((size, size), dtype=np.float32)
out = np.empty_like(a)
for _ in range(2):
    np.matmul(a, b, out=out)
best = float("inf")
for _ in range(repeats):
    start = time.perf_counter()
    np.matmul(a, b, out=out)
    best = min(best, time.perf_counter() - start)
print(json.dumps({"gflops": 2 * size ** 3 / best / 1e9, "best_s": best}))
"""


def sgemm_peak(threads: int, size: int = 2048, repeats: int = 7) -> dict:
    """The float32 matrix product's GFLOP/s on ``threads`` BLAS threads, best of ``repeats``."""
    env = {**os.environ, **{k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_CODE, str(size), str(repeats)], env=env, capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(out)
    return {
        "gflops": result["gflops"],
        "threads": threads,
        "size": size,
        "repeats": repeats,
        "statistic": "best",
        "how": f"numpy float32 matmul {size}x{size}, {threads} BLAS threads",
    }
