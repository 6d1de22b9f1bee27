"""How many threads the compiled kernels and BLAS use while a model runs.

:func:`blas_scope` keeps BLAS to one thread while the compiled kernels run (they split the work over
the cores themselves), and :func:`matmul` shares the large GEMMs left to BLAS out between two
threads of its own.

The compiled kernels keep Numba's thread count (every core) on a busy machine too: its OpenMP
threads spin only briefly before they sleep (:data:`npconv.functional._tier.OPENMP_SPIN_COUNT`), so
two threads keep two shares of the cores: beside two busy loops an epoch slows about as much as
PyTorch's does (``benchmarks/train_speed.py --busy``). Cutting the threads to the cores the other
work leaves free was slower. No thread count changes a result: the kernels split their work by the
shapes, never by the number of threads (``tests/functional/test_compiled.py``).
"""

from __future__ import annotations

import contextlib
import functools
import threading

import numpy as np

from ._tier import tier


def blas_scope():
    """A context for running a model's kernels: under the compiled tier, BLAS keeps to one thread.

    The compiled kernels split their work over every core with Numba's threads, and the GEMMs left
    to BLAS (dense layers, 1 x 1 and small convolutions) are a small share of a step. But an
    OpenBLAS worker that has just run busy-waits about 0.1 s for more work, holding a core that
    Numba's parallel loops then wait for: with BLAS on two threads, an epoch took up to 1.9x as long
    (``benchmarks/train_speed.py``). The NumPy tier, whose only parallelism is BLAS's, is left
    alone. Each library's thread count is read and set through threadpoolctl's controllers for it,
    found once: its ``limit()`` took 9 microseconds a call, a tenth of a small model's prediction.
    Inside another scope of the same thread (a training step's forward and backward, inside the
    step's) it does nothing.
    """
    if tier() == "numpy" or _scope.active:
        return contextlib.nullcontext()
    return _one_blas_thread()


class _Scope(threading.local):
    active = False  # whether this thread is inside a blas_scope that set the threads


_scope = _Scope()


@contextlib.contextmanager
def _one_blas_thread():
    libraries = _blas_libraries()
    saved = [library.get_num_threads() for library in libraries]
    for library, threads in zip(libraries, saved):
        if threads != 1:
            library.set_num_threads(1)
    _scope.active = True
    try:
        yield
    finally:
        _scope.active = False
        for library, threads in zip(libraries, saved):
            if threads != 1:
                library.set_num_threads(threads)


@functools.cache
def _blas_libraries():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas").lib_controllers


#: From this many multiply-adds a product under the compiled tier is split in two halves (0.1 ms or
#: more of one core's BLAS).
SPLIT_MIN_MULTIPLY_ADDS = 4 << 20


def matmul(a: np.ndarray, b: np.ndarray, reduce_rows: bool = False) -> np.ndarray:
    """``a @ b`` (``a.T @ b`` with ``reduce_rows``) for the GEMMs the compiled tier leaves to BLAS.

    Under the compiled tier BLAS keeps to one thread (:func:`blas_scope`), so a large product is cut
    into two halves along ``a``'s rows, the second computed on a worker thread (NumPy lets go of the
    GIL in BLAS; the worker sleeps when idle, unlike BLAS's own) when the kernels have two threads,
    else one after the other. The cut depends on the shapes only, so the result does not depend on
    the thread count (one BLAS call on all the rows would give other last bits). With
    ``reduce_rows`` the halves' products ``a_i.T @ b_i`` are summed (a weight gradient).
    """
    m = a.shape[0]
    work = a.size * b.shape[1]
    if tier() == "numpy" or work < SPLIT_MIN_MULTIPLY_ADDS or m < 2:
        return a.T @ b if reduce_rows else a @ b
    half = m // 2
    if reduce_rows:

        def part(rows):
            return a[rows].T @ b[rows]
    else:

        def part(rows):
            return a[rows] @ b

    import numba

    first, second = slice(0, half), slice(half, m)
    if numba.get_num_threads() > 1:
        pending = _gemm_worker().submit(part, second)
        top = part(first)
        bottom = pending.result()
    else:
        top, bottom = part(first), part(second)
    return top + bottom if reduce_rows else np.concatenate([top, bottom])


@functools.cache
def _gemm_worker():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(1, thread_name_prefix="npconv-gemm")
