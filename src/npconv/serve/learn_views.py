"""What the ``/learn`` page draws, as small JSON: one 2-D slice of an array, and a gradient entry's terms.

A map is the one slice the page shows, never the whole array: an activation ``(1, n_H, n_W, C)``
shows channel ``c`` as an ``n_H x n_W`` image; a convolution kernel ``(f, f, C_prev, C)`` shows
``[:, :, c_prev, c]``; a vector (a Dense layer's activations, a bias, a column ``W[:, j]`` of a Dense
kernel) is wrapped row by row into a near-square grid. Values go as lists rounded to 4 significant
digits (a 64 x 64 map is about 40 kB), with an ``index`` template that turns a clicked cell back into
the array's index: ``"r"`` and ``"c"`` stand for the cell's row and column, ``"k"`` for its position
in a wrapped vector (``r * cols + c``).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import expected
from ..functional._shapes import resolve_padding

#: Terms sent for one entry, the largest products first (``count`` says how many there are).
MAX_TERMS = 1000


def rounded(values) -> list:
    """Floats rounded to 4 significant digits (None for NaN), as the shortest decimal JSON writes."""
    return [None if math.isnan(v) else float(f"{v:.4g}") for v in np.asarray(values, np.float64).ravel().tolist()]


def pick(value: int, count: int, what: str) -> int:
    """``value`` checked against ``range(count)``; out of range names the count."""
    if not 0 <= value < count:
        raise IndexError(expected(what, f"a number from 0 to {count - 1}", value))
    return value


def array_map(array: np.ndarray, label: str, channel: int = 0, in_channel: int = 0, batch_first: bool = True) -> dict:
    """One shown slice of ``array`` (see the module docstring).

    ``batch_first``: an activation or its gradient ``(m, ...)`` (sample 0 shown); else a weight:
    ``(f, f, C_prev, C)`` shows ``[:, :, in_channel, channel]``, ``(n_in, n_out)`` column ``channel``.
    """
    array = np.asarray(array)
    shape = list(array.shape)
    if batch_first and array.ndim == 4:
        c = pick(channel, shape[3], f"channel of {label} {tuple(shape)}")
        return _image(array[0, :, :, c], label, shape, [0, "r", "c", c])
    if batch_first:
        flat = array[0].ravel()
        return _wrapped(flat, label, shape, [0, "k"] if array.ndim == 2 else None)
    if array.ndim == 4:
        c = pick(channel, shape[3], f"filter of {label} {tuple(shape)}")
        c_prev = pick(in_channel, shape[2], f"input channel of {label} {tuple(shape)}")
        return _image(array[:, :, c_prev, c], label, shape, ["r", "c", c_prev, c])
    if array.ndim == 2:
        j = pick(channel, shape[1], f"unit of {label} {tuple(shape)}")
        return _wrapped(array[:, j], label, shape, ["k", j])
    return _wrapped(array.ravel(), label, shape, ["k"] if array.ndim == 1 else None)


def _stats(values: np.ndarray) -> dict:
    finite = values[np.isfinite(values)]
    return {"min": float(finite.min()) if finite.size else 0.0, "max": float(finite.max()) if finite.size else 0.0}


def _image(plane: np.ndarray, label: str, shape: list, index: list) -> dict:
    return {
        "label": label,
        "shape": shape,
        "rows": plane.shape[0],
        "cols": plane.shape[1],
        "index": index,
        "values": rounded(plane),
        **_stats(plane.astype(np.float64)),
    }


def _wrapped(vector: np.ndarray, label: str, shape: list, index) -> dict:
    n = vector.size
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    values = rounded(vector) + [None] * (rows * cols - n)
    return {
        "label": label,
        "shape": shape,
        "rows": rows,
        "cols": cols,
        "index": index,
        "count": n,
        "values": values,
        **_stats(vector.astype(np.float64)),
    }


def parse_index(text: str) -> tuple[int, ...]:
    """``"0,1,2,3"`` as ``(0, 1, 2, 3)``; anything else is a ValueError saying the form."""
    try:
        return tuple(int(part) for part in str(text).split(","))
    except ValueError:
        raise ValueError(expected("index", "integers separated by commas, e.g. 0,1,2,3", repr(text))) from None


def terms_answer(trace, name: str, which: str, index) -> dict:
    """``trace.terms(name, which, index)`` for the page: the largest :data:`MAX_TERMS` products, each
    with the input window and the kernel tap it reads (``window``: top, left, height, width in the
    layer's unpadded input; ``tap``: the kernel position or the offset in a pooling window), and the sum
    of all of them beside the gradient's own value."""
    terms = trace.terms(name, which, index)
    products = terms.products
    order = np.argsort(-np.abs(products), kind="stable")[:MAX_TERMS]
    record = trace.record(name)
    windows, taps = _windows(record, which, terms, order)
    return {
        "layer": name,
        "which": which,
        "index": list(terms.index),
        "a_label": terms.a_label,
        "b_label": terms.b_label,
        "count": len(terms),
        "shown": len(order),
        "a": rounded(terms.a[order]),
        "b": rounded(terms.b[order]),
        "product": rounded(products[order]),
        "a_index": terms.a_index[order].tolist(),
        "b_index": terms.b_index[order].tolist(),
        "window": windows,
        "tap": taps,
        "sum": terms.sum,
        "value": terms.value,
        "shown_sum": float(np.sum(products[order])),
    }


def _windows(record, which: str, terms, order) -> tuple[list | None, list | None]:
    """Per shown term: the input window of the output position it reads and the tap inside it."""
    layer = record.layer
    size = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    if size is None:
        return None, None
    (top, _), (left, _) = resolve_padding(layer.padding, record.inputs[0].shape[1:3], size, layer.strides)
    (sh, sw), (fh, fw) = layer.strides, size
    kind = type(layer).__name__
    if kind == "Conv2D" and which == "dW":  # b = dZ[n, h, w, f]; tap = (i, j) of the entry
        positions, tap_of = terms.b_index[order][:, 1:3], lambda k: list(terms.index[:2])
    elif kind == "Conv2D" and which == "dx" or which == "dx":  # a = W[i, j, c, f]; b = dZ[n, h', w', f]
        positions, tap_of = terms.b_index[order][:, 1:3], lambda k: terms.a_index[order][k, :2].tolist()
    else:  # db: no window
        return None, None
    windows = [[int(h) * sh - top, int(w) * sw - left, fh, fw] for h, w in positions]
    return windows, [tap_of(k) for k in range(len(order))]
