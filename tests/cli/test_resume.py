"""``npconv train`` killed at any moment goes on from its backup and writes the uninterrupted run's bits.

Each training runs in a subprocess, killed with SIGKILL by a driver that wraps the CLI at a chosen
moment (inside an epoch, half-way through writing a backup, between folds or ensemble members),
from outside (``--jobs 2``, whose workers are processes of their own), or stopped by SIGINT or
SIGTERM that the driver sends it inside an epoch. The same
command run again must say that it resumes, end with the weights of a run that was never
interrupted, bit for bit, and leave no backup behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import sigint_restored

import npconv as nc
from npconv.backup import read_backup_state

SRC = str(Path(__file__).resolve().parents[1] / "src")
pytestmark = pytest.mark.slow  # each test runs 2-4 trainings in subprocesses (~3 s each, mostly imports)

QUICK = ["--arch", "tiny", "--image-size", "16", "--quiet", "--no-report"]

# Runs the CLI, killing itself with SIGKILL at the moment NPCONV_TEST_KILL names:
#   step:N    at the N-th training update (inside an epoch)
#   write:N   half-way through writing the N-th backup file (the bytes so far are on disk)
#   member:N  once the N-th model (fold or ensemble member) has finished training
# or sending itself signal S at the N-th update, as Ctrl-C or a kill from outside would:
#   signal:N:S
DRIVER = r"""
import io, os, signal, sys
from npconv import saving
from npconv.apps import fitting
from npconv.engine.training import Training

kind, _, n = os.environ.get("NPCONV_TEST_KILL", ":").partition(":")
calls = [0]

def due():
    calls[0] += 1
    return calls[0] == int(n)

def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)

if kind == "signal":
    n, _, signum = n.partition(":")
    step = Training._train_step
    def _train_step(self, *args):
        if due():
            os.kill(os.getpid(), int(signum))
        return step(self, *args)
    Training._train_step = _train_step
elif kind == "step":
    step = Training._train_step
    def _train_step(self, *args):
        if due():
            die()
        return step(self, *args)
    Training._train_step = _train_step
elif kind == "write":
    write = saving._write_npz
    def _write_npz(file, arrays):
        if "__backup__" in arrays and due():
            buffer = io.BytesIO()
            write(buffer, arrays)
            file.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            file.flush()
            os.fsync(file.fileno())
            die()
        write(file, arrays)
    saving._write_npz = _write_npz
elif kind == "member":
    fit_one = fitting.fit_one
    def _fit_one(*args, **kwargs):
        result = fit_one(*args, **kwargs)
        if due():
            die()
        return result
    fitting.fit_one = _fit_one

from npconv.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _env(**extra) -> dict:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
    return env


