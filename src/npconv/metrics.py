"""Classification metrics: accuracy (binary, categorical, sparse), confusion matrix, precision/recall.

Predictions are probabilities, as a model's ``predict`` returns them: ``(m,)`` or ``(m, 1)`` for a
sigmoid output, ``(m, K)`` for a softmax output.
"""

from __future__ import annotations

import numpy as np

from . import utils
from .errors import ShapeError, check_positive_int, expected

__all__ = [
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "confusion_matrix",
    "precision_recall",
    "get",
]


def _is_binary(y_pred: np.ndarray) -> bool:
    return y_pred.ndim == 1 or (y_pred.ndim == 2 and y_pred.shape[1] == 1)


def _check_rows(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    if y_true.shape[:1] != y_pred.shape[:1]:
        raise ShapeError(
            expected(
                "y_true",
                f"{y_pred.shape[0] if y_pred.ndim else 0} examples (one per row of y_pred)",
                y_true,
                "Pass labels and predictions for the same examples.",
            )
        )


def binary_accuracy(y_true, y_pred, threshold: float = 0.5) -> float:
    """``mean(y_true == (y_pred > threshold))``; ``y_true`` and ``y_pred`` of shape ``(m,)`` or ``(m, 1)``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    _check_rows(y_true, y_pred)
    return float(np.mean(y_true.reshape(len(y_true)) == (y_pred.reshape(len(y_pred)) > threshold)))


def categorical_accuracy(y_true, y_pred) -> float:
    """``mean(argmax(y_true) == argmax(y_pred))``; one-hot ``y_true (m, K)``, ``y_pred (m, K)``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ShapeError(
            expected(
                "y_true",
                f"one-hot rows of shape {y_pred.shape} like y_pred",
                y_true,
                "For integer labels use sparse_categorical_accuracy.",
            )
        )
    return float(np.mean(y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)))


def sparse_categorical_accuracy(y_true, y_pred) -> float:
    """``mean(y_true == argmax(y_pred))``; integer ``y_true (m,)`` or ``(m, 1)``, ``y_pred (m, K)``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    _check_rows(y_true, y_pred)
    return float(np.mean(y_true.reshape(len(y_true)) == y_pred.argmax(axis=-1)))


def accuracy(y_true, y_pred) -> float:
    """Fraction of correct predictions, the kind picked from the shapes.

    * ``y_pred (m,)`` or ``(m, 1)``: binary, a probability above 0.5 predicts 1;
    * ``y_pred (m, K)``, ``y_true (m, K)``: one-hot labels, compared by argmax;
    * ``y_pred (m, K)``, ``y_true (m,)`` or ``(m, 1)``: integer labels against the argmax.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_pred.ndim == 0 or y_pred.ndim > 2:
        raise ShapeError(expected("y_pred", "probabilities of shape (m,), (m, 1) or (m, K)", y_pred))
    if _is_binary(y_pred):
        return binary_accuracy(y_true, y_pred)
    if y_true.shape == y_pred.shape:
        return categorical_accuracy(y_true, y_pred)
    return sparse_categorical_accuracy(y_true, y_pred)


def _as_labels(y, name: str) -> np.ndarray:
    """Integer labels ``(m,)`` from labels, one-hot rows / class probabilities ``(m, K)`` (argmax),
    or sigmoid probabilities ``(m,)``/``(m, 1)`` that are not whole numbers (threshold 0.5)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    if y.ndim > 2:
        raise ShapeError(expected(name, "labels (m,) or probabilities (m, K)", y))
    y = y.reshape(len(y)) if y.ndim else y.reshape(1)
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        return (y > 0.5).astype(np.int64)
    if y.dtype.kind not in "iufb":
        raise TypeError(expected(name, "numeric class labels", y))
    return y.astype(np.int64)


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``cm[i, j]`` = number of examples of true class ``i`` predicted as class ``j``; int64 ``(n, n)``.

    Either argument may be integer labels ``(m,)``, one-hot rows or class probabilities ``(m, K)``
    (argmax taken), or binary probabilities ``(m,)``/``(m, 1)`` (thresholded at 0.5).
    Computed with one ``np.bincount`` over ``i * n + j``.
    """
    n = check_positive_int(n_classes, "n_classes")
    true, pred = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    _check_rows(true, pred)
    for name, labels in (("y_true", true), ("y_pred", pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= n):
            raise ValueError(
                expected(
                    name, f"labels in 0..{n - 1}", f"values from {labels.min()} to {labels.max()}", "Check n_classes."
                )
            )
    return np.bincount(true * n + pred, minlength=n * n).reshape(n, n)


def precision_recall(cm) -> tuple[np.ndarray, np.ndarray]:
    """Per-class ``precision[c] = cm[c, c] / cm[:, c].sum()`` and ``recall[c] = cm[c, c] / cm[c, :].sum()``.

    A class never predicted (or never present) gets precision (or recall) 0.0, as scikit-learn's
    ``zero_division=0``.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ShapeError(expected("cm", "a square (n_classes, n_classes) matrix", cm))
    hits = np.diag(cm).astype(np.float64)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
    return precision, recall


_REGISTRY = {
    "accuracy": accuracy,
    "acc": accuracy,
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
}


def get(identifier):
    """A metric function from its Keras name (``"accuracy"``/``"acc"``, ``"binary_accuracy"``,
    ``"categorical_accuracy"``, ``"sparse_categorical_accuracy"``, any case) or a callable
    ``metric(y_true, y_pred) -> float`` (returned as is)."""
    if callable(identifier):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(expected("metric", "a metric name or a function (y_true, y_pred) -> float", identifier))
    return utils.lookup(identifier, _REGISTRY, "metric")
