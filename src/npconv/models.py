"""Keras-like models: ``Sequential``, ``Input`` + ``Model`` (functional API), ``load_model``.

A model is its graph (:mod:`npconv.engine.graph`: nodes, forward and backward passes) and its
training loop (:mod:`npconv.engine.training`: compile/fit/evaluate/predict); this module adds the
weights, configs and files, and ``Sequential``. Saving writes through :mod:`npconv.saving`, which
knows the file format and nothing of these classes.
"""

from __future__ import annotations

import json

import numpy as np

from . import saving
from .engine import summary as summary_table
from .engine.graph import Graph
from .engine.plan import Node
from .engine.training import Training
from .errors import ModelFileError, expected
from .layers import Input, InputLayer, KerasTensor, Layer

__all__ = ["Model", "Sequential", "Input", "load_model", "model_from_json"]


class Model(Graph, Training):
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
        self._nodes: list[Node] = []  # the graph as built (summary, saving)
        self._steps: list[Node] = []  # the same computation, in the order it runs
        self._inference_steps: list[Node] = []  # _steps with batch norms folded (predict, evaluate)
        self._input_layer = None  # a functional model's InputLayer (the first of its layers)
        self._input_shape = None  # without the batch axis; ``input_shape`` adds it, like Keras
        self._tensors: dict[int, KerasTensor] = {}  # the symbolic tensor of every tensor id
        self._trainable_flag = True
        self._updated_weights = None  # the weights fit updates, in order (planned lazily)
        self._training_seed = None  # drawn at the first fit, saved with the model (see _epoch_rng)

    # ------------------------------------------------------------------ weights
    @property
    def trainable(self) -> bool:
        """Setting it sets every layer's ``trainable`` (Keras's ``base.trainable = False``); a model
        set to False has no trainable weights whatever its layers say."""
        return self._trainable_flag

    @trainable.setter
    def trainable(self, value) -> None:
        self._trainable_flag = bool(value)
        for layer in self.layers:
            layer.trainable = bool(value)

    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self):
        """The weights ``fit`` updates: those of layers with ``trainable`` True (BatchNormalization's
        moving statistics never are)."""
        if not self.trainable:
            return []
        return [w for layer in self.layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

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

    def astype(self, dtype) -> Model:
        """Convert every weight to ``dtype`` (float64 for gradient checks); returns the model."""
        self.dtype = np.dtype(dtype)
        for layer in self.layers:
            layer.astype(self.dtype)
        self._updated_weights = None
        return self

    # ------------------------------------------------------------------ config and files
    def get_config(self) -> dict:
        self._require_built("get_config")
        config = {
            "name": self.name,
            "dtype": self.dtype.name,
            "input_shape": list(self._input_shape),
            "trainable": self.trainable,
            "layers": [{"class_name": type(l).__name__, "config": l.get_config()} for l in self.layers],
        }
        if type(self) is Model:
            config["nodes"] = [
                {"layer": n.layer.name, "inputs": list(n.inputs), "output": n.output} for n in self._nodes
            ]
        return config

    @classmethod
    def from_config(cls, config: dict) -> Model:
        from .layers import layer_class

        layers = [layer_class(spec["class_name"]).from_config(spec["config"]) for spec in config["layers"]]
        dtype = config.get("dtype", "float32")
        if cls is not Model:
            model = cls(layers, name=config["name"], dtype=dtype)
            if not model.built:
                model.build(config["input_shape"])
            model._trainable_flag = config.get("trainable", True)
            return model
        model = cls.__new__(cls)
        model._init_state(config["name"], dtype)
        by_name = {layer.name: layer for layer in layers}
        model._input_layer = layers[0]
        nodes = [Node(by_name[n["layer"]], n["inputs"], n["output"]) for n in config["nodes"]]
        model._set_nodes(nodes, config["input_shape"])
        model._trainable_flag = config.get("trainable", True)
        return model

    def to_json(self) -> str:
        """The architecture as Keras's JSON, ``{"class_name", "config"}`` (no weights); the same
        text heads every saved file, and :func:`model_from_json` rebuilds the model from it."""
        return json.dumps({"class_name": type(self).__name__, "config": self.get_config()})

    def summary(self, print_fn=print) -> None:
        """Print Keras's table: layer (type), output shape, parameter count, then the totals."""
        summary_table.summary(self, print_fn)

    def save(self, filepath) -> None:
        """Architecture, weights, optimizer state, compile settings and ``metadata`` in one ``.npz``."""
        saving.save_model(self, filepath)

    def export(self, filepath, format="onnx"):
        """Write the model for inference outside npconv (Keras 3's name): ``format="onnx"``."""
        from . import export

        return export.export(self, filepath, format=format)

    def save_weights(self, filepath) -> None:
        saving.save_weights(self, filepath)

    def load_weights(self, filepath) -> None:
        saving.load_weights(self, filepath)

    def _build_from_data(self, input_shape) -> None:
        """A model without an input shape yet builds from the first data it sees (``Sequential``)."""

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
        self._entry = None  # the InputLayer given first, else one made at build (not in ``layers``)
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
            self._pending_shape = layer._declared_input_shape
            self._entry = layer
        elif not isinstance(layer, Layer):
            raise TypeError(expected("layer", "an npconv layer such as layers.Dense(4)", type(layer).__name__))
        else:
            if layer.multi_input:
                raise TypeError(
                    f"Sequential.add: {type(layer).__name__} merges several tensors; "
                    "use the functional API (npconv.Input and npconv.Model)."
                )
            if not self._layers and layer._declared_input_shape is not None:
                self._pending_shape = layer._declared_input_shape
            self._layers.append(layer)
        if self._pending_shape is not None and self._layers:
            self.build(self._pending_shape)

    def build(self, input_shape) -> None:
        """Build every layer for inputs of ``input_shape`` (no batch axis, e.g. ``(64, 64, 3)``)."""
        shape = tuple(input_shape)
        if len(shape) and shape[0] is None:
            shape = shape[1:]
        shape = tuple(int(s) for s in shape)
        if self._entry is not None and self._entry._declared_input_shape != shape:
            self._entry = None
        self._set_nodes([Node(layer, [k], k + 1) for k, layer in enumerate(self._layers)], shape)

    def _build_from_data(self, input_shape) -> None:
        if self._layers:
            self.build(input_shape)

    def _entry_layer(self) -> InputLayer:
        """Keras's hidden input layer of a ``Sequential``, ``<first layer>_input``."""
        if self._entry is None:
            self._entry = InputLayer(shape=self._input_shape, name=f"{self._layers[0].name}_input")
        return self._entry

    def pop(self) -> Layer:
        layer = self._layers.pop()
        if self.built and self._layers:
            self.build(self._input_shape)
        return layer


_MODEL_CLASSES = {"Sequential": Sequential, "Model": Model}


def model_from_json(text: str) -> Model:
    """The model :meth:`Model.to_json` describes, with freshly initialised weights."""
    spec = json.loads(text)
    return _from_spec(spec)


def _from_spec(spec: dict) -> Model:
    if spec.get("class_name") not in _MODEL_CLASSES:
        raise ValueError(expected("class_name", " or ".join(map(repr, _MODEL_CLASSES)), spec.get("class_name")))
    return _MODEL_CLASSES[spec["class_name"]].from_config(spec["config"])


def load_model(path, compile=True) -> Model:
    """Rebuild the model saved at ``path``: same predictions, and ``fit`` resumes where it stopped.

    ``path`` may also be the file's bytes (:func:`npconv.saving.model_bytes`). Building the layers
    does not consume the package random stream, so a seeded run that saves and reloads goes on
    exactly like one that did not.
    """
    from . import utils

    config, arrays = saving.read_model_file(path)
    if isinstance(path, (bytes, bytearray, memoryview)):
        path = "the model's bytes"
    rng = utils.global_rng()
    state = rng.bit_generator.state
    try:
        model = _from_spec(config["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: the model description is damaged ({type(exc).__name__}: {exc}). Save the model again."
        ) from None
    finally:
        rng.bit_generator.state = state
    saving.restore(model, config, arrays, path, compile)
    return model
