"""``npconv train``'s backup folder: a killed training goes on where it stopped, with the same bits.

The folder sits beside the model (``runs/signs.npz`` -> ``runs/signs.npz.backup/``) and holds

* ``run.json``: what the run is (:func:`run_identity`: the data's fingerprint, the recipe, arch,
  seed, folds, starting model and npconv version), so a backup is never used by another command;
* ``seed<S>.npz``: the backup of the model trained from seed ``S`` (each fold and ensemble member
  has its own seed, :func:`npconv.apps.fitting.member_seeds`), in :mod:`npconv.backup`'s
  format, rewritten atomically after each of its epochs. A model whose backup has all its epochs is
  finished: :func:`npconv.apps.fitting.fit_one` puts it back instead of training it again.

:func:`npconv.apps.fitting.fit_one` reads and writes the member files wherever it runs (here, a
worker process, a Dask worker that sees the same disk); the command removes the folder once the
model and its report are saved.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from .. import callbacks as C
from ..backup import Backup, backup_state, read_backup, read_backup_state, restore_backup, write_or_warn
from ..errors import BackupMismatchError
from ..saving import atomic_write

RUN_FILE = "run.json"


def backup_folder(out) -> Path:
    """Where the training that writes the model ``out`` keeps its backup: ``out`` + ``.backup``."""
    out = Path(out)
    return out.with_name(out.name + ".backup")


def run_identity(data, test, recipe, arch: str, seed: int, folds: int | None, init) -> dict:
    """What makes a training's result: a backup is only used by a run with the same identity."""
    from .job_spec import fingerprint

    return {
        "npconv": __version__,
        "data": fingerprint(data),
        "test": None if test is None else fingerprint(test),
        "recipe": vars(recipe),
        "arch": arch,
        "seed": seed,
        "folds": folds,
        "init": None if init is None else hashlib.sha256(Path(init.path).read_bytes()).hexdigest()[:16],
    }


def _differences(saved: dict, now: dict) -> list[str]:
    """What differs between two identities, in words."""
    names = {
        "npconv": "npconv version",
        "data": "data (fingerprint)",
        "test": "test data (fingerprint)",
        "init": "--init model (fingerprint)",
    }
    found = []
    for key in sorted(set(saved) | set(now)):
        old, new = saved.get(key), now.get(key)
        if key == "recipe" and isinstance(old, dict) and isinstance(new, dict):
            found += [
                f"recipe {field}: {old.get(field)!r} in the backup, {new.get(field)!r} now"
                for field in sorted(set(old) | set(new))
                if old.get(field) != new.get(field)
            ]
        elif old != new:
            found.append(f"{names.get(key, key)}: {old!r} in the backup, {new!r} now")
    return found


@dataclass(frozen=True)
class RunBackup:
    """The backup folder of one run (a plain path: it travels to worker processes with the jobs)."""

    folder: Path

    @classmethod
    def open(cls, folder, identity: dict, restart: bool = False) -> RunBackup:
        """The folder for the run ``identity``: kept when it is this run's, emptied with ``restart``,
        refused (:class:`~npconv.errors.BackupMismatchError`) when another command wrote it."""
        folder = Path(folder)
        if restart and folder.exists():
            shutil.rmtree(folder)
        run_file = folder / RUN_FILE
        if folder.exists() and not folder.is_dir():
            raise BackupMismatchError(
                f"{folder}: this run keeps its backup there, but it is a file. Move it "
                "away, or write the model elsewhere (--out)."
            )
        if run_file.exists():
            try:
                saved = json.loads(run_file.read_text())
            except (OSError, ValueError) as exc:
                saved = {"backup": f"unreadable ({exc})"}
            differences = _differences(saved, json.loads(json.dumps(identity)))
            if differences:
                raise BackupMismatchError(
                    f"{folder}: a backup of another training ({'; '.join(differences)}). Run the command "
                    "that wrote it to finish that training, add --restart to throw it away and start "
                    "afresh, or write this model elsewhere (--out)."
                )
        elif folder.exists() and any(folder.iterdir()):
            raise BackupMismatchError(
                f"{folder}: not a backup of npconv train (no {RUN_FILE}). Move it away, "
                "add --restart to delete it, or write the model elsewhere (--out)."
            )
        else:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(run_file, lambda f: f.write(json.dumps(identity, indent=1).encode()))
        return cls(folder.resolve())  # the same folder for workers started elsewhere

    def member(self, seed: int) -> MemberBackup:
        return MemberBackup(self.folder / f"seed{seed}.npz")

    def epochs_done(self, seeds) -> list[int]:
        """The epochs backed up for each model of ``seeds`` (0 for one without a backup)."""
        states = [read_backup_state(self.member(s).path) for s in seeds]
        return [0 if state is None else state["epoch"] for state in states]

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass(frozen=True)
class MemberBackup:
    """The backup file of one model of a run (see the module docstring)."""

    path: Path

    def read(self) -> Backup | None:
        return read_backup(self.path)

    def restore(self, model, backup: Backup) -> dict:
        """Put ``backup`` into ``model`` (built and compiled for the phase it was taken in); returns
        the history so far."""
        restore_backup(model, backup)
        return {key: list(values) for key, values in backup.history.items()}

    @staticmethod
    def phase_of(backup: Backup) -> int:
        """The training phase (:func:`npconv.apps.fitting.phases`) the backup was taken in."""
        return int(backup.extra.get("phase", 0))

    def callback(self, phase: int, history_before: dict) -> _BackupEachEpoch:
        return _BackupEachEpoch(self, phase, history_before)


class _BackupEachEpoch(C.Callback):
    """Writes the member's backup after each epoch: the whole history (earlier phases' and this
    fit's), and the phase it was taken in."""

    def __init__(self, member: MemberBackup, phase: int, history_before: dict):
        self.member, self.phase, self.history_before = member, phase, history_before

    def on_epoch_end(self, epoch, logs=None):
        folder = self.member.path.parent
        if not folder.parent.is_dir():
            return  # a worker that does not see the run's folder (a cluster without a shared disk)
        folder.mkdir(exist_ok=True)
        history = {
            key: list(self.history_before.get(key, [])) + list(values)
            for key, values in self.model.history.history.items()
        }
        write_or_warn(
            self.member.path, self.model, backup_state(self.model, epoch + 1, history, extra={"phase": self.phase})
        )
