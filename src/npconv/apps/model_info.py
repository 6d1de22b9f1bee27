"""What the tools need to know about a saved model, read from its metadata.

``metadata(model)`` fills in what a model saved without ``npconv train`` lacks (its input shape,
class names ``"0".."K-1"``, pixels divided by 255); ``is_smile_model(meta)`` says whether it is a
Happy House smile detector, whose answer also opens (or keeps shut) the door.
"""
from __future__ import annotations

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
