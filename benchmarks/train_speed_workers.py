"""The training benchmark's worker: one library, in one configuration, training one model in a warm process.

``python benchmarks/train_speed_workers.py SPEC`` (``SPEC`` a JSON object: ``library`` "npconv" or a
key of :data:`TORCH_CONFIGS`, ``case``, ``images``, ``batch``, ``classes``) builds the model, runs
the warm-up epochs and prints ``{"ready": true, ...}`` (or ``{"ready": false, "unavailable":
reason}`` when the configuration cannot run here), then answers requests on stdin, one JSON line
each: ``epoch`` (its seconds), ``latency [CALLS_ONE CALLS_64]`` (one image and a batch of 64, median
ms; 200 and 30 calls by default) and ``profile``
(one epoch by op class, :mod:`epoch_profile`).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

#: PyTorch as a practitioner would run it on a CPU: key -> (label, layout, torch.compile, optimizer, dtype).
#: The default (eager NCHW, Adam's default foreach) is the first; the rest use fused Adam.
TORCH_CONFIGS = {
    "torch_eager_nchw": ("PyTorch eager NCHW", "nchw", False, "default", "fp32"),
    "torch_eager_cl": ("PyTorch eager channels_last + fused Adam", "channels_last", False, "fused", "fp32"),
    "torch_compile_nchw": ("PyTorch torch.compile NCHW + fused Adam", "nchw", True, "fused", "fp32"),
    "torch_compile_cl": ("PyTorch torch.compile channels_last + fused Adam", "channels_last", True, "fused", "fp32"),
    "torch_bf16_cl": (
        "PyTorch bf16 autocast, eager channels_last + fused Adam (not fp32: information only)",
        "channels_last",
        False,
        "fused",
        "bf16",
    ),
}


def serve(spec: dict) -> None:
    import numpy as np

    m, batch, classes = spec["images"], spec["batch"], spec["classes"]
    rng = np.random.default_rng(0)
    x = rng.random((m, 64, 64, 3), dtype=np.float32)
    y = rng.integers(0, max(classes, 2), size=m)
    library = spec["library"]
    info: dict = {}
    if library == "npconv":
        model, epoch, predict = _npconv_model(spec["case"], x, y, batch)
        from epoch_profile import profile_npconv_epoch
        from epoch_work import epoch_flops

        info["flop_count"] = epoch_flops(model, m)
        profile = lambda: profile_npconv_epoch(model, epoch)
    else:
        epoch, predict, info = _torch_model(library, spec["case"], x, y, batch, classes)
        from epoch_profile import profile_torch_epoch

        profile = lambda: profile_torch_epoch(epoch)
    warmups = []
    try:
        # torch.compile compiles in the first epoch and again for its last, smaller batch
        for _ in range(2 if TORCH_CONFIGS.get(library, ("",) * 3)[2] else 1):
            start = time.perf_counter()
            epoch()
            warmups.append(time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 (an inductor without a C++ compiler, an op without a kernel)
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        print(json.dumps({"ready": False, "unavailable": reason[:500]}), flush=True)
        return
    print(json.dumps({"ready": True, "warmup_s": warmups, **info}), flush=True)
    for line in sys.stdin:
        request = line.strip()
        if request == "epoch":
            start = time.perf_counter()
            epoch()
            answer = {"seconds": time.perf_counter() - start}
        elif request.startswith("latency"):  # "latency [CALLS_ONE CALLS_64]"
            calls = [int(n) for n in request.split()[1:]] or [200, 30]
            answer = {
                "one_ms": _median_ms(lambda: predict(x[:1]), calls[0]),
                "batch64_ms": _median_ms(lambda: predict(x[:64]), calls[1]),
            }
        elif request == "profile":
            answer = profile()
        else:
            answer = {"error": f"unknown request {request!r}"}
        print(json.dumps(answer), flush=True)


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
    return (
        model,
        lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0),
        lambda xb: model.predict(xb, batch_size=64),
    )


def _torch_optimizer(torch, params, kind):
    """Adam as the configuration asks; fused Adam falls back to foreach (and says so) where it cannot run."""
    if kind == "default":
        return torch.optim.Adam(params, lr=1e-3, eps=1e-7), "Adam (default: foreach)"
    try:
        opt = torch.optim.Adam(params, lr=1e-3, eps=1e-7, fused=True)
        probe = [torch.nn.Parameter(torch.zeros(2))]
        probe[0].grad = torch.ones(2)
        torch.optim.Adam(probe, fused=True).step()
        return opt, "Adam(fused=True)"
    except (RuntimeError, ValueError) as exc:
        return torch.optim.Adam(
            params, lr=1e-3, eps=1e-7, foreach=True
        ), f"Adam(foreach=True): fused unavailable ({exc})"


def _torch_model(config, case, x, y, batch, classes):
    import contextlib

    import torch
    import torch_twins
    from torch import nn

    _, layout, compiled, optimizer, dtype = TORCH_CONFIGS[config]
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
    memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    net = net.to(memory_format=memory_format)
    opt, opt_name = _torch_optimizer(torch, net.parameters(), optimizer)
    # NHWC data: a permuted view is channels_last; a copy of it is NCHW
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    xt = xt.contiguous(memory_format=memory_format)
    if classes == 1:
        yt, loss_fn = torch.tensor(y[:, None], dtype=torch.float32), nn.BCEWithLogitsLoss()
    else:
        yt, loss_fn = torch.tensor(y), nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)
    train_net = torch.compile(net) if compiled else net
    precision = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if dtype == "bf16" else contextlib.nullcontext

    def epoch():
        perm = torch.randperm(len(xt), generator=gen)
        net.train()
        for start in range(0, len(xt), batch):
            idx = perm[start : start + batch]
            xb = xt[idx].contiguous(memory_format=memory_format)
            opt.zero_grad(set_to_none=True)
            with precision():
                loss = loss_fn(train_net(xb), yt[idx])
            loss.backward()
            opt.step()

    def predict(xb):
        net.eval()
        with torch.no_grad():
            return net(torch.from_numpy(xb).permute(0, 3, 1, 2).contiguous(memory_format=memory_format))

    info = {
        "optimizer": opt_name,
        "layout": layout,
        "torch_compile": compiled,
        "dtype": dtype,
        "threads": torch.get_num_threads(),
    }
    return epoch, predict, info


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]))
