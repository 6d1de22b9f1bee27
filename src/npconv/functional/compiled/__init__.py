"""The compiled tier: Numba kernels for the steps where NumPy's whole-array passes lose.

Each kernel is the course's loop nest, with ``prange`` over the batch (or over blocks of rows) so
that the two cores share the work; :mod:`npconv.functional._tier` decides whether they run, and the
functions in :mod:`npconv.functional` call them behind the unchanged ``forward -> (out, cache)``,
``backward(dout, cache)`` contract. Every kernel writes into arrays its caller allocates.
"""
from . import batchnorm, conv, pool

__all__ = ["batchnorm", "conv", "pool"]
