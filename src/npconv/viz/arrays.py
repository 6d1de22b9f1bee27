"""Images and labels as the pictures read them: any image layout and scale, any label encoding."""

from __future__ import annotations

import math

import numpy as np

from .. import metrics
from ..errors import ShapeError, expected


def _display_image(image) -> tuple[np.ndarray, str | None]:
    """An image ready for ``imshow`` and its colour map (``"gray"`` for one channel, else None).

    Accepts (n_H, n_W), (n_H, n_W, 1) or (n_H, n_W, 3); uint8, or floats in [0, 1] or [0, 255].
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (3, 4)):
        raise ShapeError(expected("images", "images of shape (n_H, n_W), (n_H, n_W, 1) or (n_H, n_W, 3)", image))
    if image.dtype != np.uint8:
        image = image.astype(np.float32)
        # Floats above 1 are taken as 0-255 data (the course's X_train before / 255).
        if image.size and np.nanmax(image) > 1.0:
            image = image / 255.0
        image = np.clip(image, 0.0, 1.0)
    return image, ("gray" if image.ndim == 2 else None)


def _show(ax, image) -> None:
    image, cmap = _display_image(image)
    if cmap is None:
        ax.imshow(image)
    else:
        vmax = 255 if image.dtype == np.uint8 else 1.0
        ax.imshow(image, cmap=cmap, vmin=0, vmax=vmax)


def _as_labels(y, name: str) -> np.ndarray:
    """Integer labels from labels ``(m,)``/``(1, m)``/``(m, 1)``, one-hot or probabilities ``(m, C)``."""
    y = np.asarray(y)
    if y.ndim == 2 and min(y.shape) > 1:
        return np.argmax(y, axis=1)
    y = y.reshape(-1)
    if y.dtype.kind == "f":
        if np.all(np.mod(y, 1) == 0):
            return y.astype(np.int64)
        raise ValueError(
            expected(
                name,
                "integer class labels (or one-hot rows)",
                y,
                "Round sigmoid outputs first, e.g. (p > 0.5).astype(int).",
            )
        )
    return y.astype(np.int64)


def spread_over_classes(labels, n: int) -> np.ndarray:
    """Indices of ``min(n, m)`` examples taken from each class in turn (classes in order of first
    appearance, examples evenly spaced within a class), so data sorted by class still shows them all.
    A class that runs out leaves its turns to the others: with unbalanced classes every slot is
    still filled."""
    labels = _as_labels(labels, "labels")
    classes, first = np.unique(labels, return_index=True)
    groups = [np.flatnonzero(labels == c) for c in classes[np.argsort(first)]]
    counts = [0] * len(groups)
    for _ in range(min(n, len(labels))):  # one slot at a time, to the next class with examples left
        k = min((c for c in range(len(groups)) if counts[c] < len(groups[c])), key=lambda c: counts[c])
        counts[k] += 1
    picks = [g[np.linspace(0, len(g) - 1, c).round().astype(int)] for g, c in zip(groups, counts)]
    return np.array([p[k] for k in range(max(counts, default=0)) for p in picks if k < len(p)], dtype=np.int64)


def _columns(count: int, ncols: int) -> int:
    """Columns for ``count`` images in rows of at most ``ncols``, as few empty cells as the rows allow
    (13 images in rows of 8: 2 rows of 7, one cell empty, not 8 + 5 with three)."""
    return math.ceil(count / math.ceil(count / ncols))


def _name(label: int, class_names) -> str:
    if class_names is not None and 0 <= label < len(class_names):
        return str(class_names[label])
    return str(label)


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts ``cm[t, p]`` of examples of true class ``t`` predicted as ``p``.

    Parameters
    ----------
    y_true, y_pred : int arrays (m,) (or one-hot/probability rows (m, n_classes)), read as the plots
        read labels; the counting is :func:`npconv.metrics.confusion_matrix`'s.
    n_classes : int

    Returns
    -------
    cm : int64 ndarray, shape (n_classes, n_classes); rows are true classes, columns predictions.
    """
    return metrics.confusion_matrix(_as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred"), n_classes)
