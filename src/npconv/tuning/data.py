"""The images a search cross-validates: a data set's training data, never its held-out part.

A course ``.h5`` set with its ``test_*.h5`` beside it: the training file. Anything else (image
folders, ``builtin:``): the training part of the recipe's ``val_split`` split of seed 0, the part
``npconv train`` trains on, so the split it holds out is never read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..apps import datasets
from ..apps.job_spec import DataSource, fingerprint
from ..data import train_val_split


@dataclass(frozen=True)
class TrainingData:
    """``source`` (as :func:`npconv.apps.datasets.resolve` gives it) loaded for a recipe; ``limit``
    keeps that many of its training images, chosen at random (seed 0): a quick search."""

    source: str
    data_dir: str | None = None
    limit: int | None = None

    @classmethod
    def named(cls, data: str | None, data_dir=None, limit: int | None = None) -> TrainingData:
        """The training data of ``data`` as ``npconv train DATA`` names it (``None``: the built-in faces)."""
        return cls(datasets.resolve(data, data_dir), None if data_dir is None else str(data_dir), limit)

    @property
    def name(self) -> str | None:
        """The data set's recipe name (``signs``, ``smiles``, ...), or ``None``."""
        return datasets.dataset_name(self.source)

    def load(self, recipe) -> tuple:
        """``(data, source, described)`` for ``recipe``'s image size, colour mode and split: the images,
        a :class:`~npconv.apps.job_spec.DataSource` by which a worker reads the same ones, and what they are."""
        full = datasets.load(self.source, recipe.image_size, recipe.color_mode, self.data_dir)
        test_file = datasets.paired_test_file(self.source)
        keep = np.arange(len(full))
        if test_file is not None:
            held_out = test_file.name
        else:
            (keep, _), (held, _) = train_val_split((keep, full.y), recipe.val_split, seed=0)
            held_out = f"a {recipe.val_split:.0%} stratified split of seed 0 ({len(held)} images)"
        if self.limit is not None and self.limit < len(keep):
            keep = keep[np.random.default_rng(0).permutation(len(keep))[: self.limit]]
        data = full.subset(keep)
        source = DataSource(
            self.source,
            recipe.image_size,
            recipe.color_mode,
            self.data_dir,
            tuple(int(i) for i in keep),
            fingerprint(data),
        )
        described = (
            f"{len(data)} training images of {self.source} at {recipe.image_size} px {recipe.color_mode} "
            f"(held out, never read: {held_out})"
        )
        return data, source, described
