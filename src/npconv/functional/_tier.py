"""Which tier runs the kernels that have a compiled version: decided here, and nowhere else.

* compiled (default): Numba kernels from :mod:`npconv.functional.compiled`, when Numba imports;
* NumPy: the vectorised kernels, the readable reference, when ``NPCONV_JIT=0`` or Numba is missing.

Both give the same results within rounding and return caches that either tier's backward accepts
(a cache records what its forward built). Numba and the compiled kernels load at the first kernel
call that wants them, not at ``import npconv``; compiled code is cached on disk (``cache=True``), so
only the first run after an install or an edit pays the compilation.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from contextlib import contextmanager
from types import SimpleNamespace

_use_compiled: bool | None = None  # None: read NPCONV_JIT at the first call


def compiled_available() -> bool:
    """Whether Numba can be imported here."""
    return importlib.util.find_spec("numba") is not None


def compiled():
    """The compiled kernels (see :func:`load_compiled`) when the compiled tier is on, else ``None``."""
    global _use_compiled
    if _use_compiled is None:
        _use_compiled = os.environ.get("NPCONV_JIT", "1") != "0" and compiled_available()
    return load_compiled() if _use_compiled else None


def tiered(numpy_version, applies=None):
    """Decorator that makes a compiled step and its NumPy twin one function: the tier is chosen here.

    The decorated function is the compiled version, ``compiled_version(kernels, *args)`` (``kernels``
    as :func:`load_compiled` returns them); the function returned runs it when the compiled tier is
    on and ``applies(*args)`` (default: always) says its kernel takes these arguments, else
    ``numpy_version(*args)``::

        @tiered(_relu_gradient_numpy, applies=lambda dout, out: out.flags.c_contiguous)
        def _relu_gradient(kernels, dout, out): ...
    """

    def decorate(compiled_version):
        @functools.wraps(compiled_version)
        def dispatch(*args):
            kernels = compiled()
            if kernels is not None and (applies is None or applies(*args)):
                return compiled_version(kernels, *args)
            return numpy_version(*args)

        return dispatch

    return decorate


def load_compiled():
    """The compiled kernels, whatever the tier setting (a cache built by them needs their backward).

    Numba's threads are OpenMP's (:data:`OPENMP_SPIN_COUNT`), or its workqueue pool where libgomp
    is missing. Returned as one namespace per module of :mod:`npconv.functional.compiled`
    (``kernels.conv``, ``kernels.pool``, ``kernels.augment``, ...) whose functions take one
    process-wide lock around each call (``compiled._jit.LAUNCH_LOCK``, which the kernels take
    themselves; the few plain compiled functions are wrapped here): the workqueue threads serve one
    parallel launch at a time and abort the process on a second, concurrent one.
    """
    global _kernels
    if _kernels is None:
        import numba

        if "NUMBA_THREADING_LAYER" not in os.environ and not _threads_started():
            numba.config.THREADING_LAYER = "omp" if _load_openmp() else "workqueue"
        from . import compiled
        from .compiled._jit import LAUNCH_LOCK, Kernel

        def locked(fn):
            if isinstance(fn, Kernel) or not callable(fn) or not hasattr(fn, "py_func"):
                return fn  # a kernel takes the lock itself; tile_length and the like are Python
            return _one_at_a_time(fn, LAUNCH_LOCK)

        _kernels = SimpleNamespace(
            **{
                name: SimpleNamespace(**{fn: locked(getattr(module, fn)) for fn in module.__all__})
                for name, module in ((name, getattr(compiled, name)) for name in compiled.__all__)
            }
        )
    return _kernels


_kernels = None

#: Spins of an idle OpenMP thread before it sleeps (GNU libgomp's ``GOMP_SPINCOUNT``; its default is
#: 300,000). Threads that always sleep (Numba's workqueue pool) wake too late for the next kernel;
#: 10,000 spins cover the gap between one kernel and the next (a ``smallres`` epoch 1.8x faster)
#: and still give the cores up to other work within microseconds. More spins slow a busy machine
#: down, fewer an idle one (``benchmarks/train_speed.py``).
OPENMP_SPIN_COUNT = 10_000


def _load_openmp() -> bool:
    """Load Numba's OpenMP layer with :data:`OPENMP_SPIN_COUNT` (libgomp reads it once, when it is
    loaded; a setting of the user's own is kept); whether it loaded (libgomp may be missing)."""
    saved = os.environ.get("GOMP_SPINCOUNT")
    if saved is None and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = str(OPENMP_SPIN_COUNT)
    try:
        importlib.import_module("numba.np.ufunc.omppool")
        return True
    except ImportError:
        return False
    finally:  # only this library's copy of libgomp reads it: other libraries keep their defaults
        if saved is None:
            os.environ.pop("GOMP_SPINCOUNT", None)


def _one_at_a_time(fn, lock):
    @functools.wraps(fn)
    def call(*args):
        with lock:
            return fn(*args)

    return call


def _threads_started() -> bool:
    """Whether Numba has already started a thread pool (its layer can no longer change)."""
    from numba.np.ufunc import parallel

    return getattr(parallel, "_is_initialized", False)


def tier() -> str:
    """``"compiled"`` or ``"numpy"``: the tier the next kernel call will use."""
    return "numpy" if compiled() is None else "compiled"


@contextmanager
def use_tier(name: str):
    """Run a block with ``"numpy"`` or ``"compiled"`` kernels (tests and benchmarks compare the two)."""
    global _use_compiled
    if name not in ("numpy", "compiled"):
        raise ValueError(f"tier must be 'numpy' or 'compiled', got {name!r}")
    if name == "compiled" and not compiled_available():
        raise ImportError("The compiled tier needs Numba: pip install numba (or use tier 'numpy').")
    previous = _use_compiled
    _use_compiled = name == "compiled"
    try:
        yield
    finally:
        _use_compiled = previous


def kernels_will_compile() -> bool:
    """Whether the next training's first batch compiles the compiled tier's kernels (the first run
    after an install or an edit: 20 s on a fast machine, two and a half minutes on a slow one), rather than
    loading them from Numba's disk cache."""
    if compiled() is None:
        return False
    from .compiled import _jit, conv

    return not _jit.compiled_before(conv.conv_nhwc)
