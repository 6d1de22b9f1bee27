"""How many threads the compiled kernels and BLAS use while a model runs.

* :func:`blas_scope`: BLAS keeps to one thread while the compiled kernels run (they split the work
  over the cores themselves), and :func:`matmul` shares the large GEMMs left to BLAS out between
  two threads of its own;
* :func:`threads_per_epoch`: before each epoch of ``fit``, the compiled kernels take as many threads
  as there are cores not busy with other work (another training, a notebook), measured over the
  last epoch (:func:`use_free_cores`); ``NPCONV_THREADS=N`` fixes the count instead.

Neither changes a result: the compiled kernels split their work by the shapes, never by the thread
count (``tests/test_compiled.py``).
"""
from __future__ import annotations

import contextlib
import functools
import os
import time

import numpy as np

from ._tier import compiled


def blas_scope():
    """A context for running a model's kernels: under the compiled tier, BLAS keeps to one thread.

    The compiled kernels split their work over every core with Numba's threads, and the GEMMs left
    to BLAS (dense layers, 1 x 1 and small convolutions) are a small share of a step. But an
    OpenBLAS worker that has just run busy-waits about 0.1 s for more work, holding a core that
    Numba's parallel loops then wait for: with BLAS on two threads, a SIGNS epoch took 1.9x as long
    and a Happy one 1.4x (2-core machine, ``benchmarks/train_speed.py``). The NumPy tier, whose only
    parallelism is BLAS's, is left alone. Costs about 12 microseconds (threadpoolctl).
    """
    if compiled() is None:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=1, user_api="blas")


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


class FreeCores:
    """The cores other processes left free since the last reading, from ``/proc/stat`` (Linux).

    ``others = (machine busy time - this process's CPU time) / wall time``, in cores; the first
    reading, with no interval yet, counts the runnable tasks in ``/proc/loadavg`` instead.
    """

    def __init__(self):
        self._last = None

    def __call__(self) -> float | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
            now = (sum(fields), fields[3] + fields[4], time.process_time(), time.perf_counter())
        except (OSError, ValueError, IndexError):
            return None
        cores = os.cpu_count() or 1
        last, self._last = self._last, now
        if last is None:
            try:
                with open("/proc/loadavg") as f:
                    running = int(f.read().split()[3].split("/")[0])
            except (OSError, ValueError, IndexError):
                return None
            return max(0.0, cores - (running - 1))  # the reading thread is one of them
        ticks = os.sysconf("SC_CLK_TCK")
        wall = now[3] - last[3]
        if wall <= 0.05:
            return None
        busy = ((now[0] - last[0]) - (now[1] - last[1])) / ticks
        others = max(0.0, busy - (now[2] - last[2])) / wall
        return max(0.0, cores - others)


@contextlib.contextmanager
def threads_per_epoch():
    """For ``fit``: yields a function to call before each epoch, which gives the compiled kernels
    as many threads as there are free cores (:func:`use_free_cores`), or ``NPCONV_THREADS`` of them
    when that is set; the thread count from before is put back after."""
    if compiled() is None:
        yield lambda: None
        return
    import numba
    previous = numba.get_num_threads()
    fixed = os.environ.get("NPCONV_THREADS")
    reading = FreeCores()

    def adapt():
        if fixed:
            numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, int(fixed))))
        else:
            use_free_cores(reading)
    try:
        yield adapt
    finally:
        numba.set_num_threads(previous)


def use_free_cores(free_cores: FreeCores) -> int | None:
    """Give the compiled kernels ``round(free cores)`` threads (at least 1, at most Numba's
    maximum); returns the count, or ``None`` where nothing was changed (NumPy tier, no reading).

    On a busy machine a parallel loop waits for its slowest thread, which the other work's time
    slices keep off a core for milliseconds at a time: beside two busy loops on two cores, a SIGNS
    epoch on two threads took longer than on one (``benchmarks/train_speed.py --busy``).
    """
    if compiled() is None:
        return None
    free = free_cores()
    if free is None:
        return None
    import numba
    threads = max(1, min(numba.config.NUMBA_NUM_THREADS, int(free + 0.5)))
    numba.set_num_threads(threads)
    return threads


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
    if compiled() is None or work < SPLIT_MIN_MULTIPLY_ADDS or m < 2:
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
