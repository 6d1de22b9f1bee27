"""What the tools need to know about a saved model, read from its metadata.

``metadata(model)`` fills in what a model saved without ``npconv train`` lacks (its input shape,
class names ``"0".."K-1"``, pixels divided by 255); ``is_smile_model(meta)`` says whether it is a
Happy House smile detector, whose answer also opens (or keeps shut) the door. ``find_model(folder,
dataset)`` picks a saved model by what it was trained on, not by its file name (after the README's
main job, ``runs/smiles.npz`` is a model of the built-in cartoon faces, not of SMILEsmileD).
"""

from __future__ import annotations

from pathlib import Path

from .happy import HAPPY_CLASSES


def metadata(model) -> dict:
    """``model.metadata`` (a copy) with defaults: ``input_shape`` ``[n_H, n_W, n_C]``,
    ``class_names`` (two for one sigmoid output, else one per output), ``value_scale`` 255."""
    meta = dict(model.metadata or {})
    meta.setdefault("input_shape", list(model.input_shape[1:]))
    n_out = model.output_shape[-1]
    meta.setdefault("class_names", [str(i) for i in range(2 if n_out == 1 else n_out)])
    meta.setdefault("value_scale", 255)
    return meta


def is_smile_model(meta: dict) -> bool:
    """Whether ``meta`` (from :func:`metadata`) is a smile detector: trained by the ``happy`` app, or
    with the course's classes ``["not smiling", "smiling"]`` (case and ``_`` ignored)."""
    names = [str(n).lower().replace("_", " ") for n in meta["class_names"]]
    return meta.get("app") == "happy" or names == HAPPY_CLASSES


def trained_on(meta: dict) -> str | None:
    """The data set a model was trained on, as ``npconv train`` records it (``"smiles"``, ``"signs"``,
    ``"builtin:smiles"``, a file or folder name), or ``None`` when its metadata does not say."""
    return meta.get("dataset")


def find_model(folder, dataset: str) -> Path | None:
    """The most recently saved model in ``folder`` (its ``*.npz`` files) trained on ``dataset``
    (:func:`trained_on`), whatever the file is called; ``None`` when there is none. Files that are not
    npconv models are passed over."""
    from ..models import load_model

    folder = Path(folder)
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            model = load_model(path)
        except (OSError, ValueError):  # ModelFileError is a ValueError
            continue
        if trained_on(model.metadata or {}) == dataset:
            return path
    return None
