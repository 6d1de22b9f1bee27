"""The training benchmark's worker: one library, in one configuration, training one model in a warm process.

``python benchmarks/train_speed_workers.py SPEC`` (``SPEC`` a JSON object: ``library`` "npconv" or a
key of :data:`TORCH_CONFIGS`, ``case``, ``images``, ``batch``, ``classes``) builds the model, runs
the warm-up epochs and prints ``{"ready": true, ...}`` (or ``{"ready": false, "unavailable":
reason}`` when the configuration cannot run here), then answers requests on stdin, one JSON line
each: ``epoch`` (its seconds), ``latency [CALLS_ONE CALLS_64]`` (one image and a batch of 64, median
ms; 200 and 30 calls by default) and ``profile``
(one epoch by op class, :mod:`epoch_profile`).

:data:`SIGNS_COMMAND` is the model ``npconv train signs`` trains, built and compiled by the command's
own code (``npconv.apps.fitting.build`` and ``compile_for`` with ``RECIPES["signs"]``) and fed as the
command feeds it: uint8 images scaled to [0, 1]. Its PyTorch twin is ``torch_twins.recipe_net``,
and each of its batches goes through npconv's own augmentation layers of that model
(``torch_twins.npconv_augmentation``) before it is converted: both libraries pay the same
augmentation, and torchvision is not a dependency.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

#: The case that trains what ``npconv train signs`` trains, by ``RECIPES["signs"]``.
SIGNS_COMMAND = "smallres (npconv train signs: photo augmentation)"
#: ``train_signs.h5``'s classes, as the command's loader names them.
SIGNS_CLASSES = ("0", "1", "2", "3", "4", "5")
SIGNS_COMMAND_NOTE = (
    "PyTorch trains on batches augmented by npconv's layers: torchvision is not a dependency "
    "(both libraries run npconv's augmentation layers on every batch)"
)

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

    from npconv.functional._memory import keep_freed_memory

    # Every library's process keeps its freed memory for the next batch: npconv sets these glibc
    # thresholds for itself in every training, and PyTorch's CPU tuning guide advises a caching
    # allocator (jemalloc, tcmalloc) for the same reason. Without them PyTorch's eager epochs
    # faulted their activations back in every batch on these VMs: smallres in channels_last 0.85 s,
    # against 0.60 s with them, or after another process had just used the memory.
    kept_freed_memory = keep_freed_memory()

    m, batch, classes = spec["images"], spec["batch"], spec["classes"]
    rng = np.random.default_rng(0)
    if spec["case"] == SIGNS_COMMAND:  # as the command's loader gives them, scaled as the command scales them
        from npconv.apps.datasets import to_float

        x = to_float(rng.integers(0, 256, (m, *signs_command_shape()), dtype=np.uint8))
    else:
        x = rng.random((m, 64, 64, 3), dtype=np.float32)
    y = rng.integers(0, max(classes, 2), size=m)
    library = spec["library"]
    info: dict = {}
    if library == "npconv":
        model, epoch, predict = _npconv_model(spec["case"], x, y, batch)
        from epoch_profile import profile_npconv_epoch
        from epoch_work import epoch_flops

        info["flop_count"] = epoch_flops(model, m)
        if spec["case"] == SIGNS_COMMAND:
            from npconv.apps.recipe_files import recipe_json

            info["recipe"] = recipe_json(signs_recipe())
            info["augmentation"] = [type(layer).__name__ for layer in model.layers if layer.name.startswith("augment_")]
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
    print(json.dumps({"ready": True, "warmup_s": warmups, "keeps_freed_memory": kept_freed_memory, **info}), flush=True)
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


def signs_recipe():
    """``npconv train signs``'s recipe."""
    from npconv.apps import RECIPES

    return RECIPES["signs"]


def signs_command_shape() -> tuple:
    """The input shape ``npconv train signs`` trains at: the recipe's size and colour mode."""
    recipe = signs_recipe()
    return (recipe.image_size, recipe.image_size, 1 if recipe.color_mode == "grayscale" else 3)


