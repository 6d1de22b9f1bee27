"""Keras-like models: ``Sequential``, ``Input`` + ``Model`` (functional API), compile/fit/evaluate/predict.

A model is a list of nodes in topological order, ``(layer, input tensor ids, output tensor id)``;
tensor 0 is the model's input. ``Sequential`` is the chain ``0 -> 1 -> 2 ...``. Training runs one
forward and one backward pass per batch over that list; the last layer's softmax/sigmoid is fused
with the loss (see :mod:`npconv.losses`).
"""
from __future__ import annotations

import json
import signal
import threading
import warnings

import numpy as np

from .errors import ShapeError, expected
from .layers import Input, InputLayer, KerasTensor, Layer
from .layers.base import snake_case

__all__ = ["Model", "Sequential", "Input"]


class _Node:
    __slots__ = ("layer", "inputs", "output", "need_dx", "skip", "frees")

    def __init__(self, layer, inputs, output):
        self.layer, self.inputs, self.output = layer, tuple(inputs), output
        self.need_dx, self.skip = True, False  # set by Model._plan_backward
        self.frees = ()


def _pool_before_relu(nodes: list[_Node]) -> list[_Node]:
    """The execution order: ``MaxPool(ReLU(x))`` runs as ``ReLU(MaxPool(x))``.

    The two are equal, and so are their gradients (max commutes with ``max(., 0)``; a window whose
    maximum is not positive sends no gradient either way), but the second applies ReLU, forward and
    backward, to the pooled array: 4x smaller after a 2x2 pool, 64x after the SIGNS model's 8x8 one.
    Each layer still sees a valid input and keeps its own cache, so the swap is two nodes trading
    layers. It applies when the ReLU's output feeds only that pool and the pool is not the last node.
    """
    from .layers import MaxPooling2D, ReLU
    producer = {node.output: k for k, node in enumerate(nodes)}
    steps = list(nodes)
    for k, node in enumerate(nodes[:-1]):
        if not isinstance(node.layer, MaxPooling2D) or len(node.inputs) != 1:
            continue
        j = producer.get(node.inputs[0])
        if j is None or type(nodes[j].layer) is not ReLU:
            continue
        relu, pool = nodes[j], node
        if [i for i, other in enumerate(nodes) if relu.output in other.inputs] != [k]:
            continue  # the ReLU's output is read elsewhere too
        steps[j] = _Node(pool.layer, relu.inputs, relu.output)
        steps[j].frees = relu.frees
        steps[k] = _Node(relu.layer, pool.inputs, pool.output)
        steps[k].frees = pool.frees
    return steps


