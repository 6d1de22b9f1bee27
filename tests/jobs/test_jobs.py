"""Many trainings at once (npconv.jobs): worker processes and a real Dask cluster give the results of
one process, survive a lost worker, and stop cleanly on Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import require, same_threads, sigint_restored

import npconv
from npconv import callbacks as C
from npconv.apps import datasets, training
from npconv.apps.job_spec import Job, Part
from npconv.apps.job_work import run_training_jobs
from npconv.apps.recipes import Recipe
from npconv.apps.transfer import Pretrained
from npconv.jobs import InProcess, JobError, JobsInterrupted, ProcessPool, Progress, runner_for, threads_per_job
from npconv.jobs.threads import THREAD_VARIABLES, thread_environment

RECIPE = Recipe(arch="tiny", epochs=2, batch_size=16, image_size=16)


@pytest.fixture(scope="module")
def faces():
    """96 built-in synthetic faces at 16 px: a 2-fold CV of the tiny arch takes well under a second."""
    return datasets.load("builtin:smiles", 16, "rgb").subset(np.arange(96))


def _file_arrays(content: bytes) -> tuple[dict, dict]:
    """A saved model's ``(config, arrays)``, its training times left out (they differ run to run)."""
    with np.load(io.BytesIO(content)) as saved:
        arrays = {k: saved[k] for k in saved.files}
    config = json.loads(str(arrays.pop("__config__")))
    meta = config["metadata"]
    meta.get("trained", {}).pop("seconds", None)
    for fold in meta.get("cross_validation", {}).get("folds", []):
        fold.pop("seconds")
    return config, arrays


def assert_same_model(a, b):
    config_a, arrays_a = _file_arrays(npconv.saving.model_bytes(a))
    config_b, arrays_b = _file_arrays(npconv.saving.model_bytes(b))
    assert config_a == config_b
    assert sorted(arrays_a) == sorted(arrays_b)
    for key in arrays_a:
        np.testing.assert_array_equal(arrays_a[key], arrays_b[key], err_msg=key)


def without_seconds(folds):
    return [{k: v for k, v in fold.items() if k != "seconds"} for fold in folds]


# ----------------------------------------------------------------------------- threads


def test_the_cores_are_divided_between_the_jobs(monkeypatch):
    assert threads_per_job(2, cores=2) == 1 and threads_per_job(3, cores=16) == 5
    assert threads_per_job(4, cores=2) == 1  # never none
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    with thread_environment(3):
        assert all(os.environ[name] == "3" for name in THREAD_VARIABLES)
    assert os.environ["OMP_NUM_THREADS"] == "7" and "NUMBA_NUM_THREADS" not in os.environ
    with pytest.raises(ValueError, match="jobs"):
        runner_for(jobs=0)
    with pytest.raises(ValueError, match="1 with a cluster"):
        runner_for(jobs=2, cluster="tcp://127.0.0.1:1")


# ----------------------------------------------------------------------------- worker processes


def _fold_jobs(faces, k=2, **options):
    from npconv.data import kfold_indices

    return [
        Job(
            f"fold{i + 1}",
            RECIPE,
            "tiny",
            seed=i,
            train=Part("faces", tr),
            test=Part("faces", te),
            views=("plain", "shift", "flip"),
            **options,
        )
        for i, (tr, te) in enumerate(kfold_indices(faces.y, k, seed=0))
    ]


def test_a_job_gives_the_same_result_in_a_worker_process(faces):
    """Each job is fit_one from its own seed: where it runs changes nothing, bit for bit (at the same
    thread count: see same_threads)."""
    jobs = _fold_jobs(faces)
    with same_threads(threads_per_job(2)):
        here = run_training_jobs(jobs, {"faces": faces}, InProcess())
    there = run_training_jobs(jobs, {"faces": faces}, ProcessPool(2))
    for job in jobs:
        a, b = here[job.key], there[job.key]
        assert a.history == b.history and a.evaluation["accuracy"] == b.evaluation["accuracy"]
        assert sorted(a.probabilities) == ["plain", "shift"]  # no flips: the tiny arch has no flip layer
        for view in a.probabilities:
            np.testing.assert_array_equal(a.probabilities[view], b.probabilities[view])
        assert_same_model(npconv.load_model(a.model), npconv.load_model(b.model))
        assert b.worker["pid"] != os.getpid() and a.worker["pid"] == os.getpid()
        # the cores divided between the 2 workers, for BLAS and Numba alike
        assert set(b.worker["threads"].values()) == {str(threads_per_job(2))}


