"""Where two traces of one step first differ, and what kind of mistake gives that pattern.

The order is the computation's: each layer's forward output in turn, then the backward pass from
the loss towards the input, each layer's ``dout``, then ``dZ``, its weights' gradients and ``dx``.
A learner's mistake in layer ``k``'s backward shows first at layer ``k`` (its ``dx`` is checked
before the layer below reads it as ``dout``; a ``dout`` that is one reader's ``dx`` is not checked
twice).

The backward pass is judged layer by layer: a convolution's or pooling's gradients are compared with
npconv's backward of that layer applied to the trace's own upstream gradient (its ``dZ`` or ``dout``),
so a gradient that legitimately differs upstream does not make every layer below it "wrong". (The
forward pass needs no such care: it has no legitimate difference, so its first difference is the
learner's.)

Ties in max pooling: the course's mask marks every tied maximum of a window (``x == np.max(x)``),
npconv and PyTorch the first one. After a ReLU, tied windows of zeros are common, and photos with
flat saturated areas tie positive maxima too; the two rules then give different pooling ``dx``, which
the layers below carry on. A learner's ``dx`` that matches the course's rule counts as agreeing, and
the layers below are then held to npconv's backward of the learner's own gradients (the layers that
npconv runs in both steps, such as a ReLU or a batch norm, are npconv's code: a difference there is
the tie's, carried on).

Hints come from :mod:`npconv.testing.mistakes`, the course checks' knowledge of the classic mistakes,
evaluated on that layer's inputs (its ``A_prev``, ``W``) and the trace's own upstream ``dZ``/``dout``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .. import course
from ..functional import conv2d_backward, conv2d_forward, pool2d_backward, pool2d_forward
from ..functional._shapes import resolve_padding
from ..testing import mistakes
from ..testing._compare import close, shape_hint, value_hint


@dataclass
class Difference:
    """The first differing value: ``layer``, ``which`` (``"output"`` or a gradient), ``index`` (None
    when the shapes differ: then ``got`` and ``expected`` are the shapes), the values and a ``hint``.
    For a gradient, ``expected`` is npconv's for the trace's own upstream gradient (the reference's,
    unless a tie in max pooling made them legitimately differ)."""

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

    A convolution's or pooling's gradients are held to npconv's backward of that layer from the
    trace's own upstream gradient (see the module's docstring): a max pooling's ``dx`` by the course's
    tie rule agrees, and the layers below it are not reported for carrying it on.

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
    carried = False  # a legitimate difference upstream: npconv's own layers below carry it on
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
        record = reference.record(name) if which == "output" else _own_record(trace, reference, name)
        for k, (g, e) in enumerate(zip(_arrays(got), _arrays(expected))):
            label = which if not isinstance(expected, list) else f"{which}[{k}]"
            if g.shape != e.shape:
                hint = _hint(record, which, g, e) or "the shape is wrong"
                return Difference(name, label, None, g.shape, e.shape, hint)
            tolerance = max(atol, 1e-6, 1e-5 * float(np.abs(e).max(initial=0))) if rounded else atol
            wrong = ~np.isclose(g, e, rtol=rtol, atol=tolerance)
            if not wrong.any():
                continue
            candidates = _layer_backward(record, which)
            if candidates is None and carried:
                continue
            if candidates and any(np.allclose(g, c, rtol=rtol, atol=tolerance) for c in candidates):
                carried = True
                continue
            # held to the nearest acceptable value that a known mistake explains (a learner's mistake
            # beside the course's tie rule), else to the nearest
            options = [(c, ~np.isclose(g, c, rtol=rtol, atol=tolerance)) for c in candidates or [e]]
            options.sort(key=lambda option: int(option[1].sum()))
            explained = ((option, h) for option in options if (h := _hint(record, which, g, option[0])))
            (e, wrong), hint = next(explained, (options[0], ""))
            index = tuple(int(i) for i in np.argwhere(wrong)[0])
            hint = hint or f"{int(wrong.sum())} of {wrong.size} values differ; no known mistake gives this pattern"
            return Difference(name, label, index, float(g[index]), float(e[index]), hint)
    return None


def _own_record(trace, reference, name):
    """The reference's record of layer ``name`` with the trace's own ``dout`` and ``dZ``: the layer's
    backward as npconv computes it from what the learner's code handed it."""
    own = {w: trace.record(name).grads[w] for w in ("dout", "dZ") if w in trace.record(name).grads}
    record = reference.record(name)
    return replace(record, grads={**record.grads, **own})


def _layer_backward(record, which):
    """npconv's ``which`` of a convolution or pooling for ``record``'s inputs and upstream gradient, as
    a list of the acceptable values (a max pooling's ``dx`` by the first maximum and by the course's
    every-tie rule); None for other layers and gradients (npconv's own code in both steps) and for
    layers the course cannot express."""
    kind = type(record.layer).__name__
    if kind not in _HINTS or which not in ("dx", "dW", "db"):
        return None
    try:
        A_prev, hparameters = _course_form(record)
    except _NotCourse:
        return None
    if kind == "Conv2D":
        W = record.weights["W"]
        b = record.weights.get("b", np.zeros(W.shape[-1], W.dtype))
        _, cache = conv2d_forward(A_prev, W, b, hparameters["stride"], hparameters["pad"])
        dx, dW, db = conv2d_backward(record.grads.get("dZ", record.grads["dout"]), cache)
        return [{"dx": dx, "dW": dW, "db": db}[which]]
    if which != "dx":
        return None
    mode = record.layer.mode
    dout = record.grads["dout"]
    _, cache = pool2d_forward(A_prev, hparameters["f"], hparameters["stride"], mode=mode)
    values = [pool2d_backward(dout, cache)]
    if mode == "max":
        values.append(course.pool_backward(dout, (A_prev, hparameters), "max"))
    return values


def _arrays(value):
    return [np.asarray(v) for v in value] if isinstance(value, list) else [np.asarray(value)]


def _shape(value):
    return [np.shape(v) for v in value] if isinstance(value, list) else np.shape(value)


# ---------------------------------------------------------------- hints


def _hint(record, which, got, expected) -> str:
    """The course checks' hint for ``got`` against ``expected`` at ``record``'s layer, or ''."""
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
