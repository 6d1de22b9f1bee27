"""The classic mistakes in the course's step functions, as hints: what a wrong answer looks like.

Each builder takes the inputs of one call and returns hints in the forms
:func:`~npconv.testing._compare.explain` reads: ``(shape, hint)`` pairs for a wrong shape,
``(lazy candidate, hint)`` pairs for what a known mistake computes, ``{ratio: hint}`` and
``(mask, hint)`` regions. The course's checks (:mod:`.conv`, :mod:`.pool`) and the network trace
(:mod:`npconv.trace.compare`) share them: ``=`` for ``+=``, padding not removed from ``dA_prev``, the
stride ignored, a window's end off by one, ``db`` not summed, and the rest.
"""

from __future__ import annotations

import numpy as np

from .. import course
from ._compare import overlap

CONV_HINT = "n_H = int((n_H_prev - f + 2 * pad) / stride) + 1, and the same for n_W"
POOL_HINT = "n_H = int(1 + (n_H_prev - f) / stride), and the same for n_W"
MOVE_HINT = "the window does not move by the stride: vert_start = h * stride, horiz_start = w * stride"
ADD_UP = "where windows overlap the gradients add up: use +=, not ="
LAST_ONLY = "only the last window's term is kept: accumulate with +=, not ="
OFF_BY_ONE = "a window's end is off by one: vert_end = vert_start + f, horiz_end = horiz_start + f"
CUT_PADDING = (
    "cut the padding off dA_prev_pad: da_prev_pad[pad:pad + n_H_prev, pad:pad + n_W_prev, :] "
    "(with pad 0, [pad:-pad] is empty)"
)
DB_AXES = (
    "db has b's shape (1, 1, 1, n_C): sum dZ over the examples, rows and columns (axes 0, 1, 2) "
    "and keep the channel axis"
)


def other_mode(mode: str) -> str:
    return "average" if mode == "max" else "max"


# ---------------------------------------------------------------- convolution


