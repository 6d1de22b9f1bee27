"""Errors and the argument checks every entry point shares.

Messages follow one pattern so learners learn to read them once:
``"<argument>: expected <what>, got <what>. <How to fix it.>"``
"""

from __future__ import annotations

import math

import numpy as np


class NpconvError(Exception):
    """Base class of npconv's own errors (the CLI prints these as one line)."""


class ShapeError(NpconvError, ValueError):
    """An array has the wrong rank or size for where it is used."""


class TrainingDivergedError(NpconvError, FloatingPointError):
    """The loss became NaN or infinite during ``fit``; the model keeps its last good weights."""


class ModelFileError(NpconvError, ValueError):
    """A model or weights file is missing, truncated, tampered with or of another format."""


class DataError(NpconvError, ValueError):
    """A data file or folder cannot be used (missing keys, wrong shapes, no images, ...)."""


class BackupMismatchError(NpconvError, ValueError):
    """A training's backup was written by another command (other data, recipe, flags or version)."""


def describe(value) -> str:
    """A short description of ``value`` for error messages: shape and dtype for arrays."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"


def expected(name: str, what: str, got, fix: str = "") -> str:
    """Format the standard message ``"name: expected what, got got. fix"``."""
    got_text = got if isinstance(got, str) else describe(got)
    message = f"{name}: expected {what}, got {got_text}."
    return f"{message} {fix}" if fix else message


def check_float_array(x, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``x`` as a floating ndarray, refusing object/integer/bool data and wrong ranks.

    Floating arrays are returned as they are (no copy, dtype kept).
    """
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(
                expected(name, "a numeric array", type(x).__name__, "Pass a NumPy array of floats.")
            ) from exc
    if x.dtype.kind != "f":
        raise TypeError(
            expected(
                name,
                "a floating-point array (float32 or float64)",
                x,
                "Convert it first, e.g. x.astype(np.float32) (divide images by 255).",
            )
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if x.ndim not in allowed:
            ranks = " or ".join(str(r) for r in allowed)
            raise ShapeError(expected(name, f"a {ranks}-D array", x, _rank_fix(allowed[0], x.ndim)))
    return x


def _rank_fix(want: int, got: int) -> str:
    if want == 4 and got == 3:
        return "For a single image add the batch axis: x[None] (shape (1, n_H, n_W, n_C))."
    if want == 4 and got == 2:
        return "Images are (m, n_H, n_W, n_C); a grayscale batch needs a channel axis: x[..., None]."
    return "Reshape it to the expected rank."


def check_finite(x: np.ndarray, name: str) -> None:
    """Refuse NaN or infinity in ``x`` with a message that says where they are."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum is expected, not news
        cleared = np.asarray(x).dtype.kind == "f" and np.isfinite(np.sum(x))
    if cleared:
        # NaN and infinities carry through a sum, so a finite sum clears every value in one
        # read-only pass (a training set: 3.3 ms against 4.6 for the element-wise test). A sum
        # that overflows or cancels to NaN falls through to that test, which decides.
        return
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise ValueError(
            expected(
                name, "finite values", f"{bad} NaN or infinite value(s)", "Clean or impute the data before training."
            )
        )


def check_positive_int(value, name: str) -> int:
    """Return ``value`` as an int if it is a positive integer, else raise ``ValueError``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(expected(name, "a positive integer", value))
    return int(value)


def check_choice(value, name: str, choices) -> str:
    """Return ``value`` if it is one of ``choices`` (strings), else raise with the list of choices."""
    if not isinstance(value, str) or value.lower() not in choices:
        valid = ", ".join(repr(c) for c in sorted(choices))
        raise ValueError(expected(name, f"one of {valid}", value))
    return value.lower()


def check_range(value, name: str, low: float, high: float, high_inclusive: bool) -> float:
    """``value`` as a float in ``[low, high)`` (or ``[low, high]``), else ``ValueError`` naming it."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    inside = low <= number and (number <= high if high_inclusive else number < high)
    if isinstance(value, bool) or not inside:
        bracket = "]" if high_inclusive else ")"
        raise ValueError(expected(name, f"a number in [{low:g}, {high:g}{bracket}", value))
    return number