def test_cross_validate_with_jobs_2_gives_the_folds_and_model_of_jobs_1(faces):
    with same_threads(threads_per_job(2)):
        one = training.cross_validate(faces, 2, RECIPE, "tiny", seed=3, verbose=0)
    seen = []
    two = training.cross_validate(
        faces, 2, RECIPE, "tiny", seed=3, verbose=0, jobs=2, on_fold=lambda i, result: seen.append(i)
    )
    assert without_seconds(two.folds) == without_seconds(one.folds) and sorted(seen) == [0, 1]
    assert_same_model(two.model, one.model)  # the best fold's model, as the CLI saves it
    assert two.evaluation["accuracy"] == one.evaluation["accuracy"] and not two.interrupted
    # With every core for BLAS (jobs=1 as it is), the folds score the same; only the last bits of
    # BLAS's products may differ (docs/ARCHITECTURE.md, "Many trainings at once").
    default = training.cross_validate(faces, 2, RECIPE, "tiny", seed=3, verbose=0)
    assert [f["correct"] for f in default.folds] == [f["correct"] for f in two.folds]


def test_smallres_folds_with_jobs_2_are_those_of_jobs_1_bit_for_bit(faces):
    """The compiled tier's kernels split their work by shapes, never by thread counts, so the workers'
    share of the cores changes nothing: batch norm, residual blocks, augmentation, every fold."""
    from npconv.functional._tier import compiled

    if compiled() is None:
        pytest.skip("the NumPy tier's BLAS products depend on the thread count in their last bits")
    recipe = Recipe(epochs=1, batch_size=16, image_size=16)
    one = training.cross_validate(faces, 2, recipe, "smallres", seed=0, verbose=0)
    two = training.cross_validate(faces, 2, recipe, "smallres", seed=0, verbose=0, jobs=2)
    assert without_seconds(two.folds) == without_seconds(one.folds)
    assert_same_model(two.model, one.model)


def test_an_ensemble_with_jobs_2_is_the_ensemble_of_jobs_1(faces):
    recipe = RECIPE.replace(ensemble=3)
    test = faces.subset(np.arange(64, 96))
    with same_threads(threads_per_job(2)):
        one = training.train(faces.subset(np.arange(64)), recipe, "tiny", test=test, seed=1, verbose=0)
    two = training.train(faces.subset(np.arange(64)), recipe, "tiny", test=test, seed=1, verbose=0, jobs=2)
    assert two.model.metadata["ensemble"] == one.model.metadata["ensemble"]
    assert two.history == one.history and two.evaluation["loss"] == one.evaluation["loss"]
    assert_same_model(two.model, one.model)


class StopAtFirstResult(Progress):
    def finished(self, job, result):
        raise KeyboardInterrupt


def test_ctrl_c_keeps_the_folds_and_members_that_had_finished(faces):
    """As one process keeps the folds trained before Ctrl-C, with the difference that the workers
    stop at once: the folds (or ensemble members) not finished are not in the result."""
    cv = training.cross_validate(faces, 2, RECIPE, "tiny", verbose=0, jobs=2, progress=StopAtFirstResult())
    assert cv.interrupted and len(cv.folds) == 1 and cv.model.metadata["cross_validation"]["k"] == 2
    averaged = training.train(
        faces, RECIPE.replace(ensemble=3), "tiny", verbose=0, jobs=2, progress=StopAtFirstResult()
    )
    assert averaged.interrupted and "ensemble" not in averaged.model.metadata  # one member: no average


def test_a_pretrained_model_travels_to_the_workers_as_its_file(faces, tmp_path):
    model = training.train(faces, RECIPE.replace(epochs=1), "tiny", seed=0, verbose=0).model
    model.save(tmp_path / "start.npz")
    init = Pretrained.load(tmp_path / "start.npz")
    copy = pickle.loads(pickle.dumps(init))
    assert copy.path == init.path
    assert_same_model(copy.model, init.model)


