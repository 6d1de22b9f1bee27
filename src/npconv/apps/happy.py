"""The course's Happy House model: one convolution block and a sigmoid unit (smiling or not)."""

from __future__ import annotations

from .. import layers as L
from ..models import Sequential

#: Class names of the Happy House data (label 0, label 1).
HAPPY_CLASSES = ["not smiling", "smiling"]


def happyModel(input_shape=(64, 64, 3)) -> Sequential:
    """The "Convolution model - Application" assignment's ``happyModel``, layer for layer.

    ZEROPAD2D(3) -> CONV2D(32, 7x7) -> BATCHNORM -> RELU -> MAXPOOL(2) -> FLATTEN -> DENSE(1, sigmoid).
    For ``(64, 64, 3)`` inputs: 70x70x3 -> 64x64x32 -> 32x32x32 -> 32,768 -> 1; 37,633 parameters.
    Compile it as the course does: ``model.compile(optimizer='adam', loss='binary_crossentropy',
    metrics=['accuracy'])``.
    """
    return Sequential(
        [
            L.ZeroPadding2D((3, 3), input_shape=tuple(input_shape)),
            L.Conv2D(32, (7, 7), strides=(1, 1), name="conv0"),
            L.BatchNormalization(axis=3, name="bn0"),
            L.ReLU(),
            L.MaxPooling2D((2, 2), name="max_pool0"),
            L.Flatten(),
            L.Dense(1, activation="sigmoid", name="fc"),
        ],
        name="happy_model",
    )
