"""Keras-named layers built on :mod:`npconv.functional` (NHWC).

``from npconv import layers as L`` replaces ``from tensorflow.keras import layers as L``.
"""

from . import activations
from .augmentation import (
    GaussianNoise,
    RandomBrightness,
    RandomContrast,
    RandomFlip,
    RandomGaussianBlur,
    RandomGrayscale,
    RandomReframe,
    RandomRotation,
    RandomTranslation,
    RandomWhiteBalance,
    RandomZoom,
)
from .base import KerasTensor, Layer, Weight, layer_class, registered_layers
from .conv import Conv2D, ZeroPadding2D
from .core import Activation, Dense, Dropout, Flatten, InputLayer, ReLU
from .merge import Add, Average, Concatenate
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, AvgPool2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPool2D, MaxPooling2D
from .standardization import PerImageStandardization


def Input(shape=None, name=None):
    """A symbolic input batch of ``shape`` (no batch axis): ``x = Input(shape=(64, 64, 3))``."""
    return InputLayer(shape=shape, name=name).output


__all__ = [
    "Activation",
    "Add",
    "Average",
    "AveragePooling2D",
    "AvgPool2D",
    "BatchNormalization",
    "Concatenate",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GaussianNoise",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Input",
    "InputLayer",
    "KerasTensor",
    "Layer",
    "MaxPool2D",
    "MaxPooling2D",
    "PerImageStandardization",
    "RandomBrightness",
    "RandomContrast",
    "RandomFlip",
    "RandomGaussianBlur",
    "RandomGrayscale",
    "RandomReframe",
    "RandomRotation",
    "RandomTranslation",
    "RandomWhiteBalance",
    "RandomZoom",
    "ReLU",
    "Weight",
    "ZeroPadding2D",
    "activations",
    "layer_class",
    "registered_layers",
]
