"""``step``: one training step's forward and backward pass through a model, every value recorded.

The graph runs as built (``model._nodes``, each layer's output what it means in the model), in
training mode, through the layers' own ``forward``/``backward`` (or the learner's functions, see
:mod:`npconv.learner_kernels`), and back from the compiled loss: the batch mean that ``fit`` minimises.

Training mode, with two choices so that a step is a pure function of the model, ``x`` and ``y``:

* ``BatchNormalization`` normalises with the batch's statistics (its moving averages are put back);
* ``Dropout`` drops units with a generator seeded by ``seed`` (two calls, the same mask);
* augmentation layers pass the input through (the trace follows the photo as it was given).

Nothing of the model changes: weights, batch-norm statistics, each weight's ``.grad``, the
optimizer (never called) and the package's random generator are as before.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from .. import utils
from ..engine.data_checks import as_input_batch, as_labels
from ..layers import Dropout
from ..layers.core import _Activated
from ..learner_kernels import LearnerKernels, WrongShape, load_kernels
from .result import StepTrace


@dataclass
class LayerRecord:
    """What one layer saw and computed in the step.

    ``inputs``: its input arrays (one, or one per branch for merge layers); ``z``: its output before
    its own activation (layers with ``activation=``; None for others); ``weights``: ``{"W", "b",
    "gamma", ...}`` values; ``grads``: ``{"dout", "dZ", "dx", "dW", "db", "dgamma", ...}``.
    """

    name: str
    layer: object
    inputs: list
    output: np.ndarray | None = None
    z: np.ndarray | None = None
    weights: dict = field(default_factory=dict)
    grads: dict = field(default_factory=dict)
    readers: int = 0  # how many layers read the output (0: the loss does)


#: Weight names as the course writes their gradients.
_GRAD_NAMES = {"kernel": "dW", "bias": "db"}
_VALUE_NAMES = {"kernel": "W", "bias": "b"}


def grad_name(weight_name: str) -> str:
    return _GRAD_NAMES.get(weight_name, "d" + weight_name)


def step(model, x, y, kernels=None, seed: int = 0, dtype=None) -> StepTrace:
    """One forward and backward pass of the compiled loss for the batch ``(x, y)``, recorded.

    Parameters
    ----------
    model : a compiled :class:`npconv.Model`
    x : array (m, ...) of the model's input shape; y : its labels, as ``fit`` takes them
    kernels : None, or the learner's course functions (a module, an object or dict holding them,
        a module name such as ``"npconv.course"``, or the path of a ``.py`` file): the model's
        ``Conv2D`` and pooling layers then run through them
    seed : the dropout generator's seed
    dtype : None (the model's), or ``"float64"`` to run the step in double precision (the weights are
        converted for the step and put back as they were): the exact numbers, for comparing with a
        learner's loops, which compute in float64

    Returns
    -------
    :class:`StepTrace`; ``loss``, ``output(name)``, ``grad(name, which)``, ``terms(...)``,
    ``first_difference(reference)``.
    """
    x = as_input_batch(model, x, "x", build=True)
    if not getattr(model, "_compiled", False):
        raise RuntimeError(
            "step: compile the model first (the step's loss is the compiled one), e.g. "
            "model.compile(optimizer='adam', loss='binary_crossentropy')."
        )
    fused = model._training_plan()
    y = as_labels(model, y, len(x), "y")
    learner = None if kernels is None else load_kernels(kernels, model)
    dtype = model.dtype if dtype is None else np.dtype(dtype)
    with _model_untouched(model, seed, dtype):
        records, loss, stopped = _run(model, x.astype(dtype, copy=False), y, fused, learner)
    label = None if kernels is None else getattr(kernels, "__name__", None) or str(kernels)
    return StepTrace(
        records,
        loss,
        stopped,
        model=model.name,
        kernels=label,
        names=[layer.name for layer in model.layers],
        dtype=dtype,
    )


@contextlib.contextmanager
def _model_untouched(model, seed: int, dtype):
    """Put back every weight value (batch-norm statistics included) and ``.grad``, the generators
    and the layers' caches after the block; seed the package generator and dropout's own; run the
    layers in ``dtype`` (their own arrays are put back, so whatever holds them still does)."""
    weights = [w for layer in model.layers for w in layer.weights]
    saved = [(w, w.value, w.value.copy(), w.grad) for w in weights]
    converted = [(layer, layer.dtype) for layer in model.layers if layer.dtype != dtype]
    dropouts = [layer for layer in model.layers if isinstance(layer, Dropout) and layer._rng is not None]
    saved_rngs = [(layer, layer._rng) for layer in dropouts]
    saved_package = utils._rng
    utils._rng = np.random.default_rng(seed)
    for k, layer in enumerate(dropouts):
        layer._rng = np.random.default_rng([seed, k])
    try:
        for layer, _ in converted:
            layer.astype(dtype)
        yield
    finally:
        utils._rng = saved_package
        for layer, rng in saved_rngs:
            layer._rng = rng
        for layer, own in converted:
            layer.dtype = own
        for w, array, value, grad in saved:
            w.value = array
            np.copyto(w.value, value)
            w.grad = grad
        for layer in model.layers:
            layer._cache = None


def _probability_gradient(loss, y, z, p) -> np.ndarray:
    """``dL/dp`` for the fused loss's probabilities ``p = activation(z)``: ``(p - t) / (p (1 - p)) / n``
    for the sigmoid, ``-t / (m p)`` for the softmax (``t``: the targets, smoothed if asked)."""
    targets = loss._smooth(loss._targets(y, z))
    with np.errstate(divide="ignore", invalid="ignore"):
        if loss.activation == "sigmoid":
            return (p - targets) / (p * (1 - p)) / z.size
        return -targets / p / z.shape[0]


def _run(model, x, y, fused, learner: LearnerKernels | None):
    """Forward, loss, backward; returns ``(records, loss, stopped)`` (``stopped``: why the step ended
    early, a learner's function having returned a wrong shape, else None)."""
    records: dict[str, LayerRecord] = {}
    entry = model._input_layer  # a functional model's input layer (a Sequential's is not in its layers)
    if entry is not None:
        records[entry.name] = LayerRecord(entry.name, entry, [], output=np.array(x))
    readers: dict[int, int] = {}
    for node in model._nodes:
        for i in set(node.inputs):
            readers[i] = readers.get(i, 0) + 1
    activation_caches: dict = {}
    try:
        _forward_pass(model, x, fused, learner, records, readers, activation_caches)
    except WrongShape as exc:
        return records, None, str(exc)
    last = records[model._nodes[-1].layer.name]
    if fused:
        loss, dz_loss = model.loss.from_logits_and_grad(y, last.z)
        dout = _probability_gradient(model.loss, y, last.z, last.output)
    else:
        loss, dout = model.loss.from_logits_and_grad(y, last.output)
        dz_loss = dout
    try:
        input_grad = _backward_pass(model, dout, dz_loss if fused else None, learner, records, activation_caches)
    except WrongShape as exc:
        return records, float(loss), str(exc)
    if entry is not None:
        records[entry.name].readers = readers.get(0, 0)
        if input_grad is not None:  # (none comes back through augmentation layers)
            records[entry.name].grads["dout"] = np.array(input_grad)
    return records, float(loss), None


def _forward_pass(model, x, fused, learner, records, readers, activation_caches) -> None:
    """Run and record every node; the last one's activation is left to the loss when ``fused``."""
    values = {0: x}
    last = len(model._nodes) - 1
    for k, node in enumerate(model._nodes):
        layer = node.layer
        args = [values[i] for i in node.inputs] if layer.multi_input else values[node.inputs[0]]
        record = LayerRecord(
            layer.name,
            layer,
            [np.array(a) for a in (args if layer.multi_input else [args])],
            readers=readers.get(node.output, 0),
        )
        records[layer.name] = record
        for w in layer.weights:
            record.weights[_VALUE_NAMES.get(w.name, w.name)] = w.value.copy()
            w.grad = None
        try:
            out = _forward(layer, args, learner)
        except WrongShape as exc:
            record.output = exc.got
            raise
        if isinstance(layer, _Activated):
            record.z = np.array(out)
            if k == last and fused:
                out = layer.activation.forward(out)[0]
            elif layer.activation.name != "linear":
                out, activation_caches[layer.name] = layer.activation.forward(out)
        record.output = np.array(out)
        values[node.output] = out


def _backward_pass(model, dout, dz_loss, learner, records, activation_caches):
    """Backpropagate ``dout`` (``dz_loss``: the fused loss's gradient before the last activation)
    through every node, recording; returns the input's gradient (None when none comes back)."""
    nodes = model._nodes
    grads = {nodes[-1].output: dout}
    for k in range(len(nodes) - 1, -1, -1):
        node = nodes[k]
        layer, record = node.layer, records[node.layer.name]
        dout = grads.pop(node.output, None)
        if dout is None:
            continue  # before an augmentation layer: no gradient comes back
        record.grads["dout"] = np.array(dout)
        if not layer.passes_gradient:
            continue  # augmentation: no layer before it has weights (the model refuses that)
        if isinstance(layer, _Activated):
            if k == len(nodes) - 1 and dz_loss is not None:
                dout = dz_loss
            elif layer.activation.name != "linear":
                dout = layer.activation.backward(dout, activation_caches.pop(layer.name))
            record.grads["dZ"] = np.array(dout)
        try:
            dx = _backward(layer, dout, learner, record)
        except WrongShape as exc:
            record.grads.update(exc.grads)
            record.grads[exc.which] = exc.got
            raise
        dxs = dx if layer.multi_input else [dx]
        record.grads["dx"] = [np.array(d) for d in dxs] if layer.multi_input else np.array(dx)
        for i, d in zip(node.inputs, dxs):
            grads[i] = d if i not in grads else grads[i] + d
    return grads.get(0)


def _forward(layer, args, learner):
    """The layer's output, before its own activation for ``_Activated`` layers."""
    if learner is not None and learner.runs(layer):
        shape = (len(args),) + tuple(layer.compute_output_shape(args.shape[1:]))
        return learner.forward(layer, args, shape)
    if isinstance(layer, _Activated):
        return layer.forward(args, True, logits=True)
    return layer.forward(args, layer.passes_gradient)


def _backward(layer, dout, learner, record):
    """``dx`` of the layer; its weights' gradients go into ``record.grads``."""
    if learner is not None and learner.runs(layer):
        dx, weight_grads = learner.backward(layer, dout, record.inputs[0].shape)
        record.grads.update(weight_grads)
        return dx
    dx = layer.backward(dout, need_dx=True)
    for w in layer.weights:
        if w.grad is not None:
            record.grads[grad_name(w.name)] = np.array(w.grad)
    return dx
