"""Runners on this machine: :class:`InProcess` (one job after another, here) and :class:`ProcessPool`
(``jobs`` worker processes of :class:`concurrent.futures.ProcessPoolExecutor`).

Workers are spawned, fresh interpreters rather than forks (a fork would copy BLAS's and Numba's
thread pools in whatever state they are), with ``cores // jobs`` BLAS and Numba threads each
(:mod:`.threads`). Each worker receives the run's data sets once, when it starts. Workers ignore
Ctrl-C: the client, which gets it, terminates them, so no worker is left training and no file is
half written (workers write none; the client writes only whole results).
"""

from __future__ import annotations

import multiprocessing
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ..errors import check_positive_int
from .events import Events, JobError, drain, job_failed
from .sources import materialise
from .threads import thread_environment, threads_per_job

POLL_SECONDS = 0.2


class InProcess:
    """Every job in this process, in order (``jobs=1``). Ctrl-C stops the running job after its
    batch (as ``fit`` does) and the run with it; that job's partial result is not delivered."""

    def run(self, jobs, datasets, on_result, progress, execute) -> None:
        datasets = materialise(datasets)
        events = Events(jobs, progress)
        for job in jobs:
            result = execute(job, datasets, report=events)
            if getattr(result, "interrupted", False):
                raise KeyboardInterrupt
            events.finish(job, result, on_result)


# ----------------------------------------------------------------------------- in a worker process

_worker: dict = {}


def _start_worker(datasets, events) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the client's to handle: it stops us
    _worker.update(datasets=datasets, events=events)


def _run_in_worker(execute, job):
    events = _worker["events"]
    return execute(job, materialise(_worker["datasets"]), report=lambda *event: events.put(event))


# ----------------------------------------------------------------------------- in the client


class ProcessPool:
    """``jobs`` trainings at once in worker processes on this machine, ``threads`` threads each
    (default: the cores divided between them, :func:`~.threads.threads_per_job`)."""

    def __init__(self, jobs: int, threads: int | None = None):
        self.jobs = check_positive_int(jobs, "jobs")
        self.threads = threads_per_job(self.jobs) if threads is None else check_positive_int(threads, "threads")

    def run(self, jobs, datasets, on_result, progress, execute) -> None:
        if not jobs:
            return
        context = multiprocessing.get_context("spawn")
        messages = context.Queue()
        events = Events(jobs, progress)
        order = {job.key: i for i, job in enumerate(jobs)}
        pool = ProcessPoolExecutor(
            min(self.jobs, len(jobs)), mp_context=context, initializer=_start_worker, initargs=(datasets, messages)
        )
        completed = False
        try:
            # ProcessPoolExecutor starts its spawned workers as jobs are submitted, so all start here.
            with thread_environment(self.threads):
                futures = {pool.submit(_run_in_worker, execute, job): job for job in jobs}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                drain(messages, events)
                for future in sorted(done, key=lambda f: order[futures[f].key]):
                    job = futures[future]
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        raise JobError(
                            f"a worker process died (killed, or out of memory?) while job "
                            f"{job.title!r} was running; {len(events.finished)} of {len(jobs)} jobs "
                            "had finished. Run again with fewer jobs at once."
                        ) from None
                    except Exception as exc:
                        raise job_failed(job, exc) from exc
                    events.finish(job, result, on_result)
            completed = True
        finally:
            if completed:
                pool.shutdown(wait=True)
            else:
                _stop(pool)
            messages.close()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop every worker now, mid-job, and wait for them to be gone (a few seconds at most: a pool
    that a dead worker broke must not hang the client). Python 3.14 has ``terminate_workers``;
    before, the pool's own table of processes is the only handle on them."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
    for process in processes:
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)
