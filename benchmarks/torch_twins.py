"""PyTorch twins of npconv's nets for the benchmarks: the same layers, initialisers and batch-norm settings.

``signs_course(6)`` and ``happy_course((64, 64, 3))`` are the course's models; ``smallres(input_shape,
n_out)`` is ``npconv.apps.smallres`` without its augmentation layers, and ``recipe_net(recipe, ...)``
the one ``npconv train`` builds from a recipe, standardisation included; the benchmark loops augment,
with npconv's own layers (``npconv_augmentation``).
Imported lazily by the scripts, so that a run with ``--no-torch`` needs no PyTorch.
"""

from __future__ import annotations

import torch
from torch import nn

#: The profiler mark of :class:`PerImageStandardization`'s ops (``epoch_profile`` counts them as
#: augmentation; this module is also loaded by file path, without ``epoch_profile`` beside it).
STANDARDIZATION_MARK = "per_image_standardization"


def keras_init(net, conv_init="glorot"):
    """Keras's initialisers: glorot_uniform (course layers) or he_normal (smallres convs), zero biases."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if isinstance(m, nn.Conv2d) and conv_init == "he":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


def signs_course(n_classes=6):
    # TensorFlow "same": a 4x4 kernel pads 1 top/left and 2 bottom/right; a 2x2 kernel 0 and 1.
    return keras_init(
        nn.Sequential(
            nn.ZeroPad2d((1, 2, 1, 2)),
            nn.Conv2d(3, 8, 4),
            nn.ReLU(),
            nn.MaxPool2d(8),
            nn.ZeroPad2d((0, 1, 0, 1)),
            nn.Conv2d(8, 16, 2),
            nn.ReLU(),
            nn.MaxPool2d(4),
            nn.Flatten(),
            nn.Linear(2 * 2 * 16, n_classes),
        )
    )


def happy_course(input_shape=(64, 64, 3)):
    n_h, n_w, n_c = input_shape
    # Keras BatchNormalization(momentum=0.99) is PyTorch's momentum 0.01.
    return keras_init(
        nn.Sequential(
            nn.ZeroPad2d(3),
            nn.Conv2d(n_c, 32, 7),
            nn.BatchNorm2d(32, eps=1e-3, momentum=0.01),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * (n_h // 2) * (n_w // 2), 1),
        )
    )


def _conv_bn(c_in, c_out, k):
    # Keras BatchNormalization(momentum=0.9) is PyTorch's momentum 0.1.
    return [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.1)]


class _Block(nn.Module):
    """``relu(conv-bn-relu-conv-bn(x) + shortcut(x))``, as npconv's residual block."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c_in, c_out, 3), nn.ReLU(), *_conv_bn(c_out, c_out, 3))
        self.shortcut = nn.Identity() if c_in == c_out else nn.Sequential(*_conv_bn(c_in, c_out, 1))

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


def smallres(input_shape=(64, 64, 3), n_out=6, widths=(16, 32, 64), dropout=0.3):
    """``npconv.apps.smallres`` without its augmentation layers."""
    layers = [*_conv_bn(input_shape[-1], widths[0], 3), nn.ReLU()]
    if min(input_shape[:2]) >= 48:
        layers.append(nn.MaxPool2d(2))
    for c_prev, c in zip((widths[0],) + tuple(widths[:-1]), widths):
        layers += [_Block(c_prev, c), nn.MaxPool2d(2)]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(widths[-1], n_out)]
    net = keras_init(nn.Sequential(*layers), conv_init="he")
    nn.init.xavier_uniform_(net[-1].weight)
    return net


class PerImageStandardization(nn.Module):
    """npconv's ``PerImageStandardization`` (TensorFlow's ``per_image_standardization``) in PyTorch:
    ``y[i] = (x[i] - mean(x[i])) / max(std(x[i]), 1 / sqrt(N))`` over each image's ``N`` values.
    Marked for the training benchmark's profile (a no-op for ``torch.compile``)."""

    def forward(self, x):
        with torch.profiler.record_function(STANDARDIZATION_MARK):
            n = x[0].numel()
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            std = x.std(dim=(1, 2, 3), keepdim=True, correction=0)
            return (x - mean) / torch.clamp(std, min=n**-0.5)


def recipe_net(recipe, input_shape, n_out: int) -> nn.Sequential:
    """:func:`smallres` of the recipe's widths, standardising each image first when the recipe does."""
    net = smallres(input_shape, n_out, **({"widths": tuple(recipe.widths)} if recipe.widths else {}))
    return nn.Sequential(PerImageStandardization(), *net) if recipe.standardize else net


def npconv_augmentation(recipe, input_shape, class_names):
    """npconv's own augmentation layers of the model ``npconv train`` builds with ``recipe``
    (``npconv.apps.fitting.build``), as a function of an NHWC float batch (and an unused generator:
    the layers draw from npconv's, seeded by ``npconv.utils.set_random_seed``); and their names.
    So a twin's batches come from the same kernels, parameters and order as npconv's."""
    from npconv.apps import fitting

    model = fitting.build(recipe.arch, tuple(input_shape), class_names, recipe)
    layers = [layer for layer in model.layers if layer.name.startswith("augment_")]

    def apply(xb, rng):
        for layer in layers:
            xb = layer.forward(xb, training=True)
        return xb

    return apply, [type(layer).__name__ for layer in layers]