def _steps_per_run(images: int, batch: int) -> int:
    """The steps of a whole ``npconv train signs`` run, along which its learning rate decays."""
    return signs_recipe().epochs * -(-images // batch)


def _npconv_model(case, x, y, batch):
    import npconv as nc
    from npconv.apps import convolutional_model, fitting, happyModel
    from npconv.apps.residual import smallres

    nc.utils.set_random_seed(0)
    if case == SIGNS_COMMAND:  # the command's model and compile step (fitting.fit_one)
        recipe = signs_recipe()
        model = fitting.build(recipe.arch, x.shape[1:], SIGNS_CLASSES, recipe)
        steps = _steps_per_run(len(x), batch)
        fitting.compile_for(model, recipe.learning_rate, steps, recipe.weight_decay, recipe.label_smoothing)
    else:
        if case.startswith("Happy"):
            model, loss = happyModel(), "binary_crossentropy"
        elif case.startswith("SIGNS"):
            model, loss = convolutional_model((64, 64, 3)), "sparse_categorical_crossentropy"
        else:
            model, loss = smallres((64, 64, 3), 6, flip=False, translate=0), "sparse_categorical_crossentropy"
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return (
        model,
        lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0),
        lambda xb: model.predict(xb, batch_size=64),
    )


def _torch_optimizer(torch, params, kind, lr=1e-3):
    """Adam as the configuration asks; fused Adam falls back to foreach (and says so) where it cannot run."""
    if kind == "default":
        return torch.optim.Adam(params, lr=lr, eps=1e-7), "Adam (default: foreach)"
    try:
        opt = torch.optim.Adam(params, lr=lr, eps=1e-7, fused=True)
        probe = [torch.nn.Parameter(torch.zeros(2))]
        probe[0].grad = torch.ones(2)
        torch.optim.Adam(probe, fused=True).step()
        return opt, "Adam(fused=True)"
    except (RuntimeError, ValueError) as exc:
        return torch.optim.Adam(params, lr=lr, eps=1e-7, foreach=True), f"Adam(foreach=True): fused unavailable ({exc})"


def _torch_model(config, case, x, y, batch, classes):
    import contextlib

    import numpy as np
    import torch
    import torch_twins
    from epoch_profile import AUGMENTATION_MARK
    from torch import nn

    _, layout, compiled, optimizer, dtype = TORCH_CONFIGS[config]
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    torch.manual_seed(0)
    augment, info, lr = None, {}, 1e-3
    if case == SIGNS_COMMAND:
        import npconv as nc

        recipe, shape = signs_recipe(), x.shape[1:]
        nc.utils.set_random_seed(0)  # the generator npconv's augmentation layers draw from
        augment, augmenters = torch_twins.npconv_augmentation(recipe, shape, SIGNS_CLASSES)
        net, lr = torch_twins.recipe_net(recipe, shape, classes), recipe.learning_rate
        info = {"augmentation": augmenters, "standardize_first": recipe.standardize, "note": SIGNS_COMMAND_NOTE}
    elif case.startswith("Happy"):
        net = torch_twins.happy_course()
    elif case.startswith("SIGNS"):
        net = torch_twins.signs_course()
    else:
        net = torch_twins.smallres()
    memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    net = net.to(memory_format=memory_format)
    opt, opt_name = _torch_optimizer(torch, net.parameters(), optimizer, lr)
    # the command's learning rate: a cosine decay per step over the whole run, as npconv's
    schedule = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, _steps_per_run(len(x), batch))
        if case == SIGNS_COMMAND
        else None
    )
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

    def batch_of(idx):
        if augment is None:
            return xt[idx].contiguous(memory_format=memory_format)
        xb = x[idx.numpy()]
        with torch.profiler.record_function(AUGMENTATION_MARK):  # npconv's layers: the profile's "augmentation"
            xb = augment(xb, None)
        return torch.from_numpy(np.ascontiguousarray(xb)).permute(0, 3, 1, 2).contiguous(memory_format=memory_format)

    def epoch():
        perm = torch.randperm(len(xt), generator=gen)
        net.train()
        for start in range(0, len(xt), batch):
            idx = perm[start : start + batch]
            xb = batch_of(idx)
            opt.zero_grad(set_to_none=True)
            with precision():
                loss = loss_fn(train_net(xb), yt[idx])
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()

    def predict(xb):
        net.eval()
        with torch.no_grad():
            return net(torch.from_numpy(xb).permute(0, 3, 1, 2).contiguous(memory_format=memory_format))

    info = {
        **info,
        "optimizer": opt_name,
        "layout": layout,
        "torch_compile": compiled,
        "dtype": dtype,
        "threads": torch.get_num_threads(),
    }
    return epoch, predict, info


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]))
