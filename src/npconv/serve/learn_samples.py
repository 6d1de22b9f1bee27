"""The sample pictures the ``/learn`` page offers beside the visitor's own photo.

A model's metadata names the data set it was trained on (``npconv train`` records it). When that data
set is in the data directory, the samples are a few of its pictures (the course's test file for the
``.h5`` sets, the first files of each class folder for a folder set), one class after another; a
model of the built-in cartoon faces gets freshly generated faces (that is its data set). Otherwise —
no data set recorded, or not on this machine — the page offers generated faces and says they are not
the model's data. Nothing is read beyond a few pictures, and nothing a visitor sends chooses a file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..apps.datasets import NAMED, fit_to_input, resolve
from ..apps.photos import prepare_photo
from ..data import load_dataset
from ..data.registry import BUILTIN_PREFIX
from ..data.synthetic import make_smiley_faces

#: Pictures offered at most.
MAX_SAMPLES = 8
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def load_samples(meta: dict, input_shape, data_dir=None) -> tuple[str, list[tuple[np.ndarray, str | None]]]:
    """``(where they come from, [(uint8 picture of input_shape, class name or None), ...])``."""
    dataset = meta.get("dataset")
    names = [str(n) for n in meta["class_names"]]
    if dataset and not dataset.startswith(BUILTIN_PREFIX):
        try:
            return _from_data(dataset, names, input_shape, data_dir)
        except (OSError, ValueError, KeyError):
            pass  # not on this machine: generated faces below, said so
    faces = make_smiley_faces(n=MAX_SAMPLES, image_size=64, seed=1)
    pictures = fit_to_input(faces.x, input_shape)
    if dataset == BUILTIN_PREFIX + "smiles" and len(names) == 2:
        return (
            "generated cartoon faces (the model's own data set, builtin:smiles)",
            [(p, names[int(y)]) for p, y in zip(pictures, faces.y)],
        )
    why = f"{dataset!r} is not in the data directory" if dataset else "the model does not say its data set"
    return f"generated cartoon faces, not the model's data ({why})", [(p, None) for p in pictures]


def _from_data(dataset: str, names, input_shape, data_dir):
    source = Path(resolve(dataset, data_dir, prefer_test=True) if dataset in NAMED else dataset)
    if source.is_dir():
        folders = sorted(p for p in source.iterdir() if p.is_dir())
        files = [
            sorted(f for f in folder.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES)[:MAX_SAMPLES]
            for folder in folders
        ]
        picked = _round_robin([[(f, folder.name) for f in fs] for folder, fs in zip(folders, files)])
        samples = [(prepare_photo(f, input_shape), label) for f, label in picked]
    else:
        data = load_dataset(source, data_dir=data_dir)
        per_class = [
            [(x, _class_name(y, data.class_names, names)) for x, y in zip(data.x[data.y == k], data.y[data.y == k])][
                :MAX_SAMPLES
            ]
            for k in np.unique(data.y)
        ]
        picked = _round_robin(per_class)
        samples = [(fit_to_input(x[None], input_shape)[0], label) for x, label in picked]
    if not samples:
        raise ValueError(f"no pictures in {source}")
    return f"pictures of {dataset} ({source.name})", samples


def _class_name(y, data_names, model_names):
    k = int(y)
    name = str(data_names[k]) if data_names is not None and k < len(data_names) else str(k)
    if name not in model_names and k < len(model_names):
        return model_names[k]  # the course's h5 files name their classes 0..K-1
    return name if name in model_names else None


def _round_robin(groups):
    """One of each group in turn, up to :data:`MAX_SAMPLES`."""
    picked = []
    for k in range(MAX_SAMPLES):
        for group in groups:
            if k < len(group) and len(picked) < MAX_SAMPLES:
                picked.append(group[k])
    return picked