class Model:
    """A network from a symbolic input to an output: ``Model(inputs=x, outputs=y)``.

    Parameters
    ----------
    inputs : KerasTensor from :func:`Input` (one input)
    outputs : KerasTensor made by calling layers on ``inputs`` (branches and ``Add``/``Concatenate``
        merges allowed)
    name : str, optional
    dtype : "float32" (default) or "float64" (for gradient checks)
    """

    def __init__(self, inputs=None, outputs=None, name=None, dtype="float32"):
        self._init_state(name or "model", dtype)
        if type(self) is Model:
            self._init_graph(inputs, outputs)

    def _init_state(self, name, dtype):
        self.name = name
        self.dtype = np.dtype(dtype)
        self.metadata: dict = {}
        self.stop_training = False
        self.history = None
        self._compiled = False
        self._nodes: list[_Node] = []   # the graph as built (summary, saving)
        self._steps: list[_Node] = []   # the same computation, in the order it runs
        self._input_layer = None
        self.input_shape = None
        self._output_shapes: dict[str, tuple] = {}
        self._training_seed = None  # drawn at the first fit, saved with the model (see _epoch_rng)

    # ------------------------------------------------------------------ graph
    def _init_graph(self, inputs, outputs):
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            inputs = inputs[0]
        if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
            outputs = outputs[0]
        if not isinstance(inputs, KerasTensor) or not isinstance(inputs.layer, InputLayer):
            raise TypeError(expected("inputs", "one tensor from npconv.Input(shape=...)",
                                     type(inputs).__name__, "Multiple inputs are not supported."))
        if not isinstance(outputs, KerasTensor):
            raise TypeError(expected("outputs", "one tensor made by calling layers on the input",
                                     type(outputs).__name__))
        ids: dict[int, int] = {id(inputs): 0}
        order: list[KerasTensor] = []
        visiting: set[int] = set()

        def visit(t):  # depth-first post-order: every tensor after the tensors it reads
            if id(t) in ids:
                return
            if t.layer is None or isinstance(t.layer, InputLayer):
                raise ValueError(expected("outputs", "a tensor computed from `inputs`",
                                          "a tensor from another Input",
                                          "Build outputs by calling layers on the same Input."))
            if id(t) in visiting:
                raise ValueError("outputs: the layer graph has a cycle")
            visiting.add(id(t))
            for parent in t.inputs:
                visit(parent)
            ids[id(t)] = len(ids)
            order.append(t)

        visit(outputs)
        self._input_layer = inputs.layer
        self._set_nodes([_Node(t.layer, [ids[id(p)] for p in t.inputs], ids[id(t)]) for t in order],
                        inputs.shape[1:])

    def _set_nodes(self, nodes, input_shape):
        layers = [n.layer for n in nodes]
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("npconv does not support calling one layer twice in a model (shared "
                             "layers); create a second layer instead.")
        self._nodes = nodes
        self.input_shape = tuple(input_shape)
        self._name_layers()
        last_use = {}
        for k, node in enumerate(nodes):
            for i in node.inputs:
                last_use[i] = k
        for k, node in enumerate(nodes):
            node.frees = tuple(i for i in set(node.inputs) if last_use[i] == k)
        self._steps = _pool_before_relu(nodes)
        self._output_shapes = {}
        shapes = {0: self.input_shape}
        for node in nodes:
            layer = node.layer
            if layer.dtype != self.dtype:
                layer.astype(self.dtype)
            in_shape = ([shapes[i] for i in node.inputs] if layer.multi_input
                        else shapes[node.inputs[0]])
            layer.build(in_shape)
            shapes[node.output] = tuple(layer.compute_output_shape(in_shape))
            self._output_shapes[layer.name] = shapes[node.output]
        self._trainable = None  # rebuilt lazily: the weights the optimizer updates, in order

    def _name_layers(self):
        """Keras's unique names: unnamed layers become ``conv2d``, ``conv2d_1``, ... in model order."""
        layers = self.layers
        taken = {layer._given_name for layer in layers if layer._given_name}
        given = [layer._given_name for layer in layers if layer._given_name]
        if len(given) != len(set(given)):
            dup = next(n for n in given if given.count(n) > 1)
            raise ValueError(expected("layer names", "unique names within a model",
                                      f"{dup!r} twice", "Rename one of the layers."))
        counts: dict[str, int] = {}
        for layer in layers:
            if layer._given_name:
                continue
            base = snake_case(type(layer).__name__)
            while True:
                n = counts.get(base, 0)
                counts[base] = n + 1
                name = base if n == 0 else f"{base}_{n}"
                if name not in taken:
                    break
            layer.name = name
            taken.add(name)

    @property
    def built(self) -> bool:
        return self.input_shape is not None

    @property
    def layers(self) -> list[Layer]:
        """The layers in order (a functional model's starts with its ``InputLayer``, like Keras)."""
        head = [self._input_layer] if self._input_layer is not None else []
        return head + [node.layer for node in self._nodes]

    @property
    def output_shape(self):
        return (None,) + self._output_shapes[self._nodes[-1].layer.name]

    def get_layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(expected("name", "one of " + ", ".join(repr(l.name) for l in self.layers),
                                  repr(name)))

    # ------------------------------------------------------------------ weights
    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for layer in self.layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        return [w for layer in self.layers for w in layer.non_trainable_weights]

    def count_params(self) -> int:
        return int(sum(w.value.size for w in self.weights))

    def get_weights(self) -> list[np.ndarray]:
        return [w.value.copy() for w in self.weights]

    def set_weights(self, values) -> None:
        weights, values = self.weights, list(values)
        if len(values) != len(weights):
            raise ValueError(expected("weights", f"a list of {len(weights)} arrays", f"{len(values)} arrays"))
        for layer in self.layers:
            k = len(layer.weights)
            layer.set_weights(values[:k])
            values = values[k:]

    def astype(self, dtype) -> "Model":
        """Convert every weight to ``dtype`` (float64 for gradient checks); returns the model."""
        self.dtype = np.dtype(dtype)
        for layer in self.layers:
            layer.astype(self.dtype)
        self._trainable = None
        return self

    # ------------------------------------------------------------------ running
    def _forward(self, x, training, logits=False, record=None):
        """Run every node; ``logits`` stops the last layer before its activation (fused with the loss).

        ``record``: a dict whose keys name layers; their outputs are stored in it. Recording runs the
        graph as built (``_nodes``), so each value is what that layer's output means in the model.
        """
        values = {0: x}
        steps = self._steps if record is None else self._nodes
        last = len(steps) - 1
        for k, node in enumerate(steps):
            layer = node.layer
            args = [values[i] for i in node.inputs] if layer.multi_input else values[node.inputs[0]]
            if k == last and logits:
                out = layer.forward(args, training, logits=True)
            else:
                out = layer.forward(args, training)
            if not training:
                layer._cache = None
            for i in node.frees:
                del values[i]
            values[node.output] = out
            if record is not None and layer.name in record:
                record[layer.name] = out
        return values[steps[-1].output]

    def intermediate_outputs(self, x, layer_names=None) -> dict:
        """Each named layer's output for ``x`` at inference, ``{name: array}`` in layer order.

        The feature maps of one image through every convolution, for example::

            convs = [layer.name for layer in model.layers if isinstance(layer, L.Conv2D)]
            maps = model.intermediate_outputs(image[None], convs)

        ``layer_names`` defaults to every layer (memory: all activations of ``x`` are kept).
        """
        x = self._prepare_x(x, "x", build=True)
        known = [node.layer.name for node in self._nodes]
        names = known if layer_names is None else list(layer_names)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(expected("layer_names", f"names of this model's layers ({', '.join(known)})",
                                      ", ".join(map(repr, unknown))))
        record = dict.fromkeys(names)
        self._forward(x, training=False, record=record)
        return {name: record[name] for name in known if name in record}

    def _backward(self, dout) -> None:
        """Backpropagate ``dout`` (gradient of the loss w.r.t. the output); fills every ``.grad``."""
        grads = {self._steps[-1].output: dout}
        for node in reversed(self._steps):
            if node.skip:
                node.layer._cache = None
                continue
            dx = node.layer.backward(grads.pop(node.output), need_dx=node.need_dx)
            if not node.need_dx:
                continue
            for i, d in zip(node.inputs, dx if node.layer.multi_input else (dx,)):
                if i != 0:
                    grads[i] = d if i not in grads else grads[i] + d

    def __call__(self, x, training=False):
        """The output for an array batch ``x`` (inference, no caches kept)."""
        return self._forward(self._prepare_x(x, "x"), training)

    # ------------------------------------------------------------------ summary
    def summary(self, print_fn=print) -> None:
        """Print Keras's table: layer (type), output shape, parameter count (and, for a graph with
        branches, what each layer reads), then the totals."""
        self._require_built("summary")
        producer = {0: self._input_layer.name if self._input_layer else "input"}
        producer.update({n.output: n.layer.name for n in self._nodes})
        reads = {n.layer.name: [producer[i] for i in n.inputs] for n in self._nodes}
        branched = any(len(n.inputs) > 1 or n.inputs[0] != n.output - 1 for n in self._nodes)
        header = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if branched else [])
        rows = []
        for layer in self.layers:
            row = [f"{layer.name} ({type(layer).__name__})", str(self._display_shape(layer)),
                   f"{layer.count_params()}"]
            rows.append(row + [", ".join(reads.get(layer.name, []))] if branched else row)
        widths = [max(minimum, max(len(r[k]) for r in rows) + 1)
                  for k, minimum in enumerate([28, 25, 10, 20][:len(header)])]
        rule = sum(widths)

        def line(cells):
            return "".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

        trainable = sum(w.value.size for w in self.trainable_weights)
        out = [f'Model: "{self.name}"', "_" * rule, line(header), "=" * rule]
        for k, row in enumerate(rows):
            out += [line(row), "=" * rule if k == len(rows) - 1 else "_" * rule]
        out += [f"Total params: {self.count_params():,}", f"Trainable params: {trainable:,}",
                f"Non-trainable params: {self.count_params() - trainable:,}", "_" * rule]
        for text in out:
            print_fn(text)

    def _display_shape(self, layer):
        if isinstance(layer, InputLayer):
            return [(None,) + self.input_shape]
        return (None,) + self._output_shapes[layer.name]

    # ------------------------------------------------------------------ training
    def compile(self, optimizer="rmsprop", loss=None, metrics=None) -> None:
        """Choose the optimizer (name or object), the loss (name or object) and ``metrics=["accuracy"]``."""
        from . import losses, metrics as metrics_module, optimizers
        if loss is None:
            raise ValueError(expected("loss", "a loss such as 'binary_crossentropy' or "
                                      "'categorical_crossentropy'", "None"))
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        names = [metrics] if isinstance(metrics, str) or callable(metrics) else list(metrics or [])
        self.metrics_names = [m if isinstance(m, str) else m.__name__ for m in names]
        self._metrics = [metrics_module.get(m) for m in names]
        self._compiled = True
        self._trainable = None

    def _training_plan(self):
        """Check the loss fits the last layer; return whether the last activation is fused."""
        if not self._compiled:
            raise RuntimeError("fit/evaluate: compile the model first, e.g. model.compile(optimizer='adam', "
                               "loss='binary_crossentropy', metrics=['accuracy']).")
        last = self._nodes[-1].layer
        activation = getattr(getattr(last, "activation", None), "name", "linear")
        wanted = "linear" if self.loss.from_logits else self.loss.activation
        if activation != wanted:
            fix = ("Use from_logits=False or remove the final activation." if self.loss.from_logits else
                   f"End the model with activation='{wanted}' (npconv fuses it with the loss).")
            raise ValueError(expected(f"last layer {last.name!r} activation (for loss {self.loss.name})",
                                      repr(wanted), repr(activation), fix))
        if self._trainable is None:
            self._trainable = self.trainable_weights
            self._all_weights = self.weights
            self._last_good = [np.empty_like(w.value) for w in self._all_weights]
            self._plan_backward()
        return activation != "linear"

    def _plan_backward(self):
        """Send gradients only where they reach a trainable weight: the layers before the first
        trainable one (input, padding, augmentation) skip backward, and the first trainable layer
        skips its input gradient (``need_dx=False``), the costliest part of a conv backward."""
        requires = {0: False}
        for node in self._steps:
            node.need_dx = any(requires[i] for i in node.inputs)
            has_weights = bool(node.layer.trainable_weights)
            node.skip = not (node.need_dx or has_weights)
            requires[node.output] = node.need_dx or has_weights

    def _output_probabilities(self, logits, fused):
        if not fused:
            return logits
        return self._nodes[-1].layer.activation.forward(logits)[0]

    def _train_step(self, xb, yb, fused):
        """One forward, one backward, one update; returns ``(loss, output)``.

        A non-finite loss or update restores the weights from before the batch (one copy of the
        weights per batch: microseconds next to the convolutions) and raises ``_Diverged``.
        """
        for saved, w in zip(self._last_good, self._all_weights):
            np.copyto(saved, w.value)
        out = self._forward(xb, True, logits=fused)
        loss, dout = self.loss.from_logits_and_grad(yb, out)
        if not np.isfinite(loss):
            self._restore_last_good()
            raise _Diverged(f"the loss is {loss}")
        self._backward(dout)
        grads = [(w.grad, w.value) for w in self._trainable]
        self.optimizer.apply_gradients(grads)
        if not np.isfinite(sum(float(np.sum(p)) for _, p in grads)):
            self._restore_last_good()
            raise _Diverged("the update made a weight infinite or NaN")
        return loss, out

    def _restore_last_good(self):
        for saved, w in zip(self._last_good, self._all_weights):
            np.copyto(w.value, saved)

    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0):
        """Train for ``epochs`` passes over ``(x, y)``; returns a :class:`~npconv.callbacks.History`.

        Parameters
        ----------
        x : array (m, n_H, n_W, n_C) (or (m, n) for dense models); uint8 images are cast to float32
            once (not rescaled, as in Keras: divide by 255 yourself)
        y : labels (m,), (m, 1) or one-hot (m, K); the course's row layout (1, m) is transposed
            with a warning
        validation_split : fraction of the data, taken from the end before shuffling (Keras's rule)
        validation_data : a tuple ``(x_val, y_val)``
        shuffle : reshuffle every epoch (one gather, then contiguous batches)
        verbose : 0 silent, 1 a progress bar per epoch, 2 one line per epoch
        initial_epoch : the epoch to start from (0-based) when resuming; ``epochs`` is the index
            of the last epoch plus one, not a count of further epochs

        Randomness: each epoch's shuffling, ``Dropout`` masks and augmentation draw from a
        generator derived from the model's training seed (drawn from the package generator at the
        first ``fit`` and saved with the model), the epoch and the optimizer's update count. So a
        run resumed from a full checkpoint (``ModelCheckpoint``, ``save_weights_only=False``) with
        ``fit(initial_epoch=...)`` repeats the uninterrupted run bit for bit, in any process.
        Layers given their own ``seed=`` and callbacks' counters (``EarlyStopping``,
        ``ReduceLROnPlateau``) are not part of that: they start afresh.

        Raises
        ------
        TrainingDivergedError
            The loss became NaN/inf; the weights are those before the failing update.
        """
        from . import callbacks as cbks, utils
        from .errors import TrainingDivergedError
        x = self._prepare_x(x, "x", build=True)
        fused = self._training_plan()
        y = self._prepare_y(y, len(x), "y")
        epochs, initial_epoch = _epoch_range(epochs, initial_epoch)
        if verbose not in (0, 1, 2):
            raise ValueError(expected("verbose", "0 (silent), 1 (progress bar) or 2 (one line per epoch)",
                                      verbose))
        if isinstance(callbacks, cbks.Callback):
            raise TypeError(expected("callbacks", "a list of callbacks", type(callbacks).__name__,
                                     "Wrap it in a list: callbacks=[...]."))
        if not 0 <= validation_split < 1:
            raise ValueError(expected("validation_split", "a fraction in [0, 1)", validation_split))
        batch_size = _batch_size(batch_size, "batch_size")
        if validation_data is None and validation_split:
            n_val = int(len(x) * validation_split)
            if n_val == 0 or n_val == len(x):
                raise ValueError(expected("validation_split", f"a fraction leaving both parts of the {len(x)} "
                                          "examples non-empty", validation_split))
            x, y, validation_data = x[:-n_val], y[:-n_val], (x[-n_val:], y[-n_val:])
        elif validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                got = (f"a {type(validation_data).__name__} of {len(validation_data)} items"
                       if isinstance(validation_data, (tuple, list)) else type(validation_data).__name__)
                raise TypeError(expected("validation_data", "a tuple (x_val, y_val)", got))
            xv = self._prepare_x(validation_data[0], "validation_data[0]")
            validation_data = (xv, self._prepare_y(validation_data[1], len(xv), "validation_data[1]"))

        history = cbks.History()
        callback_list = cbks.CallbackList(
            [history] + list(callbacks or []) + ([cbks.ProgressBar(verbose, epochs)] if verbose else []), self)
        self.history = history
        self.stop_training = False
        m = len(x)
        n_batches = -(-m // batch_size)
        logs: dict = {}
        callback_list.on_train_begin()
        epoch, batch = initial_epoch, 0
        if self._training_seed is None:
            self._training_seed = int(utils.global_rng().integers(2**63))
        try:
            with _DeferredInterrupt() as interrupt, _PackageRng() as package_rng:
                for epoch in range(initial_epoch, epochs):
                    package_rng.use(self._epoch_rng(epoch))
                    callback_list.on_epoch_begin(epoch, {"steps": n_batches})
                    if shuffle:
                        perm = utils.global_rng().permutation(m)
                        xs, ys = x[perm], y[perm]
                    else:
                        xs, ys = x, y
                    totals = np.zeros(1 + len(self._metrics))
                    seen = 0
                    for batch in range(n_batches):
                        xb = xs[batch * batch_size:(batch + 1) * batch_size]
                        yb = ys[batch * batch_size:(batch + 1) * batch_size]
                        loss, out = self._train_step(xb, yb, fused)
                        seen += len(xb)
                        totals += len(xb) * np.array([loss] + self._metric_values(yb, out, fused))
                        logs = dict(zip(["loss"] + self.metrics_names, (totals / seen).tolist()))
                        callback_list.on_batch_end(batch, logs)
                        if interrupt.requested:
                            raise KeyboardInterrupt
                        if self.stop_training:
                            break
                    if validation_data is not None:
                        values = self._evaluate_arrays(*validation_data, batch_size, fused)
                        logs.update({"val_" + k: v for k, v in values.items()})
                    callback_list.on_epoch_end(epoch, logs)
                    if self.stop_training:
                        break
        except _Diverged as exc:
            callback_list.close()
            raise TrainingDivergedError(
                f"training diverged at epoch {epoch + 1}, batch {batch + 1}: {exc}. The model keeps the "
                f"weights from before this batch (the optimizer state is not restored). Lower the learning rate (now "
                f"{self.optimizer.learning_rate:g}), e.g. compile(optimizer=optimizers.Adam(1e-4)), "
                "or check the inputs' scale (divide images by 255).") from None
        except KeyboardInterrupt:
            callback_list.close()
            warnings.warn(f"fit interrupted at epoch {epoch + 1}, batch {batch + 1}: the model holds the "
                          "weights after the last finished batch; returning the history so far.",
                          stacklevel=2)
            self.stop_training = True
            return history
        callback_list.on_train_end(logs)
        return history

    def _epoch_rng(self, epoch) -> np.random.Generator:
        """The generator of one epoch: a function of the training seed, the epoch and the update
        count only, all three saved in a checkpoint, so resuming needs no saved generator state."""
        key = np.random.SeedSequence(self._training_seed, spawn_key=(epoch, self.optimizer.iterations))
        return np.random.Generator(np.random.PCG64(key))

    def _metric_values(self, y, out, fused):
        if not self._metrics:
            return []
        probabilities = self._output_probabilities(out, fused)
        return [metric(y, probabilities) for metric in self._metrics]

    def _evaluate_arrays(self, x, y, batch_size, fused) -> dict:
        totals = np.zeros(1 + len(self._metrics))
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            out = self._forward(xb, False, logits=fused)
            loss = self.loss.from_logits_and_grad(yb, out)[0]
            totals += len(xb) * np.array([loss] + self._metric_values(yb, out, fused))
        return dict(zip(["loss"] + self.metrics_names, (totals / len(x)).tolist()))

    def evaluate(self, x=None, y=None, batch_size=32, verbose=1, return_dict=False):
        """``[loss, metric, ...]`` on ``(x, y)`` at inference (just the loss without metrics)."""
        x = self._prepare_x(x, "x", build=True)
        fused = self._training_plan()
        y = self._prepare_y(y, len(x), "y")
        values = self._evaluate_arrays(x, y, _batch_size(batch_size, "batch_size"), fused)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in values.items()))
        if return_dict:
            return values
        result = list(values.values())
        return result if len(result) > 1 else result[0]

    def predict(self, x, batch_size=32, verbose=0) -> np.ndarray:
        """The model's outputs (probabilities after a final softmax/sigmoid) for ``x``, batch by batch."""
        x = self._prepare_x(x, "x", build=True)
        batch_size = _batch_size(batch_size, "batch_size")
        out = None
        for start in range(0, len(x), batch_size):
            yb = self._forward(x[start:start + batch_size], False)
            if out is None:
                out = np.empty((len(x),) + yb.shape[1:], dtype=yb.dtype)
            out[start:start + len(yb)] = yb
        return out

    # ------------------------------------------------------------------ data checks
    def _prepare_x(self, x, name, build=False) -> np.ndarray:
        """``x`` as an array of the model's dtype (one cast at most), checked against the input shape."""
        from .errors import check_finite
        if x is None:
            raise ValueError(expected(name, "an array of inputs", "None"))
        try:
            x = np.asarray(x)
        except ValueError:  # nested lists of different lengths
            raise ValueError(expected(name, "a numeric array with one shape for every example",
                                      "a ragged nested list", "Resize the images to one size and "
                                      "stack them: np.stack(images).")) from None
        if x.dtype.kind not in "biuf":
            raise TypeError(expected(name, "a numeric array", x, "Pass images as a NumPy array."))
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(expected(name, "at least one example", x, "Check the data loading step."))
        if not self.built and build and isinstance(self, Sequential) and self._layers:
            self.build(x.shape[1:])
        self._require_built(name)
        want = (None,) + self.input_shape
        if x.shape[1:] != self.input_shape:
            if x.shape == self.input_shape:
                fix = "For a single example add the batch axis: x[None]."
            elif x.ndim == len(want) and x.shape[1:-1] == self.input_shape[:-1]:
                fix = (f"The model takes {self.input_shape[-1]} channel(s), the data has {x.shape[-1]}: "
                       "convert the images (e.g. grayscale to RGB with np.repeat(x, 3, axis=-1)) or build "
                       f"the model with input_shape={x.shape[1:]}.")
            elif x.ndim == len(want) + 1 and x.shape[-1] == 1:
                fix = "Drop the extra axis: x[..., 0]."
            elif x.ndim + 1 == len(want) and len(want) == 4:
                fix = "A grayscale batch needs a channel axis: x[..., None]."
            else:
                fix = "Resize or reshape the data to the model's input, or build the model for this shape."
            raise ShapeError(expected(name, f"a batch of shape {want}".replace("None,)", "None)"),
                                      f"shape {x.shape}", fix))
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        if x.dtype.kind == "f":
            check_finite(x, name)
        return x

    def _prepare_y(self, y, m, name) -> np.ndarray:
        from .errors import check_finite
        if y is None:
            raise ValueError(expected(name, "labels", "None", "fit/evaluate need both x and y."))
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise TypeError(expected(name, "numeric labels", y))
        if y.ndim == 2 and y.shape[0] == 1 and y.shape[1] == m and m > 1:
            warnings.warn(f"{name}: labels have shape {y.shape}, the course's row layout; using {name}.T "
                          f"of shape {(m, 1)}. Pass {name}.T to silence this.", stacklevel=3)
            y = y.T
        if y.ndim == 0 or len(y) != m:
            raise ValueError(expected(name, f"{m} labels, one per example of x", y,
                                      "x and y must have the same number of examples."))
        if y.dtype.kind == "f":
            check_finite(y, name)
            if y.dtype != self.dtype:
                y = y.astype(self.dtype)
        elif y.dtype.kind == "b" or self.loss.name != "sparse_categorical_crossentropy":
            y = y.astype(self.dtype)
        return y

    # ------------------------------------------------------------------ config and files
    def get_config(self) -> dict:
        self._require_built("get_config")
        config = {"name": self.name, "dtype": self.dtype.name, "input_shape": list(self.input_shape),
                  "layers": [{"class_name": type(l).__name__, "config": l.get_config()} for l in self.layers]}
        if type(self) is Model:
            config["nodes"] = [{"layer": n.layer.name, "inputs": list(n.inputs), "output": n.output}
                               for n in self._nodes]
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Model":
        from .layers import layer_class
        layers = [layer_class(spec["class_name"]).from_config(spec["config"]) for spec in config["layers"]]
        dtype = config.get("dtype", "float32")
        if cls is not Model:
            model = cls(layers, name=config["name"], dtype=dtype)
            if not model.built:
                model.build(config["input_shape"])
            return model
        model = cls.__new__(cls)
        model._init_state(config["name"], dtype)
        by_name = {layer.name: layer for layer in layers}
        model._input_layer = layers[0]
        nodes = [_Node(by_name[n["layer"]], n["inputs"], n["output"]) for n in config["nodes"]]
        model._set_nodes(nodes, config["input_shape"])
        return model

    def to_json(self) -> str:
        return json.dumps({"class_name": type(self).__name__, "config": self.get_config()})

    def save(self, filepath) -> None:
        """Architecture, weights, optimizer state, compile settings and ``metadata`` in one ``.npz``."""
        from . import saving
        saving.save_model(self, filepath)

    def export(self, filepath, format="onnx"):
        """Write the model for inference outside npconv (Keras 3's name): ``format="onnx"``."""
        from . import export
        return export.export(self, filepath, format=format)

    def save_weights(self, filepath) -> None:
        from . import saving
        saving.save_weights(self, filepath)

    def load_weights(self, filepath) -> None:
        from . import saving
        saving.load_weights(self, filepath)

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"{what}: the model has no input shape yet. Give the first layer "
                             "input_shape=(...), start with npconv.Input(shape=...), or call build(shape).")

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} layers={len(self.layers)}>"


