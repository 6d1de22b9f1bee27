"""Cross-entropy losses with Keras's names and semantics, fused with their output activation.

Every loss is a mean over the batch and comes in three forms:

* ``loss(y_true, y_pred) -> float`` on probabilities, exactly as Keras computes it: predictions
  clipped to ``[1e-7, 1 - 1e-7]`` so a confident mistake costs ``-log(1e-7) ~ 16`` instead of inf;
* ``loss.grad(y_true, y_pred)``: the gradient of that value with respect to ``y_pred``;
* ``loss.from_logits_and_grad(y_true, logits) -> (value, dlogits)``: the loss of
  ``activation(logits)`` and its gradient with respect to the logits, computed without ever taking
  the log of a rounded probability. ``dlogits = (p - y) / m`` for both pairs below.

===================================  ==========  ================================================
loss                                 activation  labels ``y_true``
===================================  ==========  ================================================
``binary_crossentropy``              sigmoid     ``(m,)`` or ``(m, 1)`` (or ``(m, k)``) in [0, 1]
``categorical_crossentropy``         softmax     one-hot ``(m, n_classes)``
``sparse_categorical_crossentropy``  softmax     integers ``(m,)`` or ``(m, 1)`` in [0, n_classes)
===================================  ==========  ================================================

A model whose last layer applies ``loss.activation`` calls :meth:`Loss.from_logits_and_grad` with
that layer's input. ``from_logits=True`` (as Keras) makes ``__call__`` and ``grad`` read ``y_pred``
as logits too.

``label_smoothing=s`` (Keras's rule) trains towards ``y * (1 - s) + s / K`` instead of ``y``, with
``K = 2`` for binary labels (``0 -> s/2``, ``1 -> 1 - s/2``) and ``K = n_classes`` otherwise; the
fused gradient stays ``(p - y_smooth) / m``. Keras 3 has no smoothing for the sparse loss; here
it smooths the one-hot row of each integer label, as ``torch.nn.functional.cross_entropy(...,
label_smoothing=s)`` does, so sparse and categorical labels train alike.
"""

from __future__ import annotations

import numpy as np

from . import utils
from .errors import ShapeError, check_finite, check_float_array, expected
from .functional.activations import sigmoid_forward

__all__ = [
    "Loss",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "get",
    "serialize",
    "EPSILON",
]

EPSILON = 1e-7  # Keras's backend.epsilon()


def _as_labels(y_true, y_pred: np.ndarray) -> np.ndarray:
    """``y_true`` as a finite numeric array with one row per example of ``y_pred``."""
    y_true = np.asarray(y_true)
    if y_true.dtype.kind not in "biuf":
        raise TypeError(expected("y_true", "numeric labels", y_true))
    if y_true.dtype.kind == "f":
        check_finite(y_true, "y_true")
    if y_true.ndim == 0 or y_true.shape[0] != y_pred.shape[0]:
        raise ShapeError(
            expected(
                "y_true",
                f"{y_pred.shape[0]} rows, one per example of y_pred {y_pred.shape}",
                y_true,
                "Pass the labels of the same batch as the predictions.",
            )
        )
    return y_true


def _check_unit_interval(y_true: np.ndarray, what: str) -> None:
    outside = (y_true < 0) | (y_true > 1)
    if np.any(outside):
        index = tuple(int(i) for i in np.argwhere(outside)[0])
        raise ValueError(
            expected(
                "y_true",
                f"{what} in [0, 1]",
                f"{y_true[index].item()!r} at index {index}",
                "Encode the classes as 0/1 (one-hot for categorical labels).",
            )
        )


def _check_probabilities(y_pred: np.ndarray) -> None:
    if y_pred.size and (y_pred.min() < 0 or y_pred.max() > 1):
        raise ValueError(
            expected(
                "y_pred",
                "probabilities in [0, 1]",
                f"values from {y_pred.min():g} to {y_pred.max():g}",
                "For raw scores (logits) use from_logits=True or from_logits_and_grad.",
            )
        )


