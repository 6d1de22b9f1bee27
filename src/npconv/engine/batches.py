"""Where ``fit``, ``evaluate`` and ``predict`` get their batches: arrays sliced by ``batch_size``, or
an iterable of ``(x, y)`` batches (``npconv.data.from_tensor_slices((x, y)).batch(64)``, a generator,
images streamed from a folder), each batch checked as arrays would be.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

from ..errors import expected
from ..functional._tier import tiered

ONE_PASS_HINT = (
    "A generator is used up after one pass: give steps_per_epoch=... (batches per epoch), or "
    "pass something that can be iterated again, e.g. npconv.data.from_tensor_slices((x, y)).batch(64)."
)


def is_batch_source(x) -> bool:
    """True for an iterable of batches, False for array-like data (arrays, nested lists)."""
    return (
        x is not None
        and not isinstance(x, (np.ndarray, list, tuple, str, bytes))
        and not hasattr(x, "__array__")
        and hasattr(x, "__iter__")
    )


def shuffled_batches(x: np.ndarray, y, order: np.ndarray, batch_size: int, bordered=None):
    """``(x[idx], y[idx])`` for consecutive ``idx = order[k:k+b]``: an epoch's shuffled batches, each
    gathered when it is needed (a whole shuffled copy of the training set was 29 MB of the Happy
    model's peak), its rows in parallel under the compiled tier.

    ``bordered``: ``None``, or a function of a batch's shape and dtype giving a zero-bordered
    buffer (:class:`~npconv.functional.padding.Bordered`) or ``None``: the first convolution's
    padded input (:func:`~npconv.engine.plan.input_reader`), whose interior the batch is gathered
    into, so that the convolution pads nothing."""
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        buffer = None if bordered is None else bordered((len(rows), *x.shape[1:]), x.dtype)
        yield take_rows(x, rows, None if buffer is None else buffer.interior), None if y is None else y[rows]


def take_rows(x: np.ndarray, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``x[rows]``, a copy (into ``out``, of that shape and x's dtype, when given); gathered in
    parallel under the compiled tier (1.3x NumPy's)."""
    return _take_rows(x, rows, out)


def _take_rows_numpy(x: np.ndarray, rows: np.ndarray, out) -> np.ndarray:
    if out is None:
        return x[rows]
    out[...] = x[rows]
    return out


@tiered(_take_rows_numpy, applies=lambda x, rows, out: x.flags.c_contiguous and x.ndim >= 2)
def _take_rows(kernels, x: np.ndarray, rows: np.ndarray, out) -> np.ndarray:
    if out is None:
        out = np.empty((len(rows), *x.shape[1:]), x.dtype)
    # Rows of images as (m, H, W * C): an interior view of a bordered buffer keeps its row stride.
    shape = (x.shape[1], -1) if x.ndim >= 3 else (-1,)
    kernels.elementwise.take_rows(x.reshape(len(x), *shape), rows, out.reshape(len(rows), *shape))
    return out


def array_batches(x, y, batch_size: int):
    """``(x[k:k+b], y[k:k+b])`` for consecutive batches (``y`` may be None)."""
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size], None if y is None else y[start : start + batch_size]


class BatchSource:
    """An iterable of batches seen epoch by epoch.

    Something that can be iterated again starts afresh every epoch; a one-pass iterator (a
    generator) goes on where the last epoch stopped, ``steps_per_epoch`` batches at a time, as in Keras.
    """

    def __init__(self, source, name: str, steps_per_epoch=None):
        if getattr(source, "batch_size", 0) is None:  # from_tensor_slices(...) without .batch(n)
            raise ValueError(
                expected(
                    name,
                    "batches of examples",
                    "single examples",
                    "Batch them first: from_tensor_slices((x, y)).batch(64).",
                )
            )
        self.name = name
        self.steps = steps_per_epoch
        self._source = source
        self._iterator = iter(source)
        self._one_pass = self._iterator is source
        self._first = None  # the batch first() took from a generator, to be yielded first

    def batches_per_epoch(self):
        """Batches per epoch, or None when unknown (a generator without ``steps_per_epoch``)."""
        if self.steps is not None:
            return self.steps
        try:
            return len(self._source)
        except TypeError:
            return None

    def first(self):
        """The first batch, to build the model before training; the next epoch still yields it."""
        if self._first is None:
            iterator = self._iterator if self._one_pass else iter(self._source)
            self._first = next(iterator, None)
            if self._first is None:
                raise ValueError(expected(self.name, "at least one batch", "an empty iterable", ONE_PASS_HINT))
        return self._first

    def epoch(self, epoch):
        """The raw items of one epoch (``epoch`` None: one pass for evaluate/predict); a source
        that runs dry before ``steps_per_epoch`` stops the epoch with a warning."""
        iterator = self._iterator if self._one_pass else iter(self._source)
        if self._one_pass and self._first is not None:
            iterator = itertools.chain([self._first], iterator)
        self._first = None
        count = 0
        for item in iterator:
            yield item
            count += 1
            if count == self.steps:
                return
        if count == 0 and epoch is not None:
            raise ValueError(expected(self.name, f"batches for epoch {epoch + 1}", "none left", ONE_PASS_HINT))
        if self.steps is not None:
            warnings.warn(
                f"{self.name} ran out of batches after {count} of steps_per_epoch={self.steps} in "
                f"epoch {epoch + 1}. {ONE_PASS_HINT}",
                stacklevel=4,
            )


def split_batch(item, name: str, k: int, need_y: bool):
    """``(x, y)`` from one item of a batch source; predict also takes bare ``x`` batches (``y`` None)."""
    if isinstance(item, (tuple, list)):
        if len(item) == 2:
            return item[0], item[1]
        if len(item) == 1 and not need_y:
            return item[0], None
    elif not need_y:
        return item, None
    got = f"a {type(item).__name__} of {len(item)} items" if isinstance(item, (tuple, list)) else type(item).__name__
    raise TypeError(
        expected(
            f"{name} batch {k}",
            "a tuple (x, y) of arrays",
            got,
            "Yield (x_batch, y_batch) pairs, as from_tensor_slices((x, y)).batch(n) does.",
        )
    )
