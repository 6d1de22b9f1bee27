"""Weight initialisers with Keras's names, defaults and formulas.

``init(shape, dtype=np.float32, rng=None)`` returns a new array. Fans follow Keras: a dense kernel
``(n_in, n_out)`` has ``fan_in = n_in, fan_out = n_out``; a conv kernel ``(fh, fw, C, K)`` has
``fan_in = fh*fw*C, fan_out = fh*fw*K``.

Randomness: ``rng`` if given; else, for an initialiser built with ``seed=``, a fresh generator
from that seed (so, as in Keras, a seeded initialiser returns the same values on every call);
else :func:`npconv.utils.global_rng`, which :func:`npconv.utils.set_random_seed` reseeds.
"""

from __future__ import annotations

import math

import numpy as np

from . import utils
from .errors import expected

__all__ = [
    "Initializer",
    "Zeros",
    "Ones",
    "Constant",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "GlorotUniform",
    "GlorotNormal",
    "HeNormal",
    "HeUniform",
    "fans",
    "get",
]

# std of a standard normal truncated to [-2, 2]; dividing by it restores the requested std (Keras).
_TRUNCATION_STD = 0.87962566103423978


def fans(shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight shape, as Keras computes them.

    ``()`` -> ``(1, 1)``; ``(n,)`` -> ``(n, n)``; ``(n_in, n_out)`` -> ``(n_in, n_out)``;
    ``(*receptive, C, K)`` -> ``(prod(receptive)*C, prod(receptive)*K)``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return receptive * shape[-2], receptive * shape[-1]


class Initializer(utils.Configurable):
    """Base class: subclasses implement ``_sample(shape, rng) -> float64 array``."""

    random = True  # constant initialisers set False: they never touch a generator

    def __init__(self, seed: int | None = None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(expected("seed", "an integer or None", seed))
        self.seed = None if seed is None else int(seed)

    def __call__(self, shape, dtype=np.float32, rng: np.random.Generator | None = None) -> np.ndarray:
        """A new array of ``shape`` and floating ``dtype`` drawn from this initialiser."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(expected("dtype", "a floating dtype (float32 or float64)", str(dtype)))
        shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(expected("shape", "non-negative sizes", str(shape)))
        if rng is None and self.random:
            rng = utils.global_rng() if self.seed is None else np.random.default_rng(self.seed)
        return np.asarray(self._sample(shape, rng), dtype=dtype)

    def _sample(self, shape, rng):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"seed": self.seed} if self.random else {}


class Constant(Initializer):
    """Every element equal to ``value``."""

    random = False

    def __init__(self, value: float = 0.0):
        super().__init__()
        self.value = float(value)

    def _sample(self, shape, rng):
        return np.full(shape, self.value)

    def get_config(self):
        return {"value": self.value}


class Zeros(Constant):
    """All zeros (Keras's default for biases)."""

    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        return {}


class Ones(Constant):
    """All ones (batch-norm ``gamma``)."""

    def __init__(self):
        super().__init__(1.0)

    def get_config(self):
        return {}


class RandomUniform(Initializer):
    """Uniform on ``[minval, maxval)``."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        if not maxval > minval:
            raise ValueError(expected("maxval", f"a value above minval={minval}", maxval))
        self.minval, self.maxval = float(minval), float(maxval)

    def _sample(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, size=shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


class RandomNormal(Initializer):
    """Normal with ``mean`` and ``stddev``."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        if not stddev >= 0:
            raise ValueError(expected("stddev", "a non-negative number", stddev))
        self.mean, self.stddev = float(mean), float(stddev)

    def _sample(self, shape, rng):
        return rng.normal(self.mean, self.stddev, size=shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


def _truncated_standard_normal(shape, rng: np.random.Generator) -> np.ndarray:
    """Standard normal draws redrawn until they lie in ``[-2, 2]`` (TensorFlow's truncation)."""
    out = rng.standard_normal(shape)
    bad = np.flatnonzero(np.abs(out) > 2.0)
    while bad.size:  # each round keeps ~95%: a handful of vectorised rounds
        out.flat[bad] = rng.standard_normal(bad.size)
        bad = bad[np.abs(out.flat[bad]) > 2.0]
    return out


class TruncatedNormal(RandomNormal):
    """Normal with ``mean`` and ``stddev``, values beyond 2 ``stddev`` redrawn."""

    def _sample(self, shape, rng):
        return self.mean + self.stddev * _truncated_standard_normal(shape, rng)


class _VarianceScaling(Initializer):
    """Keras's variance scaling: variance ``scale / n`` with ``n`` = fan_in or mean of the fans.

    Uniform: ``limit = sqrt(3 * scale / n)``. Normal: truncated at 2 std, with
    ``std = sqrt(scale / n) / 0.8796...`` so that the truncated draws have variance ``scale / n``.
    """

    scale = 1.0
    mode = "fan_avg"
    distribution = "uniform"

    def _variance(self, shape) -> float:
        fan_in, fan_out = fans(shape)
        n = fan_in if self.mode == "fan_in" else (fan_in + fan_out) / 2.0
        return self.scale / max(1.0, n)

    def _sample(self, shape, rng):
        variance = self._variance(shape)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, size=shape)
        return (math.sqrt(variance) / _TRUNCATION_STD) * _truncated_standard_normal(shape, rng)


class GlorotUniform(_VarianceScaling):
    """Keras's default kernel initialiser: uniform on ``±sqrt(6 / (fan_in + fan_out))``."""


class GlorotNormal(_VarianceScaling):
    """Truncated normal, std ``sqrt(2 / (fan_in + fan_out))`` after truncation."""

    distribution = "truncated_normal"


class HeNormal(_VarianceScaling):
    """Truncated normal, std ``sqrt(2 / fan_in)`` after truncation (suits ReLU)."""

    scale, mode, distribution = 2.0, "fan_in", "truncated_normal"


class HeUniform(_VarianceScaling):
    """Uniform on ``±sqrt(6 / fan_in)``."""

    scale, mode = 2.0, "fan_in"


_REGISTRY = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "random_uniform": RandomUniform,
    "truncated_normal": TruncatedNormal,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
}


def serialize(initializer: Initializer) -> dict:
    """``{"class_name": "GlorotUniform", "config": {...}}``, the form :func:`get` reads back."""
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def get(identifier) -> Initializer:
    """An initialiser from a Keras name (``"glorot_uniform"``, ``"GlorotUniform"``, ``"he_normal"``,
    ``"zeros"``, ...), an instance (returned as is) or a config dict (see :func:`serialize`)."""
    return utils.deserialize(identifier, _REGISTRY, Initializer, "initializer")
