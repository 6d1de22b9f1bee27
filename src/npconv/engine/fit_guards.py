"""What ``fit`` wraps around its loop: each epoch's generator, Ctrl-C deferred to the end of a
batch, divergence as an exception, and the checks of ``epochs``/``initial_epoch``."""

from __future__ import annotations

import signal
import threading

import numpy as np

from .. import utils
from ..errors import check_positive_int, expected


class Diverged(Exception):
    """Internal: a non-finite loss or gradient, turned into TrainingDivergedError by ``fit``."""


def epoch_range(epochs, initial_epoch) -> tuple[int, int]:
    """Check ``fit``'s ``epochs`` (positive) and ``initial_epoch`` (0 .. ``epochs``)."""
    epochs = check_positive_int(epochs, "epochs")
    if (
        isinstance(initial_epoch, (bool, np.bool_))
        or not isinstance(initial_epoch, (int, np.integer))
        or not 0 <= initial_epoch <= epochs
    ):
        raise ValueError(
            expected(
                "initial_epoch",
                f"an integer from 0 to epochs={epochs}",
                initial_epoch,
                "epochs is the index of the last epoch plus one, not a count of "
                "further epochs: fit(initial_epoch=2, epochs=4) trains epochs 3 and 4.",
            )
        )
    return epochs, int(initial_epoch)


class EpochGenerators:
    """Within ``fit``, the package generator is each epoch's own (see ``Training._epoch_rng``), so that
    ``Dropout`` and the augmentation layers draw from it; the caller's generator is put back after."""

    def __enter__(self):
        self._saved = utils._rng
        return self

    def use(self, generator) -> None:
        utils._rng = generator

    def __exit__(self, *exc):
        utils._rng = self._saved
        return False


class DeferredInterrupt:
    """Within ``fit``, Ctrl-C sets ``requested`` and training stops after the current batch's update,
    so weights are never half updated; a second Ctrl-C interrupts at once. Main thread only."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
