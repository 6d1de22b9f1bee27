"""The runner on a Dask cluster (``pip install 'npconv[distributed]'``): :class:`DaskCluster`.

* **Data** goes to the workers once: each in-memory data set is scattered to every worker
  (``client.scatter(data, broadcast=True)``) and jobs take it by reference; a
  :class:`~.sources.Source` is sent as its description and read by each worker from the disk they
  share (checked against the client's fingerprint).
* **Jobs** are ``client.submit(...)`` calls with ``retries`` (a job that raised is run again); a
  job whose worker dies is rescheduled on another by Dask itself (up to its
  ``distributed.scheduler.allowed-failures``, 3 by default), so a lost worker costs its job's time
  and nothing else. Scattered data cannot be recomputed: when every worker holding it dies at
  once, Dask cancels the jobs that need it, and the client scatters it again to the workers the
  nannies restarted and resubmits those jobs (``retries`` times at most).
* **Results** come back to the client, which writes every file; workers write none.
* **Progress**: workers publish events with ``Worker.log_event`` on a topic of this run, which the
  client follows with ``Client.subscribe_topic``.
* **Ctrl-C** cancels the run's futures and sets a ``distributed.Event`` that every running job
  checks once a second, so the workers stop training within a second or so and are free again.

Threads: one job per worker thread; start workers with ``--nthreads 1`` and as many processes as
cores (``--nworkers N``): Dask's nanny gives each one BLAS thread, and Numba gets the same.
"""

from __future__ import annotations

import time
import uuid
from queue import SimpleQueue

from .events import Events, drain, job_failed
from .local import POLL_SECONDS
from .sources import Source, materialise
from .threads import match_numba_to_blas


def distributed_module():
    """``dask.distributed``, or an ImportError that says how to install it."""
    try:
        import dask.distributed as distributed
    except ImportError as exc:
        raise ImportError(
            f"--cluster needs Dask's distributed scheduler: pip install 'npconv[distributed]' ({exc})",
            name=getattr(exc, "name", None),
        ) from exc
    return distributed


def _run_on_worker(execute, job, datasets, topic: str, stop_event: str):
    """A job on a Dask worker: ``execute(job, datasets, report, should_stop)``, reporting on
    ``topic``, stopping when the client sets the event ``stop_event``."""
    match_numba_to_blas()
    from dask.distributed import Event, get_worker

    worker = get_worker()
    stop = Event(stop_event)
    return execute(
        job, materialise(datasets), report=lambda *event: worker.log_event(topic, event), should_stop=stop.is_set
    )


def _failure(future) -> BaseException:
    """Why ``future`` did not finish: its exception, or what a cancelled one says."""
    error = future.exception() if future.status == "error" else None
    return error or RuntimeError(
        f"the scheduler {future.status} it (its data was lost with every worker "
        "that held it, or the cluster was shut down)"
    )


class DaskCluster:
    """Jobs on the Dask cluster whose scheduler is at ``address`` (``"tcp://host:8786"``), or through an
    existing ``dask.distributed.Client``."""

    def __init__(self, address, retries: int = 2):
        self.address = address
        self.retries = int(retries)

    def _client(self):
        distributed = distributed_module()
        if isinstance(self.address, distributed.Client):
            return self.address, False
        return distributed.Client(self.address), True

    def run(self, jobs, datasets, on_result, progress, execute) -> None:
        if not jobs:
            return
        distributed = distributed_module()
        client, own = self._client()
        run = f"npconv-{uuid.uuid4().hex[:8]}"
        messages: SimpleQueue = SimpleQueue()
        events = Events(jobs, progress)
        client.subscribe_topic(run, lambda event: messages.put(event[1]))
        stop = distributed.Event(run + "-stop", client=client)
        futures: dict = {}
        completed = False
        try:
            shared = {key: data for key, data in datasets.items() if isinstance(data, Source)}

            def submit(batch, attempt):
                """Submits ``batch``, scattering first what no worker holds any more."""
                lost = [
                    key
                    for key, data in datasets.items()
                    if not isinstance(data, Source) and (key not in shared or shared[key].status != "finished")
                ]
                if lost:
                    shared.update(
                        zip(lost, client.scatter([datasets[key] for key in lost], broadcast=True, hash=False))
                    )
                submitted = []
                for job in batch:
                    needed = {name: shared[name] for name in getattr(job, "data_keys", datasets)}
                    key = f"{run}-{job.key}" + (f"-again{attempt}" if attempt else "")
                    submitted.append(
                        client.submit(
                            _run_on_worker,
                            execute,
                            job,
                            needed,
                            run,
                            stop.name,
                            key=key,
                            retries=self.retries,
                            pure=False,
                        )
                    )
                    futures[submitted[-1]] = job
                return submitted

            attempt = 0
            pending = submit(jobs, attempt)
            while pending:
                done = [future for future in pending if future.done()]
                drain(messages, events)
                if not done:
                    time.sleep(POLL_SECONDS)
                    continue
                finished = {future.key for future in done}
                pending = [future for future in pending if future.key not in finished]
                orphans = []
                for future in done:
                    job = futures.pop(future)
                    if future.status == "cancelled" and attempt < self.retries:
                        orphans.append(job)  # its data died with every worker that held it
                    elif future.status != "finished":
                        error = _failure(future)
                        raise job_failed(job, error, "the Dask cluster") from error
                    else:
                        events.finish(job, future.result(), on_result)
                if orphans:
                    attempt += 1
                    pending += submit(orphans, attempt)
            completed = True
        finally:
            if not completed:
                stop.set()
                client.cancel(list(futures))
            client.unsubscribe_topic(run)
            if own:
                client.close()
