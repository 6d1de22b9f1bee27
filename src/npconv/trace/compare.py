"""Where two traces of one step first differ, and what kind of mistake gives that pattern.

The order is the computation's: each layer's forward output in turn, then the backward pass from
the loss towards the input, each layer's ``dout``, then ``dZ``, its weights' gradients and ``dx``.
A learner's mistake in layer ``k``'s backward shows first at layer ``k`` (its ``dx`` is checked
before the layer below reads it as ``dout``; a ``dout`` that is one reader's ``dx`` is not checked
twice).

Ties in max pooling: the course's mask marks every tied maximum of a window (``x == np.max(x)``),
npconv and PyTorch the first one. After a ReLU, tied windows of zeros are common, and the two
conventions give different pooling ``dx`` there (the ReLU then zeroes both). A learner's ``dx`` that
matches the course's convention counts as agreeing.

Hints come from :mod:`npconv.testing.mistakes`, the course checks' knowledge of the classic mistakes,
evaluated on the reference's own inputs of that layer (its ``A_prev``, ``W``, ``dZ``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import course
from ..functional._shapes import resolve_padding
from ..testing import mistakes
from ..testing._compare import close, shape_hint, value_hint


@dataclass
class Difference:
    """The first differing value: ``layer``, ``which`` (``"output"`` or a gradient), ``index`` (None
    when the shapes differ: then ``got`` and ``expected`` are the shapes), the values and a ``hint``."""

    layer: str
    which: str
    index: tuple | None
    got: object
    expected: object
    hint: str

    def to_dict(self) -> dict:
        def plain(v):
            return list(v) if isinstance(v, tuple) else v

        return {
            "layer": self.layer,
            "which": self.which,
            "index": plain(self.index),
            "got": plain(self.got),
            "expected": plain(self.expected),
            "hint": self.hint,
        }

    def __str__(self) -> str:
        where = "" if self.index is None else f"[{', '.join(map(str, self.index))}]"
        what = "has shape" if self.index is None else "is"
        return f"layer {self.layer!r}, {self.which}{where} {what} {self.got}; expected {self.expected} ({self.hint})"


def _order(trace, reference):
    """``(layer, which)`` pairs in computation order, over the reference's layers."""
    names = reference.names
    for name in names:
        yield name, "output"
    for name in reversed(names):
        grads = reference.record(name).grads
        mine = trace.record(name).grads if trace.ran(name) else {}
        for which in reference.whiches(name):
            if which != "dx" and not (which == "dout" and reference.record(name).readers == 1):
                yield name, which
        for which in [w for w in mine if w not in grads]:
            yield name, which
        if "dx" in grads:
            yield name, "dx"


def _value(trace, name, which):
    if not trace.ran(name):
        return None
    record = trace.record(name)
    return record.output if which == "output" else record.grads.get(which)


def first_difference(trace, reference, rtol: float = 1e-6, atol: float = 1e-9) -> Difference | None:
    """The first value of ``trace`` that differs from ``reference`` (``np.isclose(got, expected, rtol,
    atol)``), in computation order, with a hint; None when everything agrees.

    A float32 step rounds each value to about 1e-7 of its size, and sums of hundreds of products
    or a batch norm's ``x - mean`` raise that past 1e-6: where either step ran in float32, the
    tolerances are at least float32's: ``rtol=1e-4``, and ``atol`` 1e-6 or 1e-5 of the array's largest
    value, whichever is larger. Values that the maths makes zero can still differ by more (a bias
    before batch norm gets a gradient of rounding noise): ``step(..., dtype="float64")`` for both
    steps compares exactly.
    """
    rounded = np.float32 in (trace.dtype, reference.dtype)
    if rounded:
        rtol = max(rtol, 1e-4)
    missing = [n for n in reference.names if n not in trace.names]
    if missing:
        raise ValueError(
            f"first_difference: the traces are of different models (this one has no layer "
            f"{missing[0]!r}); trace the same model on the same batch"
        )
    for name, which in _order(trace, reference):
        expected, got = _value(reference, name, which), _value(trace, name, which)
        if expected is None:
            return Difference(
                name, which, None, None if got is None else _shape(got), None, "the reference has no such value"
            )
        if got is None:
            return Difference(
                name,
                which,
                None,
                None,
                _shape(expected),
                f"this trace stopped before it: {trace.stopped}" if trace.stopped else "this trace has no such value",
            )
        for k, (g, e) in enumerate(zip(_arrays(got), _arrays(expected))):
            label = which if not isinstance(expected, list) else f"{which}[{k}]"
            if g.shape != e.shape:
                hint = _hint(reference, name, which, g, e) or "the shape is wrong"
                return Difference(name, label, None, g.shape, e.shape, hint)
            tolerance = max(atol, 1e-6, 1e-5 * float(np.abs(e).max(initial=0))) if rounded else atol
            wrong = ~np.isclose(g, e, rtol=rtol, atol=tolerance)
            if wrong.any() and _course_ties(reference.record(name), which, g, rtol, tolerance):
                continue
            if wrong.any():
                index = tuple(int(i) for i in np.argwhere(wrong)[0])
                hint = _hint(reference, name, which, g, e) or (
                    f"{int(wrong.sum())} of {wrong.size} values differ; no known mistake gives this pattern"
                )
                return Difference(name, label, index, float(g[index]), float(e[index]), hint)
    return None


