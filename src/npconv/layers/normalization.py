"""``BatchNormalization`` over the channel (last) axis, with Keras's moving statistics."""

from __future__ import annotations

from .. import functional as F
from ..errors import expected
from .base import Layer


class BatchNormalization(Layer):
    """``out = gamma * (x - mean) / sqrt(var + epsilon) + beta`` per channel.

    Training uses the batch's mean and (biased) variance over every axis but the channel axis and
    updates ``moving = momentum * moving + (1 - momentum) * batch`` (Keras's rule); inference uses
    the moving statistics. ``gamma``/``beta`` are trainable; ``moving_mean``/``moving_variance`` are not.
    A frozen layer (``trainable = False``) runs in inference mode even while the model trains, as in
    Keras 2: fine-tuning keeps the statistics it learnt instead of drifting to the new data's.

    Parameters
    ----------
    axis : int
        The channel axis, which must be the last: -1 (or 3 for images, 1 for vectors).
    """

    _config_keys = ("axis", "momentum", "epsilon")

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(expected("axis", "an integer (the channel axis, -1)", axis))
        if not 0 <= momentum <= 1:
            raise ValueError(expected("momentum", "a number in [0, 1]", momentum))
        if not epsilon > 0:
            raise ValueError(expected("epsilon", "a positive number", epsilon))
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)

    def _output_shape(self, input_shape):
        shape = tuple(input_shape)
        if self.axis not in (-1, len(shape)):
            raise ValueError(
                expected(
                    f"axis of layer {self.name!r}",
                    f"the channel axis -1 (or {len(shape)}) for inputs {(None,) + shape}",
                    self.axis,
                    "npconv is channels-last (NHWC): use axis=-1 or axis=3.",
                )
            )
        return shape

    def _build(self, input_shape):
        n_C = (input_shape[-1],)
        self.gamma = self.add_weight("gamma", n_C, "ones")
        self.beta = self.add_weight("beta", n_C, "zeros")
        self.moving_mean = self.add_weight("moving_mean", n_C, "zeros", trainable=False)
        self.moving_variance = self.add_weight("moving_variance", n_C, "ones", trainable=False)

    def forward(self, x, training=False, relu=False, moments=None, deferred=False, out=None):
        """The normalised ``x``; ``relu``: ``max(out, 0)`` in the same pass (the model runs a
        ``ReLU`` layer that reads only this layer's output so, :mod:`npconv.engine.plan`);
        ``moments``: the batch's statistics when the convolution that wrote ``x`` took them
        (training only, :func:`~npconv.functional.batchnorm_forward`); ``deferred``: in training,
        the output as a :class:`~npconv.functional.ScaleShift` not yet written, for the step that
        reads it to apply (a residual block's Add + pool); ``out``: in training, an array to write
        the output into and return (the convolution after it's padded input,
        :meth:`~npconv.layers.Conv2D.bordered_input`)."""
        training = training and self.trainable
        if training:
            out, cache = F.batchnorm_forward(
                x,
                self.gamma.value,
                self.beta.value,
                eps=self.epsilon,
                relu=relu,
                moments=moments,
                deferred=deferred,
                out=out,
            )
            self._update_moving_statistics(cache)
        else:
            out, cache = F.batchnorm_inference_forward(
                x,
                self.gamma.value,
                self.beta.value,
                self.moving_mean.value,
                self.moving_variance.value,
                eps=self.epsilon,
                relu=relu,
            )
        self._cache = (training, cache)
        return out

    def _update_moving_statistics(self, cache) -> None:
        """``moving = momentum * moving + (1 - momentum) * batch`` from a training forward's cache;
        in place, so an optimizer or checkpoint holding these arrays sees the update."""
        F.update_moving_statistics(
            self.moving_mean.value, self.moving_variance.value, cache.mean, cache.var, self.momentum
        )

    def forward_relu_max_pool(self, x, pool, training=False, moments=None):
        """``pool.forward(self.forward(x, training, relu=True, moments), training)``, in one pass
        where the batch norm trains and the max pool's windows tile the input
        (:func:`~npconv.functional.batchnorm_relu_maxpool_forward`); both layers keep the caches
        they would alone."""
        if not (training and self.trainable and pool.windows_tile(x.shape)):
            return pool.forward(self.forward(x, training, relu=True, moments=moments), training)
        out, (cache, pool._cache) = F.batchnorm_relu_maxpool_forward(
            x, self.gamma.value, self.beta.value, pool.pool_size, eps=self.epsilon, moments=moments
        )
        self._update_moving_statistics(cache)
        self._cache = (True, cache)
        return out

    def backward(self, dout, need_dx=True, out=None):
        """``dx``; in training, written into ``out`` when given (the convolution before it's padded
        output gradient, :meth:`~npconv.layers.Conv2D.bordered_output_gradient`)."""
        training, cache = self._take_cache()
        if training:
            dx, self.gamma.grad, self.beta.grad = F.batchnorm_backward(dout, cache, out=out)
        else:
            dx, self.gamma.grad, self.beta.grad = F.batchnorm_inference_backward(dout, cache)
        return dx

    def backward_through_max_pool(self, dout, pool_cache, need_dx=True):
        """``self.backward(pool's backward(dout))`` for the max pool that read this layer's output,
        ``pool_cache`` its forward's cache: in one step where this layer trained
        (:func:`~npconv.functional.batchnorm_relu_maxpool_backward`, which never builds the pool's
        full-size gradient)."""
        training, cache = self._take_cache()
        if training:
            dx, self.gamma.grad, self.beta.grad = F.batchnorm_relu_maxpool_backward(dout, cache, pool_cache)
        else:
            pooled = F.pool2d_backward(dout, pool_cache)
            dx, self.gamma.grad, self.beta.grad = F.batchnorm_inference_backward(pooled, cache)
        return dx
