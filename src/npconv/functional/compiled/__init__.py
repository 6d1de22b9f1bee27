"""The compiled tier: Numba kernels for the steps where NumPy's whole-array passes lose.

Each kernel is the course's loop nest, with ``prange`` over the batch (or over chunks of rows) so
that the cores share the work; :mod:`npconv.functional._tier` decides whether they run, and the
functions in :mod:`npconv.functional` call them behind the unchanged ``forward -> (out, cache)``,
``backward(dout, cache)`` contract. Every kernel writes into arrays its caller allocates, or
returns small ones.

The kernels are compiled with LLVM's loop vectoriser told not to interleave (unroll) the loops it
vectorises (:func:`_compiled_without_interleaving`). By default it processes four vectors per
iteration, so a loop along the channels of a pixel needs 32 of them (float32, AVX2) before its
vector body runs at all: with 8 or 16 channels (SIGNS, smallres) it ran scalar. Every hot loop here
already has several independent operations per element, so unrolling bought nothing else.
"""
from __future__ import annotations

import functools

from . import batchnorm, conv, pool

__all__ = ["batchnorm", "conv", "pool"]


def _compiled_without_interleaving(dispatcher):
    """Make ``dispatcher`` (a Numba ``@njit`` function) compile each new signature with LLVM's
    ``-force-vector-interleave=1``, restoring LLVM's default (0: its cost model decides) afterwards.

    The option is process-wide, so it is set only while Numba compiles (or loads from its cache) one
    of these kernels; code compiled at other times, npconv's or the user's, keeps LLVM's default.
    """
    import llvmlite.binding as llvm

    compile_for_args = dispatcher._compile_for_args

    @functools.wraps(compile_for_args)
    def compile_without_interleaving(*args, **kwargs):
        llvm.set_option("", "-force-vector-interleave=1")
        try:
            return compile_for_args(*args, **kwargs)
        finally:
            llvm.set_option("", "-force-vector-interleave=0")

    dispatcher._compile_for_args = compile_without_interleaving
    return dispatcher


for _module in (batchnorm, conv, pool):
    for _name in _module.__all__:
        _compiled_without_interleaving(getattr(_module, _name))