class FailTheSecond(C.Callback):
    def on_train_begin(self, logs=None):
        if self.model.metadata.get("recipe", {}).get("epochs") == 3:
            raise RuntimeError("this job was meant to fail")


def test_a_failed_job_stops_the_run_and_names_the_job(faces):
    jobs = _fold_jobs(faces)
    failing = Job(
        "bad", RECIPE.replace(epochs=3), "tiny", 0, Part("faces"), callbacks=(FailTheSecond(),), label="the failing one"
    )
    with pytest.raises(JobError, match="job 'the failing one' failed: RuntimeError: this job was meant to fail"):
        run_training_jobs([jobs[0], failing], {"faces": faces}, ProcessPool(2))
    with pytest.raises(ValueError, match="unique key"):
        run_training_jobs([jobs[0], jobs[0]], {"faces": faces})


class KillOnce(C.Callback):
    """Kills its own worker process at the first batch, the first time any worker runs it.

    With ``times=n``, the first ``n`` workers to get there die (markers ``marker``, ``marker-1``, ...).
    Claiming a marker is atomic (``O_EXCL``), so two workers at their first batch together cannot
    both kill themselves where one was meant to.
    """

    def __init__(self, marker, times: int = 1):
        self.markers = [str(marker)] + [f"{marker}-{n}" for n in range(1, times)]

    def on_batch_end(self, batch, logs=None):
        for marker in self.markers:
            try:
                claimed = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                continue
            os.write(claimed, str(os.getpid()).encode())
            os.close(claimed)
            os.kill(os.getpid(), signal.SIGKILL)


def test_a_local_worker_killed_is_a_clear_error(faces, tmp_path):
    with pytest.raises(JobError, match="a worker process died"):
        run_training_jobs(
            _fold_jobs(faces, callbacks=(KillOnce(tmp_path / "killed"),)), {"faces": faces}, ProcessPool(2)
        )


# ----------------------------------------------------------------------------- Ctrl-C

