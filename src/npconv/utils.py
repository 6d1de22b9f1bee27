"""Shared services: the package random generator, label encoding, and the course helpers.

Randomness
----------
Every random draw npconv makes outside :mod:`npconv.course` comes from one
``np.random.Generator`` (PCG64): initialisers, ``Dropout``, the augmentation layers and
``fit``'s shuffling all use :func:`global_rng` unless they were given a ``seed=`` of their
own. So ``set_random_seed(0)`` before building and training a model makes the run repeat bit
for bit. :mod:`npconv.course` follows the course and uses the legacy ``np.random.*`` state,
which :func:`set_random_seed` seeds as well.
"""

from __future__ import annotations

import importlib

import numpy as np

from .errors import expected

__all__ = [
    "set_random_seed",
    "global_rng",
    "to_categorical",
    "plot_model",  # noqa: F822 (module __getattr__ imports it on first use)
    "random_mini_batches",  # noqa: F822 (module __getattr__ imports it on first use)
    "convert_to_one_hot",  # noqa: F822 (module __getattr__ imports it on first use)
    "canonical_name",
    "lookup",
    "deserialize",
]

_rng = np.random.Generator(np.random.PCG64())

# Re-exported on first use, so this module imports without npconv.course or Matplotlib.
_LAZY = {"random_mini_batches": ".course", "convert_to_one_hot": ".course", "plot_model": ".model_plot"}


def set_random_seed(seed: int) -> None:
    """Reseed the package generator and NumPy's legacy global state (used by :mod:`npconv.course`)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(expected("seed", "a non-negative integer", seed))
    global _rng
    _rng = np.random.Generator(np.random.PCG64(int(seed)))
    np.random.seed(int(seed) % 2**32)


def global_rng() -> np.random.Generator:
    """The package generator that :func:`set_random_seed` reseeds (look it up each time you draw)."""
    return _rng


def to_categorical(y, num_classes: int | None = None) -> np.ndarray:
    """One-hot encode integer labels like Keras: ``y (m,)`` or ``(m, 1)`` -> ``(m, num_classes)`` float32.

    ``out[i, y[i]] = 1``. Extra axes are kept: ``y`` of shape ``s`` gives ``s + (num_classes,)``
    (a trailing axis of size 1 is dropped first, as Keras does).
    """
    labels = np.asarray(y)
    if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)  # labels loaded as floats, e.g. 0.0 / 1.0
    if labels.dtype.kind not in "iu":
        raise TypeError(
            expected(
                "y", "integer class labels", labels, "Pass class indices such as [0, 2, 1], not one-hot rows or names."
            )
        )
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes <= 0:
        raise ValueError(expected("num_classes", "a positive integer or None", num_classes))
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            expected(
                "y",
                f"labels in [0, {num_classes - 1}]",
                f"values from {labels.min()} to {labels.max()}",
                "Raise num_classes or re-index the labels from 0.",
            )
        )
    out = np.zeros(labels.shape + (int(num_classes),), dtype=np.float32)
    np.put_along_axis(out, labels[..., None], 1.0, axis=-1)
    return out


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Configurable:
    """Keras's config protocol: ``type(obj).from_config(obj.get_config())`` rebuilds an equal object,
    and the repr shows the config. A ``"name"`` entry (Keras writes one) is not a constructor argument."""

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict):
        return cls(**{k: v for k, v in config.items() if k != "name"})

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


def canonical_name(name: str) -> str:
    """``"glorot_uniform"``, ``"GlorotUniform"`` and ``"glorotuniform"`` all give ``"glorotuniform"``."""
    return name.replace("_", "").replace("-", "").lower()


def lookup(identifier: str, registry: dict, name: str):
    """The entry of ``registry`` (keyed by Keras snake_case names) that ``identifier`` names.

    Matching ignores case and underscores (``"GlorotUniform"`` finds ``"glorot_uniform"``);
    an unknown name raises ``ValueError`` listing the valid ones.
    """
    wanted = canonical_name(identifier)
    for key, value in registry.items():
        if canonical_name(key) == wanted:
            return value
    valid = ", ".join(repr(k) for k in sorted(registry))
    raise ValueError(
        expected(name, f"one of {valid}", repr(identifier), "Names are case-insensitive; underscores are optional.")
    )


def deserialize(identifier, registry: dict, base: type, name: str):
    """Resolve a registry identifier: an instance of ``base`` (returned as is), a name (default
    construction), or a config dict, either Keras's ``{"class_name": ..., "config": {...}}`` or an
    object's own ``get_config()`` with its ``"name"``."""
    if isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str):
        return lookup(identifier, registry, name)()
    if isinstance(identifier, dict):
        if "class_name" in identifier:
            return lookup(identifier["class_name"], registry, name).from_config(identifier.get("config", {}))
        if "name" in identifier:
            config = {k: v for k, v in identifier.items() if k != "name"}
            return lookup(identifier["name"], registry, name).from_config(config)
        raise ValueError(
            expected(name, 'a config dict with a "class_name" (or "name") key', f"keys {sorted(identifier)}")
        )
    raise TypeError(expected(name, f"a name, a config dict or a {base.__name__} instance", identifier))