class Sequential(Model):
    """A stack of layers, each feeding the next: ``Sequential([Conv2D(...), ReLU(), ...])``.

    The input shape comes from the first layer's ``input_shape=``, a leading ``InputLayer`` or
    ``Input(...)``, :meth:`build`, or the first data passed to ``fit``/``predict``.
    """

    def __init__(self, layers=None, name=None, dtype="float32"):
        self._init_state(name or "sequential", dtype)
        self._layers: list[Layer] = []
        self._pending_shape = None
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    def add(self, layer) -> None:
        """Append a layer (builds it at once when the input shape is known)."""
        if isinstance(layer, KerasTensor) and isinstance(layer.layer, InputLayer):
            layer = layer.layer
        if isinstance(layer, InputLayer):
            if self._layers or self._pending_shape is not None:
                raise ValueError("Sequential.add: an InputLayer can only come first.")
            self._pending_shape = layer.input_shape
        elif not isinstance(layer, Layer):
            raise TypeError(expected("layer", "an npconv layer such as layers.Dense(4)",
                                     type(layer).__name__))
        else:
            if layer.multi_input:
                raise TypeError(f"Sequential.add: {type(layer).__name__} merges several tensors; "
                                "use the functional API (npconv.Input and npconv.Model).")
            if not self._layers and layer.input_shape is not None:
                self._pending_shape = layer.input_shape
            self._layers.append(layer)
        if self._pending_shape is not None and self._layers:
            self.build(self._pending_shape)

    def build(self, input_shape) -> None:
        """Build every layer for inputs of ``input_shape`` (no batch axis, e.g. ``(64, 64, 3)``)."""
        shape = tuple(int(s) for s in input_shape)
        if len(shape) and shape[0] is None:
            shape = shape[1:]
        self._set_nodes([_Node(layer, [k], k + 1) for k, layer in enumerate(self._layers)], shape)

    def pop(self) -> Layer:
        layer = self._layers.pop()
        if self.built and self._layers:
            self.build(self.input_shape)
        return layer



