"""Compare a learner's array with npconv's reference and explain the difference.

Values are compared with the course's tolerance (``np.allclose``'s defaults). When they differ, the
message says, in this order, the first hint that applies:

* a shape hint: the wrong shape is what a known mistake produces (``shape_hints``; every one that
  fits, then ``shape_rule``, the formula to check);
* a value hint: the answer equals what a known mistake computes (``value_hints``, computed lazily);
* a ratio: the answer is the reference times a constant ("dA_prev is 4 times the expected value"),
  with the known meaning of that constant (``ratio_hints``, e.g. ``f*f`` in average-pool backward);
* a region hint: every wrong value lies where a known mistake acts (``region_hints``: masks);
* else the first wrong entry and how many are wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ._case import Case

RTOL, ATOL = 1e-5, 1e-8  # np.allclose's defaults, which the course's tests use

ShapeHints = Iterable[tuple[tuple[int, ...], str]]
ValueHints = Iterable[tuple[Callable[[], np.ndarray], str]]


def close(got, expected) -> np.ndarray:
    """Entrywise: ``got`` matches ``expected`` within the course's tolerance."""
    return np.isclose(got, expected, rtol=RTOL, atol=ATOL)


def check_array(
    case: Case,
    what: str,
    got,
    expected: np.ndarray,
    *,
    shape_hints: ShapeHints = (),
    shape_rule: str = "",
    value_hints: ValueHints = (),
    ratio_hints: dict[float, str] | None = None,
    region_hints: Iterable[tuple[np.ndarray, str]] = (),
) -> None:
    """Fail ``case`` unless ``got`` is an array of ``expected``'s type, shape, dtype and values."""
    if got is None:
        case.fail(f"{what} is None: write the code where it says YOUR CODE HERE, and return the result")
    if not isinstance(got, np.ndarray):
        case.fail(f"{what} should be a NumPy array; got a {type(got).__name__}")
    if got.shape != expected.shape:
        hint = shape_hint(got.shape, shape_hints, shape_rule)
        case.fail(f"{what}'s shape should be {expected.shape}; got {got.shape}" + (f": {hint}" if hint else ""))
    check_dtype(case, what, got.dtype, expected.dtype)
    wrong = ~close(got, expected)
    if not wrong.any():
        return
    hint = value_hint(got, expected, wrong, value_hints, ratio_hints, region_hints)
    case.fail(f"{what} {hint or 'is wrong: ' + first_difference(what, got, expected, wrong)}")


def shape_hint(shape: tuple[int, ...], shape_hints: ShapeHints = (), shape_rule: str = "") -> str:
    """Every hint whose shape is ``shape``, then ``shape_rule``; empty when none fits."""
    hints = list(dict.fromkeys(h for known, h in shape_hints if tuple(known) == tuple(shape)))
    return " ".join(hints + [shape_rule]).strip() if hints else ""


def value_hint(
    got: np.ndarray,
    expected: np.ndarray,
    wrong: np.ndarray,
    value_hints: ValueHints = (),
    ratio_hints: dict[float, str] | None = None,
    region_hints: Iterable[tuple[np.ndarray, str]] = (),
) -> str | None:
    """What a wrong ``got`` (same shape as ``expected``, wrong where ``wrong``) says, as the end of a
    sentence about it (``"is wrong: <hint>"``, ``"is 4 times the expected value: <hint>"``), or None."""
    for candidate, hint in value_hints:
        if np.all(close(got, candidate())):
            return f"is wrong: {hint}"
    ratio = scale_factor(got, expected)
    if ratio is not None:
        known = next((h for r, h in (ratio_hints or {}).items() if np.isclose(ratio, r)), "")
        return f"is {ratio:.6g} times the expected value" + (f": {known}" if known else "")
    for region, hint in region_hints:
        if np.all(np.broadcast_to(region, wrong.shape)[wrong]):
            return f"is wrong: {hint}"
    return None


def check_dtype(case: Case, what: str, got: np.dtype, expected: np.dtype) -> None:
    """float32 results from float64 inputs are truncated to ~7 digits: fail with the usual causes."""
    if got == expected:
        return
    if expected == np.float64 and got == np.float32:
        case.fail(
            f"{what} has dtype float32 but the inputs are float64, so it keeps only ~7 digits: "
            "do not cast to float32 (np.zeros(shape) is float64 already)"
        )
    if expected == np.bool_:
        case.fail(f"{what} should be a boolean array (x == np.max(x)); got dtype {got}")
    case.fail(f"{what}'s dtype should be {expected} (the inputs' dtype); got {got}")


def scale_factor(got: np.ndarray, expected: np.ndarray) -> float | None:
    """``r`` with ``got == r * expected`` (least squares, then checked entrywise), or None."""
    norm = float(np.vdot(expected, expected))
    if norm == 0.0:
        return None
    ratio = float(np.vdot(got, expected)) / norm
    return ratio if np.all(close(got, ratio * expected)) else None


def first_difference(what: str, got: np.ndarray, expected: np.ndarray, wrong: np.ndarray) -> str:
    index = tuple(int(k) for k in np.argwhere(wrong)[0])
    where = f"[{', '.join(map(str, index))}]" if index else ""
    return (
        f"{what}{where} should be {_number(expected[index])}; got {_number(got[index])} "
        f"({int(wrong.sum())} of {wrong.size} values differ)"
    )


def _number(value) -> str:
    return str(value) if isinstance(value, (bool, np.bool_)) else f"{value:.8g}"


def check_cache(case: Case, cache, inputs: dict, padded: np.ndarray | None = None) -> None:
    """``cache`` is the course's tuple of ``inputs`` (names -> values), in order, for the backward pass."""
    names = tuple(inputs)
    listed = f"cache = ({', '.join(names)})"
    if not isinstance(cache, tuple) or len(cache) != len(names):
        case.fail(
            f"the cache should be the tuple ({', '.join(names)}) the backward pass reads; got "
            f"{type(cache).__name__}"
            + (f" of {len(cache)}" if isinstance(cache, (tuple, list)) else "")
            + f": {listed}"
        )
    for (name, value), stored in zip(inputs.items(), cache):
        if isinstance(value, dict):
            if stored != value:
                case.fail(f"cache holds {stored!r} where {name} {value!r} should be: {listed}")
            continue
        if isinstance(stored, np.ndarray) and stored.shape == value.shape and np.array_equal(stored, value):
            continue
        if padded is not None and np.shape(stored) == padded.shape and name == "A_prev":
            case.fail("the cache holds the padded input; store A_prev as it was given: " + listed)
        case.fail(f"the cache's entry for {name} is not {name}: {listed}")


def overlap(size, f: int, stride: int, pad: int) -> np.ndarray:
    """``(1, n_H_prev, n_W_prev, 1)`` mask of the input pixels that more than one window covers."""
    count = [np.zeros(n + 2 * pad, dtype=int) for n in size]
    for axis_count in count:
        for start in range(0, len(axis_count) - f + 1, stride):
            axis_count[start : start + f] += 1
    rows, cols = (c[pad : pad + n] for c, n in zip(count, size))
    return ((rows[:, None] * cols[None, :]) > 1)[None, :, :, None]
