"""Where a training epoch's time goes, by op class, in npconv and in PyTorch, for the training benchmark.

The classes: convolution, batch norm, ReLU, Add, pooling, dense, loss, optimizer, augmentation
(npconv's random augmentation layers and per-image standardisation, in both libraries: the PyTorch
twin of an augmented model runs npconv's augmentation layers on each batch), and other (the rest of
the epoch's wall time: shuffling and batch gathering, padding, flatten, dropout, metrics, the weight
copy npconv keeps to undo a diverged step, and the Python between the ops).

npconv: each layer's ``forward``/``backward``, the loss's ``from_logits_and_grad`` and the
optimizer's ``apply_gradients`` are wrapped with a timer for one epoch (instance attributes that
shadow the methods, removed afterwards; nothing in ``src/`` changes). A convolution's fused
activation, if it has one, counts as convolution, a batch norm's fused ReLU as batch norm, and the
backward of a convolution fused with its max pool (the pool's part included) as convolution.

PyTorch: ``torch.profiler`` over one epoch. Each op's self time goes to the class of its outermost
classified ancestor (an ``aten::add_`` inside batch norm's running-average update is batch norm,
inside ``Adam.step`` it is the optimizer); backward ops are classified by their autograd node
(``ConvolutionBackward0``); ops under no classified ancestor (``AccumulateGrad``, indexing, padding)
are other. The augmentation of a batch and the standardisation op are marked with
``torch.profiler.record_function`` (:data:`AUGMENTATION_MARK`, :data:`STANDARDIZATION_MARK`).
"""

from __future__ import annotations

import time
from collections import defaultdict

CLASSES = (
    "convolution",
    "batch norm",
    "ReLU",
    "Add",
    "pooling",
    "dense",
    "loss",
    "optimizer",
    "augmentation",
    "other",
)
#: The names the PyTorch side's ``record_function`` marks give the augmentation of a batch (npconv's
#: layers, run by the benchmark's worker) and the twin's standardisation op
#: (``torch_twins.STANDARDIZATION_MARK``; this module does not import PyTorch).
AUGMENTATION_MARK = "npconv_augmentation_layers"
STANDARDIZATION_MARK = "per_image_standardization"


def _npconv_class(layer) -> str:
    from npconv import layers as L
    from npconv.engine import plan
    from npconv.layers.augmentation import _Augmentation
    from npconv.layers.pooling import _GlobalPooling2D, _Pooling2D

    if isinstance(layer, (_Augmentation, L.PerImageStandardization)):
        return "augmentation"
    if isinstance(layer, L.Conv2D):
        return "convolution"
    if isinstance(layer, (L.BatchNormalization, getattr(plan, "BatchNormReLU", ()))):
        return "batch norm"
    if isinstance(layer, L.ReLU) or (isinstance(layer, L.Activation) and layer.activation.name == "relu"):
        return "ReLU"
    if isinstance(layer, L.Add):
        return "Add"
    if isinstance(layer, (_Pooling2D, _GlobalPooling2D)):
        return "pooling"
    if isinstance(layer, L.Dense):
        return "dense"
    return "other"


def _timed(method, into: dict, key: str):
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            into[key] += time.perf_counter() - start

    return timed


def _by_class(seconds: dict, wall: float) -> dict:
    classes = {name: seconds.get(name, 0.0) for name in CLASSES if name != "other"}
    classes["other"] = wall - sum(classes.values())
    return {"wall_s": wall, "seconds": classes, "share": {k: v / wall for k, v in classes.items()}}


