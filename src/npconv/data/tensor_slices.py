"""Keras's ``tf.data.Dataset.from_tensor_slices((x, y)).batch(n)`` for arrays in memory.

The course trains SIGNS on ``tf.data.Dataset.from_tensor_slices((X_train, Y_train)).batch(64)``;
with npconv the line is the same with ``npconv.data`` in place of ``tf.data``. ``fit``,
``evaluate`` and ``predict`` take the batched result, or any iterable of ``(x, y)`` batches.
"""

from __future__ import annotations

import numpy as np

from ..errors import check_positive_int, expected


class TensorSlices:
    """Examples along the first axis of an array or a tuple of arrays of one length.

    Iterating yields one example at a time (a tuple for a tuple of arrays), as ``tf.data`` does;
    after :meth:`batch` it yields ``(x[k:k+b], y[k:k+b])`` batches in order, and ``len`` counts them.
    """

    def __init__(self, tensors, batch_size=None, drop_remainder=False):
        self._single = not isinstance(tensors, (tuple, list))
        arrays = [tensors] if self._single else list(tensors)
        try:
            arrays = [np.asarray(a) for a in arrays]
        except ValueError:
            raise ValueError(
                expected(
                    "tensors",
                    "arrays (or a tuple of arrays) of one shape each",
                    "a ragged nested list",
                    "Stack the examples: np.stack(images).",
                )
            ) from None
        if not arrays or any(a.ndim == 0 for a in arrays):
            raise ValueError(expected("tensors", "an array or a tuple (x, y) of arrays with a first axis", tensors))
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise ValueError(
                expected(
                    "tensors",
                    "arrays of one length (one entry per example)",
                    f"lengths {[len(a) for a in arrays]}",
                    "Check that x and y hold the same examples (labels of the course's shape (1, m) need .T).",
                )
            )
        self.tensors = tuple(arrays)
        self.batch_size = batch_size
        self.drop_remainder = bool(drop_remainder)

    def batch(self, batch_size: int, drop_remainder: bool = False) -> TensorSlices:
        """The same examples in batches of ``batch_size`` (the last one smaller unless dropped)."""
        if self.batch_size is not None:
            raise ValueError("batch: these slices are batched already (npconv does not nest batches).")
        return TensorSlices(self._pack(self.tensors), check_positive_int(batch_size, "batch_size"), drop_remainder)

    def _pack(self, arrays):
        return arrays[0] if self._single else tuple(arrays)

    def __len__(self) -> int:
        m = len(self.tensors[0])
        if self.batch_size is None:
            return m
        return m // self.batch_size if self.drop_remainder else -(-m // self.batch_size)

    def __iter__(self):
        step = self.batch_size or 1
        for k in range(len(self)):
            if self.batch_size is None:
                yield self._pack([a[k] for a in self.tensors])
            else:
                yield self._pack([a[k * step : (k + 1) * step] for a in self.tensors])

    def __repr__(self) -> str:
        shapes = ", ".join(str((None,) + a.shape[1:]) for a in self.tensors)
        batched = f", batch_size={self.batch_size}" if self.batch_size else ""
        return f"<TensorSlices {len(self.tensors[0])} examples of {shapes}{batched}>"


def from_tensor_slices(tensors) -> TensorSlices:
    """``from_tensor_slices((X, Y)).batch(64)``: examples sliced along the first axis, as ``tf.data``."""
    return TensorSlices(tensors)
