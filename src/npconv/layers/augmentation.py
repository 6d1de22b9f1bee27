"""Keras's random augmentation layers, wrapping :mod:`npconv.data.augment`; identity at inference.

Each draws from its own generator when given ``seed=``, else from ``npconv.utils.global_rng()``.
They have no weights and no backward pass: a model refuses them after a layer with weights (put
them right after the input, where no gradient is needed).
"""

from __future__ import annotations

import importlib

import numpy as np

from ..errors import check_choice, expected
from .base import Layer


class _Augmentation(Layer):
    _kernel = ""
    passes_gradient = False

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def _kwargs(self) -> dict:
        raise NotImplementedError

    def forward(self, x, training=False):
        self._cache = training
        if not training:
            return x
        from .. import utils

        rng = self._rng if self._rng is not None else utils.global_rng()
        return getattr(_augment_module(), self._kernel)(x, rng, **self._kwargs())

    def backward(self, dout, need_dx=True):
        training = self._take_cache()
        if need_dx and training:
            raise NotImplementedError(
                f"layer {self.name!r}: augmentation layers pass no gradient; put them first in the model."
            )
        return dout if need_dx else None


class RandomFlip(_Augmentation):
    """Flips each image left-right and/or up-down with probability 1/2."""

    _kernel = "random_flip"
    _config_keys = ("mode", "seed")

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.mode = check_choice(mode, "mode", {"horizontal", "vertical", "horizontal_and_vertical"})

    def _kwargs(self):
        return {"mode": self.mode}


