"""Where ``fit``, ``evaluate`` and ``predict`` get their batches: arrays cut into batches (reshuffled
every epoch), or an iterable of ``(x, y)`` batches, each checked as whole arrays are.

:class:`Feeding` is the part of :class:`npconv.Model` that prepares them; :class:`EpochPlan` says how
one ``fit`` makes each epoch's batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import utils
from ..errors import check_positive_int, expected
from .batches import BatchSource, array_batches, is_batch_source, shuffled_batches, split_batch
from .data_checks import as_input_batch, as_labels
from .plan import input_reader


@dataclass
class EpochPlan:
    """How ``fit`` makes each epoch's batches: from a batch ``source``, or from the arrays ``x``,
    ``y`` in ``batch_size`` batches (reshuffled every epoch with ``shuffle``); ``validation`` gives
    an epoch's validation batches. ``fused``: the last activation is fused with the loss.
    ``epoch`` and ``batch`` say where training is (``fit``'s messages name them)."""

    fused: bool
    n_batches: int
    source: BatchSource | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    batch_size: int = 0
    shuffle: bool = True
    validation: object = None
    epoch: int = 0
    batch: int = 0


class Feeding:
    """The batches of :class:`npconv.Model`'s ``fit``, ``evaluate`` and ``predict`` (a mixin of
    :class:`~npconv.engine.training.Training`; it reads the model's ``_training_plan``)."""

    def _prepare_batches(
        self, x, y, batch_size, validation_split, validation_data, shuffle, steps_per_epoch
    ) -> EpochPlan:
        """Check ``fit``'s data, build the model if it waits for its input shape, and say how each
        epoch's batches are made (:class:`EpochPlan`)."""
        if is_batch_source(x):
            source = self._batch_source(x, y, "x", steps_per_epoch, "steps_per_epoch")
            if validation_split:
                raise ValueError(
                    expected(
                        "validation_split",
                        "0 when x is a dataset of batches",
                        validation_split,
                        "Split the arrays first (npconv.data.train_val_split) and pass validation_data.",
                    )
                )
            first_x, _ = split_batch(source.first(), "x", 0, need_y=True)
            as_input_batch(self, first_x, "x batch 0", build=True)  # builds a Sequential waiting for data
            plan = EpochPlan(self._training_plan(), source.batches_per_epoch(), source=source)
        else:
            x = as_input_batch(self, x, "x", build=True)
            fused = self._training_plan()
            y = as_labels(self, y, len(x), "y")
            if validation_data is None and validation_split:
                n_val = int(len(x) * validation_split)
                if n_val == 0 or n_val == len(x):
                    raise ValueError(
                        expected(
                            "validation_split",
                            f"a fraction leaving both parts of the {len(x)} examples non-empty",
                            validation_split,
                        )
                    )
                x, y, validation_data = x[:-n_val], y[:-n_val], (x[-n_val:], y[-n_val:])
            plan = EpochPlan(fused, -(-len(x) // batch_size), x=x, y=y, batch_size=batch_size, shuffle=shuffle)
        if validation_data is not None:
            plan.validation = self._validation_batches(validation_data, batch_size)
        return plan

    def _epoch_batches(self, plan: EpochPlan, epoch: int):
        """The training batches of ``epoch``: the source's, or the arrays' (shuffled by the package
        generator, which is then the epoch's own, when ``plan.shuffle``)."""
        if plan.source is not None:
            return self._checked_batches(plan.source.epoch(epoch), "x")
        if not plan.shuffle:
            return array_batches(plan.x, plan.y, plan.batch_size)
        order = utils.global_rng().permutation(len(plan.x))
        conv = input_reader(self._steps)
        return shuffled_batches(plan.x, plan.y, order, plan.batch_size, None if conv is None else conv.bordered_input)

    def _batch_source(self, x, y, name, steps, steps_name="steps"):
        if y is not None:
            raise ValueError(
                expected(
                    "y",
                    f"None when {name} is a dataset of (x, y) batches",
                    type(y).__name__,
                    "The labels come with each batch.",
                )
            )
        return BatchSource(x, name, None if steps is None else check_positive_int(steps, steps_name))

    def _checked_batches(self, items, name, need_y=True):
        """Each item of a batch source as ``(x, y)`` arrays, checked like whole arrays are."""
        for k, item in enumerate(items):
            xb, yb = split_batch(item, name, k, need_y)
            xb = as_input_batch(self, xb, f"{name} batch {k}", build=True)
            yield xb, (as_labels(self, yb, len(xb), f"labels of {name} batch {k}") if need_y else None)

    def _validation_batches(self, validation_data, batch_size):
        """A function of the epoch giving the validation batches (arrays are checked once, here)."""
        if is_batch_source(validation_data):
            source = BatchSource(validation_data, "validation_data")
            return lambda epoch: self._checked_batches(source.epoch(epoch), "validation_data")
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            got = (
                f"a {type(validation_data).__name__} of {len(validation_data)} items"
                if isinstance(validation_data, (tuple, list))
                else type(validation_data).__name__
            )
            raise TypeError(expected("validation_data", "a tuple (x_val, y_val) or a dataset of (x, y) batches", got))
        xv = as_input_batch(self, validation_data[0], "validation_data[0]")
        yv = as_labels(self, validation_data[1], len(xv), "validation_data[1]")
        return lambda epoch: array_batches(xv, yv, batch_size)

    def _inference_batches(self, x, y, batch_size, steps, need_y):
        """``evaluate``'s and ``predict``'s batches: from arrays, or from an iterable of batches."""
        if is_batch_source(x):
            source = self._batch_source(x, y, "x", steps)
            as_input_batch(self, split_batch(source.first(), "x", 0, need_y)[0], "x batch 0", build=True)
            return self._checked_batches(source.epoch(None), "x", need_y)
        x = as_input_batch(self, x, "x", build=True)
        y = as_labels(self, y, len(x), "y") if need_y else None
        return array_batches(x, y, check_positive_int(batch_size, "batch_size"))
