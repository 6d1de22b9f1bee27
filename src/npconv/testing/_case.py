"""One named case of a check: run the learner's function on it and fail with the case in the message.

A learner reads a failure as "which case, with which inputs and hyper-parameters, what was wrong,
what to try", so every assertion goes through :meth:`Case.fail`::

    the course's test 2 (A_prev (2, 5, 7, 4), W (3, 3, 4, 8)): with stride 2 and pad 0 Z's shape
    should be (2, 2, 3, 8); got (2, 3, 5, 8): is the stride used? ...
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

PASSED = "\033[92mAll tests passed!\033[0m"

# Exceptions a learner's step function typically raises, by a piece of their message, and what to do.
KNOWN_ERRORS = (
    (
        "only 0-dimensional arrays can be converted",
        "float(b) needs a single number and b has shape (1, 1, 1): use b.item(), or float(b[0, 0, 0])",
    ),
    (
        "could not broadcast input array from shape",
        "a slice has the wrong size: with pad 0, x[pad:-pad] is empty, so slice x[pad:pad + n]; "
        "and check each window is [h * stride:h * stride + f]",
    ),
)


@dataclass(frozen=True)
class Case:
    """What a check runs: ``label`` ("the course's test 2"), ``inputs`` (their shapes), ``setting``
    (hyper-parameters in words, "stride 2 and pad 0"; empty when there are none)."""

    label: str
    inputs: str
    setting: str = ""

    def fail(self, message: str) -> NoReturn:
        context = f"with {self.setting} " if self.setting else ""
        raise AssertionError(f"{self.label} ({self.inputs}): {context}{message}")

    def call(self, target, *args):
        """``target(*args)`` on copies of ``args``; an exception or an argument changed in place fails
        the case (the reference gets the originals, so a learner's side effect cannot leak into it)."""
        name = getattr(target, "__name__", "the function")
        copies = copy.deepcopy(args)
        try:
            result = target(*copies)
        except Exception as exc:  # the learner's bug, reported as a failed case with its hint
            hint = next((h for pattern, h in KNOWN_ERRORS if pattern in str(exc)), "")
            self.fail_from(exc, f"{name} raised {type(exc).__name__}: {exc}" + (f" ({hint})" if hint else ""))
        for k, (original, passed) in enumerate(zip(args, copies)):
            if isinstance(original, np.ndarray) and not (
                isinstance(passed, np.ndarray) and passed.shape == original.shape and np.array_equal(passed, original)
            ):
                self.fail(
                    f"{name} changed its argument {k + 1} in place; compute into a new array "
                    "(np.zeros(...)) and leave the inputs as they are"
                )
        return result

    def fail_from(self, exc: Exception, message: str) -> NoReturn:
        try:
            self.fail(message)
        except AssertionError as failure:
            raise failure from exc

    def unpack(self, result, names: tuple[str, ...], fix: str):
        """``result`` as the tuple ``names`` the course's function returns, else a failure saying what came."""
        if not isinstance(result, tuple) or len(result) != len(names):
            got = (
                f"a tuple of {len(result)}"
                if isinstance(result, tuple)
                else "None"
                if result is None
                else f"a single {type(result).__name__}"
            )
            self.fail(f"the function should return ({', '.join(names)}); got {got}: {fix}")
        return result


def shapes(**arrays) -> str:
    """``"A_prev (2, 5, 7, 4), W (3, 3, 4, 8)"``: the inputs of a case, for its label."""
    return ", ".join(f"{name} {np.shape(value)}" for name, value in arrays.items())