class Loss(utils.Configurable):
    """Base class: subclasses set ``name`` and ``activation`` and implement the three kernels."""

    name = ""
    activation = ""
    _pred_ndim: tuple[int, ...] = (2,)

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0):
        self.from_logits = bool(from_logits)
        if (
            isinstance(label_smoothing, bool)
            or not isinstance(label_smoothing, (int, float))
            or not 0 <= label_smoothing <= 1
        ):
            raise ValueError(
                expected(
                    "label_smoothing",
                    "a number in [0, 1]",
                    label_smoothing,
                    "Typical values are 0.05 to 0.2; 0 turns smoothing off.",
                )
            )
        self.label_smoothing = float(label_smoothing)

    def __call__(self, y_true, y_pred) -> float:
        """The mean loss over the batch (``y_pred`` are probabilities unless ``from_logits``)."""
        return self._value_and_grad(y_true, y_pred)[0]

    def grad(self, y_true, y_pred) -> np.ndarray:
        """``d loss / d y_pred``, shape and dtype of ``y_pred`` (zero where Keras's clip is active)."""
        return self._value_and_grad(y_true, y_pred)[1]

    def from_logits_and_grad(self, y_true, logits) -> tuple[float, np.ndarray]:
        """``(loss(y_true, activation(logits)), d loss / d logits)``, stable for any logit size."""
        logits = check_float_array(logits, "logits", ndim=self._pred_ndim)
        targets = self._smooth(self._targets(y_true, logits))
        value, dlogits = self._logits_kernel(targets, logits)
        return float(value), dlogits

    def _value_and_grad(self, y_true, y_pred):
        if self.from_logits:
            return self.from_logits_and_grad(y_true, y_pred)
        y_pred = check_float_array(y_pred, "y_pred", ndim=self._pred_ndim)
        _check_probabilities(y_pred)
        targets = self._smooth(self._targets(y_true, y_pred))
        value, grad = self._probability_kernel(targets, y_pred)
        return float(value), grad

    def _targets(self, y_true, y_pred: np.ndarray) -> np.ndarray:
        """Validated labels as float targets shaped like ``y_pred``, in its dtype."""
        raise NotImplementedError

    def _smooth(self, targets: np.ndarray) -> np.ndarray:
        """``targets * (1 - s) + s / K`` (a new array; ``K`` from :meth:`_n_outcomes`)."""
        if not self.label_smoothing:
            return targets
        s = self.label_smoothing
        return targets * (1.0 - s) + s / self._n_outcomes(targets)

    def _n_outcomes(self, targets: np.ndarray) -> int:
        """How many outcomes each target spreads ``label_smoothing`` over."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """``name`` and ``from_logits``, and ``label_smoothing`` when set (configs saved before it
        existed read the same)."""
        smoothing = {"label_smoothing": self.label_smoothing} if self.label_smoothing else {}
        return {"name": self.name, "from_logits": self.from_logits, **smoothing}


class BinaryCrossentropy(Loss):
    """``L = -mean(y log p + (1 - y) log(1 - p))``, ``p = sigmoid(z)``.

    Fused: ``L = mean(max(z, 0) - z y + log(1 + exp(-|z|)))`` (softplus form), ``dz = (p - y) / n``
    with ``n`` the number of predictions (``m`` for one output unit).
    """

    name = "binary_crossentropy"
    activation = "sigmoid"
    _pred_ndim = (1, 2)

    def _targets(self, y_true, y_pred):
        y_true = _as_labels(y_true, y_pred)
        if y_true.shape != y_pred.shape:
            if y_true.size != y_pred.size:
                raise ShapeError(
                    expected(
                        "y_true",
                        f"shape {y_pred.shape} like y_pred",
                        y_true,
                        "Binary labels are one 0/1 value per output unit.",
                    )
                )
            y_true = y_true.reshape(y_pred.shape)  # (m,) against (m, 1) and back
        _check_unit_interval(y_true, "binary labels")
        return y_true.astype(y_pred.dtype, copy=False)

    def _n_outcomes(self, targets):
        return 2  # each unit is its own yes/no question, whatever the number of units

    @staticmethod
    def _probability_kernel(y, p):
        # Keras: clip, then log(p + eps) and log(1 - p + eps).
        kept = (p >= EPSILON) & (p <= 1 - EPSILON)
        pc = np.clip(p, EPSILON, 1 - EPSILON)
        value = -np.mean(y * np.log(pc + EPSILON) + (1 - y) * np.log(1 - pc + EPSILON))
        grad = ((1 - y) / (1 - pc + EPSILON) - y / (pc + EPSILON)) * kept / p.size
        return value, grad.astype(p.dtype, copy=False)

    @staticmethod
    def _logits_kernel(y, z):
        value = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
        dz = sigmoid_forward(z)[0]
        dz -= y
        dz /= z.size
        return value, dz


class CategoricalCrossentropy(Loss):
    """``L = -mean_i sum_c y[i, c] log p[i, c]``, ``p = softmax(z)`` over the classes.

    Fused: ``log p = z - max(z) - log(sum(exp(z - max(z))))`` (log-sum-exp), and
    ``dz = (p * sum_c y - y) / m``, i.e. ``(p - y) / m`` for one-hot rows.
    """

    name = "categorical_crossentropy"
    activation = "softmax"

    def _targets(self, y_true, y_pred):
        y_true = _as_labels(y_true, y_pred)
        n_classes = y_pred.shape[1]
        if y_true.ndim != 2 or y_true.shape[1] != n_classes:
            columns = y_true.shape[1] if y_true.ndim == 2 else 1
            raise ShapeError(
                expected(
                    "y_true",
                    f"one-hot labels of shape {y_pred.shape}",
                    f"labels with {columns} column(s) but the model outputs {n_classes} classes",
                    "Use sparse_categorical_crossentropy for integer labels or one-hot encode them "
                    "with convert_to_one_hot / to_categorical.",
                )
            )
        _check_unit_interval(y_true, "one-hot labels")
        return y_true.astype(y_pred.dtype, copy=False)

    def _n_outcomes(self, targets):
        return targets.shape[-1]

    @staticmethod
    def _probability_kernel(y, p):
        # Keras: rescale each row to sum to 1, clip, then -sum(y log q).
        total = p.sum(axis=-1, keepdims=True)
        if np.any(total <= 0):
            raise ValueError(
                expected(
                    "y_pred",
                    "rows of probabilities with a positive sum",
                    "a row summing to 0",
                    "Apply softmax to the model's output.",
                )
            )
        q = p / total
        kept = (q >= EPSILON) & (q <= 1 - EPSILON)
        qc = np.clip(q, EPSILON, 1 - EPSILON)
        m = p.shape[0]
        value = -np.sum(y * np.log(qc)) / m
        dq = -y / qc * kept / m
        # Through the rescaling q = p / sum(p): dp = (dq - sum(dq * q)) / sum(p).
        grad = (dq - np.sum(dq * q, axis=-1, keepdims=True)) / total
        return value, grad.astype(p.dtype, copy=False)

    @staticmethod
    def _logits_kernel(y, z):
        shifted = z - z.max(axis=-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        m = z.shape[0]
        value = -np.sum(y * log_p) / m
        dz = np.exp(log_p)
        dz *= y.sum(axis=-1, keepdims=True)
        dz -= y
        dz /= m
        return value, dz


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer labels ``(m,)``: ``L = -mean_i log p[i, y[i]]``."""

    name = "sparse_categorical_crossentropy"

    def _targets(self, y_true, y_pred):
        y_true = _as_labels(y_true, y_pred)
        if y_true.ndim == 2 and y_true.shape[1] == 1:
            y_true = y_true[:, 0]
        if y_true.ndim != 1:
            raise ShapeError(
                expected(
                    "y_true",
                    f"integer class labels of shape ({y_pred.shape[0]},)",
                    y_true,
                    "For one-hot labels use categorical_crossentropy, or take y.argmax(axis=1).",
                )
            )
        n_classes = y_pred.shape[1]
        bad = (y_true < 0) | (y_true >= n_classes) | (y_true != np.floor(y_true))
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ValueError(
                expected(
                    "y_true",
                    f"integer class labels in [0, {n_classes})",
                    f"{y_true[i].item()!r} at index {i}",
                    f"The model outputs {n_classes} classes; re-index the labels "
                    "from 0 or give the last layer more units.",
                )
            )
        targets = np.zeros(y_pred.shape, dtype=y_pred.dtype)
        targets[np.arange(len(y_true)), y_true.astype(np.intp)] = 1
        return targets


_REGISTRY = {
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def serialize(loss: Loss) -> dict:
    """``{"class_name": "BinaryCrossentropy", "config": {...}}``, the form :func:`get` reads back."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def get(identifier) -> Loss:
    """A loss from a name (Keras's, any case: ``"binary_crossentropy"``, ``"BinaryCrossentropy"``),
    an instance (returned as is) or a config dict (:meth:`Loss.get_config` or :func:`serialize`)."""
    return utils.deserialize(identifier, _REGISTRY, Loss, "loss")
