"""npconv.testing: npconv.course passes every check, and a catalogue of typical learner mistakes is
caught, each with the hint that names it.

The "learner" functions below are the course's loops written the way a learner writes them, with one
mistake switched on by ``mistake``; the others wrap npconv.course to change one thing.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from npconv import course, testing
from npconv.testing import (
    conv_backward_test,
    conv_forward_test,
    conv_single_step_test,
    create_mask_from_window_test,
    distribute_value_test,
    pool_backward_test,
    pool_forward_test,
    zero_pad_test,
)

CHECKS = [
    (zero_pad_test, course.zero_pad),
    (conv_single_step_test, course.conv_single_step),
    (conv_forward_test, course.conv_forward),
    (pool_forward_test, course.pool_forward),
    (conv_backward_test, course.conv_backward),
    (create_mask_from_window_test, course.create_mask_from_window),
    (distribute_value_test, course.distribute_value),
    (pool_backward_test, course.pool_backward),
]


@pytest.mark.parametrize("check, reference", CHECKS, ids=[c.__name__ for c, _ in CHECKS])
def test_the_course_passes_with_the_green_line(check, reference, capsys):
    check(reference)
    assert capsys.readouterr().out == "\033[92mAll tests passed!\033[0m\n"


def test_star_import_gives_the_course_names():
    namespace = {}
    exec("from npconv.testing import *", namespace)
    assert {
        "zero_pad_test",
        "conv_single_step_test",
        "conv_forward_test",
        "pool_forward_test",
        "conv_backward_test",
        "create_mask_from_window_test",
        "distribute_value_test",
        "pool_backward_test",
        "summary",
        "comparator",
    } <= set(namespace)
    assert set(testing.__all__) <= set(namespace)


def named(function, name):
    function.__name__ = name
    return function


# ---------------------------------------------------------------- learners' loops, one mistake each


def learner_conv_forward(A_prev, W, b, hparameters, mistake=None):
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    f, _, _, n_C = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    size_stride = 1 if mistake == "stride ignored" else stride
    n_H = (n_H_prev + 2 * pad - f) // size_stride + (0 if mistake == "no + 1" else 1)
    n_W = (n_W_prev + 2 * pad - f) // size_stride + (0 if mistake == "no + 1" else 1)
    Z = np.zeros((m, n_H, n_W, n_C), dtype=np.float32 if mistake == "float32" else A_prev.dtype)
    A_prev_pad = course.zero_pad(A_prev, pad)
    step = 1 if mistake in ("stride ignored", "window does not move") else stride
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                a_slice = A_prev_pad[i, h * step : h * step + f, w * step : w * step + f, :]
                for c in range(n_C):
                    bias = 0.0 if mistake == "bias forgotten" else float(b[0, 0, 0, c])
                    Z[i, h, w, c] = np.sum(a_slice * W[:, :, :, c]) + bias
    if mistake == "cache missing":
        return Z
    cached = A_prev_pad if mistake == "padded cache" else A_prev
    return Z, (cached, W, b, hparameters)


def learner_conv_backward(dZ, cache, mistake=None):
    A_prev, W, b, hparameters = cache
    dA_prev, dW, db = course.conv_backward(dZ, cache)
    if mistake == "db on the wrong axes":
        db = np.sum(dZ, axis=(1, 2, 3))
    if mistake == "db doubled":
        db = 2 * db
    if mistake == "dW averaged":
        dW = dW / A_prev.shape[0]
    if mistake == "padding left on":
        dA_prev = course.zero_pad(dA_prev, hparameters["pad"])
    return dA_prev, dW, db


def learner_pool_forward(A_prev, hparameters, mode="max", mistake=None):
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    f, stride = hparameters["f"], hparameters["stride"]
    n_H, n_W = (n_H_prev - f) // stride + 1, (n_W_prev - f) // stride + 1
    A = np.zeros((m, n_H, n_W, n_C))
    if mistake == "modes swapped":
        mode = "average" if mode == "max" else "max"
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    channels = slice(None) if mistake == "across channels" else c
                    window = A_prev[i, h * stride : h * stride + f, w * stride : w * stride + f, channels]
                    if mode == "max":
                        A[i, h, w, c] = np.max(window)
                    else:
                        A[i, h, w, c] = np.sum(window) if mistake == "sum, not mean" else np.mean(window)
    return A, (A_prev, hparameters)


def learner_pool_backward(dA, cache, mode="max", mistake=None):
    A_prev, hparameters = cache
    f, stride = hparameters["f"], hparameters["stride"]
    dA_prev = np.zeros(A_prev.shape)
    for i, h, w, c in np.ndindex(*dA.shape):
        rows, cols = slice(h * stride, h * stride + f), slice(w * stride, w * stride + f)
        if mode == "max":
            window = A_prev[i, rows, cols, c]
            mask = np.ones_like(window, dtype=bool) if mistake == "mask all True" else window == np.max(window)
            contribution = mask * dA[i, h, w, c]
        else:
            divisor = 1 if mistake == "average not divided" else f * f
            contribution = np.ones((f, f)) * dA[i, h, w, c] / divisor
        if mistake == "= not +=":
            dA_prev[i, rows, cols, c] = contribution
        else:
            dA_prev[i, rows, cols, c] += contribution
    return dA_prev


def mistaken(function, mistake):
    return named(lambda *args: function(*args, mistake=mistake), function.__name__.replace("learner_", ""))


def learner_stub(*args):  # an exercise cell left as it was
    return None


# ---------------------------------------------------------------- the catalogue

CATALOGUE = [
    # (mistake, check, learner's function, words the hint must contain)
    (
        "stride ignored",
        conv_forward_test,
        mistaken(learner_conv_forward, "stride ignored"),
        r"with stride 2 and pad 1 Z's shape should be \(2, 3, 4, 8\); got \(2, 5, 7, 8\): is the stride used\? "
        r"n_H = int\(\(n_H_prev - f \+ 2 \* pad\) / stride\) \+ 1",
    ),
    (
        "window does not move by the stride",
        conv_forward_test,
        mistaken(learner_conv_forward, "window does not move"),
        r"vert_start = h \* stride",
    ),
    ("off-by-one output size", conv_forward_test, mistaken(learner_conv_forward, "no + 1"), r"off by one"),
    (
        "bias forgotten in conv_forward",
        conv_forward_test,
        mistaken(learner_conv_forward, "bias forgotten"),
        r"bias b\[:, :, :, c\] is not added",
    ),
    (
        "float32 truncation",
        conv_forward_test,
        mistaken(learner_conv_forward, "float32"),
        r"Z has dtype float32 but the inputs are float64",
    ),
    (
        "cache missing",
        conv_forward_test,
        mistaken(learner_conv_forward, "cache missing"),
        r"should return \(Z, cache\); got a single ndarray: conv_backward needs the cache",
    ),
    (
        "padded input cached",
        conv_forward_test,
        mistaken(learner_conv_forward, "padded cache"),
        r"the cache holds the padded input",
    ),
    (
        "filter flipped",
        conv_forward_test,
        named(
            lambda A, W, b, hp: course.conv_forward(A, W[::-1, ::-1].copy(), b, hp)[:1] + ((A, W, b, hp),),
            "conv_forward",
        ),
        r"the filter is flipped",
    ),
    (
        "padding on the channel axis",
        zero_pad_test,
        named(lambda X, pad: np.pad(X, ((0, 0), (pad, pad), (pad, pad), (pad, pad))), "zero_pad"),
        r"X_pad's shape should be \(4, 9, 9, 2\); got \(4, 9, 9, 8\): the channel axis is padded too",
    ),
    (
        "padding as if channels came first",
        zero_pad_test,
        named(lambda X, pad: np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad))), "zero_pad"),
        r"channels last",
    ),
    (
        "padding with edge values",
        zero_pad_test,
        named(lambda X, pad: np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge"), "zero_pad"),
        r"the border should be zeros",
    ),
    (
        "bias forgotten in conv_single_step",
        conv_single_step_test,
        named(lambda a, W, b: np.sum(a * W), "conv_single_step"),
        r"the bias b is not added",
    ),
    (
        "bias added to every product",
        conv_single_step_test,
        named(lambda a, W, b: np.sum(a * W + b), "conv_single_step"),
        r"add it once, after the sum",
    ),
    (
        "bias kept as an array",
        conv_single_step_test,
        named(lambda a, W, b: np.sum(a * W) + b, "conv_single_step"),
        r"shape \(1, 1, 1\).*b.item\(\)",
    ),
    (
        "float32 single step",
        conv_single_step_test,
        named(lambda a, W, b: np.float32(np.sum(a * W) + b.item()), "conv_single_step"),
        r"float32",
    ),
    (
        "float(b) on NumPy 2",
        conv_single_step_test,
        named(lambda a, W, b: np.sum(a * W) + float(b), "conv_single_step"),
        r"use b.item\(\)",
    ),
    (
        "max and average swapped",
        pool_forward_test,
        mistaken(learner_pool_forward, "modes swapped"),
        r"mode 'max' computes the average: are the 'max' and 'average' branches swapped\?",
    ),
    (
        "pooled across channels",
        pool_forward_test,
        mistaken(learner_pool_forward, "across channels"),
        r"each channel is pooled on its own",
    ),
    (
        "average not divided in pool_forward",
        pool_forward_test,
        mistaken(learner_pool_forward, "sum, not mean"),
        r"mode 'average' A is 9 times the expected value: .*np.mean, not np.sum",
    ),
    (
        "gradient summed on the wrong axis",
        conv_backward_test,
        mistaken(learner_conv_backward, "db on the wrong axes"),
        r"db's shape should be \(1, 1, 1, 8\); got \(2,\): .*axes 0, 1, 2",
    ),
    (
        "bias gradient doubled",
        conv_backward_test,
        mistaken(learner_conv_backward, "db doubled"),
        r"db is 2 times the expected value: counted twice",
    ),
    (
        "dW averaged over the examples",
        conv_backward_test,
        mistaken(learner_conv_backward, "dW averaged"),
        r"dW is 0.5 times the expected value: divided by m",
    ),
    (
        "padding left on dA_prev",
        conv_backward_test,
        mistaken(learner_conv_backward, "padding left on"),
        r"dA_prev's shape should be \(2, 5, 7, 4\); got \(2, 7, 9, 4\): cut the padding",
    ),
    (
        "mask not a max mask (all True)",
        create_mask_from_window_test,
        named(lambda x: x >= np.min(x), "create_mask_from_window"),
        r"the mask is all True",
    ),
    (
        "mask marks the minimum",
        create_mask_from_window_test,
        named(lambda x: x == np.min(x), "create_mask_from_window"),
        r"it marks the minimum",
    ),
    (
        "average not divided in distribute_value",
        distribute_value_test,
        named(lambda dz, shape: np.ones(shape) * dz, "distribute_value"),
        r"a is 4 times the expected value: .*divide it by the window's size",
    ),
    (
        "max-pool backward mask all True",
        pool_backward_test,
        mistaken(learner_pool_backward, "mask all True"),
        r"every entry of a window gets the gradient",
    ),
    (
        "average-pool backward not divided",
        pool_backward_test,
        mistaken(learner_pool_backward, "average not divided"),
        r"dA_prev is 4 times the expected value: a factor of f \* f",
    ),
    (
        "overlapping windows assigned, not added",
        pool_backward_test,
        mistaken(learner_pool_backward, "= not +="),
        r"use \+=, not =",
    ),
    (
        "pool_backward modes swapped",
        pool_backward_test,
        named(
            lambda dA, cache, mode="max": course.pool_backward(dA, cache, "average" if mode == "max" else "max"),
            "pool_backward",
        ),
        r"are the branches swapped",
    ),
    ("exercise left as a stub", zero_pad_test, named(learner_stub, "zero_pad"), r"YOUR CODE HERE"),
]


@pytest.mark.parametrize("mistake, check, learner, hint", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_each_mistake_is_caught_with_its_hint(mistake, check, learner, hint, capsys):
    with pytest.raises(AssertionError) as failure:
        check(learner)
    message = str(failure.value)
    assert re.search(hint, message), f"{mistake}: the message does not give the hint\n{message}"
    assert re.match(r"(the course's|random case)", message), f"the message does not name the case\n{message}"
    assert "All tests passed" not in capsys.readouterr().out


def test_the_catalogue_covers_the_learners_loops_without_mistakes():
    """The learners' loops are right when no mistake is switched on, so each failure above is its mistake."""
    conv_forward_test(named(learner_conv_forward, "conv_forward"))
    conv_backward_test(named(learner_conv_backward, "conv_backward"))
    pool_forward_test(named(learner_pool_forward, "pool_forward"))
    pool_backward_test(named(learner_pool_backward, "pool_backward"))


def test_an_exception_names_the_case_and_keeps_its_cause():
    def conv_backward(dZ, cache):  # the course's da_prev_pad[pad:-pad], empty when pad is 0
        pad = cache[3]["pad"]
        dA_prev, dW, db = course.conv_backward(dZ, cache)
        dA_pad = course.zero_pad(dA_prev, pad)
        dA_prev[:] = dA_pad[:, pad:-pad, pad:-pad, :]
        return dA_prev, dW, db

    with pytest.raises(AssertionError, match=r"with stride 2 and pad 0 conv_backward raised ValueError") as failure:
        conv_backward_test(conv_backward)
    assert isinstance(failure.value.__cause__, ValueError)


def test_changing_an_input_in_place_is_reported():
    def zero_pad(X, pad):
        X *= 1.5  # scales the caller's array
        return course.zero_pad(X, pad)

    with pytest.raises(AssertionError, match=r"zero_pad changed its argument 1 in place"):
        zero_pad_test(zero_pad)


def test_integer_masks_are_accepted_as_the_course_does():
    create_mask_from_window_test(named(lambda x: (x == np.max(x)).astype(int), "create_mask_from_window"))