def _npconv_methods(step) -> list[tuple]:
    """``(owner, method name, class)`` to time for one step of the plan: its layer's forward and
    backward, or, for a step fused with its max pool, the parts the step calls: a convolution's
    forward, the pool's and the convolution's backward through the pool (convolution); a batch
    norm's normalise, clip and pool pass and its backward through the pool (batch norm); an
    ``Add``'s sum and pool (and ReLU) pass (Add), then the ReLU's, the pool's and the Add's
    backward; a convolution that gives the batch norm after it its statistics, its forward and
    backward (convolution) and its batch norm step's (batch norm), as the step calls them (a first
    layer's weight gradient through its batch norm, ReLU and pool: convolution). A pass of two ops
    counts as the first's."""
    from npconv.engine.steps import AddMaxPool, AddMaxPoolReLU, BatchNormReLUMaxPool, ConvBatchStatistics, ConvMaxPool

    if isinstance(step, ConvBatchStatistics):
        return [
            (step, "convolve", "convolution"),
            (step, "convolve_backward", "convolution"),
            (step, "_weight_backward_through_norm_pool", "convolution"),
            (step, "normalise", "batch norm"),
            (step, "normalise_backward", "batch norm"),
        ]
    if isinstance(step, ConvMaxPool):
        return [
            (step.conv, "forward", "convolution"),
            (step.pool, "forward", "pooling"),
            (step.conv, "backward_through_max_pool", "convolution"),
        ]
    if isinstance(step, BatchNormReLUMaxPool):
        return [
            (step.norm, "forward_relu_max_pool", "batch norm"),
            (step.norm, "backward_through_max_pool", "batch norm"),
        ]
    if isinstance(step, AddMaxPoolReLU):
        add_pool = step.first
        return [
            (step, "forward", "Add"),
            (step.relu, "backward", "ReLU"),
            (add_pool.pool, "backward", "pooling"),
            (add_pool.add, "backward", "Add"),
        ]
    if isinstance(step, AddMaxPool):
        return [(step, "forward", "Add"), (step.pool, "backward", "pooling"), (step.add, "backward", "Add")]
    return [(step, name, _npconv_class(step)) for name in ("forward", "backward")]


def profile_npconv_epoch(model, epoch) -> dict:
    """One call of ``epoch()`` with ``model``'s layers, loss and optimizer timed by class."""
    seconds = defaultdict(float)
    wrapped = [timed for node in model._steps for timed in _npconv_methods(node.layer)]
    wrapped += [(model.loss, "from_logits_and_grad", "loss"), (model.optimizer, "apply_gradients", "optimizer")]
    for owner, name, cls in wrapped:
        setattr(owner, name, _timed(getattr(owner, name), seconds, cls))
    try:
        start = time.perf_counter()
        epoch()
        wall = time.perf_counter() - start
    finally:
        for owner, name, _ in wrapped:
            delattr(owner, name)
    return _by_class(seconds, wall)


#: (class, substrings of a lower-cased op or autograd-node name); the first match wins, so dense's
#: ``addmm`` is not Add and the loss's ``log_softmax`` is not pooling.
TORCH_PATTERNS = (
    ("augmentation", (AUGMENTATION_MARK, STANDARDIZATION_MARK)),
    ("optimizer", ("optimizer.", "adam")),
    ("loss", ("cross_entropy", "nll_loss", "nllloss", "log_softmax", "logsoftmax", "binarycrossentropy")),
    ("batch norm", ("batch_norm", "batchnorm")),
    ("convolution", ("conv",)),
    ("dense", ("linear", "addmm", "aten::mm", "mmbackward", "tbackward")),
    ("pooling", ("pool", "meanbackward")),
    ("ReLU", ("relu", "threshold")),
    ("Add", ("aten::add", "addbackward")),
)


def torch_class(name: str) -> str | None:
    """The class of a PyTorch profiler event's name, ``None`` if none fits."""
    lowered = name.lower()
    for cls, patterns in TORCH_PATTERNS:
        if any(p in lowered for p in patterns):
            return cls
    return None


def profile_torch_epoch(epoch, top: int = 25) -> dict:
    """One call of ``epoch()`` under ``torch.profiler``: its time by class, the ``top`` (op, class)
    pairs by self time, and PyTorch's own ``key_averages`` table (text)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]):  # the profiler's first start is slow: not in the epoch
        torch.ones(8).add_(1)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        epoch()
        wall = time.perf_counter() - start
    seconds = defaultdict(float)
    ops = defaultdict(lambda: [0, 0.0])  # (op, class) -> [calls, self seconds]
    for event in prof.events():
        cls, node = None, event
        while node is not None:  # the outermost classified ancestor decides
            cls = torch_class(node.name) or cls
            node = node.cpu_parent
        if cls is not None:
            seconds[cls] += event.self_cpu_time_total / 1e6
        entry = ops[event.name, cls or "other"]
        entry[0] += 1
        entry[1] += event.self_cpu_time_total / 1e6
    result = _by_class(seconds, wall)
    ranked = sorted(ops.items(), key=lambda item: item[1][1], reverse=True)[:top]
    result["top_ops"] = [
        {"op": op, "class": cls, "calls": calls, "self_ms": s * 1e3} for (op, cls), (calls, s) in ranked
    ]
    result["key_averages_table"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)
    return result
