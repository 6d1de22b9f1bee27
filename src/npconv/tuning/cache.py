"""A search's finished jobs on disk, each under a hash of what it trains, so a stopped search resumes.

The hash covers everything a job's result depends on: the recipe it trains (every field), the
arch, the data (:func:`npconv.apps.job_spec.fingerprint` of the images), the examples it trains on and is
tested on, its seed, and npconv's version. Change any of them and the job trains again; keep them
and it is read back. One file per job, ``<hash>.npz``: its held-out probabilities per view and a JSON
entry with the rest (history, evaluation, seconds, worker), written atomically, so a Ctrl-C never
leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .. import __version__
from ..apps.job_spec import JobResult
from ..apps.recipe_files import recipe_json
from ..saving import atomic_write

_ABOUT = "__result__"
_VIEW = "probabilities/"


def _array_hash(a) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.int64).data).hexdigest()[:16]


def job_hash(recipe, arch: str, data_fingerprint: str, train_index, test_index, seed: int) -> str:
    """The name of a job's result: a hash of what it trains (see the module docstring)."""
    content = {
        "recipe": recipe_json(recipe),
        "arch": arch,
        "data": data_fingerprint,
        "train": _array_hash(train_index),
        "test": _array_hash(test_index),
        "seed": int(seed),
        "npconv": __version__,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:20]


def _evaluation_json(evaluation: dict | None) -> dict | None:
    """The evaluation's figures (its per-image arrays are the probabilities, kept apart)."""
    if evaluation is None:
        return None
    return {
        k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in evaluation.items() if k not in ("probs", "pred")
    }


class JobCache:
    """Results of finished jobs in ``folder`` (created on the first write)."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    @property
    def backups(self) -> Path:
        """The folder of the backups of the jobs training (``<search>/backups``, beside this one)."""
        return self.folder.parent / "backups"

    def backup_folder(self, key: str) -> Path:
        """Where job ``key`` keeps the backup of its training until it is cached."""
        return self.backups / key

    def get(self, key: str, views=()) -> JobResult | None:
        """The result of job ``key`` if it is here with the probabilities of every view in ``views``."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as saved:
                about = json.loads(str(saved[_ABOUT]))
                probabilities = {k[len(_VIEW) :]: saved[k] for k in saved.files if k.startswith(_VIEW)}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            warnings.warn(
                f"{path}: unreadable cached result ({type(exc).__name__}: {exc}); training it again", stacklevel=1
            )
            return None
        if not set(views) <= set(probabilities):
            return None
        return JobResult(
            key,
            None,
            about["history"],
            about["seconds"],
            about["interrupted"],
            about["evaluation"],
            probabilities,
            about["worker"],
            cached=True,
        )

    def put(self, result: JobResult) -> None:
        """Keep ``result`` (of a job that finished: an interrupted one is no result)."""
        if result.interrupted:
            return
        about = {
            "key": result.key,
            "history": result.history,
            "seconds": result.seconds,
            "interrupted": False,
            "evaluation": _evaluation_json(result.evaluation),
            "worker": result.worker,
        }
        arrays = {
            _ABOUT: np.array(json.dumps(about, default=float)),
            **{_VIEW + view: p for view, p in result.probabilities.items()},
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path(result.key), lambda file: np.savez(file, **arrays))
