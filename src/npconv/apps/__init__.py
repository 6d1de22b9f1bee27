"""Ready-made networks: the course's models, npconv's stronger defaults, and how to train them.

>>> from npconv.apps import happyModel, convolutional_model, get_arch, list_archs
>>> happyModel().count_params(), convolutional_model((64, 64, 3)).count_params()
(37633, 1310)
>>> model = get_arch("smallres", (64, 64, 3), n_classes=6)

``RECIPES`` holds the default training recipe per data set (what ``npconv train`` uses).
"""

from .happy import HAPPY_CLASSES, happyModel
from .heads import loss_for, output_layer
from .recipes import RECIPES, Recipe, recipe_for
from .registry import ARCHS, DEFAULT_ARCH, get_arch, list_archs
from .residual import smallres, tiny
from .signs import convolutional_model

__all__ = [
    "ARCHS",
    "DEFAULT_ARCH",
    "HAPPY_CLASSES",
    "RECIPES",
    "Recipe",
    "convolutional_model",
    "get_arch",
    "happyModel",
    "list_archs",
    "loss_for",
    "output_layer",
    "recipe_for",
    "smallres",
    "tiny",
]
