"""Dividing the cores between jobs: ``jobs x threads <= cores``.

BLAS (OpenBLAS, MKL, OpenMP) reads its thread count when it is loaded, and Numba when it is
imported, so a worker's count has to be in its environment when the process starts. Local workers
are spawned (a fresh interpreter, not a fork) inside :func:`thread_environment`. A Dask worker gets
``OMP_NUM_THREADS=1`` and the BLAS ones from its nanny (Dask's ``distributed.nanny.pre-spawn-environ``);
:func:`match_numba_to_blas` gives Numba the same count before it is imported.
"""

from __future__ import annotations

import os
import socket
import sys
from contextlib import contextmanager

from ..errors import check_positive_int

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and ``taskset`` set)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    """``max(1, cores // jobs)``: each of ``jobs`` trainings at once gets an equal share of the cores."""
    return max(1, (cores or available_cores()) // check_positive_int(jobs, "jobs"))


@contextmanager
def thread_environment(threads: int):
    """Within the block, :data:`THREAD_VARIABLES` say ``threads``, so processes started in it use that
    many threads; the variables are put back after."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def match_numba_to_blas() -> None:
    """Give Numba the BLAS thread count of this process's environment, if Numba is not imported yet."""
    blas = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if blas and "numba" not in sys.modules:
        os.environ.setdefault("NUMBA_NUM_THREADS", blas)


def thread_settings() -> dict:
    """This process's :data:`THREAD_VARIABLES` (``None`` where unset), for a job's report."""
    return {name: os.environ.get(name) for name in THREAD_VARIABLES}


def worker_description() -> dict:
    """Where a job runs: host, process id and :func:`thread_settings`, for its report."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "threads": thread_settings()}
