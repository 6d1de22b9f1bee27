"""Learning-rate schedules, Keras's ``keras.optimizers.schedules``: a learning rate as a function
of the number of updates applied so far. ``npconv.optimizers.schedules`` is this module:
``optimizers.Adam(optimizers.schedules.CosineDecay(0.01, 1000))``.
"""

from __future__ import annotations

import math

from . import utils
from .errors import check_positive_int, check_range

__all__ = ["LearningRateSchedule", "ExponentialDecay", "CosineDecay"]


class LearningRateSchedule(utils.Configurable):
    """A learning rate as a function of the step: ``schedule(step) -> float``."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        return dict(vars(self))


class ExponentialDecay(LearningRateSchedule):
    """``lr(step) = initial_learning_rate * decay_rate ** (step / decay_steps)``; the exponent is
    floored when ``staircase`` (the rate drops every ``decay_steps`` steps)."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False):
        self.initial_learning_rate = check_range(initial_learning_rate, "initial_learning_rate", 0.0, math.inf, False)
        self.decay_steps = check_positive_int(decay_steps, "decay_steps")
        self.decay_rate = check_range(decay_rate, "decay_rate", 0.0, math.inf, False)
        self.staircase = bool(staircase)

    def __call__(self, step: int) -> float:
        exponent = step / self.decay_steps
        if self.staircase:
            exponent = math.floor(exponent)
        return self.initial_learning_rate * self.decay_rate**exponent


class CosineDecay(LearningRateSchedule):
    """``lr(step) = initial * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps)) + alpha)``:
    half a cosine from ``initial`` down to ``alpha * initial``, then flat."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0):
        self.initial_learning_rate = check_range(initial_learning_rate, "initial_learning_rate", 0.0, math.inf, False)
        self.decay_steps = check_positive_int(decay_steps, "decay_steps")
        self.alpha = check_range(alpha, "alpha", 0.0, 1.0, True)

    def __call__(self, step: int) -> float:
        progress = min(step, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.initial_learning_rate * ((1.0 - self.alpha) * cosine + self.alpha)


SCHEDULES = {"exponential_decay": ExponentialDecay, "cosine_decay": CosineDecay}
