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
    """Named, growable scratch buffers: ``get(name, shape, dtype)`` returns an uninitialised array;
    ``bordered(...)`` one whose border is zero."""

    def __init__(self):
        self._buffers: dict[str, np.ndarray] = {}
        # name -> ((image shape, pads, dtype), images bordered, the last view) of the buffer whose
        # border holds zeros (written by bordered, kept while only interiors are written; any get
        # of the name may overwrite it, and forgets it; a larger bordered call borders anew)
        self._zero_borders: dict[str, tuple] = {}
        # name -> a view of the buffer its user keeps with it (padding.bordered_empty's Bordered)
        self.views: dict[str, object] = {}

    def get(self, name: str, shape: tuple, dtype) -> np.ndarray:
        self._zero_borders.pop(name, None)
        return self._view(name, shape, dtype)

    def _view(self, name: str, shape: tuple, dtype) -> np.ndarray:
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.dtype != dtype or buffer.size < size:
            buffer = self._buffers[name] = aligned_empty((size,), dtype)
        return buffer[:size].reshape(shape)

    def bordered(self, name: str, shape: tuple, pads, dtype) -> np.ndarray:
        """Buffer ``name`` of ``shape`` (an NHWC batch with ``pads``, ``((top, bottom), (left,
        right))``, around its two spatial axes) with zeros in the border and anything inside. The
        border is written when the buffer, the images' shape or the padding changed since the last
        call, or the batch holds more images than it was written for: a layer's next batch of the
        same images writes only the inside, and so does an epoch's last, smaller batch, whose images
        are the first ones of the same memory (rewriting the borders of every layer there and again
        at the next epoch's first batch cost 2 ms an epoch of ``smallres``)."""
        images = (tuple(shape[1:]), pads, np.dtype(dtype))
        kept = self._zero_borders.get(name)
        if kept is not None and kept[0] == images and shape[0] <= kept[1]:
            view = kept[2]
            if view.shape[0] != shape[0]:  # the first images of the same buffer (it holds more)
                view = self._view(name, shape, dtype)
                self._zero_borders[name] = (images, kept[1], view)
            return view
        padded = self._view(name, shape, dtype)
        (top, bottom), (left, right) = pads
        padded[:, :top] = 0
        padded[:, shape[1] - bottom :] = 0
        padded[:, :, :left] = 0
        padded[:, :, shape[2] - right :] = 0
        self._zero_borders[name] = (images, shape[0], padded)
        return padded


def scratch(workspace: Workspace | None, name: str, shape: tuple, dtype) -> np.ndarray:
    """An uninitialised array, aligned (:func:`aligned_empty`): from ``workspace`` when given, else
    freshly allocated."""
    if workspace is None:
        return aligned_empty(shape, dtype)
    return workspace.get(name, shape, dtype)