class _Diverged(Exception):
    """Internal: a non-finite loss or gradient, turned into TrainingDivergedError by ``fit``."""


def _batch_size(value, name):
    from .errors import check_positive_int
    return check_positive_int(value, name)


def _epoch_range(epochs, initial_epoch) -> tuple[int, int]:
    """Check ``fit``'s ``epochs`` (positive) and ``initial_epoch`` (0 .. ``epochs``)."""
    from .errors import check_positive_int
    epochs = check_positive_int(epochs, "epochs")
    if isinstance(initial_epoch, (bool, np.bool_)) or not isinstance(initial_epoch, (int, np.integer)) \
            or not 0 <= initial_epoch <= epochs:
        raise ValueError(expected("initial_epoch", f"an integer from 0 to epochs={epochs}", initial_epoch,
                                  "epochs is the index of the last epoch plus one, not a count of "
                                  "further epochs: fit(initial_epoch=2, epochs=4) trains epochs 3 and 4."))
    return epochs, int(initial_epoch)


class _PackageRng:
    """Within ``fit``, the package generator is each epoch's own (see ``Model._epoch_rng``), so that
    ``Dropout`` and the augmentation layers draw from it; the caller's generator is put back after."""

    def __enter__(self):
        from . import utils
        self._saved = utils._rng
        return self

    def use(self, generator) -> None:
        from . import utils
        utils._rng = generator

    def __exit__(self, *exc):
        from . import utils
        utils._rng = self._saved
        return False


class _DeferredInterrupt:
    """Within ``fit``, Ctrl-C sets ``requested`` and training stops after the current batch's update,
    so weights are never half updated; a second Ctrl-C interrupts at once. Main thread only."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