_SCRIPT = """
import json, os, sys
from npconv import tuning
from npconv.apps.recipes import Recipe
from npconv.jobs import Progress

class Pids(Progress):
    def started(self, job, worker):
        with open(sys.argv[2], "a") as f:
            f.write(str(worker["pid"]) + "\\n")

if __name__ == "__main__":
    tuning.tune("builtin:smiles", sys.argv[1], grids=["learning_rate=1e-3,2e-3,3e-3"], folds=3, seeds=2,
                jobs=2, progress=Pids(), base=Recipe(arch="tiny", epochs=300, batch_size=8, image_size=16),
                limit=96)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has stopped: only its exit status is left


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_ctrl_c_stops_every_worker_and_leaves_no_half_written_file(tmp_path):
    out, pids = tmp_path / "search", tmp_path / "pids"
    script = tmp_path / "search.py"
    script.write_text(_SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script), str(out), str(pids)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CI": ""},
        preexec_fn=sigint_restored,
    )

    def both_workers_busy_and_a_job_done():
        busy = pids.is_file() and len(set(pids.read_text().split())) == 2
        return busy and list((out / "jobs").glob("*.npz"))

    deadline = time.monotonic() + 120
    while not both_workers_busy_and_a_job_done() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, process.stderr.read()
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends to the client
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0 and "JobsInterrupted: interrupted with" in err
    workers = {int(p) for p in pids.read_text().split()}
    assert len(workers) == 2 and not any(_alive(p) for p in workers)  # both stopped mid-job
    entries = sorted(p.name for p in (out / "jobs").iterdir())
    assert entries and all(name.endswith(".npz") and not name.startswith(".") for name in entries)
    assert not (out / "results.json").exists()  # written only by a search that finished
    from npconv.tuning.cache import JobCache

    assert all(JobCache(out / "jobs").get(name[:-4]) is not None for name in entries)


# ----------------------------------------------------------------------------- a Dask cluster


@pytest.fixture(scope="module")
def cluster():
    """A real Dask cluster on this machine: a scheduler and 2 worker processes of 1 thread."""
    try:
        from dask.distributed import LocalCluster
    except ImportError:
        LocalCluster = None
    require(LocalCluster is not None, "dask[distributed] is not installed (pip install -e '.[dev]')")
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as local:
        yield local


def test_a_dask_cluster_gives_the_folds_of_one_process(faces, cluster):
    with same_threads(1):  # Dask's nanny gives each worker one BLAS thread, and npconv Numba one
        one = training.cross_validate(faces, 2, RECIPE, "tiny", seed=0, verbose=0)
    there = training.cross_validate(faces, 2, RECIPE, "tiny", seed=0, verbose=0, cluster=cluster.scheduler_address)
    assert without_seconds(there.folds) == without_seconds(one.folds)
    assert_same_model(there.model, one.model)


class Epochs(Progress):
    def __init__(self):
        self.seen = []

    def started(self, job, worker):
        self.seen.append(("started", job.key, worker["pid"]))

    def epoch(self, job, epoch, epochs, logs):
        self.seen.append(("epoch", job.key, epoch))


def test_a_worker_killed_mid_job_is_survived(faces, cluster, tmp_path):
    marker = tmp_path / "killed"
    progress = Epochs()
    with same_threads(1):
        one = training.cross_validate(faces, 2, RECIPE, "tiny", seed=0, verbose=0)
    there = training.cross_validate(
        faces,
        2,
        RECIPE,
        "tiny",
        seed=0,
        verbose=0,
        cluster=cluster.scheduler_address,
        callbacks=[KillOnce(marker)],
        progress=progress,
    )
    assert marker.is_file()  # one worker did die mid-job ...
    assert without_seconds(there.folds) == without_seconds(one.folds)  # ... and its job ran again elsewhere
    assert not _alive(int(marker.read_text()))  # (its nanny started a new worker process)
    assert {e[1:] for e in progress.seen if e[0] == "epoch"} >= {("fold1", 2), ("fold2", 2)}


def test_every_worker_killed_at_once_loses_no_data(faces, cluster, tmp_path):
    """Scattered data dies with the last worker that held it: the client scatters it again to the
    restarted workers and resubmits the jobs Dask cancelled (CI once lost both workers this way)."""
    with same_threads(1):
        one = training.cross_validate(faces, 2, RECIPE, "tiny", seed=0, verbose=0)
    there = training.cross_validate(
        faces,
        2,
        RECIPE,
        "tiny",
        seed=0,
        verbose=0,
        cluster=cluster.scheduler_address,
        callbacks=[KillOnce(tmp_path / "killed", times=2)],
    )
    assert (tmp_path / "killed").is_file() and (tmp_path / "killed-1").is_file()
    assert without_seconds(there.folds) == without_seconds(one.folds)


def test_a_search_on_the_cluster_reads_the_data_by_path(cluster, tmp_path):
    from npconv import tuning

    base = Recipe(arch="tiny", epochs=1, batch_size=16, image_size=16)
    options = dict(grids=["learning_rate=1e-3,3e-3"], folds=2, base=base, limit=64)
    with same_threads(1):
        here = tuning.tune("builtin:smiles", tmp_path / "here", **options)
    there = tuning.tune(
        "builtin:smiles", tmp_path / "there", cluster=cluster.scheduler_address, share="path", **options
    )
    runs = [[without_seconds(row["runs"]) for row in result.rows] for result in (here, there)]
    assert runs[0] == runs[1]
    assert there.trained == len(there.results) == 4


class StopAtFirstEpoch(Progress):
    def epoch(self, job, epoch, epochs, logs):
        raise KeyboardInterrupt


def _training_threads(client) -> int:
    return sum(client.run(lambda dask_worker: len(dask_worker.active_threads)).values())


def test_ctrl_c_on_the_client_stops_the_workers_training(faces, cluster):
    """Dask cannot kill a running task: the jobs see the run's stop event and end within a second."""
    from dask.distributed import Client

    endless = RECIPE.replace(epochs=5000)  # minutes, if nothing stopped it
    with Client(cluster) as client:
        with pytest.raises(JobsInterrupted):
            training.cross_validate(faces, 2, endless, "tiny", verbose=0, cluster=client, progress=StopAtFirstEpoch())
        deadline = time.monotonic() + 15
        while _training_threads(client) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _training_threads(client) == 0 and not any(client.processing().values())
