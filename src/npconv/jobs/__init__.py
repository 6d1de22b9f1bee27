"""Many independent trainings at once: k-fold CV, ensemble members, recipe searches.

A :class:`Job` describes one training (a recipe, an arch, a seed, which examples of the run's data
sets); :func:`run_jobs` trains a list of them with a runner and returns their :class:`JobResult`\\ s
(the trained model's file as bytes, the history, the held-out evaluation):

* :class:`InProcess` - here, one after another (``jobs=1``);
* :class:`ProcessPool` - ``jobs`` spawned worker processes on this machine, the cores divided
  between them (``npconv train --jobs N``);
* :class:`DaskCluster` - the workers of a Dask cluster (``npconv train --cluster tcp://host:8786``).

:func:`runner_for(jobs, cluster) <runner_for>` picks one. A job's result does not depend on where it
ran: it is :func:`npconv.apps.training.fit_one` from the job's seed, whose randomness comes from
that seed alone (see docs/ARCHITECTURE.md, "Many trainings at once", for what the kernels' thread
counts change). :mod:`npconv.apps.training` runs its folds and ensemble members this way when given
``jobs`` or ``cluster``; :mod:`npconv.tuning` runs recipe searches.
"""
from .cluster import DaskCluster
from .local import InProcess, ProcessPool
from .progress import Bars, Progress
from .runners import JobError, JobsInterrupted, run_jobs, runner_for, runs_here
from .spec import DataSource, Job, JobResult, Part, fingerprint
from .threads import threads_per_job

__all__ = [
    "Bars", "DaskCluster", "DataSource", "InProcess", "Job", "JobError", "JobResult", "JobsInterrupted",
    "Part", "ProcessPool", "Progress", "fingerprint", "run_jobs", "runner_for", "runs_here", "threads_per_job",
]
