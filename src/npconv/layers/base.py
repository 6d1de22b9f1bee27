"""The layer contract: ``build``, ``forward`` (keeps a cache), ``backward`` (fills ``.grad``), configs.

A layer is called three ways:

* ``layer(tensor)`` on a symbolic :class:`KerasTensor` (functional API) - builds it, returns a tensor;
* ``layer(x)`` on an array - an inference forward pass (``training=False``, no cache kept);
* by a model: ``forward(x, training)`` then ``backward(dout, need_dx)``.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import ShapeError, expected

_REGISTRY: dict[str, type] = {}


def registered_layers() -> dict[str, type]:
    """Layer classes by class name (what ``load_model`` may rebuild)."""
    return dict(_REGISTRY)


def layer_class(name: str) -> type:
    """The registered layer class called ``name``; unknown names list the known ones."""
    if name not in _REGISTRY:
        raise ValueError(
            expected(
                "layer class",
                "one of " + ", ".join(sorted(_REGISTRY)),
                repr(name),
                "The file was written by another program or a newer npconv.",
            )
        )
    return _REGISTRY[name]


def snake_case(name: str) -> str:
    """Keras's default layer names: ``Conv2D -> conv2d``, ``MaxPooling2D -> max_pooling2d``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


class Weight:
    """A parameter: ``value`` (ndarray, updated in place), ``grad`` (same shape, or None), ``trainable``."""

    __slots__ = ("name", "value", "grad", "trainable")

    def __init__(self, name: str, value: np.ndarray, trainable: bool = True):
        self.name = name
        self.value = value
        self.grad = None
        self.trainable = trainable

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    def __repr__(self) -> str:
        return f"Weight({self.name!r}, shape={self.value.shape}, trainable={self.trainable})"


class KerasTensor:
    """A symbolic batch: shape ``(None, ...)``, the layer that made it and that layer's input tensors."""

    def __init__(self, shape, layer=None, inputs=()):
        self.shape = (None,) + tuple(int(s) for s in shape)
        self.layer = layer
        self.inputs = tuple(inputs)

    def __repr__(self) -> str:
        made_by = self.layer.name if self.layer is not None else "?"
        return f"<KerasTensor shape={self.shape} from {made_by!r}>"


