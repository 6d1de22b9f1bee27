"""What a training job is and what comes back: plain, picklable descriptions of one training,
which :mod:`npconv.jobs` runs with :func:`~.job_work.execute`.

A run shares its data sets with every worker once (``datasets``: name -> :class:`~npconv.data.Dataset`,
or a :class:`DataSource` each worker reads from a shared disk); a :class:`Job` names its examples
by a :class:`Part` of one of them, so a job is a few index arrays and a recipe, never the images.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from ..jobs import Source
from .recipes import Recipe


@dataclass(frozen=True, eq=False)
class Part:
    """The examples ``index`` (all when ``None``) of the run's data set ``key``."""

    key: str
    index: np.ndarray | None = None

    def of(self, datasets):
        """This part of ``datasets[key]``, a :class:`~npconv.data.Dataset`."""
        data = datasets[self.key]
        return data if self.index is None else data.subset(self.index)


@dataclass(frozen=True, eq=False)
class Job:
    """One training: ``recipe``'s model ``arch`` from ``seed`` on ``train``, evaluated on ``test``.

    ``member`` is the model's place in an ensemble (from an ``init`` that averages models, member k
    starts from its k-th model); ``callbacks`` run in the worker (picklable ones only); ``views``
    are test-time augmentation modes whose held-out probabilities come back too (those the model
    allows, :func:`npconv.apps.tta.check_tta`); ``keep_model=False`` sends back metrics only.
    The recipe is trained as one model (``train`` averages members itself); its ``tta`` applies to
    the evaluation.
    """

    key: str
    recipe: Recipe
    arch: str
    seed: int
    train: Part
    test: Part | None = None
    member: int = 0
    dataset: str | None = None
    init: object = None  # a npconv.apps.transfer.Pretrained
    callbacks: tuple = ()
    evaluate: bool = True
    views: tuple[str, ...] = ()
    keep_model: bool = True
    label: str = ""  # what progress shows ("fold 2/5"); the key when empty
    backup: object = None  # a npconv.apps.run_backup.RunBackup: resume from / keep a backup there

    @property
    def title(self) -> str:
        return self.label or self.key

    @property
    def epochs(self) -> int:
        """How many epochs progress counts to."""
        return self.recipe.epochs

    @property
    def data_keys(self) -> tuple[str, ...]:
        """The run's data sets this job reads (a Dask worker is sent those only)."""
        return tuple(part.key for part in (self.train, self.test) if part is not None)


@dataclass
class JobResult:
    """What a job sends back.

    ``model`` is the trained model's file (:func:`npconv.saving.model_bytes`; ``load_model`` reads
    it); ``evaluation`` is :func:`npconv.apps.fitting.evaluate` on the test part; ``probabilities``
    maps ``"plain"`` and each view to the test part's class probabilities ``(n, K)``; ``worker``
    says where it ran (host, pid, thread settings); ``cached`` marks a result read from a cache
    rather than trained (``npconv tune``).
    """

    key: str
    model: bytes | None
    history: dict
    seconds: float
    interrupted: bool = False
    evaluation: dict | None = None
    probabilities: dict = field(default_factory=dict)
    worker: dict = field(default_factory=dict)
    cached: bool = False


def fingerprint(data) -> str:
    """A hash of a data set's contents: images, labels and class names (its identity in caches)."""
    digest = hashlib.sha256()
    digest.update(repr((data.x.shape, str(data.x.dtype), list(map(str, data.class_names)))).encode())
    digest.update(np.ascontiguousarray(data.x).data)
    digest.update(np.ascontiguousarray(data.y, dtype=np.int64).data)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class DataSource(Source):
    """A data set each worker loads from a disk they share, instead of receiving it.

    ``load(source, image_size, color_mode, data_dir)`` (:func:`npconv.apps.datasets.load`), then the
    examples ``keep`` (an index tuple; all when ``None``). ``expected`` is the
    :func:`fingerprint` the client computed: a worker that reads other data stops with an error
    instead of training on it.
    """

    source: str
    image_size: int
    color_mode: str
    data_dir: str | None = None
    keep: tuple[int, ...] | None = None
    expected: str | None = None

    def load(self):
        from . import datasets

        data = datasets.load(self.source, self.image_size, self.color_mode, self.data_dir)
        if self.keep is not None:
            data = data.subset(np.asarray(self.keep, dtype=np.int64))
        if self.expected is not None and fingerprint(data) != self.expected:
            raise DataError(
                f"{self.source}: the data this worker reads is not the data the client read "
                f"(fingerprint {fingerprint(data)}, expected {self.expected}). Give every "
                "worker the same files, or send the data to the workers (no shared disk)."
            )
        return data