def conv_shape_hints(A_prev, W, hparameters):
    """Wrong shapes of ``conv_forward``'s ``Z`` and the mistakes that give them."""
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f, _, _, n_C = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]

    def shape(size, channels=n_C):
        return (m, size(n_H_prev), size(n_W_prev), channels)

    return [
        (shape(lambda n: n + 2 * pad - f + 1), "is the stride used?"),
        (shape(lambda n: (n - f) // stride + 1), "is the padding counted?"),
        (shape(lambda n: (n + pad - f) // stride + 1), "is the padding counted on both sides (2 * pad)?"),
        (shape(lambda n: (n + 2 * pad - f) // stride), "off by one?"),
        (shape(lambda n: (n + 2 * pad - f) // stride + 2), "off by one?"),
        (shape(lambda n: -(-(n + 2 * pad - f) // stride) + 1), "rounded up? int() rounds down."),
        (
            shape(lambda n: (n + 2 * pad - f) // stride + 1, n_C_prev),
            "the output has one channel per filter, n_C = W.shape[3].",
        ),
    ]


def conv_value_hints(A_prev, W, b, hparameters, Z_expected):
    """What ``conv_forward``'s usual mistakes compute, lazily."""
    n_H, n_W = Z_expected.shape[1:3]
    stride1 = {"pad": hparameters["pad"], "stride": 1}
    hints = [
        (lambda: Z_expected - b, "the bias b[:, :, :, c] is not added"),
        (
            lambda: course.conv_forward(A_prev, W[::-1, ::-1], b, hparameters)[0],
            "the filter is flipped; the course's convolution multiplies a_slice_prev by W as it is",
        ),
    ]
    if hparameters["stride"] > 1:
        hints.append((lambda: course.conv_forward(A_prev, W, b, stride1)[0][:, :n_H, :n_W], MOVE_HINT))
    return hints


def conv_backward_hints(A_prev, W, hparameters):
    """``(shape hints by gradient, ratio hints, overlap region)`` for conv_backward's usual mistakes."""
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    n_C, pad = W.shape[3], hparameters["pad"]
    shape_hints = {
        "dA_prev": [
            ((m, n_H_prev + 2 * pad, n_W_prev + 2 * pad, n_C_prev), CUT_PADDING),
            ((m, 0, 0, n_C_prev), CUT_PADDING),
        ],
        "dW": [(W.shape[:3], "one gradient per filter: dW[:, :, :, c] += a_slice * dZ[i, h, w, c]")],
        "db": [(shape, DB_AXES) for shape in [(n_C,), (m,), (1, 1, 1, 1), (), (m, n_C)]],
    }
    ratios = {
        1 / m: "divided by m: the course's gradients are sums over the examples, not means",
        2.0: "counted twice: is it accumulated both inside the loop and again after it?",
    }
    region = overlap((n_H_prev, n_W_prev), W.shape[0], hparameters["stride"], pad)
    return shape_hints, ratios, region


def conv_backward_value_hints(dZ, cache):
    """``{gradient: [(lazy candidate, hint)]}``: conv_backward with the stride ignored, or with ``=``
    where ``+=`` accumulates ``dW`` and ``db`` (only the last window's term is left)."""
    A_prev, W, b, hparameters = cache
    stride, pad, f = hparameters["stride"], hparameters["pad"], W.shape[0]
    hints = {"dA_prev": [], "dW": [], "db": []}
    if stride > 1:
        unmoved = (A_prev, W, b, {"stride": 1, "pad": pad})
        for k, name in enumerate(("dA_prev", "dW", "db")):
            hints[name].append((lambda k=k: course.conv_backward(dZ, unmoved)[k], MOVE_HINT))
    m, n_H, n_W, _ = dZ.shape
    h, w = (n_H - 1) * stride, (n_W - 1) * stride
    last_window = course.zero_pad(A_prev, pad)[m - 1, h : h + f, w : w + f, :]
    hints["dW"].append((lambda: last_window[..., None] * dZ[m - 1, n_H - 1, n_W - 1], LAST_ONLY))
    hints["db"].append(
        (
            lambda: dZ[m - 1, n_H - 1, n_W - 1].reshape(np.shape(b)),
            "db keeps only the last dZ: accumulate with +=, not =",
        )
    )
    return hints


# ---------------------------------------------------------------- pooling


def pool_shape_hints(A_prev, f, stride):
    """Wrong shapes of ``pool_forward``'s ``A`` and the mistakes that give them."""
    m, n_H_prev, n_W_prev, n_C = A_prev.shape

    def shape(size):
        return (m, size(n_H_prev), size(n_W_prev), n_C)

    return [
        (shape(lambda n: n - f + 1), "is the stride used?"),
        (shape(lambda n: (n - f) // stride), "off by one?"),
        (shape(lambda n: (n - f) // stride + 2), "off by one?"),
        (shape(lambda n: (n - 1) // stride + 1), "is the window size f used?"),
        (shape(lambda n: n), "pooling shrinks the input."),
    ]


def pool_value_hints(A_prev, hparameters, mode, expected):
    """What ``pool_forward``'s usual mistakes compute, lazily."""
    reduce = np.max if mode == "max" else np.mean
    n_H, n_W = expected.shape[1:3]
    f, stride = hparameters["f"], hparameters["stride"]
    hints = [
        (
            lambda: course.pool_forward(A_prev, hparameters, other_mode(mode))[0],
            f"mode {mode!r} computes the {other_mode(mode)}: are the 'max' and 'average' branches swapped?",
        ),
        (
            lambda: np.broadcast_to(reduce(expected, axis=3, keepdims=True), expected.shape),
            "each channel is pooled on its own: a_prev_slice = A_prev[i, vert_start:vert_end, "
            "horiz_start:horiz_end, c]",
        ),
    ]
    if stride > 1:
        hints.append((lambda: course.pool_forward(A_prev, {"f": f, "stride": 1}, mode)[0][:, :n_H, :n_W], MOVE_HINT))
    if f > 1:
        hints.append(
            (lambda: course.pool_forward(A_prev, {"f": f - 1, "stride": stride}, mode)[0][:, :n_H, :n_W], OFF_BY_ONE)
        )
    return hints


def pool_backward_hints(dA, cache, mode):
    """``(value hints, ratio hints, shape hints, region hints)`` for pool_backward's usual mistakes."""
    A_prev, hparameters = cache
    f, stride = hparameters["f"], hparameters["stride"]
    hints = [
        (
            lambda: course.pool_backward(dA, cache, other_mode(mode)),
            f"mode {mode!r} computes the {other_mode(mode)}'s gradient: are the branches swapped?",
        )
    ]
    if mode == "max":
        hints.append(
            (
                lambda: course.pool_backward(dA, cache, "average") * f * f,
                "every entry of a window gets the gradient: the mask should be True only at "
                "the window's maximum, create_mask_from_window(a_prev_slice)",
            )
        )
        if f > 1:  # (average's off-by-one window cannot take distribute_value's (f, f): it raises)
            hints.append((lambda: course.pool_backward(dA, (A_prev, {"f": f - 1, "stride": stride}), mode), OFF_BY_ONE))
        ratios = {}
    else:
        ratios = {
            f * f: f"a factor of f * f = {f * f}: distribute_value divides dA[i, h, w, c] by the window's size",
            1 / (f * f): f"divided by f * f = {f * f} twice",
        }
    if stride > 1:
        hints.append((lambda: course.pool_backward(dA, (A_prev, {"f": f, "stride": 1}), mode), MOVE_HINT))
    shapes = [(dA.shape, "dA_prev has A_prev's shape: start from np.zeros(A_prev.shape)")]
    regions = [(overlap(A_prev.shape[1:3], f, stride, 0), ADD_UP)]
    return hints, ratios, shapes, regions
