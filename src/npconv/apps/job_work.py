"""What a worker does with a training job: train one model, evaluate it, send it back.

:func:`execute` is the same call wherever :mod:`npconv.jobs` runs it (this process, a local worker
process, a Dask worker): :func:`npconv.apps.fitting.fit_one` from the job's seed, the evaluation
``train`` makes, and the model's file as bytes. Progress goes out through ``report(kind, key,
payload)``: ``("started", key, worker)`` then ``("epoch", key, (epoch, epochs, logs))`` after each
epoch. :func:`run_training_jobs` is :func:`npconv.jobs.run_jobs` with this ``execute``.
"""

from __future__ import annotations

import time

from .. import callbacks as C
from ..jobs import run_jobs, worker_description
from .job_spec import Job, JobResult


class _Report(C.Callback):
    """Sends each epoch's logs out; stops training after the batch at which ``should_stop()`` is true
    (a Dask run cancelled by Ctrl-C on the client), asking at most once a second."""

    def __init__(self, job: Job, report, should_stop=None):
        self.job, self.report, self.should_stop = job, report, should_stop
        self._asked = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if self.report is not None:
            self.report("epoch", self.job.key, (epoch + 1, self.job.recipe.epochs, dict(logs or {})))

    def on_batch_end(self, batch, logs=None):
        if self.should_stop is not None and time.monotonic() - self._asked > 1.0:
            self._asked = time.monotonic()
            if self.should_stop():
                self.model.stop_training = True


def execute(job: Job, datasets, report=None, should_stop=None) -> JobResult:
    """Train ``job`` on ``datasets`` (name -> Dataset) and return its :class:`JobResult`."""
    from .. import saving
    from . import fitting, tta
    from .datasets import to_float

    if report is not None:
        report("started", job.key, worker_description())
    train = job.train.of(datasets)
    test = None if job.test is None else job.test.of(datasets)
    validation = None if test is None else (to_float(test.x), test.y)
    callbacks = [*job.callbacks, _Report(job, report, should_stop)]
    start = time.perf_counter()
    model, history, interrupted = fitting.fit_one(
        train,
        job.recipe,
        job.arch,
        validation,
        job.seed,
        0,
        job.dataset,
        callbacks,
        job.init,
        member=job.member,
        backup=job.backup,
    )
    seconds = time.perf_counter() - start
    evaluation, probabilities = None, {}
    if test is not None and job.evaluate:
        evaluation = fitting.evaluate(model, test.x, test.y, tta=job.recipe.tta)
    if test is not None and job.views:
        x = to_float(test.x, model.metadata.get("value_scale", fitting.VALUE_SCALE))
        probabilities["plain"] = fitting.probabilities(tta.predict(model, x))
        for view in (v for v in job.views if v in tta.allowed_modes(model.metadata)):
            probabilities[view] = fitting.probabilities(tta.predict(model, x, view))
    return JobResult(
        job.key,
        saving.model_bytes(model) if job.keep_model else None,
        history,
        seconds,
        interrupted,
        evaluation,
        probabilities,
        worker_description(),
    )


def run_training_jobs(jobs, datasets, runner=None, progress=None, on_result=None) -> dict:
    """Train ``jobs`` (:class:`~.job_spec.Job`) on ``datasets``: :func:`npconv.jobs.run_jobs` with
    :func:`execute`; returns ``{job.key: JobResult}``."""
    return run_jobs(jobs, datasets, runner, progress, on_result, execute=execute)
