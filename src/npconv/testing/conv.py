"""Checks for the learner's convolution step functions: ``zero_pad``, ``conv_single_step``,
``conv_forward``, ``conv_backward``, with the course's names and signatures (``*_test(target)``).

Each check runs the course's own cases (its seeds and shapes; :mod:`npconv.course` reproduces its
published figures) and random shapes, strides and pads, against :mod:`npconv.course`, and prints the
course's green line when every case passes.
"""

from __future__ import annotations

import numpy as np

from .. import course
from ._case import PASSED, Case, shapes
from ._compare import check_array, check_cache, check_dtype, close
from .mistakes import (
    ADD_UP,
    CONV_HINT,
    conv_backward_hints,
    conv_backward_value_hints,
    conv_shape_hints,
    conv_value_hints,
)

__all__ = ["zero_pad_test", "conv_single_step_test", "conv_forward_test", "conv_backward_test"]


def _random_conv_cases(seed: int, count: int):
    """``(A_prev, W, b, hparameters)`` with random sizes, filters, strides and pads (non-square inputs)."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        f, stride, pad = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(0, 3))
        n_H, n_W = (int(n) for n in rng.integers(f, f + 5, size=2))
        n_C_prev, n_C = (int(n) for n in rng.integers(1, 4, size=2))
        yield (
            rng.standard_normal((2, n_H, n_W, n_C_prev)),
            rng.standard_normal((f, f, n_C_prev, n_C)),
            rng.standard_normal((1, 1, 1, n_C)),
            {"pad": pad, "stride": stride},
        )


def _course_conv_cases():
    """The course's conv_forward cases: v2's notebook cell, public_tests' three, v1's notebook cell."""
    np.random.seed(1)
    A_prev, W, b = np.random.randn(2, 5, 7, 4), np.random.randn(3, 3, 4, 8), np.random.randn(1, 1, 1, 8)
    yield "the course's example", A_prev, W, b, {"pad": 1, "stride": 2}
    np.random.seed(3)
    A_prev, W, b = np.random.randn(2, 5, 7, 4), np.random.randn(3, 3, 4, 8), np.random.randn(1, 1, 1, 8)
    yield "the course's test 1", A_prev, W, b, {"pad": 3, "stride": 1}
    yield "the course's test 2", A_prev, W, b, {"pad": 0, "stride": 2}
    W, b = np.random.randn(5, 5, 4, 8), np.random.randn(1, 1, 1, 8)
    yield "the course's test 3", A_prev, W, b, {"pad": 6, "stride": 1}
    np.random.seed(1)
    A_prev, W, b = np.random.randn(10, 4, 4, 3), np.random.randn(2, 2, 3, 8), np.random.randn(1, 1, 1, 8)
    yield "the course's first edition", A_prev, W, b, {"pad": 2, "stride": 2}


def _all_conv_cases(seed: int):
    yield from _course_conv_cases()
    for k, (A_prev, W, b, hparameters) in enumerate(_random_conv_cases(seed, 4), start=1):
        yield f"random case {k}", A_prev, W, b, hparameters


def _conv_case(label, A_prev, W, b, hparameters) -> Case:
    return Case(label, shapes(A_prev=A_prev, W=W, b=b), f"stride {hparameters['stride']} and pad {hparameters['pad']}")


# ---------------------------------------------------------------- zero_pad


def _zero_pad_shape_hints(x_shape, pad):
    m, n_H, n_W, n_C = x_shape
    p = 2 * pad
    channels = "pad only the height and width: np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))"
    return [
        ((m, n_H + p, n_W + p, n_C + p), "the channel axis is padded too; " + channels),
        ((m + p, n_H + p, n_W + p, n_C), "the examples axis is padded too; " + channels),
        ((m + p, n_H + p, n_W + p, n_C + p), "every axis is padded; " + channels),
        (
            (m, n_H, n_W + p, n_C + p),
            "padding applied to the width and channel axes: images are (m, n_H, n_W, n_C), channels last; " + channels,
        ),
        ((m, n_H + pad, n_W + pad, n_C), "only one side is padded: pad goes before and after, (pad, pad)"),
        ((m, n_H + p, n_W, n_C), "the width is not padded; " + channels),
        ((m, n_H, n_W + p, n_C), "the height is not padded; " + channels),
    ]


def _zero_pad_cases():
    np.random.seed(1)
    yield "the course's test 1", np.random.randn(4, 3, 3, 2), 3
    np.random.seed(1)
    yield "the course's test 2", np.random.randn(5, 4, 4, 3), 2
    rng = np.random.default_rng(15)
    yield "random case 1", rng.standard_normal((2, 3, 5, 1)), 1
    yield "random case 2", rng.standard_normal((1, 2, 4, 3)), 4
    yield "random case 3 (pad 0)", rng.standard_normal((3, 2, 2, 2)), 0


def zero_pad_test(target):
    """Check ``target(X, pad)`` (the learner's ``zero_pad``): shape, zeros around, ``X`` in the middle."""
    for label, x, pad in _zero_pad_cases():
        case = Case(label, shapes(X=x), f"pad {pad}")
        X_pad = case.call(target, x, pad)
        expected = course.zero_pad(x, pad)
        border = np.ones(expected.shape, dtype=bool)
        border[:, pad : pad + x.shape[1], pad : pad + x.shape[2], :] = False
        check_array(
            case,
            "X_pad",
            X_pad,
            expected,
            shape_hints=_zero_pad_shape_hints(x.shape, pad),
            region_hints=[
                (border, "the border should be zeros: np.pad(..., mode='constant', constant_values=0)"),
                (~border, "X should sit unchanged in the middle, X_pad[:, pad:-pad, pad:-pad, :]"),
            ],
        )
    print(PASSED)


# ---------------------------------------------------------------- conv_single_step


def _single_step_cases():
    np.random.seed(3)
    yield "the course's test", np.random.randn(5, 5, 3), np.random.randn(5, 5, 3), np.random.randn(1, 1, 1)
    np.random.seed(1)
    yield "the course's example", np.random.randn(4, 4, 3), np.random.randn(4, 4, 3), np.random.randn(1, 1, 1)
    rng = np.random.default_rng(15)
    for k, (f, n_C) in enumerate([(1, 1), (2, 5), (3, 2)], start=1):
        yield (
            f"random case {k}",
            rng.standard_normal((f, f, n_C)),
            rng.standard_normal((f, f, n_C)),
            rng.standard_normal((1, 1, 1)),
        )


def conv_single_step_test(target):
    """Check ``target(a_slice_prev, W, b)`` (the learner's ``conv_single_step``): a NumPy float64
    scalar equal to ``sum(a_slice_prev * W) + b``."""
    for label, a_slice_prev, W, b in _single_step_cases():
        case = Case(label, shapes(a_slice_prev=a_slice_prev, W=W, b=b))
        Z = case.call(target, a_slice_prev, W, b)
        expected = course.conv_single_step(a_slice_prev, W, b)
        if Z is None:
            case.fail("Z is None: write the code where it says YOUR CODE HERE, and return Z")
        if isinstance(Z, np.ndarray):
            case.fail(
                f"Z should be a number; got an array of shape {Z.shape}"
                + (
                    ": b has shape (1, 1, 1), so add it as a number, Z + b.item()"
                    if Z.size == 1
                    else ": sum over every axis of a_slice_prev * W, np.sum(s)"
                )
            )
        if not isinstance(Z, np.floating):
            case.fail(
                f"Z should be a NumPy float, as np.sum returns; got a {type(Z).__name__} "
                "(keep np.sum's result and add b.item())"
            )
        check_dtype(case, "Z", np.asarray(Z).dtype, np.asarray(expected).dtype)
        if close(Z, expected):
            continue
        bias = float(b.item())
        if close(Z, expected - bias):
            case.fail(f"Z should be {expected:.10g}; got {Z:.10g}: the bias b is not added")
        if close(Z, expected + (W.size - 1) * bias):
            case.fail(
                f"Z should be {expected:.10g}; got {Z:.10g}: b is added to each of the {W.size} "
                "products; add it once, after the sum"
            )
        case.fail(f"Z should be {expected:.10g}; got {Z:.10g}: Z = np.sum(a_slice_prev * W) + b.item()")
    print(PASSED)


# ---------------------------------------------------------------- conv_forward


def conv_forward_test(target):
    """Check ``target(A_prev, W, b, hparameters)`` (the learner's ``conv_forward``): ``Z``'s shape,
    dtype and values, and the cache ``(A_prev, W, b, hparameters)``."""
    for label, A_prev, W, b, hparameters in _all_conv_cases(seed=15):
        case = _conv_case(label, A_prev, W, b, hparameters)
        Z, cache = case.unpack(
            case.call(target, A_prev, W, b, hparameters),
            ("Z", "cache"),
            "conv_backward needs the cache: return Z, (A_prev, W, b, hparameters)",
        )
        expected, _ = course.conv_forward(A_prev, W, b, hparameters)
        check_array(
            case,
            "Z",
            Z,
            expected,
            shape_hints=conv_shape_hints(A_prev, W, hparameters),
            shape_rule=CONV_HINT,
            value_hints=conv_value_hints(A_prev, W, b, hparameters, expected),
        )
        check_cache(
            case,
            cache,
            {"A_prev": A_prev, "W": W, "b": b, "hparameters": hparameters},
            padded=course.zero_pad(A_prev, hparameters["pad"]),
        )
    print(PASSED)


# ---------------------------------------------------------------- conv_backward


def conv_backward_test(target):
    """Check ``target(dZ, cache)`` (the learner's ``conv_backward``) on caches from
    :func:`npconv.course.conv_forward`: ``dA_prev``, ``dW``, ``db`` shapes, dtypes and values."""
    rng = np.random.default_rng(16)
    for label, A_prev, W, b, hparameters in _all_conv_cases(seed=16):
        Z, cache = course.conv_forward(A_prev, W, b, hparameters)
        # The course checks conv_backward with dZ = Z; random cases use an unrelated dZ.
        dZ = Z if label.startswith("the course") else rng.standard_normal(Z.shape)
        case = Case(
            label,
            shapes(A_prev=A_prev, W=W, b=b, dZ=dZ),
            f"stride {hparameters['stride']} and pad {hparameters['pad']}",
        )
        grads = case.unpack(case.call(target, dZ, cache), ("dA_prev", "dW", "db"), "return dA_prev, dW, db")
        shape_hints, ratios, overlapping = conv_backward_hints(A_prev, W, hparameters)
        value_hints = conv_backward_value_hints(dZ, cache)
        for what, got, want in zip(("dA_prev", "dW", "db"), grads, course.conv_backward(dZ, cache)):
            check_array(
                case,
                what,
                got,
                want,
                shape_hints=shape_hints[what],
                ratio_hints=ratios,
                value_hints=value_hints[what],
                region_hints=[(overlapping, ADD_UP)] if what == "dA_prev" else (),
            )
    print(PASSED)
