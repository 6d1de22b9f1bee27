"""The one container every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .tensor_slices import from_tensor_slices


@dataclass
class Dataset:
    """Images and integer labels.

    Attributes
    ----------
    x : ndarray, uint8, shape (m, n_H, n_W, n_C)
    y : ndarray, int64, shape (m,)
        Class indices into ``class_names``.
    class_names : list of str
    source : str
        Where the data came from (a file, a folder, ``"builtin:NAME"``).
    paths : list of str or None
        One file path per example, for image folders.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    source: str = ""
    paths: list[str] | None = field(default=None, repr=False)

    #: Keras's spelling, so the course's ``tf.data.Dataset.from_tensor_slices((X, Y)).batch(64)``
    #: runs as ``npconv.data.Dataset.from_tensor_slices((X, Y)).batch(64)`` (see :mod:`.tensor_slices`).
    from_tensor_slices = staticmethod(from_tensor_slices)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __repr__(self) -> str:
        return (
            f"Dataset(x={self.x.shape} {self.x.dtype}, y={self.y.shape}, "
            f"class_names={self.class_names}, source={self.source!r})"
        )

    def subset(self, index) -> Dataset:
        """The examples at ``index`` (an index array or boolean mask), paths included."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        paths = None if self.paths is None else [self.paths[i] for i in index]
        return Dataset(self.x[index], self.y[index], list(self.class_names), self.source, paths)
