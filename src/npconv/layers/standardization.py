"""``PerImageStandardization``: each image to mean 0 and spread 1 inside the model (no weights).

Put first in a model (after any augmentation), it makes the network blind to an image's overall
exposure and contrast (``a * x + b``): a dimmed or washed-out photo reaches the first convolution as
the original did. Kernels: :mod:`npconv.functional.standardize`.
"""

from __future__ import annotations

from ..functional.standardize import standardize_backward, standardize_forward
from .base import Layer


class PerImageStandardization(Layer):
    """``y[i] = (x[i] - mean(x[i])) / max(std(x[i]), 1 / sqrt(N))`` over each image's ``N`` values
    (TensorFlow's ``per_image_standardization``); the same at training and inference."""

    def _output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False):
        out, self._cache = standardize_forward(x)
        return out

    def backward(self, dout, need_dx=True):
        cache = self._take_cache()
        return standardize_backward(dout, cache) if need_dx else None