def _course_ties(record, which, got, rtol, atol) -> bool:
    """``got`` is a max pooling's ``dx`` by the course's tie rule (every tied maximum gets the gradient)."""
    if type(record.layer).__name__ != "MaxPooling2D" or which != "dx":
        return False
    try:
        A_prev, hparameters = _course_form(record)
    except _NotCourse:
        return False
    ties = course.pool_backward(record.grads["dout"], (A_prev, hparameters), "max")
    return bool(np.allclose(got, ties, rtol=rtol, atol=atol))


def _arrays(value):
    return [np.asarray(v) for v in value] if isinstance(value, list) else [np.asarray(value)]


def _shape(value):
    return [np.shape(v) for v in value] if isinstance(value, list) else np.shape(value)


# ---------------------------------------------------------------- hints


def _hint(reference, name, which, got, expected) -> str:
    """The course checks' hint for ``got`` against ``expected`` at this layer, or ''."""
    record = reference.record(name)
    kind = type(record.layer).__name__
    try:
        hints = _HINTS[kind](record, which, expected) if kind in _HINTS else None
    except _NotCourse:
        hints = None
    if hints is None:
        return ""
    shape_hints, shape_rule, value_hints, ratios, regions = hints
    if got.shape != expected.shape:
        return shape_hint(got.shape, shape_hints, shape_rule) or shape_rule
    wrong = ~close(got, expected)
    return (value_hint(got, expected, wrong, value_hints, ratios, regions) or "").removeprefix("is wrong: ")


class _NotCourse(Exception):
    """The layer has no course form (rectangular kernels, uneven padding): no course hints."""


def _course_form(record):
    """``(A_prev, hparameters)`` of the layer as the course's functions take them."""
    layer, x = record.layer, record.inputs[0]
    size = layer.kernel_size if hasattr(layer, "kernel_size") else layer.pool_size
    pads = resolve_padding(layer.padding, x.shape[1:3], size, layer.strides)
    if size[0] != size[1] or layer.strides[0] != layer.strides[1] or len({*pads[0], *pads[1]}) > 1:
        raise _NotCourse
    pad, f, s = pads[0][0], size[0], layer.strides[0]
    if hasattr(layer, "kernel_size"):
        return x, {"stride": s, "pad": pad}
    if pad:
        raise _NotCourse
    return x, {"f": f, "stride": s}


def _activated(record, candidates):
    """Candidates for ``Z`` as candidates for the layer's output (its activation applied)."""
    activation = record.layer.activation
    if activation.name == "linear":
        return candidates
    return [(lambda c=c: activation.forward(c())[0], hint) for c, hint in candidates]


def _conv_hints(record, which, expected):
    A_prev, hparameters = _course_form(record)
    W = record.weights["W"]
    b = record.weights.get("b", np.zeros(W.shape[-1], W.dtype)).reshape(1, 1, 1, -1)
    if which == "output":
        values = _activated(record, mistakes.conv_value_hints(A_prev, W, b, hparameters, record.z))
        return mistakes.conv_shape_hints(A_prev, W, hparameters), mistakes.CONV_HINT, values, {}, []
    if which not in ("dx", "dW", "db"):
        return None
    course_name = {"dx": "dA_prev", "dW": "dW", "db": "db"}[which]
    shape_hints, ratios, region = mistakes.conv_backward_hints(A_prev, W, hparameters)
    values = mistakes.conv_backward_value_hints(record.grads["dZ"], (A_prev, W, b, hparameters))[course_name]
    if which == "db":  # the trace's db is (n_C,); any other shape is a sum over the wrong axes
        values = [(lambda c=c: c().reshape(-1), hint) for c, hint in values]
        return [], mistakes.DB_AXES, values, ratios, []
    regions = [(region, mistakes.ADD_UP)] if which == "dx" else []
    return shape_hints[course_name], "", values, ratios, regions


def _pool_hints(record, which, expected):
    A_prev, hparameters = _course_form(record)
    mode = record.layer.mode
    if which == "output":
        return (
            mistakes.pool_shape_hints(A_prev, hparameters["f"], hparameters["stride"]),
            mistakes.POOL_HINT,
            mistakes.pool_value_hints(A_prev, hparameters, mode, expected),
            {},
            [],
        )
    if which != "dx":
        return None
    values, ratios, shapes, regions = mistakes.pool_backward_hints(record.grads["dout"], (A_prev, hparameters), mode)
    return shapes, "", values, ratios, regions


_HINTS = {"Conv2D": _conv_hints, "MaxPooling2D": _pool_hints, "AveragePooling2D": _pool_hints}
