"""Core layers: ``InputLayer``, ``Dense``, ``Activation``, ``ReLU``, ``Flatten``, ``Dropout``."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..errors import ShapeError, check_positive_int, expected
from . import activations
from .base import Layer


class InputLayer(Layer):
    """The model's entry point: passes its input through. ``shape`` excludes the batch axis."""

    def __init__(self, shape=None, input_shape=None, **kwargs):
        shape = input_shape if shape is None else shape
        if shape is None:
            raise ValueError(expected("shape", "the input shape without the batch axis, e.g. (64, 64, 3)", "None"))
        if isinstance(shape, (int, np.integer)):
            shape = (shape,)
        shape = tuple(shape)
        for s in shape:
            if s is None or isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s <= 0:
                raise ValueError(
                    expected(
                        "shape",
                        "positive integers without the batch axis, e.g. (64, 64, 3)",
                        repr(shape),
                        "Leave the batch size out: Input(shape=(64, 64, 3)).",
                    )
                )
        super().__init__(input_shape=shape, **kwargs)
        self.built = True
        self.built_input_shape = self._declared_input_shape

    def _tensor(self):
        """The symbolic batch this layer stands for (made once: ``Input``, or a model without one)."""
        from .base import KerasTensor

        if self._inbound is None:
            tensor = KerasTensor(self._declared_input_shape, self)
            self._inbound = ((), tensor)
        return self._inbound[1]

    @property
    def input(self):
        return self._tensor()

    @property
    def output(self):
        return self._tensor()

    @property
    def input_shape(self):
        """``[(None, 64, 64, 3)]``: Keras 2 lists an input layer's shape."""
        return [(None,) + self._declared_input_shape]

    output_shape = input_shape

    def forward(self, x, training=False):
        return x

    def backward(self, dout, need_dx=True):
        return dout

    def get_config(self):
        config = super().get_config()
        config["shape"] = config.pop("input_shape")
        return config


class _Activated(Layer):
    """A layer ending in an optional activation, which a model may skip to fuse it with the loss.

    With ``logits=True`` ``forward`` returns the pre-activation ``z`` and ``backward`` takes
    ``dL/dz``: the loss computes softmax/sigmoid and its gradient together, more stably.
    """

    def _activate(self, z, logits):
        if logits or self.activation.name == "linear":
            return z, None
        return self.activation.forward(z)

    def _deactivate(self, dout, act_cache, logits):
        if logits or self.activation.name == "linear":
            return dout
        return self.activation.backward(dout, act_cache)

    def get_config(self):
        config = super().get_config()
        config["activation"] = self.activation.name
        return config


class _Affine(_Activated):
    """A layer of a kernel and a bias (``Dense``, ``Conv2D``): ``activation(op(x, W) + b)``.

    Subclasses name their functional kernel pair; the bias, activation and gradients are handled here.
    The initialisers are objects of Keras's classes (``GlorotUniform()``), saved as Keras serialises them.
    """

    def _set_initializers(self, kernel_initializer, bias_initializer):
        from .. import initializers

        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def get_config(self):
        from .. import initializers

        config = super().get_config()
        for key in ("kernel_initializer", "bias_initializer"):
            config[key] = initializers.serialize(getattr(self, key))
        return config

    def _affine_forward(self, kernel_forward, x, logits, **hyper):
        b = self.bias.value if self.use_bias else None
        z, cache = kernel_forward(x, self.kernel.value, b, **hyper)
        out, act_cache = self._activate(z, logits)
        self._cache = (cache, act_cache, logits)
        return out

    def _affine_backward(self, kernel_backward, dout, need_dx, **hyper):
        cache, act_cache, logits = self._take_cache()
        dx, dw, db = kernel_backward(self._deactivate(dout, act_cache, logits), cache, need_dx=need_dx, **hyper)
        self.kernel.grad = dw
        if self.use_bias:
            self.bias.grad = db
        return dx


class Dense(_Affine):
    """Fully connected: ``out = activation(x @ W + b)``; ``x (m, n_in)``, ``W (n_in, units)``, ``b (units,)``."""

    _config_keys = ("units", "use_bias", "kernel_initializer", "bias_initializer")

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int(units, "units")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self._set_initializers(kernel_initializer, bias_initializer)

    def _output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != 1:
            raise ShapeError(
                expected(
                    f"input of layer {self.name!r} (Dense)",
                    "a 2-D input (None, n_features)",
                    f"shape {(None,) + shape}",
                    "Add a Flatten() layer before Dense to turn feature maps into vectors.",
                )
            )
        if self.built and self.kernel.shape[0] != shape[0]:
            raise ShapeError(
                expected(f"input of layer {self.name!r}", f"{self.kernel.shape[0]} features", f"{shape[0]}")
            )
        return (self.units,)

    def _build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[0], self.units), self.kernel_initializer)
        self.bias = self.add_weight("bias", (self.units,), self.bias_initializer) if self.use_bias else None

    def forward(self, x, training=False, logits=False):
        return self._affine_forward(F.dense_forward, x, logits)

    def backward(self, dout, need_dx=True):
        return self._affine_backward(F.dense_backward, dout, need_dx)


class Activation(_Activated):
    """Applies a named activation: ``Activation("softmax")``."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x, training=False, logits=False):
        out, cache = self._activate(x, logits)
        self._cache = (cache, logits)
        return out

    def backward(self, dout, need_dx=True):
        cache, logits = self._take_cache()
        return self._deactivate(dout, cache, logits)


class ReLU(Layer):
    """``out = max(x, 0)``."""

    def forward(self, x, training=False):
        out, self._cache = F.relu_forward(x)
        return out

    def backward(self, dout, need_dx=True):
        return F.relu_backward(dout, self._take_cache())


class Flatten(Layer):
    """``(m, n_H, n_W, n_C) -> (m, n_H * n_W * n_C)`` in row-major (NHWC) order, like Keras."""

    def _output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=False):
        out, self._cache = F.flatten_forward(x)
        return out

    def backward(self, dout, need_dx=True):
        return F.flatten_backward(dout, self._take_cache())


class Dropout(Layer):
    """Inverted dropout while training (kept units scaled by ``1/(1-rate)``); identity at inference.

    Draws from ``npconv.utils.global_rng()`` unless given its own ``seed``.
    """

    _config_keys = ("rate", "seed")

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(expected("rate", "a fraction in [0, 1)", rate))
        self.rate = float(rate)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def forward(self, x, training=False):
        from .. import utils

        rng = self._rng if self._rng is not None else utils.global_rng()
        out, self._cache = F.dropout_forward(x, self.rate, rng, training=training)
        return out

    def backward(self, dout, need_dx=True):
        return F.dropout_backward(dout, self._take_cache())
