"""Running a list of jobs: :func:`run_jobs`, and :func:`runner_for` to choose where.

A runner has one method, ``run(jobs, datasets, on_result, progress, execute)``: it runs
``execute(job, datasets, report, should_stop)`` for every job and calls
``on_result(job, result)`` in the client's main thread as each result comes in (in any order), then
``progress.finished``. It returns when all are in; Ctrl-C (or an exception from a callback) stops
every worker before it propagates, and a failed job stops the run with a :class:`~.events.JobError`.
Results only ever travel back to the client: workers write no file.
"""

from __future__ import annotations

from ..errors import check_positive_int, expected
from .events import JobsInterrupted
from .progress import Progress


def run_jobs(jobs, datasets, runner=None, progress: Progress | None = None, on_result=None, *, execute) -> dict:
    """Run ``execute(job, datasets, report, should_stop)`` for each of ``jobs`` with ``runner``
    (default: this process, one after another); returns ``{job.key: result}``.

    ``execute`` is a module-level function (worker processes and Dask receive it by reference);
    :func:`npconv.apps.job_work.execute` trains a :class:`npconv.apps.job_spec.Job`. ``datasets``
    maps names to data, sent to each worker once, or to a :class:`~.sources.Source` each worker
    loads itself.

    ``on_result(job, result)`` is called as each result comes in. Ctrl-C raises
    :class:`~.events.JobsInterrupted` with the results in so far, once every worker has stopped.
    """
    from .local import InProcess

    jobs = list(jobs)
    keys = [job.key for job in jobs]
    if len(set(keys)) != len(keys):
        raise ValueError(expected("jobs", "a unique key per job", sorted(k for k in keys if keys.count(k) > 1)))
    runner = runner or InProcess()
    progress = progress or Progress()
    results: dict = {}

    def collect(job, result):
        results[job.key] = result
        if on_result is not None:
            on_result(job, result)

    progress.begin(jobs)
    try:
        runner.run(jobs, datasets, collect, progress, execute)
    except KeyboardInterrupt as exc:
        if isinstance(exc, JobsInterrupted):
            raise
        raise JobsInterrupted(results) from None
    finally:
        progress.end()
    return results


def runner_for(jobs: int = 1, cluster=None, threads: int | None = None, retries: int = 2):
    """Where a run's jobs train: a Dask cluster when ``cluster`` is given (a scheduler address such
    as ``"tcp://host:8786"``, or a ``dask.distributed.Client``), else ``jobs`` worker processes here
    (``threads`` each, default ``cores // jobs``), else (``jobs=1``) this process.

    ``retries``: how many times Dask runs a job again after it raised (a job whose worker died is
    run again anyway, up to Dask's ``distributed.scheduler.allowed-failures``)."""
    jobs = check_positive_int(jobs, "jobs")
    if cluster is not None:
        if jobs != 1:
            raise ValueError(
                expected(
                    "jobs",
                    "1 with a cluster (its workers decide how many jobs run at once)",
                    jobs,
                    "Leave out --jobs, or leave out --cluster to use this machine.",
                )
            )
        from .cluster import DaskCluster

        return DaskCluster(cluster, retries=retries)
    from .local import InProcess, ProcessPool

    return InProcess() if jobs == 1 else ProcessPool(jobs, threads)


def runs_here(jobs: int = 1, cluster=None) -> bool:
    """Whether ``jobs`` and ``cluster`` ask for today's path: every training in this process."""
    return cluster is None and check_positive_int(jobs, "jobs") == 1
