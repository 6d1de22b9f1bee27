"""The vectorised tier: pure NHWC forward/backward kernels.

Every kernel is a pair ``out, cache = xxx_forward(x, ...)`` and ``grads = xxx_backward(dout, cache)``;
see docs/ARCHITECTURE.md for the contract and :mod:`npconv.course` for the loop versions they are
tested against.
"""

from .activations import (
    linear_backward,
    linear_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    softmax_backward,
    softmax_forward,
    tanh_backward,
    tanh_forward,
)
from .add_pool import add_maxpool_forward
from .batchnorm import (
    BatchMoments,
    ScaleShift,
    batchnorm_backward,
    batchnorm_forward,
    batchnorm_inference_backward,
    batchnorm_inference_forward,
    fold_batchnorm,
    update_moving_statistics,
)
from .conv import conv2d_backward, conv2d_forward, conv2d_forward_with_moments
from .conv_pool import conv2d_maxpool_backward
from .dense import dense_backward, dense_forward
from .dropout import dropout_backward, dropout_forward
from .norm_pool import (
    batchnorm_relu_maxpool_backward,
    batchnorm_relu_maxpool_forward,
    conv_batchnorm_relu_maxpool_weight_backward,
)
from .padding import zero_pad2d_backward, zero_pad2d_forward
from .pool import global_pool2d_backward, global_pool2d_forward, pool2d_backward, pool2d_forward
from .reshape import flatten_backward, flatten_forward

__all__ = [
    "zero_pad2d_forward",
    "zero_pad2d_backward",
    "conv2d_forward",
    "conv2d_forward_with_moments",
    "conv2d_backward",
    "conv2d_maxpool_backward",
    "pool2d_forward",
    "pool2d_backward",
    "add_maxpool_forward",
    "global_pool2d_forward",
    "global_pool2d_backward",
    "dense_forward",
    "dense_backward",
    "relu_forward",
    "relu_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "softmax_forward",
    "softmax_backward",
    "tanh_forward",
    "tanh_backward",
    "linear_forward",
    "linear_backward",
    "BatchMoments",
    "ScaleShift",
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_inference_forward",
    "batchnorm_inference_backward",
    "fold_batchnorm",
    "update_moving_statistics",
    "batchnorm_relu_maxpool_backward",
    "conv_batchnorm_relu_maxpool_weight_backward",
    "batchnorm_relu_maxpool_forward",
    "dropout_forward",
    "dropout_backward",
    "flatten_forward",
    "flatten_backward",
]
