"""Checks for the learner's pooling step functions: ``pool_forward``, ``create_mask_from_window``,
``distribute_value``, ``pool_backward``, with the course's names and signatures (``*_test(target)``).

Every pooling case runs in both modes, ``"max"`` and ``"average"``, against :mod:`npconv.course`.
"""

from __future__ import annotations

import numpy as np

from .. import course
from ._case import PASSED, Case, shapes
from ._compare import check_array, check_cache
from .mistakes import POOL_HINT, pool_backward_hints, pool_shape_hints, pool_value_hints

__all__ = ["pool_forward_test", "create_mask_from_window_test", "distribute_value_test", "pool_backward_test"]

MODES = ("max", "average")


def _pool_cases():
    """``(label, A_prev, hparameters)``: the course's cases (both editions, public_tests), then random ones."""
    np.random.seed(1)
    A_prev = np.random.randn(2, 5, 5, 3)
    yield "the course's case 1", A_prev, {"stride": 1, "f": 3}
    yield "the course's case 2", A_prev, {"stride": 2, "f": 3}
    yield "the course's test 3", A_prev, {"stride": 1, "f": 2}
    np.random.seed(1)
    yield "the course's first edition", np.random.randn(2, 4, 4, 3), {"stride": 2, "f": 3}
    rng = np.random.default_rng(15)
    yield "the course's test 1", rng.standard_normal((2, 5, 7, 3)), {"stride": 2, "f": 2}
    yield "the course's test 2", rng.standard_normal((4, 5, 7, 4)), {"stride": 1, "f": 5}
    for k, (size, f, stride) in enumerate([((6, 5), 2, 3), ((4, 7), 3, 1), ((5, 5), 1, 2)], start=1):
        yield f"random case {k}", rng.standard_normal((2, *size, 2)), {"stride": stride, "f": f}


def _pool_case(label, A_prev, hparameters, mode, **more) -> Case:
    return Case(
        label, shapes(A_prev=A_prev, **more), f"f {hparameters['f']}, stride {hparameters['stride']} and mode {mode!r}"
    )


# ---------------------------------------------------------------- pool_forward


def pool_forward_test(target):
    """Check ``target(A_prev, hparameters, mode)`` (the learner's ``pool_forward``) in both modes:
    ``A``'s shape, dtype and values, and the cache ``(A_prev, hparameters)``."""
    for label, A_prev, hparameters in _pool_cases():
        f, stride = hparameters["f"], hparameters["stride"]
        for mode in MODES:
            case = _pool_case(label, A_prev, hparameters, mode)
            A, cache = case.unpack(
                case.call(target, A_prev, hparameters, mode),
                ("A", "cache"),
                "pool_backward needs the cache: return A, (A_prev, hparameters)",
            )
            expected, _ = course.pool_forward(A_prev, hparameters, mode)
            not_divided = {f * f: "the average is the sum divided by f * f: np.mean, not np.sum"}
            check_array(
                case,
                "A",
                A,
                expected,
                shape_hints=pool_shape_hints(A_prev, f, stride),
                shape_rule=POOL_HINT,
                value_hints=pool_value_hints(A_prev, hparameters, mode, expected),
                ratio_hints=not_divided if mode == "average" else {},
            )
            check_cache(case, cache, {"A_prev": A_prev, "hparameters": hparameters})
    print(PASSED)


# ---------------------------------------------------------------- create_mask_from_window


def _window_cases():
    np.random.seed(1)
    yield "the course's example", np.random.randn(2, 3)
    yield "the course's test", np.array([[-1, 2, 3], [2, -3, 2], [1, 5, -2]])
    rng = np.random.default_rng(15)
    yield "random case 1", rng.standard_normal((3, 3))
    yield "random case 2 (all negative)", -np.abs(rng.standard_normal((2, 2))) - 1
    yield "random case 3", rng.standard_normal((1, 4)) + 5


