"""Scratch buffers reused across batches.

A training step allocates the same large temporaries every batch (the im2col matrix is 50 MB for the
SIGNS model's first layer at batch 64). A fresh allocation of that size is page-faulted in by the
operating system on first write, which can cost as much as the copy itself (compare the
``workspace=`` and pure calls of :func:`~npconv.functional.conv2d_forward` on that shape). A layer
keeps one :class:`Workspace` and passes it to its kernels; the kernels' pure form
(``workspace=None``) allocates fresh arrays, so calling them directly is always safe.

A buffer handed out by a workspace is overwritten by the next call that asks for the same name: the
cache that holds it is only valid until the layer's next forward, which is how layers use it.
"""

from __future__ import annotations

import ctypes
import math

import numpy as np

#: Bytes to which every buffer here is aligned: a cache line, and one AVX-512 vector.
ALIGNMENT = 64


def aligned_empty(shape: tuple, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on an :data:`ALIGNMENT` boundary.

    NumPy's allocations are only 16-byte aligned: a row of 16 float32 read as one vector then
    straddles two cache lines. For the direct convolution's weight tables, outputs and gradients
    that cost up to 10% (Happy's first layer's forward; within noise at other shapes).
    """
    dtype = np.dtype(dtype)
    n_bytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(n_bytes + ALIGNMENT, np.uint8)
    # The buffer's address through ctypes.addressof: a third of raw.ctypes.data's microsecond, which
    # one image's forward pays a few times.
    start = -ctypes.addressof(ctypes.c_char.from_buffer(raw)) % ALIGNMENT
    return raw[start : start + n_bytes].view(dtype).reshape(shape)


class Workspace:
    """Named, growable scratch buffers: ``get(name, shape, dtype)`` returns an uninitialised array."""

    def __init__(self):
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple, dtype) -> np.ndarray:
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.dtype != dtype or buffer.size < size:
            buffer = self._buffers[name] = aligned_empty((size,), dtype)
        return buffer[:size].reshape(shape)


def scratch(workspace: Workspace | None, name: str, shape: tuple, dtype) -> np.ndarray:
    """An uninitialised array, aligned (:func:`aligned_empty`): from ``workspace`` when given, else
    freshly allocated."""
    if workspace is None:
        return aligned_empty(shape, dtype)
    return workspace.get(name, shape, dtype)
