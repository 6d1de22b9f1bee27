"""Argument normalisation shared by every kernel: integer pairs, padding rules, output sizes."""

from __future__ import annotations

import functools

import numpy as np

from ..errors import ShapeError, check_choice, check_float_array, expected

Pair = tuple[int, int]
Padding2D = tuple[Pair, Pair]  # ((top, bottom), (left, right))


def as_pair(value, name: str, minimum: int = 1) -> Pair:
    """``3 -> (3, 3)``; ``(2, 3) -> (2, 3)``; refuses values below ``minimum``."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(expected(name, "an integer or a pair of integers", value))
        pair = tuple(value)
    else:
        pair = (value, value)
    for v in pair:
        if isinstance(v, bool) or not hasattr(v, "__index__") or int(v) < minimum:
            raise ValueError(expected(name, f"an integer or a pair of integers >= {minimum}", value))
    return int(pair[0]), int(pair[1])


def explicit_padding(padding, name: str = "padding") -> Padding2D:
    """``p``, ``(ph, pw)`` or ``((top, bottom), (left, right))`` as ``((top, bottom), (left, right))``."""
    if isinstance(padding, (list, tuple)) and len(padding) == 2 and all(isinstance(p, (list, tuple)) for p in padding):
        return as_pair(padding[0], name, minimum=0), as_pair(padding[1], name, minimum=0)
    ph, pw = as_pair(padding, name, minimum=0)
    return (ph, ph), (pw, pw)


def resolve_padding(padding, in_size: Pair, kernel: Pair, stride: Pair) -> Padding2D:
    """Turn ``"valid"``, ``"same"`` (TensorFlow's rule) or explicit padding into per-side amounts.

    TensorFlow's ``"same"``: ``out = ceil(in / s)``; total ``max((out - 1) * s + f - in, 0)``,
    ``total // 2`` before and the rest after (an even kernel pads one more at the bottom/right).
    """
    if isinstance(padding, str):
        mode = check_choice(padding, "padding", {"valid", "same"})
        if mode == "valid":
            return (0, 0), (0, 0)
        sides = []
        for n, f, s in zip(in_size, kernel, stride):
            out = -(-n // s)
            total = max((out - 1) * s + f - n, 0)
            sides.append((total // 2, total - total // 2))
        return sides[0], sides[1]
    return explicit_padding(padding)


def output_size(in_size: Pair, kernel: Pair, stride: Pair, pads: Padding2D, what: str) -> Pair:
    """``floor((n + p_before + p_after - f) / s) + 1`` per axis; refuses kernels larger than the input."""
    out = []
    for axis, n, f, s, (pb, pa) in zip(("height", "width"), in_size, kernel, stride, pads):
        padded = n + pb + pa
        if f > padded:
            raise ShapeError(
                expected(
                    f"{what} {axis}",
                    f"a window of at most the padded input's {padded} pixels",
                    f"{f}",
                    "Use a smaller kernel/pool size, more padding (padding='same'), or a larger input.",
                )
            )
        out.append((padded - f) // s + 1)
    return out[0], out[1]


def check_dout(dout, shape: tuple[int, ...]) -> np.ndarray:
    """Refuse an upstream gradient whose shape differs from the forward output's.

    Elementwise backwards would otherwise broadcast a wrong ``dout`` silently.
    """
    dout = check_float_array(dout, "dout")
    if dout.shape != shape:
        raise ShapeError(
            expected(
                "dout",
                f"an array of the forward output's shape {shape}",
                dout,
                "Pass the gradient of the loss with respect to this kernel's output.",
            )
        )
    return dout


def window_geometry(in_size: Pair, kernel: Pair, stride, padding, what: str) -> tuple[Pair, Padding2D, Pair]:
    """``(stride, pads, out_size)``: :func:`as_pair`, :func:`resolve_padding` and :func:`output_size`
    of a window sliding over ``in_size``, checked as they check, and remembered for arguments of
    Python's own ints and strings (a layer asks the same every batch: a few microseconds each)."""
    if _plain(stride) and _plain(padding):
        return _remembered_geometry(tuple(in_size), tuple(kernel), stride, padding, what)
    return _remembered_geometry.__wrapped__(in_size, kernel, stride, padding, what)


def _plain(value) -> bool:
    """Whether ``value`` is a str or int (not bool), or tuples of ints: hashed by value alone, so that
    a remembered result cannot stand for an argument its checks would refuse (``True`` equals 1)."""
    if type(value) in (int, str):
        return True
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int:
        return True  # a layer's strides, every batch: without the generator below
    return type(value) is tuple and all(type(v) is int or (type(v) is tuple and _plain(v)) for v in value)


@functools.lru_cache(maxsize=512)
def _remembered_geometry(in_size, kernel, stride, padding, what):
    stride = as_pair(stride, "stride")
    pads = resolve_padding(padding, in_size, kernel, stride)
    return stride, pads, output_size(in_size, kernel, stride, pads, what)
