"""How the compiled kernels are compiled: each twice, parallel and serial, and run by their size.

A Numba parallel loop costs about 45 microseconds to launch on a 2-core machine, and twice that when
its threads were asleep, even with one thread: more than the whole work of a kernel on one image
(predicting one photo launched about 25 of them, 2 of its 8 milliseconds). So every kernel is
compiled from one Python function into a ``prange`` version and a plain-loop one, and a call takes
the serial one when its arrays hold less than :data:`PARALLEL_MIN_BYTES` (or, for the convolutions,
it has fewer than :data:`PARALLEL_MIN_MULTIPLY_ADDS`). Both compute in the same
order (the parallel loops split work by the shapes, never by the thread count), so the choice never
changes a result.

The kernels are also compiled with LLVM's loop vectoriser told not to interleave (unroll) the loops
it vectorises (:func:`_without_interleaving`). By default it processes four vectors per iteration,
so a loop along the channels of a pixel needs 32 of them (float32, AVX2) before its vector body runs
at all: with 8 or 16 channels (SIGNS, smallres) it ran scalar. Every hot loop here already has
several independent operations per element, so unrolling bought nothing else.

Numba's disk cache (``cache=True``) keys a kernel by the content of the file that defines it, and by
nothing it inlines from other files: this module's compile options, ``_simd``'s tiles,
``batchnorm``'s and ``pool``'s helpers in ``norm_pool``. So each kernel module carries
``INLINED_SOURCES``, a hash of the sibling modules it imports; an edit of those changes it (the test
``tests/functional/test_compiled_cache.py`` fails with the new value until it is written), and the
module's kernels compile again instead of loading code built from the old sources (after a ``git
pull``, or an upgrade over an install whose ``__pycache__`` stayed).
"""

from __future__ import annotations

import functools
import threading
import types

import numpy as np
from numba import njit

#: Below this many bytes in its array arguments a kernel runs on the calling thread.
PARALLEL_MIN_BYTES = 1 << 20
#: A kernel given a ``cost`` (multiply-adds) runs on the calling thread below this many: about
#: 0.1 ms of one core's work.
PARALLEL_MIN_MULTIPLY_ADDS = 4 << 20


#: Held around every kernel call: Numba's workqueue threads (its pool where libgomp is missing) serve
#: one parallel launch at a time and abort the process on a second, concurrent one (a web server
#: predicting in several threads). A call is milliseconds; waiting for it costs nothing like that.
LAUNCH_LOCK = threading.Lock()


class Kernel:
    """A kernel's parallel and serial builds; calling it picks one by the size of the work, and
    takes :data:`LAUNCH_LOCK` while it runs."""

    def __init__(self, parallel, serial, cost=None):
        self.parallel, self.serial, self.cost = parallel, serial, cost
        functools.update_wrapper(self, parallel.py_func)

    def __call__(self, *args):
        if self.cost is not None:
            parallel = self.cost(*args) >= PARALLEL_MIN_MULTIPLY_ADDS
        else:
            parallel = _holds_bytes(args, PARALLEL_MIN_BYTES)
        with LAUNCH_LOCK:
            return (self.parallel if parallel else self.serial)(*args)


def _holds_bytes(args, limit: int) -> bool:
    """Whether the arrays among ``args`` hold ``limit`` bytes or more, counted until they do (a
    generator summing them all took 0.9 of a microsecond a call, 72 calls a batch)."""
    total = 0
    for a in args:
        if isinstance(a, np.ndarray):
            total += a.nbytes
            if total >= limit:
                return True
    return False


def kernel(cost=None, **options):
    """Decorator: compile ``fn`` as a :class:`Kernel` (``njit(parallel=True)`` and plain ``njit``,
    both cached on disk, with ``options`` such as ``fastmath``). ``cost(*args)``, when given,
    estimates the call's multiply-adds (compute-bound kernels); else the arrays' bytes decide."""

    def make(fn):
        serial_fn = types.FunctionType(
            fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__, fn.__closure__
        )
        # Numba names its cache files after the function's qualified name: a second name keeps the
        # serial build's cache apart from the parallel one's.
        serial_fn.__qualname__ = fn.__qualname__ + "_serial"
        serial_fn.__module__, serial_fn.__doc__ = fn.__module__, fn.__doc__
        return Kernel(
            _without_interleaving(njit(parallel=True, cache=True, **options)(fn)),
            _without_interleaving(njit(cache=True, **options)(serial_fn)),
            cost,
        )

    return make


def _without_interleaving(dispatcher):
    """Make ``dispatcher`` compile each new signature with LLVM's ``-force-vector-interleave=1``,
    restoring LLVM's default (0: its cost model decides) afterwards.

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


def compiled_before(kernel: Kernel) -> bool:
    """Whether Numba's disk cache holds code for ``kernel``'s current source (either build: small
    calls take the serial one), so that its first call loads rather than compiles. ``False`` on
    the first run after an install or an edit, when the first batch of a training waits 20 s to a
    minute for the kernels to compile.

    Reads the cache's index through Numba's private ``_cache``; where that is not there (another
    Numba), it answers ``True``, so the worst case is a first run without the notice.
    """
    try:
        return any(bool(build._cache._cache_file._load_index()) for build in (kernel.parallel, kernel.serial))
    except (AttributeError, OSError, ValueError):
        return True
