"""Pooling layers: ``MaxPooling2D``/``MaxPool2D``, ``AveragePooling2D``/``AvgPool2D``, global pooling."""

from __future__ import annotations

from .. import functional as F
from ..errors import check_choice
from ..functional._shapes import as_pair, output_size, resolve_padding
from .base import Layer, check_input_rank


class _Pooling2D(Layer):
    """Slides a ``pool_size`` window by ``strides`` (default: the pool size) and keeps the max or mean."""

    _config_keys = ("pool_size", "strides", "padding")
    mode = "max"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = as_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else as_pair(strides, "strides")
        self.padding = check_choice(padding, "padding", {"valid", "same"})

    def _output_shape(self, input_shape):
        n_H, n_W, n_C = check_input_rank(self, input_shape, 3)
        pads = resolve_padding(self.padding, (n_H, n_W), self.pool_size, self.strides)
        out_h, out_w = output_size((n_H, n_W), self.pool_size, self.strides, pads, f"layer {self.name!r} pool")
        return out_h, out_w, n_C

    def forward(self, x, training=False):
        out, self._cache = F.pool2d_forward(
            x, self.pool_size, stride=self.strides, padding=self.padding, mode=self.mode
        )
        return out

    def backward(self, dout, need_dx=True):
        return F.pool2d_backward(dout, self._take_cache())

    def windows_tile(self, input_shape) -> bool:
        """Whether this is a max pool whose windows tile an input of ``input_shape`` (..., n_H,
        n_W, n_C): stride equal to the window and no padding, rows and columns past the last
        window left out. The fused steps that pool in their own pass need it."""
        pads = resolve_padding(self.padding, tuple(input_shape[-3:-1]), self.pool_size, self.strides)
        return self.mode == "max" and self.strides == self.pool_size and pads == ((0, 0), (0, 0))


class MaxPooling2D(_Pooling2D):
    """``out[i,h,w,c] = max(x[i, h*s:h*s+f, w*s:w*s+f, c])``; ``"same"`` padding never wins."""

    mode = "max"


class AveragePooling2D(_Pooling2D):
    """``out[i,h,w,c] = mean(x[i, h*s:h*s+f, w*s:w*s+f, c])`` over the valid (unpadded) elements."""

    mode = "average"


MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D


class _GlobalPooling2D(Layer):
    """``(m, n_H, n_W, n_C) -> (m, n_C)``."""

    mode = "average"

    def _output_shape(self, input_shape):
        return (check_input_rank(self, input_shape, 3)[-1],)

    def forward(self, x, training=False):
        out, self._cache = F.global_pool2d_forward(x, mode=self.mode)
        return out

    def backward(self, dout, need_dx=True):
        return F.global_pool2d_backward(dout, self._take_cache())


class GlobalAveragePooling2D(_GlobalPooling2D):
    """The mean of each channel over height and width."""

    mode = "average"


class GlobalMaxPooling2D(_GlobalPooling2D):
    """The max of each channel over height and width."""

    mode = "max"
