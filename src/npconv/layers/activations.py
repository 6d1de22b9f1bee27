"""The activation registry: ``get("relu" | "sigmoid" | "softmax" | "tanh" | "linear" | None)``.

An activation is a named pair of kernels from :mod:`npconv.functional`; layers that take
``activation=`` apply it after their affine step and keep its cache for backward.
"""

from __future__ import annotations

from .. import functional as F
from ..errors import expected


class Activation:
    """``name`` plus ``forward(x) -> (out, cache)`` and ``backward(dout, cache) -> dx``.

    Called like Keras's activation functions, ``relu(x)``, and named like them: ``__name__`` is
    ``"relu"``, so ``layer.activation.__name__`` reads as it does in Keras.
    """

    def __init__(self, name: str, forward, backward):
        self.name = self.__name__ = name
        self.forward = forward
        self.backward = backward

    def __call__(self, x):
        return self.forward(x)[0]

    def __repr__(self) -> str:
        return f"<function {self.name}>"


_ACTIVATIONS = {
    name: Activation(name, getattr(F, f"{name}_forward"), getattr(F, f"{name}_backward"))
    for name in ("relu", "sigmoid", "softmax", "tanh", "linear")
}


relu = _ACTIVATIONS["relu"]
sigmoid = _ACTIVATIONS["sigmoid"]
softmax = _ACTIVATIONS["softmax"]
tanh = _ACTIVATIONS["tanh"]
linear = _ACTIVATIONS["linear"]


def get(identifier) -> Activation:
    """An :class:`Activation` from a Keras name (case insensitive), ``None`` (linear) or an instance."""
    if identifier is None:
        return _ACTIVATIONS["linear"]
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _ACTIVATIONS:
        return _ACTIVATIONS[identifier.lower()]
    valid = ", ".join(repr(n) for n in sorted(_ACTIVATIONS))
    raise ValueError(expected("activation", f"one of {valid} or None", identifier))
