"""The vectorised tier: pure NHWC forward/backward kernels.

Every kernel is a pair ``out, cache = xxx_forward(x, ...)`` and ``grads = xxx_backward(dout, cache)``;
see docs/ARCHITECTURE.md for the contract and :mod:`npconv.course` for the loop versions they are
tested against.
"""
from .conv import conv2d_backward, conv2d_forward
from .pool import global_pool2d_backward, global_pool2d_forward, pool2d_backward, pool2d_forward

__all__ = [
    "conv2d_forward", "conv2d_backward",
    "pool2d_forward", "pool2d_backward", "global_pool2d_forward", "global_pool2d_backward",
]
