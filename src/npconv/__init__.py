"""npconv: convolutional networks from scratch in NumPy.

Two tiers of the same mathematics, NHWC throughout:

* :mod:`npconv.course` - the deeplearning.ai step functions as readable loops;
* :mod:`npconv.functional` - the same maths vectorised (im2col + BLAS GEMM);

and a Keras-like tool on top (``Sequential``, ``Model``, ``Input``, ``load_model``,
:mod:`npconv.layers`, :mod:`npconv.optimizers`, ...). Submodules load on first use, so
``import npconv`` stays cheap and a learner's ``import npconv.course`` needs nothing else.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_SUBMODULES = {
    "apps",
    "callbacks",
    "course",
    "data",
    "errors",
    "explain",
    "functional",
    "gradcheck",
    "initializers",
    "jobs",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "saving",
    "trace",
    "tuning",
    "utils",
    "viz",
}
_ATTRIBUTES = {
    "Sequential": "models",
    "Model": "models",
    "Input": "models",
    "load_model": "models",
}

__all__ = sorted(_SUBMODULES | set(_ATTRIBUTES))


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _ATTRIBUTES:
        return getattr(importlib.import_module(f"{__name__}.{_ATTRIBUTES[name]}"), name)
    raise AttributeError(f"module 'npconv' has no attribute {name!r}")


def __dir__():
    return __all__