class Layer:
    """Base class: subclasses set ``_config_keys`` and implement ``_build``, ``forward``, ``backward``.

    Parameters
    ----------
    name : str, optional
        Unique within a model; models give unnamed layers Keras's names ``conv2d``, ``conv2d_1``, ...
    input_shape : tuple, optional
        The input shape without the batch axis, on the first layer of a ``Sequential``.
    """

    _config_keys: tuple[str, ...] = ()
    #: True for layers that take a list of tensors (``Add``, ``Concatenate``).
    multi_input = False
    #: False for layers with no backward pass (augmentation): a model refuses them after a layer
    #: with weights, which would need a gradient through them.
    passes_gradient = True
    #: True for layers whose ``backward`` takes ``dx_plus`` and returns ``dx_plus + dx`` (the
    #: engine then gives them the input's gradient from its other readers instead of adding it).
    adds_to_dx = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _REGISTRY[cls.__name__] = cls

    def __init__(self, name: str | None = None, input_shape=None, trainable: bool = True, dtype=None):
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(expected("name", "a non-empty string without '/'", name))
        self._given_name = name
        self.name = name or snake_case(type(self).__name__)
        # ``input_shape=`` as given (no batch axis); ``input_shape`` the property says what Keras says.
        self._declared_input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self._inbound = None  # (input tensors, output tensor) of the call that connected the layer
        self.trainable = trainable
        self.dtype = np.dtype(dtype or np.float32)
        self.weights: list[Weight] = []
        self.built = False
        self.built_input_shape = None
        self._cache = None

    # --- building ----------------------------------------------------------------------------
    def build(self, input_shape) -> None:
        """Create the weights for inputs of ``input_shape`` (no batch axis); checks the shape fits."""
        self._output_shape(input_shape)  # raises a named error if the input does not fit
        if not self.built:
            self._build(input_shape)
        self.built = True
        self.built_input_shape = input_shape

    def _build(self, input_shape) -> None:
        """Create weights; parameter-free layers need nothing."""

    def add_weight(self, name: str, shape, initializer, trainable: bool = True) -> Weight:
        from .. import initializers, utils

        init = initializers.get(initializer)
        value = np.asarray(init(tuple(shape), self.dtype, utils.global_rng()), dtype=self.dtype)
        weight = Weight(name, value, trainable)
        self.weights.append(weight)
        return weight

    def compute_output_shape(self, input_shape):
        """The output shape for ``input_shape``; with the batch axis (``(None, 64, 64, 3)``, as in
        Keras) when the input has it, else without (``(64, 64, 3)``)."""
        batched = self._batched(input_shape)
        if not batched:
            return tuple(self._output_shape(input_shape))
        shape = [tuple(s)[1:] for s in input_shape] if self.multi_input else tuple(input_shape)[1:]
        return (None,) + tuple(self._output_shape(shape))

    def _batched(self, input_shape) -> bool:
        first = input_shape[0] if self.multi_input and len(input_shape) else input_shape
        return len(first) > 0 and first[0] is None

    def _output_shape(self, input_shape):
        """The output shape without the batch axis (shape-preserving layers keep it)."""
        return tuple(input_shape)

    def astype(self, dtype) -> None:
        """Convert the weights to ``dtype`` (float64 for gradient checks)."""
        self.dtype = np.dtype(dtype)
        for w in self.weights:
            w.value = w.value.astype(self.dtype)
            w.grad = None

    # --- running -----------------------------------------------------------------------------
    def forward(self, x, training: bool = False):
        raise NotImplementedError

    def backward(self, dout, need_dx: bool = True):
        raise NotImplementedError

    def _take_cache(self):
        """The forward cache, released so that memory is freed as soon as backward has run."""
        cache, self._cache = self._cache, None
        if cache is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without a training forward pass")
        return cache

    def __call__(self, inputs, training: bool = False):
        tensors = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        if tensors and all(isinstance(t, KerasTensor) for t in tensors):
            return self._call_symbolic(inputs)
        x = inputs if self.multi_input else np.asarray(inputs)
        if not self.built:
            shapes = [np.shape(t)[1:] for t in x] if self.multi_input else x.shape[1:]
            self.build(shapes)
        out = self.forward(x, training=training)
        self._cache = None
        return out

    def _call_symbolic(self, inputs):
        if self.multi_input != isinstance(inputs, (list, tuple)):
            what = "a list of tensors" if self.multi_input else "one tensor"
            raise TypeError(expected(f"{self.name} input", what, type(inputs).__name__))
        tensors = list(inputs) if self.multi_input else [inputs]
        shapes = [t.shape[1:] for t in tensors]
        shape = shapes if self.multi_input else shapes[0]
        self.build(shape)
        out = KerasTensor(self._output_shape(shape), self, tensors)
        if self._inbound is None:  # Keras's layer.input/output: the first call's tensors
            self._inbound = (tuple(tensors), out)
        return out

    # --- Keras's connection attributes ----------------------------------------------------------
    def _connection(self, what):
        if self._inbound is None:
            raise AttributeError(
                f"layer {self.name!r} is not connected, so it has no {what}: call it "
                "on a tensor from npconv.Input(...) or put it in a model first."
            )
        return self._inbound

    @property
    def input(self):
        """The tensor (a list for a merge layer) this layer was first called on in a graph."""
        tensors = self._connection("input")[0]
        return list(tensors) if self.multi_input else tensors[0]

    @property
    def output(self):
        """The tensor this layer made when first called in a graph; new layers can be called on it."""
        return self._connection("output")[1]

    @property
    def input_shape(self):
        """Keras's input shape, batch axis included: ``(None, 64, 64, 3)`` (a list for merges)."""
        if self._inbound is not None:
            shapes = [t.shape for t in self._inbound[0]]
            return shapes if self.multi_input else shapes[0]
        if self.built:
            shapes = self.built_input_shape
            return [(None,) + tuple(s) for s in shapes] if self.multi_input else (None,) + tuple(shapes)
        if self._declared_input_shape is not None:
            return (None,) + self._declared_input_shape
        raise AttributeError(f"layer {self.name!r} has never been called and thus has no defined input shape.")

    @property
    def output_shape(self):
        """Keras's output shape, batch axis included: ``(None, 64, 64, 32)``."""
        if self._inbound is not None:
            return self._inbound[1].shape
        if self.built:
            return (None,) + tuple(self._output_shape(self.built_input_shape))
        raise AttributeError(f"layer {self.name!r} has never been called and thus has no defined output shape.")

    # --- bookkeeping -------------------------------------------------------------------------
    @property
    def trainable_weights(self) -> list[Weight]:
        """The weights the optimizer updates: none when the layer is frozen (``trainable=False``)."""
        return [w for w in self.weights if w.trainable] if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[Weight]:
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def count_params(self) -> int:
        return int(sum(w.value.size for w in self.weights))

    def get_weights(self) -> list[np.ndarray]:
        return [w.value.copy() for w in self.weights]

    def set_weights(self, values) -> None:
        values = list(values)
        if len(values) != len(self.weights):
            raise ValueError(
                expected(f"weights of layer {self.name!r}", f"{len(self.weights)} arrays", f"{len(values)}")
            )
        for w, v in zip(self.weights, values):
            v = np.asarray(v)
            if v.shape != w.value.shape:
                raise ShapeError(expected(f"weight {self.name}/{w.name}", f"shape {w.value.shape}", f"shape {v.shape}"))
            w.value[...] = v

    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self.trainable}
        if self._declared_input_shape is not None:
            config["input_shape"] = list(self._declared_input_shape)
        for key in self._config_keys:
            value = getattr(self, key)
            config[key] = list(value) if isinstance(value, tuple) else value
        return config

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


def check_input_rank(layer: Layer, input_shape, rank: int, fix: str = "") -> tuple[int, ...]:
    """Refuse an input shape (no batch axis) of the wrong rank, naming the layer."""
    shape = tuple(input_shape)
    if len(shape) != rank:
        want = "(None, n_H, n_W, n_C)" if rank == 3 else f"a {rank + 1}-D input (batch axis included)"
        raise ShapeError(
            expected(f"input of layer {layer.name!r} ({type(layer).__name__})", want, f"shape {(None,) + shape}", fix)
        )
    return shape
