"""npconv's stronger small networks: a residual CNN with batch norm, and a tiny net for quick tests.

``smallres`` (the default arch)::

    [RandomFlip] [RandomTranslation] [RandomZoom] [RandomReframe]     augmentation, training only
    [RandomContrast] [RandomWhiteBalance] [RandomGrayscale] [RandomGaussianBlur] [GaussianNoise]
    [PerImageStandardization]                              each image to mean 0, std 1 (always)
    CONV 3x3 (stem) -> BN -> RELU [-> MAXPOOL 2]           the pool for inputs of 48 px or more
    per stage s (widths 16, 32, 64):                       one residual block, then halve the size
        y = CONV 3x3 -> BN -> RELU -> CONV 3x3 -> BN
        x = RELU(y + shortcut(x)) -> MAXPOOL 2             shortcut: identity, or CONV 1x1 -> BN
    GLOBAL AVERAGE POOL -> DROPOUT -> DENSE (sigmoid for 2 classes, else softmax)

Convolutions before batch norm have no bias (BN's beta replaces it). About 100k parameters for
widths (16, 32, 64): small enough to train in minutes on two CPU cores with NumPy convolutions.
"""

from __future__ import annotations

from .. import layers as L
from ..models import Input, Model
from .heads import output_layer

DEFAULT_WIDTHS = (16, 32, 64)


def _conv_bn(x, filters, kernel, name):
    x = L.Conv2D(filters, kernel, padding="same", use_bias=False, kernel_initializer="he_normal", name=f"{name}_conv")(
        x
    )
    # momentum 0.9: moving statistics settle within a few hundred steps (small data sets).
    return L.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)


def _residual_block(x, filters, name):
    """``RELU(CONV-BN-RELU-CONV-BN(x) + shortcut(x))``; a 1x1 CONV-BN shortcut when the width changes."""
    y = L.ReLU(name=f"{name}_relu1")(_conv_bn(x, filters, 3, f"{name}_a"))
    y = _conv_bn(y, filters, 3, f"{name}_b")
    shortcut = x if x.shape[-1] == filters else _conv_bn(x, filters, 1, f"{name}_proj")
    return L.ReLU(name=f"{name}_out")(L.Add(name=f"{name}_add")([y, shortcut]))


def _augmentation(
    x,
    flip: bool,
    translate: float,
    zoom: float = 0.0,
    contrast: float = 0.0,
    zoom_out: float = 0.0,
    rotation: float = 0.0,
    white_balance: float = 0.0,
    brightness: float = 0.0,
    grayscale: float = 0.0,
    blur: float = 0.0,
    noise: float = 0.0,
):
    if flip:
        x = L.RandomFlip("horizontal", name="augment_flip")(x)
    if translate:
        x = L.RandomTranslation(translate, translate, name="augment_shift")(x)
    if zoom:
        # "nearest" continues the border outwards; "reflect" would mirror a second hand or face in.
        x = L.RandomZoom(zoom, fill_mode="nearest", name="augment_zoom")(x)
    if zoom_out or rotation:
        # Half the images from further away and askew, on their background's colour.
        x = L.RandomReframe(zoom_out, degrees=rotation, value_range=(0, 1), name="augment_reframe")(x)
    # The photometric changes act on inputs / 255, so their value range is (0, 1).
    if contrast:
        x = L.RandomContrast(contrast, value_range=(0, 1), name="augment_contrast")(x)
    if white_balance or brightness:
        x = L.RandomWhiteBalance(white_balance, brightness, value_range=(0, 1), name="augment_white_balance")(x)
    if grayscale:
        x = L.RandomGrayscale(grayscale, name="augment_grayscale")(x)
    if blur:
        x = L.RandomGaussianBlur(blur, name="augment_blur")(x)
    if noise:
        x = L.GaussianNoise(noise, value_range=(0, 1), name="augment_noise")(x)
    return x


def smallres(
    input_shape=(64, 64, 3),
    n_classes: int = 6,
    widths=DEFAULT_WIDTHS,
    dropout: float = 0.3,
    flip: bool = True,
    translate: float = 0.1,
    stem_pool: bool | None = None,
    zoom: float = 0.0,
    contrast: float = 0.0,
    zoom_out: float = 0.0,
    rotation: float = 0.0,
    white_balance: float = 0.0,
    brightness: float = 0.0,
    grayscale: float = 0.0,
    blur: float = 0.0,
    noise: float = 0.0,
    standardize: bool = False,
) -> Model:
    """A small residual CNN (see the module docstring).

    Parameters
    ----------
    input_shape : (n_H, n_W, n_C)
    n_classes : 2 (one sigmoid unit) or more (softmax)
    widths : channels of each stage; the stem uses the first. Each stage halves n_H and n_W.
    dropout : rate before the classifier
    flip : random left-right flips while training (only for data where a mirror image keeps its label)
    translate : random shifts of up to this fraction of the size while training (0: none)
    stem_pool : halve the size after the stem; default: when the input is 48 px or more. The first
        stage at full 64x64 resolution costs 4x the time and buys little on 64 px photos.
    zoom : random zoom in or out by up to this fraction while training (0: none)
    contrast : random contrast, a factor in [1 - contrast, 1 + contrast], while training (0: none)
    zoom_out, rotation, white_balance, brightness, grayscale, blur, noise : a learner's kind of photo
        while training (0: none): half the images shrunk to a scale in ``[1 - zoom_out, 1]`` and
        rotated by up to ``rotation`` degrees, on their border's median colour (RandomReframe);
        per-channel gains in ``[1 - white_balance, 1 + white_balance]`` and an exposure gain in
        ``[1 - brightness, 1 + brightness]``; grey copies with probability ``grayscale``; a Gaussian
        blur of up to ``blur`` pixels; noise of up to ``noise`` (inputs in [0, 1])
    standardize : each image to mean 0 and standard deviation 1 first (PerImageStandardization), so
        that exposure and contrast do not change what the network sees
    """
    if stem_pool is None:
        stem_pool = min(input_shape[:2]) >= 48
    inputs = Input(shape=tuple(input_shape), name="image")
    x = _augmentation(
        inputs, flip, translate, zoom, contrast, zoom_out, rotation, white_balance, brightness, grayscale, blur, noise
    )
    if standardize:
        x = L.PerImageStandardization(name="standardize")(x)
    x = L.ReLU(name="stem_relu")(_conv_bn(x, widths[0], 3, "stem"))
    if stem_pool:
        x = L.MaxPooling2D(2, name="stem_pool")(x)
    for s, width in enumerate(widths, start=1):
        x = _residual_block(x, width, f"stage{s}")
        x = L.MaxPooling2D(2, name=f"stage{s}_pool")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    return Model(inputs, output_layer(n_classes)(x), name="smallres")


def tiny(input_shape=(32, 32, 3), n_classes: int = 2) -> Model:
    """CONV 3x3 (8, stride 2) -> RELU -> GLOBAL AVERAGE POOL -> DENSE: trains in a blink, for tests."""
    inputs = Input(shape=tuple(input_shape), name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv")(inputs)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return Model(inputs, output_layer(n_classes)(x), name="tiny")
