"""The course's SIGNS model (functional API): two CONV -> RELU -> MAXPOOL blocks and a softmax."""

from __future__ import annotations

from .. import layers as L
from ..models import Input, Model


def convolutional_model(input_shape=(64, 64, 3), n_classes: int = 6) -> Model:
    """The "Convolution model - Application" assignment's ``convolutional_model``, layer for layer.

    CONV2D(8, 4x4, same) -> RELU -> MAXPOOL(8, stride 8, same) -> CONV2D(16, 2x2, same) -> RELU
    -> MAXPOOL(4, stride 4, same) -> FLATTEN -> DENSE(n_classes, softmax).
    For ``(64, 64, 3)``: 64x64x8 -> 8x8x8 -> 8x8x16 -> 2x2x16 -> 64 -> 6; 1,310 parameters.
    ``n_classes`` generalises the course's fixed 6 hand signs.
    """
    input_img = Input(shape=tuple(input_shape))
    Z1 = L.Conv2D(8, (4, 4), strides=(1, 1), padding="same")(input_img)
    A1 = L.ReLU()(Z1)
    P1 = L.MaxPool2D(pool_size=(8, 8), strides=(8, 8), padding="same")(A1)
    Z2 = L.Conv2D(16, (2, 2), strides=(1, 1), padding="same")(P1)
    A2 = L.ReLU()(Z2)
    P2 = L.MaxPool2D(pool_size=(4, 4), strides=(4, 4), padding="same")(A2)
    F = L.Flatten()(P2)
    outputs = L.Dense(n_classes, activation="softmax")(F)
    return Model(inputs=input_img, outputs=outputs)