def create_mask_from_window_test(target):
    """Check ``target(x)`` (the learner's ``create_mask_from_window``): True exactly at the maximum."""
    for label, x in _window_cases():
        case = Case(label, shapes(x=x))
        mask = case.call(target, x)
        expected = course.create_mask_from_window(x)
        if isinstance(mask, np.ndarray) and mask.dtype.kind in "iu" and np.isin(mask, (0, 1)).all():
            mask = mask.astype(bool)  # a 0/1 mask works as well in pool_backward
        if isinstance(mask, np.ndarray) and mask.shape == x.shape and mask.dtype == bool:
            if mask.all():
                case.fail(
                    "the mask is all True: it should be True only where x equals its maximum, mask = (x == np.max(x))"
                )
            if not mask.any():
                case.fail("the mask is all False: compare x with the maximum of this window, x == np.max(x)")
        check_array(
            case,
            "mask",
            mask,
            expected,
            value_hints=[
                (lambda x=x: x == np.min(x), "it marks the minimum: use np.max(x)"),
                (
                    lambda x=x: x > 0,
                    "it marks the positive entries: a max mask is True only at the maximum, x == np.max(x)",
                ),
                (
                    lambda x=x: x == np.max(x, axis=0, keepdims=True),
                    "it marks each column's maximum: take the maximum of the whole window, np.max(x) with no axis",
                ),
            ],
        )
    print(PASSED)


# ---------------------------------------------------------------- distribute_value


def distribute_value_test(target):
    """Check ``target(dz, shape)`` (the learner's ``distribute_value``): an ``(n_H, n_W)`` array of
    ``dz / (n_H * n_W)``."""
    cases = [
        ("the course's example", 2, (2, 2)),
        ("the course's test", 100, (10, 10)),
        ("random case 1", -1.5, (3, 5)),
        ("random case 2", 0.7, (1, 4)),
        ("random case 3", 3.25, (4, 1)),
    ]
    for label, dz, shape in cases:
        case = Case(label, f"dz {dz}", f"shape {shape}")
        got = case.call(target, dz, shape)
        expected = course.distribute_value(dz, shape)
        n_H, n_W = shape
        ratios = {n_H * n_W: "dz is copied to every entry: divide it by the window's size, n_H * n_W"}
        if n_W > 1:
            ratios.setdefault(n_W, "divided by n_H only: divide by n_H * n_W")
        if n_H > 1:
            ratios.setdefault(n_H, "divided by n_W only: divide by n_H * n_W")
        check_array(
            case,
            "a",
            got,
            expected,
            ratio_hints=ratios,
            shape_hints=[((n_W, n_H), "the shape is (n_H, n_W), in that order")],
        )
    print(PASSED)


# ---------------------------------------------------------------- pool_backward


def _pool_backward_cases():
    np.random.seed(1)
    A_prev = np.random.randn(5, 5, 3, 2)
    _, cache = course.pool_forward(A_prev, {"stride": 1, "f": 2})
    yield "the course's example", np.random.randn(5, 4, 2, 2), A_prev, cache[1]
    rng = np.random.default_rng(17)
    for label, A_prev, hparameters in _pool_cases():
        if label.startswith("random"):
            A, _ = course.pool_forward(A_prev, hparameters)
            yield label, rng.standard_normal(A.shape), A_prev, hparameters


def pool_backward_test(target):
    """Check ``target(dA, cache, mode)`` (the learner's ``pool_backward``) in both modes, on caches
    from :func:`npconv.course.pool_forward`: ``dA_prev``'s shape, dtype and values."""
    for label, dA, A_prev, hparameters in _pool_backward_cases():
        for mode in MODES:
            case = _pool_case(label, A_prev, hparameters, mode, dA=dA)
            cache = (A_prev, hparameters)
            dA_prev = case.call(target, dA, cache, mode)
            expected = course.pool_backward(dA, cache, mode)
            hints, ratios, shape_hints, regions = pool_backward_hints(dA, cache, mode)
            check_array(
                case,
                "dA_prev",
                dA_prev,
                expected,
                value_hints=hints,
                ratio_hints=ratios,
                shape_hints=shape_hints,
                region_hints=regions,
            )
    print(PASSED)
