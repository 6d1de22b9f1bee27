"""The compiled tier: Numba kernels for the steps where NumPy's whole-array passes lose.

Each kernel is the course's loop nest, with ``prange`` over the batch (or over chunks of rows) so
that the cores share the work; :mod:`npconv.functional._tier` decides whether they run, and the
functions in :mod:`npconv.functional` call them behind the unchanged ``forward -> (out, cache)``,
``backward(dout, cache)`` contract. Every kernel writes into arrays its caller allocates, or
returns small ones.

How they are compiled (twice, parallel and serial, chosen by size; without loop interleaving) is
:mod:`npconv.functional.compiled._jit`'s.
"""

from __future__ import annotations

from . import (
    augment,
    batchnorm,
    conv,
    conv_pool,
    elementwise,
    norm_pool,
    normal,
    optimizer,
    pool,
    reframe,
    standardize,
    winograd,
)

__all__ = [
    "augment",
    "batchnorm",
    "conv",
    "conv_pool",
    "elementwise",
    "norm_pool",
    "normal",
    "optimizer",
    "pool",
    "reframe",
    "standardize",
    "winograd",
]
