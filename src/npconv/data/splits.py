"""Deterministic (stratified) train/validation splits and k-fold indices."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import ShapeError, check_positive_int, expected
from .dataset import Dataset


def _labels(y) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and 1 in y.shape:  # the course's (1, m) rows
        y = y.reshape(-1)
    elif y.ndim == 2:  # one-hot rows
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise ShapeError(expected("y", "labels of shape (m,), (1, m) or one-hot (m, K)", y))
    return y


def _fold_of_each_example(y: np.ndarray, k: int, rng: np.random.Generator, stratify: bool) -> np.ndarray:
    """Assign example i to fold ``fold[i]`` in 0..k-1, balanced over the folds (per class if stratified).

    Within each class (or overall), a random permutation deals examples to folds in turn, so fold
    sizes differ by at most one per class.
    """
    fold = np.empty(y.shape[0], dtype=np.int64)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(y.shape[0])]
    offset = 0
    for members in groups:
        members = rng.permutation(members)
        # Continue dealing where the previous class stopped, so small classes do not all land in fold 0.
        fold[members] = (np.arange(members.size) + offset) % k
        offset += members.size
    return fold


def kfold_indices(y, k: int, seed: int = 0, stratify: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``k`` pairs ``(train_idx, test_idx)``; every example is in exactly one ``test_idx``.

    Indices are sorted int64 arrays; the same ``seed`` gives the same folds.
    """
    y = _labels(y)
    k = check_positive_int(k, "k")
    if k < 2 or k > y.shape[0]:
        raise ValueError(expected("k", f"a number of folds between 2 and {y.shape[0]} (the examples)", k))
    fold = _fold_of_each_example(y, k, np.random.default_rng(seed), stratify)
    for i in range(k):
        yield np.flatnonzero(fold != i), np.flatnonzero(fold == i)


def train_val_split(data, val_fraction: float = 0.2, seed: int = 0, stratify: bool = True):
    """Split a :class:`Dataset` or a pair ``(x, y)`` into train and validation parts.

    Each class keeps (to rounding) its share in both parts when ``stratify``. Returns two
    Datasets, or ``(x_train, y_train), (x_val, y_val)`` for arrays. Deterministic for a ``seed``.
    """
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(expected("val_fraction", "a fraction strictly between 0 and 1", val_fraction))
    x, y = (data.x, data.y) if isinstance(data, Dataset) else data
    labels = _labels(y)
    m = labels.shape[0]
    if len(x) != m:
        raise ShapeError(expected("data", f"as many images as labels ({m})", f"{len(x)} images"))
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)] if stratify else [np.arange(m)]
    val = np.concatenate([rng.permutation(g)[: int(round(val_fraction * g.size))] for g in groups])
    if val.size == 0 or val.size == m:
        raise ValueError(
            expected("val_fraction", f"a fraction leaving both parts non-empty for {m} examples", val_fraction)
        )
    is_val = np.zeros(m, dtype=bool)
    is_val[val] = True
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if isinstance(data, Dataset):
        return data.subset(train_idx), data.subset(val_idx)
    return (x[train_idx], _take(y, train_idx)), (x[val_idx], _take(y, val_idx))


def _take(y, index: np.ndarray):
    """Examples ``index`` of ``y``; the course keeps labels as a (1, m) row, indexed on its last axis."""
    y = np.asarray(y)
    is_row = y.ndim == 2 and y.shape[0] == 1 and y.shape[1] != 1
    return y[:, index] if is_row else y[index]
