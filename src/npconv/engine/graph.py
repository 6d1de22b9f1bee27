"""The graph of a model and its running: nodes in topological order, forward and backward passes.

A model is a list of nodes, ``(layer, input tensor ids, output tensor id)``; tensor 0 is the model's
input. ``Sequential`` is the chain ``0 -> 1 -> 2 ...``; a functional model's nodes come from walking
its output tensor back to its input. Every built model also holds symbolic tensors for that graph
(``inputs``, ``outputs``, each layer's ``input``/``output``), with Keras's ``(None, ...)`` shapes.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError, expected
from ..functional._memory import keep_freed_memory
from ..functional._threads import blas_scope
from ..layers import InputLayer, KerasTensor, Layer
from ..layers.base import snake_case
from .data_checks import as_input_batch
from .plan import Node, execution_steps, inference_steps, plan_gradients


class Graph:
    """The graph half of :class:`npconv.Model`: building, naming, shapes, ``_forward``/``_backward``,
    and ``gradients`` (from the output back to any layer or the input, for explaining)."""

    def _init_graph(self, inputs, outputs):
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            inputs = inputs[0]
        if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
            outputs = outputs[0]
        if not isinstance(inputs, KerasTensor) or not isinstance(inputs.layer, InputLayer):
            raise TypeError(
                expected(
                    "inputs",
                    "one tensor from npconv.Input(shape=...)",
                    type(inputs).__name__,
                    "Multiple inputs are not supported.",
                )
            )
        if not isinstance(outputs, KerasTensor):
            raise TypeError(
                expected("outputs", "one tensor made by calling layers on the input", type(outputs).__name__)
            )
        ids: dict[int, int] = {id(inputs): 0}
        order: list[KerasTensor] = []
        visiting: set[int] = set()

        def visit(t):  # depth-first post-order: every tensor after the tensors it reads
            if id(t) in ids:
                return
            if t.layer is None or isinstance(t.layer, InputLayer):
                raise ValueError(
                    expected(
                        "outputs",
                        "a tensor computed from `inputs`",
                        "a tensor from another Input",
                        "Build outputs by calling layers on the same Input.",
                    )
                )
            if id(t) in visiting:
                raise ValueError("outputs: the layer graph has a cycle")
            visiting.add(id(t))
            for parent in t.inputs:
                visit(parent)
            ids[id(t)] = len(ids)
            order.append(t)

        visit(outputs)
        self._input_layer = inputs.layer
        self._set_nodes(
            [Node(t.layer, [ids[id(p)] for p in t.inputs], ids[id(t)]) for t in order],
            inputs.shape[1:],
            {0: inputs, **{ids[id(t)]: t for t in order}},
        )

    def _set_nodes(self, nodes, input_shape, tensors=None):
        """Build every layer in ``nodes`` for ``input_shape`` (no batch axis); ``tensors`` are the
        graph's symbolic tensors by id when the user built them, else they are made here, so that
        ``model.inputs`` and every ``layer.output`` exist for any model (to build a new head on)."""
        layers = [n.layer for n in nodes]
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError(
                "npconv does not support calling one layer twice in a model (shared "
                "layers); create a second layer instead."
            )
        self._nodes = nodes
        self._input_shape = tuple(input_shape)
        self._name_layers()
        last_use = {}
        for k, node in enumerate(nodes):
            for i in node.inputs:
                last_use[i] = k
        for k, node in enumerate(nodes):
            node.frees = tuple(i for i in set(node.inputs) if last_use[i] == k)
        self._steps = execution_steps(nodes)
        self._inference_steps = inference_steps(nodes)
        shapes = {0: self._input_shape}
        for node in nodes:
            layer = node.layer
            if layer.dtype != self.dtype:
                layer.astype(self.dtype)
            in_shape = [shapes[i] for i in node.inputs] if layer.multi_input else shapes[node.inputs[0]]
            layer.build(in_shape)
            shapes[node.output] = tuple(layer.compute_output_shape(in_shape))
        self._check_gradient_path(nodes)
        self._tensors = tensors if tensors is not None else self._make_tensors(shapes)
        self._updated_weights = None

    @staticmethod
    def _check_gradient_path(nodes) -> None:
        """Refuse a layer without a backward pass (augmentation) downstream of a layer with weights:
        training would need the gradient through it."""
        weighted_before: dict[int, str | None] = {0: None}  # tensor id -> a weighted layer upstream
        for node in nodes:
            upstream = next((weighted_before[i] for i in node.inputs if weighted_before[i]), None)
            if upstream and not node.layer.passes_gradient:
                layer = node.layer
                raise ValueError(
                    expected(
                        f"layer {layer.name!r} ({type(layer).__name__})",
                        "to come before every layer with weights",
                        f"it comes after {upstream!r}",
                        "Augmentation layers pass no gradient: put them right after the input, e.g. "
                        "Sequential([RandomFlip(...), Conv2D(...), ...]).",
                    )
                )
            weighted_before[node.output] = upstream or (node.layer.name if node.layer.weights else None)

    def _make_tensors(self, shapes) -> dict:
        """Symbolic tensors for a graph given as nodes (``Sequential``, a loaded model). A layer's
        ``input``/``output`` become this model's unless another graph connected it first (Keras keeps
        the first), so ``base.layers[k].output`` stays ``base``'s when its layers join a new model."""
        entry = self._entry_layer()
        mine = {id(t) for t in self._tensors.values()}  # from an earlier build of this model
        tensors = {0: entry.output}
        for node in self._nodes:
            inputs = tuple(tensors[i] for i in node.inputs)
            tensors[node.output] = KerasTensor(shapes[node.output], node.layer, inputs)
            if node.layer._inbound is None or id(node.layer._inbound[1]) in mine:
                node.layer._inbound = (inputs, tensors[node.output])
        return tensors

    def _entry_layer(self) -> InputLayer:
        return self._input_layer

    def _name_layers(self):
        """Keras's unique names: unnamed layers become ``conv2d``, ``conv2d_1``, ... in model order."""
        layers = self.layers
        taken = {layer._given_name for layer in layers if layer._given_name}
        given = [layer._given_name for layer in layers if layer._given_name]
        if len(given) != len(set(given)):
            dup = next(n for n in given if given.count(n) > 1)
            raise ValueError(
                expected("layer names", "unique names within a model", f"{dup!r} twice", "Rename one of the layers.")
            )
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
            layer.name = layer._given_name = name  # fixed from now on, as Keras names at creation
            taken.add(name)

    @property
    def built(self) -> bool:
        return self._input_shape is not None

    @property
    def input_shape(self):
        """``(None, 64, 64, 3)``: the batch axis first, as Keras gives it."""
        self._require_built("input_shape")
        return (None,) + self._input_shape

    @property
    def inputs(self) -> list[KerasTensor]:
        """The model's input tensor in a list; ``Model(model.inputs, new_head(layer.output))``
        builds a new model on this one's layers (transfer learning)."""
        self._require_built("inputs")
        return [self._tensors[0]]

    @property
    def outputs(self) -> list[KerasTensor]:
        self._require_built("outputs")
        return [self._tensors[self._nodes[-1].output]]

    @property
    def input(self) -> KerasTensor:
        return self.inputs[0]

    @property
    def output(self) -> KerasTensor:
        return self.outputs[0]

    @property
    def layers(self) -> list[Layer]:
        """The layers in order (a functional model's starts with its ``InputLayer``, like Keras)."""
        head = [self._input_layer] if self._input_layer is not None else []
        return head + [node.layer for node in self._nodes]

    @property
    def output_shape(self):
        return self.output.shape

    def get_layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(expected("name", "one of " + ", ".join(repr(l.name) for l in self.layers), repr(name)))

    def _forward(self, x, training, logits=False, record=None, keep_caches=None):
        """Run every node; ``logits`` stops the last layer before its activation (fused with the loss).

        ``record``: a dict whose keys name layers; their outputs are stored in it. Recording runs the
        graph as built (``_nodes``), so each value is what that layer's output means in the model.
        ``keep_caches`` (default: ``training``) keeps each layer's cache for a backward pass.
        """
        keep_freed_memory()
        with blas_scope():
            return self._run_forward(x, training, logits, record, keep_caches)

    def _run_forward(self, x, training, logits, record, keep_caches):
        values = {0: x}
        keep_caches = training if keep_caches is None else keep_caches
        if record is not None:
            steps = self._nodes
        else:
            steps = self._steps if training or keep_caches else self._inference_steps
        last = len(steps) - 1
        for k, node in enumerate(steps):
            layer = node.layer
            args = [values[i] for i in node.inputs] if layer.multi_input else values[node.inputs[0]]
            if k == last and logits:
                out = layer.forward(args, training, logits=True)
            else:
                out = layer.forward(args, training)
            if not keep_caches:
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
        x = as_input_batch(self, x, "x", build=True)
        known = [node.layer.name for node in self._nodes]
        names = known if layer_names is None else list(layer_names)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(
                expected(
                    "layer_names", f"names of this model's layers ({', '.join(known)})", ", ".join(map(repr, unknown))
                )
            )
        record = dict.fromkeys(names)
        self._forward(x, training=False, record=record)
        return {name: record[name] for name in known if name in record}

    def _backward(self, dout) -> None:
        """Backpropagate ``dout`` (gradient of the loss w.r.t. the output); fills every ``.grad``."""
        self._backpropagate(self._steps, dout, [(node.skip, node.need_dx) for node in self._steps])

    @staticmethod
    def _backpropagate(steps, dout, plan, keep=frozenset()) -> dict:
        """Run the layers' backward passes from the last step's output back, ``plan`` giving each
        step's ``(skip, need_dx)``; returns ``{tensor id: gradient}`` for the ids in ``keep``.

        A skipped step only drops its cache. A tensor read by several steps sums their gradients: a
        step whose layer ``adds_to_dx`` (a convolution) is handed the others' sum and adds it as it
        writes its own (a residual block's NumPy add gone, the same bits); the input's (id 0) is
        kept only when asked for.
        """
        with blas_scope():
            return Graph._run_backward(steps, dout, plan, keep)

    @staticmethod
    def _run_backward(steps, dout, plan, keep) -> dict:
        grads = {steps[-1].output: dout}
        kept = {}
        for node, (skip, need_dx) in zip(reversed(steps), reversed(plan)):
            if node.output in keep:
                kept[node.output] = grads[node.output]
            if skip:
                node.layer._cache = None
                continue
            dout = grads.pop(node.output)
            if need_dx and node.layer.adds_to_dx and node.inputs[0] in grads:
                # the input's gradient from its other readers, added as the layer writes its own
                dx = node.layer.backward(dout, need_dx=True, dx_plus=grads.pop(node.inputs[0]))
            else:
                dx = node.layer.backward(dout, need_dx=need_dx)
            if not need_dx:
                continue
            for i, d in zip(node.inputs, dx if node.layer.multi_input else (dx,)):
                if i != 0 or 0 in keep:
                    grads[i] = d if i not in grads else grads[i] + d
        if 0 in keep:
            kept[0] = grads[0]
        return kept

    def gradients(self, x, seed, layers=None) -> tuple[np.ndarray, dict, dict]:
        """The gradient of a score of the model's output with respect to layers' outputs or the input.

        ``S = sum(seed * z)``, with ``z (m, ...)`` the output before the last layer's activation (the
        logits; the output itself when the last layer has none); a one-hot ``seed`` picks one class
        score per example. The graph runs as built (``_nodes``: each layer's output is what it means
        in the model, whatever :func:`~npconv.engine.plan.execution_steps` does for speed), in
        inference mode (batch norm with its moving statistics, no dropout, augmentation the
        identity), and back through the layers' own backward passes. It leaves the model as it was:
        no weight, batch-norm statistic or optimizer slot changes, each weight's ``.grad`` is put
        back and every layer's cache dropped, so a later ``fit`` runs exactly as without it.

        Parameters
        ----------
        x : array (m, ...) of the model's input shape, as ``predict`` takes it
        seed : array of ``z``'s shape, or a function ``seed(z)`` giving one (to pick, say, the
            predicted class)
        layers : a layer name or a list of them; the input layer's name (``model.input.layer.name``)
            stands for the input. Default: the input.

        Returns
        -------
        z : ndarray (m, ...), the logits
        activations : ``{name: A}``, each layer's output (the input for the input layer)
        gradients : ``{name: dS/dA}``, of ``A``'s shape
        """
        x = as_input_batch(self, x, "x", build=True)
        entry = self.inputs[0].layer.name
        tensor = {entry: 0, **{node.layer.name: node.output for node in self._nodes}}
        names = [entry] if layers is None else [layers] if isinstance(layers, str) else list(layers)
        unknown = [name for name in names if name not in tensor]
        if unknown or not names:
            raise ValueError(
                expected(
                    "layers",
                    "names of this model's layers (" + ", ".join(tensor) + ")",
                    ", ".join(map(repr, unknown)) or "no names",
                )
            )
        record = dict.fromkeys(name for name in names if tensor[name] != 0)
        last = self._nodes[-1].layer
        logits = getattr(getattr(last, "activation", None), "name", "linear") != "linear"
        saved_grads = [(w, w.grad) for w in self.weights]
        try:
            z = self._forward(x, False, logits=logits, record=record, keep_caches=True)
            dz = np.asarray(seed(z) if callable(seed) else seed, dtype=z.dtype)
            if dz.shape != z.shape:
                raise ShapeError(expected("seed", f"an array of the logits' shape {z.shape}", dz))
            wanted = {tensor[name] for name in names}
            grads = self._backpropagate(self._nodes, dz, plan_gradients(self._nodes, wanted), keep=wanted)
        finally:
            for node in self._nodes:
                node.layer._cache = None
            for w, grad in saved_grads:
                w.grad = grad
        activations = {name: x if tensor[name] == 0 else record[name] for name in names}
        return z, activations, {name: grads[tensor[name]] for name in names}

    def __call__(self, x, training=False):
        """The output for an array batch ``x`` (inference, no caches kept)."""
        return self._forward(as_input_batch(self, x, "x"), training)

    def _require_built(self, what):
        if not self.built:
            raise ValueError(
                f"{what}: the model has no input shape yet. Give the first layer "
                "input_shape=(...), start with npconv.Input(shape=...), or call build(shape)."
            )
