"""Merge layers for branches: ``Add`` (residual connections), ``Average`` (averaged models) and
``Concatenate``."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError, expected
from .base import Layer


class _Merge(Layer):
    multi_input = True

    def _check_list(self, input_shapes):
        if not isinstance(input_shapes, (list, tuple)) or len(input_shapes) < 2:
            raise ValueError(
                expected(f"inputs of layer {self.name!r}", "a list of at least 2 tensors", repr(input_shapes))
            )
        return [tuple(s) for s in input_shapes]


class _SameShapeMerge(_Merge):
    def _sum(self, xs):
        """``x_1 + x_2 + ...`` as a new array; remembers ``len(xs)`` for the backward pass."""
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out += x
        self._cache = len(xs)
        return out

    def _output_shape(self, input_shapes):
        shapes = self._check_list(input_shapes)
        if any(s != shapes[0] for s in shapes):
            raise ShapeError(
                expected(
                    f"inputs of layer {self.name!r}",
                    "tensors of one shape",
                    ", ".join(str((None,) + s) for s in shapes),
                )
            )
        return shapes[0]


class Add(_SameShapeMerge):
    """``out = x_1 + x_2 + ...`` (same shapes); the gradient flows unchanged to every input."""

    def forward(self, xs, training=False):
        return self._sum(xs)

    def backward(self, dout, need_dx=True):
        return [dout] * self._take_cache()


class Average(_SameShapeMerge):
    """``out = (x_1 + ... + x_N) / N`` (same shapes); each input's gradient is ``dout / N``."""

    def forward(self, xs, training=False):
        out = self._sum(xs)
        out /= len(xs)
        return out

    def backward(self, dout, need_dx=True):
        n = self._take_cache()
        return [dout / n] * n


class Concatenate(_Merge):
    """Joins tensors along ``axis`` (default the channel axis); backward splits the gradient."""

    _config_keys = ("axis",)

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _axis(self, rank):
        # Keras counts the batch axis: axis 3 of an image batch is the channel axis.
        axis = self.axis if self.axis < 0 else self.axis - 1
        if not -rank <= axis < rank or self.axis == 0:
            raise ValueError(
                expected(f"axis of layer {self.name!r}", f"a non-batch axis of a {rank + 1}-D input", self.axis)
            )
        return axis % rank

    def _output_shape(self, input_shapes):
        shapes = self._check_list(input_shapes)
        axis = self._axis(len(shapes[0]))
        rest = [s[:axis] + s[axis + 1 :] for s in shapes]
        if any(len(s) != len(shapes[0]) for s in shapes) or any(r != rest[0] for r in rest):
            raise ShapeError(
                expected(
                    f"inputs of layer {self.name!r}",
                    f"shapes equal except on axis {self.axis}",
                    ", ".join(str((None,) + s) for s in shapes),
                )
            )
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)

    def forward(self, xs, training=False):
        axis = self._axis(xs[0].ndim - 1) + 1
        self._cache = (axis, np.cumsum([x.shape[axis] for x in xs])[:-1])
        return np.concatenate(xs, axis=axis)

    def backward(self, dout, need_dx=True):
        axis, splits = self._take_cache()
        return np.split(dout, splits, axis=axis)