def _fraction(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(expected(name, "a fraction in [0, 1]", value))
    return float(value)


class RandomTranslation(_Augmentation):
    """Shifts each image by up to ``height_factor``/``width_factor`` of its size, filling with zeros."""

    _kernel = "random_translation"
    _config_keys = ("height_factor", "width_factor", "seed")

    def __init__(self, height_factor, width_factor, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.height_factor = _fraction(height_factor, "height_factor")
        self.width_factor = _fraction(width_factor, "width_factor")

    def _kwargs(self):
        return {"height_factor": self.height_factor, "width_factor": self.width_factor}


class RandomRotation(_Augmentation):
    """Rotates each image by up to ``factor`` of a full turn either way (Keras's convention)."""

    _kernel = "random_rotation"
    _config_keys = ("factor", "seed")

    def __init__(self, factor, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _fraction(factor, "factor")

    def _kwargs(self):
        return {"factor": self.factor}


class RandomBrightness(_Augmentation):
    """Adds a random delta of up to ``factor`` times the width of ``value_range`` to each image and
    clips the result to ``value_range`` (as Keras)."""

    _kernel = "random_brightness"
    _config_keys = ("factor", "value_range", "seed")

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _fraction(factor, "factor")
        self.value_range = tuple(float(v) for v in value_range)

    def _kwargs(self):
        lo, hi = self.value_range
        return {"max_delta": self.factor * (hi - lo), "value_range": self.value_range}


def _factor(value, name):
    """A Keras factor for the config: a number, or a pair as a tuple of floats (JSON gives lists)."""
    if isinstance(value, (tuple, list)):
        return tuple(float(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(expected(name, "a number or a pair (lower, upper)", value))
    return float(value)


def _augment_module():
    return importlib.import_module("npconv.data.augment")


class RandomZoom(_Augmentation):
    """Zooms each image in or out about its centre (Keras's ``RandomZoom``).

    ``height_factor``: ``f`` or ``(lo, hi)``; the vertical zoom is ``1 + u``, ``u ~ U(-f, f)`` or
    ``U(lo, hi)``: positive zooms out, negative zooms in. ``width_factor``: the same horizontally;
    ``None`` keeps the aspect ratio. ``fill_mode``: ``"reflect"``, ``"wrap"``, ``"constant"``
    (``fill_value``) or ``"nearest"`` for what zooming out uncovers.
    """

    _kernel = "random_zoom"
    _config_keys = ("height_factor", "width_factor", "fill_mode", "interpolation", "seed", "fill_value")

    def __init__(
        self,
        height_factor,
        width_factor=None,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        from ..data.resample import FILL_MODES, INTERPOLATIONS

        self.height_factor = _factor(height_factor, "height_factor")
        self.width_factor = None if width_factor is None else _factor(width_factor, "width_factor")
        _augment_module().zoom_range(self.height_factor, "height_factor")
        if self.width_factor is not None:
            _augment_module().zoom_range(self.width_factor, "width_factor")
        self.fill_mode = check_choice(fill_mode, "fill_mode", FILL_MODES)
        self.interpolation = check_choice(interpolation, "interpolation", INTERPOLATIONS)
        self.fill_value = float(fill_value)

    def _kwargs(self):
        return {
            "height_factor": self.height_factor,
            "width_factor": self.width_factor,
            "fill_mode": self.fill_mode,
            "interpolation": self.interpolation,
            "fill_value": self.fill_value,
        }


class RandomContrast(_Augmentation):
    """Scales each image's contrast about its per-channel mean by a factor drawn from
    ``[1 - lower, 1 + upper]`` (``factor`` is ``f`` for both or a pair), then clips to ``value_range``
    (Keras's ``RandomContrast``; ``(0, 1)`` for images scaled to [0, 1])."""

    _kernel = "random_contrast"
    _config_keys = ("factor", "value_range", "seed")

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor(factor, "factor")
        _augment_module().contrast_range(self.factor)
        self.value_range = tuple(float(v) for v in value_range)

    def _kwargs(self):
        return {"factor": self.factor, "value_range": self.value_range}


class RandomGrayscale(_Augmentation):
    """Turns each RGB image grey (its luma in every channel) with probability ``factor`` (Keras 3's
    ``RandomGrayscale``): a model that saw grey copies does not take colour for the class."""

    _kernel = "random_grayscale"
    _config_keys = ("factor", "seed")

    def __init__(self, factor=0.5, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _fraction(factor, "factor")

    def _kwargs(self):
        return {"probability": self.factor}


class RandomWhiteBalance(_Augmentation):
    """Multiplies each channel by its own gain in ``[1 - factor, 1 + factor]`` (a camera's white
    balance) and the image by one in ``[1 - brightness, 1 + brightness]`` (its exposure), then clips
    to ``value_range``."""

    _kernel = "random_channel_gain"
    _config_keys = ("factor", "brightness", "value_range", "seed")

    def __init__(self, factor=0.2, brightness=0.0, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _fraction(factor, "factor")
        self.brightness = _fraction(brightness, "brightness")
        self.value_range = tuple(float(v) for v in value_range)

    def _kwargs(self):
        return {"factor": self.factor, "brightness": self.brightness, "value_range": self.value_range}


class RandomGaussianBlur(_Augmentation):
    """Blurs each image by a Gaussian of standard deviation drawn from ``[0, factor]`` pixels
    (a photo slightly out of focus)."""

    _kernel = "random_gaussian_blur"
    _config_keys = ("factor", "seed")

    def __init__(self, factor=1.5, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 <= factor <= 3:
            raise ValueError(expected("factor", "a blur of at most 3 pixels (the kernel spans 7)", factor))
        self.factor = float(factor)

    def _kwargs(self):
        return {"max_sigma": self.factor}


class GaussianNoise(_Augmentation):
    """Adds Gaussian noise while training (Keras's ``GaussianNoise``), its standard deviation drawn
    per image from ``[0, stddev]``, then clips to ``value_range`` (``None``: no clipping)."""

    _kernel = "gaussian_noise"
    _config_keys = ("stddev", "value_range", "seed")

    def __init__(self, stddev, value_range=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(stddev, bool) or not isinstance(stddev, (int, float)) or stddev < 0:
            raise ValueError(expected("stddev", "a number >= 0", stddev))
        self.stddev = float(stddev)
        self.value_range = None if value_range is None else tuple(float(v) for v in value_range)

    def _kwargs(self):
        return {"stddev": self.stddev, "value_range": self.value_range}


class RandomReframe(_Augmentation):
    """With probability ``probability``, shrinks each image to a scale in ``[1 - factor, 1]``,
    rotated by up to ``degrees``, at a random place on its border's median colour: the subject
    photographed from further away, a little askew (``value_range``: the inputs' range)."""

    _kernel = "random_reframe"
    _config_keys = ("factor", "degrees", "probability", "value_range", "seed")

    def __init__(self, factor=0.4, degrees=0.0, probability=0.5, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _fraction(factor, "factor")
        if self.factor == 1:
            raise ValueError(expected("factor", "a fraction below 1 (1 would shrink the image to nothing)", factor))
        if isinstance(degrees, bool) or not isinstance(degrees, (int, float)) or not 0 <= degrees <= 180:
            raise ValueError(expected("degrees", "an angle in [0, 180]", degrees))
        self.degrees = float(degrees)
        self.probability = _fraction(probability, "probability")
        self.value_range = tuple(float(v) for v in value_range)

    def _kwargs(self):
        return {
            "min_scale": 1.0 - self.factor,
            "max_degrees": self.degrees,
            "probability": self.probability,
            "value_range": self.value_range,
        }