def npconv(*argv, kill=None, timeout=120) -> subprocess.CompletedProcess:
    """``npconv ARGV`` in a subprocess, killed at ``kill`` (see DRIVER)."""
    env = _env(**({"NPCONV_TEST_KILL": kill} if kill else {}))
    return subprocess.run(
        [sys.executable, "-c", DRIVER, *map(str, argv)],
        check=False,
        env=env,
        preexec_fn=sigint_restored,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def train(out, *args, kill=None) -> subprocess.CompletedProcess:
    """``npconv train --out OUT ARGS`` (quick settings) in a subprocess, killed at ``kill``."""
    quick = QUICK[4:] if "--init" in args else QUICK  # a started model keeps its arch and input size
    return npconv("train", "--out", out, *quick, *args, kill=kill)


def weights(path) -> list[np.ndarray]:
    return nc.load_model(path).get_weights()


def assert_same_bits(a, b) -> None:
    wa, wb = weights(a), weights(b)
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        assert x.dtype == y.dtype and np.array_equal(x, y)


def backup_of(out) -> Path:
    return Path(str(out) + ".backup")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted runs, by their arguments."""
    folder, made = tmp_path_factory.mktemp("reference"), {}

    def get(*args):
        key = " ".join(map(str, args))
        if key not in made:
            out = folder / f"run{len(made)}.npz"
            done = train(out, *args)
            assert done.returncode == 0, done.stderr
            assert "resuming" not in done.stdout and not backup_of(out).exists()
            made[key] = out
        return made[key]

    return get


def killed(result) -> None:
    assert result.returncode == -signal.SIGKILL, (result.returncode, result.stdout, result.stderr)


def resumed(out, *args, updates_left=None) -> str:
    """Run again; with ``updates_left``, killed if it trains more updates than that."""
    done = train(out, *args, kill=None if updates_left is None else f"step:{updates_left + 1}")
    assert done.returncode == 0, done.stderr
    assert not backup_of(out).exists(), "the backup is left behind"
    return done.stdout


def test_killed_twice_inside_an_epoch_and_while_writing_the_backup(reference, tmp_path):
    args = ("--epochs", 3)
    out = tmp_path / "m.npz"
    # 510 training images, batch 32: 16 updates an epoch. Killed in epoch 2, then while writing
    # the backup of epoch 2 (the file half written): the backup of epoch 1 must still be whole.
    killed(train(out, *args, kill="step:17"))
    assert (backup_of(out) / "run.json").exists() and not out.exists()
    killed(train(out, *args, kill="write:1"))
    assert list(backup_of(out).glob(".seed0.npz.*.tmp")), "not killed while writing"
    assert read_backup_state(backup_of(out) / "seed0.npz")["epoch"] == 1
    text = resumed(out, *args, updates_left=32)
    assert "resuming from epoch 1 of 3, backup in " in text.splitlines()[1]
    assert_same_bits(out, reference(*args))


def test_a_kill_after_the_last_epoch_writes_the_model_without_training_again(reference, tmp_path):
    args = ("--epochs", 2)
    out = tmp_path / "m.npz"
    killed(train(out, *args, kill="member:1"))
    text = resumed(out, *args)
    assert "resuming from epoch 2 of 2" in text
    assert_same_bits(out, reference(*args))


def test_folds_keep_the_finished_fold_and_resume_the_next(reference, tmp_path):
    args = ("--epochs", 2, "--folds", 2)
    out = tmp_path / "cv.npz"
    killed(train(out, *args, kill="member:1"))  # between the folds
    killed(train(out, *args, kill="step:5"))  # inside fold 2's first epoch
    text = resumed(out, *args, updates_left=20)  # fold 2 alone: 300 images, 10 updates an epoch
    assert "resuming from epoch 2 of 4 (1 of 2 models finished)" in text
    assert_same_bits(out, reference(*args))


def test_ensemble_members_are_kept(reference, tmp_path):
    args = ("--epochs", 2, "--ensemble", 2)
    out = tmp_path / "ens.npz"
    killed(train(out, *args, kill="member:1"))  # between the members
    killed(train(out, *args, kill="write:2"))  # in member 2, writing its second backup
    text = resumed(out, *args)
    assert "resuming from epoch 3 of 4 (1 of 2 models finished)" in text
    assert_same_bits(out, reference(*args))


def _start(out, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "npconv", "train", "--out", str(out), *QUICK, *map(str, args)],
        env=_env(),
        preexec_fn=sigint_restored,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_a_backup(out, process, epochs=1, timeout=60) -> None:
    """Until some model's backup has ``epochs`` epochs (the run still going)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [read_backup_state(p) for p in backup_of(out).glob("seed*.npz")]
        if any(s is not None and s["epoch"] >= epochs for s in states):
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("no backup appeared")


def test_jobs_2_killed_with_its_workers_resumes_to_the_same_bits(reference, tmp_path):
    args = ("--epochs", 6, "--folds", 2, "--jobs", 2)
    out = tmp_path / "cv.npz"
    process = _start(out, *args)
    _wait_for_a_backup(out, process)
    os.killpg(process.pid, signal.SIGKILL)  # the client and its worker processes
    process.communicate()
    text = resumed(out, *args)
    assert "resuming from epoch " in text
    assert_same_bits(out, reference("--epochs", 6, "--folds", 2))  # --jobs 1's bits


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_leave_a_backup_that_resumes(signum, reference, tmp_path):
    """The signal arrives in the third of six epochs of 16 updates, sent by the run to itself at its
    40th update: mid-epoch on any machine (sent by the test once a backup appeared, it could come
    after the tiny run's last batch on a loaded one)."""
    args = ("--epochs", 6)
    out = tmp_path / "m.npz"
    stopped = train(out, *args, kill=f"signal:40:{int(signum)}")
    if signum == signal.SIGINT:
        assert stopped.returncode == 130 and "run the same command again" in stopped.stderr, stopped.stderr
    assert (backup_of(out) / "run.json").exists()
    text = resumed(out, *args)
    assert "resuming from epoch " in text
    assert_same_bits(out, reference(*args))


def test_a_foreign_backup_is_refused_with_its_reason_and_restart_starts_afresh(reference, tmp_path):
    out = tmp_path / "m.npz"
    killed(train(out, "--epochs", 3, kill="step:17"))
    refused = train(out, "--epochs", 2, "--seed", 1)
    assert refused.returncode == 1 and not out.exists()
    assert "a backup of another training" in refused.stderr
    assert (
        "recipe epochs: 3 in the backup, 2 now" in refused.stderr and "seed: 0 in the backup, 1 now" in refused.stderr
    )
    assert "--restart" in refused.stderr
    # Another npconv version (or data) is named too.
    run_file = backup_of(out) / "run.json"
    identity = json.loads(run_file.read_text())
    run_file.write_text(json.dumps({**identity, "npconv": "0.0.1", "data": "0123456789abcdef"}))
    refused = train(out, "--epochs", 3)
    assert "npconv version: '0.0.1' in the backup" in refused.stderr and "data (fingerprint)" in refused.stderr
    fresh = train(out, "--epochs", 2, "--restart")
    assert fresh.returncode == 0 and "resuming" not in fresh.stdout and not backup_of(out).exists()
    assert_same_bits(out, reference("--epochs", 2))


def test_restart_throws_away_a_matching_backup(reference, tmp_path):
    out = tmp_path / "m.npz"
    killed(train(out, "--epochs", 2, kill="step:17"))
    fresh = train(out, "--epochs", 2, "--restart", kill="member:1")  # killed after retraining all
    killed(fresh)
    assert "resuming" not in fresh.stdout


def test_a_folder_that_is_not_a_backup_is_refused(tmp_path):
    out = tmp_path / "m.npz"
    backup_of(out).mkdir()
    (backup_of(out) / "notes.txt").write_text("mine")
    refused = train(out, "--epochs", 1)
    assert refused.returncode == 1 and "not a backup of npconv train" in refused.stderr
    assert (backup_of(out) / "notes.txt").read_text() == "mine"


def _faces_folder(root, n=8, size=16):
    """Image folders of ``n`` small grayscale photos per class (class k is brighter)."""
    from PIL import Image

    rng = np.random.default_rng(1)
    for k, name in enumerate(("not_smiling", "smiling")):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray((rng.random((size, size)) * 80 + 100 * k).astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def test_fine_tuning_resumes_in_either_phase(reference, tmp_path):
    """``--init --frozen-epochs``: the output layer alone, then every layer with a fresh optimizer."""
    from npconv.cli import main

    faces = _faces_folder(tmp_path / "smiles")
    start = tmp_path / "start.npz"
    assert (
        main(
            [
                "train",
                str(faces),
                "--out",
                str(start),
                "--arch",
                "tiny",
                "--image-size",
                "16",
                "--epochs",
                "1",
                "--quiet",
                "--no-report",
            ]
        )
        == 0
    )
    args = (faces, "--init", start, "--frozen-epochs", 1, "--epochs", 3)
    out = tmp_path / "tuned.npz"
    # One update an epoch (13 training images). Killed writing the backup of epoch 2 (the first of
    # the second phase), then in epoch 3: the backups are those of epoch 1 (phase 1), then epoch 2.
    killed(train(out, *args, kill="write:2"))
    killed(train(out, *args, kill="step:2"))
    assert read_backup_state(backup_of(out) / "seed0.npz")["epoch"] == 2
    assert "resuming from epoch 2 of 3" in resumed(out, *args)
    assert_same_bits(out, reference(*args))


def test_tune_resumes_a_job_stopped_half_way(tmp_path):
    args = ("tune", "--grid", "image_size=16", "--grid", "epochs=3", "--folds", 2, "--arch", "tiny", "--quiet")
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert npconv(*args, "--out", whole).returncode == 0
    # Fold 1's job: 3 epochs of 8 updates (255 images, batch 32); killed in the second epoch of fold 2's.
    killed(npconv(*args, "--out", stopped, kill="step:35"))
    assert [p.name for p in (stopped / "backups").glob("*/seed*.npz")] == ["seed1.npz"]
    # It trains the 2 epochs left (16 updates), not 3: a kill at a 17th update never comes.
    assert npconv(*args, "--out", stopped, kill="step:17").returncode == 0
    assert not (stopped / "backups").exists()
    for cached in (whole / "jobs").glob("*.npz"):
        with np.load(cached) as a, np.load(stopped / "jobs" / cached.name) as b:
            about_a, about_b = json.loads(str(a["__result__"])), json.loads(str(b["__result__"]))
            assert about_a["history"] == about_b["history"] and about_a["evaluation"] == about_b["evaluation"]
            assert all(np.array_equal(a[k], b[k]) for k in a.files if k.startswith("probabilities/"))
