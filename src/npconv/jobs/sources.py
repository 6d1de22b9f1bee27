"""Data sets a run shares with its workers: sent once, or read by each worker from a shared disk.

A run's ``datasets`` map a name to the data itself (sent to each worker once) or to a
:class:`Source`, a description each worker loads for itself (:func:`materialise`, once per process).
"""

from __future__ import annotations

from functools import lru_cache


class Source:
    """A data set each worker loads from a disk they share, instead of receiving it. Subclasses are
    hashable, picklable descriptions (frozen dataclasses) that define :meth:`load`."""

    def load(self):
        raise NotImplementedError


@lru_cache(maxsize=4)
def _load(source: Source):
    return source.load()


def materialise(datasets) -> dict:
    """``datasets`` with every :class:`Source` loaded (once per process)."""
    return {key: _load(data) if isinstance(data, Source) else data for key, data in datasets.items()}
