"""Many independent jobs at once: k-fold CV, ensemble members, recipe searches.

:func:`run_jobs` runs a function, ``execute(job, datasets, report, should_stop) -> result``, on each
of a list of jobs with a runner, and returns their results by key:

* :class:`InProcess` - here, one after another (``jobs=1``);
* :class:`ProcessPool` - ``jobs`` spawned worker processes on this machine, the cores divided
  between them (``npconv train --jobs N``);
* :class:`DaskCluster` - the workers of a Dask cluster (``npconv train --cluster tcp://host:8786``).

:func:`runner_for(jobs, cluster) <runner_for>` picks one. A job is any picklable object with a
unique ``key`` and a ``title`` (what progress shows); it may say which of the run's data sets it
reads (``data_keys``) and how many epochs progress counts to (``epochs``). ``execute`` reports
``("started", key, worker)`` and ``("epoch", key, (epoch, epochs, logs))`` through ``report``, and
its result may carry ``interrupted`` (Ctrl-C in this process) and ``cached``. The trainings'
jobs and their ``execute`` are :mod:`npconv.apps`'s (:mod:`npconv.apps.job_spec`,
:func:`npconv.apps.job_work.execute`); :mod:`npconv.apps.training` runs its folds and ensemble
members this way when given ``jobs`` or ``cluster``, and :mod:`npconv.tuning` its recipe searches.
"""

from .cluster import DaskCluster
from .events import JobError, JobsInterrupted
from .local import InProcess, ProcessPool
from .progress import Bars, Progress
from .runners import run_jobs, runner_for, runs_here
from .sources import Source, materialise
from .threads import threads_per_job, worker_description

__all__ = [
    "Bars",
    "DaskCluster",
    "InProcess",
    "JobError",
    "JobsInterrupted",
    "ProcessPool",
    "Progress",
    "Source",
    "materialise",
    "run_jobs",
    "runner_for",
    "runs_here",
    "threads_per_job",
    "worker_description",
]
