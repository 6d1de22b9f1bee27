"""What every runner shares: the run's :class:`Events` (workers' progress, passed to a
:class:`~.progress.Progress`), :func:`drain` for a queue of them, and the errors a run stops with
(:class:`JobError`, :class:`JobsInterrupted`).

The runners (:mod:`.local`, :mod:`.cluster`) build on this module and :mod:`.runners` on them, so
none of them imports another back.
"""

from __future__ import annotations

import queue

from ..errors import NpconvError


class JobError(NpconvError, RuntimeError):
    """A job failed in its worker (the message names the job and the worker's error)."""


class JobsInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a callback's exception) stopped a run; ``results`` holds the jobs that finished
    (key -> result)."""

    def __init__(self, results: dict):
        super().__init__(f"interrupted with {len(results)} job(s) finished")
        self.results = results


class Events:
    """Progress events from workers, ``(kind, key, payload)``, passed to a :class:`~.progress.Progress`;
    events of a job whose result is already in (late from their queue) are dropped."""

    def __init__(self, jobs, progress):
        self.jobs = {job.key: job for job in jobs}
        self.progress = progress
        self.finished: set[str] = set()

    def __call__(self, kind, key, payload) -> None:
        job = self.jobs.get(key)
        if job is None or key in self.finished:
            return
        if kind == "started":
            self.progress.started(job, payload)
        elif kind == "epoch":
            self.progress.epoch(job, *payload)

    def finish(self, job, result, on_result) -> None:
        self.finished.add(job.key)
        on_result(job, result)
        self.progress.finished(job, result)


def drain(messages, events: Events) -> None:
    """Pass every event waiting in the queue ``messages`` to ``events``."""
    while True:
        try:
            events(*messages.get_nowait())
        except queue.Empty:
            return


def job_failed(job, error, worker: str = "") -> JobError:
    where = f" on {worker}" if worker else ""
    return JobError(f"job {job.title!r} failed{where}: {type(error).__name__}: {error}")
