"""The output head and loss every npconv app uses, chosen by the number of classes.

Two classes get one sigmoid unit and ``binary_crossentropy`` (as the course's Happy model: the
output is P(class 1)); more get a softmax over ``n_classes`` and
``sparse_categorical_crossentropy`` (integer labels, no one-hot copy of the data).
"""

from __future__ import annotations

import numpy as np

from .. import layers as L
from ..errors import expected


def check_n_classes(n_classes) -> int:
    """``n_classes`` as an int >= 2, else a ``ValueError`` naming it."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(
            expected("n_classes", "an integer >= 2", n_classes, "A classifier needs at least two classes.")
        )
    return int(n_classes)


def output_layer(n_classes: int, name: str = "predictions") -> L.Dense:
    """``Dense(1, sigmoid)`` for 2 classes, ``Dense(n_classes, softmax)`` otherwise."""
    n_classes = check_n_classes(n_classes)
    if n_classes == 2:
        return L.Dense(1, activation="sigmoid", name=name)
    return L.Dense(n_classes, activation="softmax", name=name)


def loss_for(n_classes: int) -> str:
    """The loss matching :func:`output_layer`."""
    return "binary_crossentropy" if check_n_classes(n_classes) == 2 else "sparse_categorical_crossentropy"


def probabilities(outputs: np.ndarray) -> np.ndarray:
    """Model outputs as ``(m, n_classes)`` class probabilities (a sigmoid column ``p`` becomes ``[1-p, p]``)."""
    outputs = np.asarray(outputs)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        return np.concatenate([1.0 - outputs, outputs], axis=1)
    return outputs
