"""One converter per npconv layer type: ``convert(graph, layer, inputs) -> Value``.

Each converter emits the ONNX operators that compute the layer at inference, on NCHW image batches
(see :mod:`.onnx_graph`). Weights become float32 initializers named ``<layer>/<weight>``.
A layer type missing from :data:`CONVERTERS` cannot be exported (:func:`converter_for` says so).
"""

from __future__ import annotations

import numpy as np

from .. import layers as L
from ..errors import expected
from ..functional._shapes import resolve_padding
from .onnx_graph import GraphBuilder, Value

CONVERTERS: dict[type, object] = {}


def converts(*layer_types):
    """Register the decorated function as the converter of ``layer_types`` (exact classes)."""

    def register(function):
        for layer_type in layer_types:
            CONVERTERS[layer_type] = function
        return function

    return register


def converter_for(layer):
    """The converter of ``layer``'s exact type; a subclass may compute something else, so it is refused."""
    function = CONVERTERS.get(type(layer))
    if function is None:
        names = ", ".join(sorted(t.__name__ for t in CONVERTERS))
        kind = type(layer).__name__
        raise ValueError(
            expected(
                f"layer {layer.name!r} ({kind})",
                f"a layer type ONNX export knows ({names})",
                kind,
                "Build the model from those layers (a subclass counts as unknown: it may compute something else).",
            )
        )
    return function


def _onnx_pads(layer, x: Value, window, strides) -> list[int]:
    """npconv's padding (TensorFlow's asymmetric ``"same"``) as ONNX's ``[top, left, bottom, right]``."""
    (top, bottom), (left, right) = resolve_padding(layer.padding, x.shape[:2], window, strides)
    return [top, left, bottom, right]


def _affine_name(layer, op: str) -> str:
    """The name of a Conv2D/Dense's affine output: the layer's own when no activation follows."""
    return layer.name if layer.activation.name == "linear" else f"{layer.name}/{op}"


def activation(g: GraphBuilder, name: str, x: Value, which: str) -> Value:
    """``which`` (relu, sigmoid, tanh, softmax over the channels, linear) applied to ``x``."""
    if which == "linear":
        return x
    ops = {
        "relu": ("Relu", {}),
        "sigmoid": ("Sigmoid", {}),
        "tanh": ("Tanh", {}),
        "softmax": ("Softmax", {"axis": x.onnx_axis(len(x.shape))}),
    }
    op_type, attributes = ops[which]
    return Value(g.op(op_type, [x.name], name, **attributes), x.shape)


@converts(L.Conv2D)
def conv2d(g, layer, inputs):
    """ONNX ``Conv`` with explicit pads; kernel ``(fh, fw, C, K) -> (K, C, fh, fw)``."""
    (x,) = inputs
    weights = [g.constant(f"{layer.name}/kernel", layer.kernel.value.transpose(3, 2, 0, 1))]
    if layer.use_bias:
        weights.append(g.constant(f"{layer.name}/bias", layer.bias.value))
    out_shape = layer.compute_output_shape(x.shape)
    z = g.op(
        "Conv",
        [x.name, *weights],
        _affine_name(layer, "conv"),
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.strides),
        pads=_onnx_pads(layer, x, layer.kernel_size, layer.strides),
    )
    return activation(g, layer.name, Value(z, out_shape), layer.activation.name)


@converts(L.ZeroPadding2D)
def zero_padding2d(g, layer, inputs):
    """ONNX ``Pad`` (constant 0) on the height and width axes of the NCHW batch."""
    (x,) = inputs
    (top, bottom), (left, right) = layer.padding
    pads = g.constant(f"{layer.name}/pads", [0, 0, top, left, 0, 0, bottom, right])
    return Value(g.op("Pad", [x.name, pads], layer.name), layer.compute_output_shape(x.shape))


@converts(L.BatchNormalization)
def batch_normalization(g, layer, inputs):
    """ONNX ``BatchNormalization`` in inference mode, with the moving statistics and ``epsilon``."""
    (x,) = inputs
    params = [
        g.constant(f"{layer.name}/{w.name}", w.value)
        for w in (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance)
    ]
    return Value(g.op("BatchNormalization", [x.name, *params], layer.name, epsilon=layer.epsilon), x.shape)


@converts(L.ReLU)
def relu(g, layer, inputs):
    return activation(g, layer.name, inputs[0], "relu")


@converts(L.Activation)
def activation_layer(g, layer, inputs):
    return activation(g, layer.name, inputs[0], layer.activation.name)


@converts(L.MaxPooling2D, L.AveragePooling2D)
def pooling2d(g, layer, inputs):
    """ONNX ``MaxPool`` (padding never wins) or ``AveragePool`` over the unpadded elements only."""
    (x,) = inputs
    window = dict(
        kernel_shape=list(layer.pool_size),
        strides=list(layer.strides),
        pads=_onnx_pads(layer, x, layer.pool_size, layer.strides),
    )
    if layer.mode == "max":
        out = g.op("MaxPool", [x.name], layer.name, **window)
    else:
        out = g.op("AveragePool", [x.name], layer.name, count_include_pad=0, **window)
    return Value(out, layer.compute_output_shape(x.shape))


@converts(L.GlobalAveragePooling2D, L.GlobalMaxPooling2D)
def global_pooling2d(g, layer, inputs):
    """``GlobalAveragePool``/``GlobalMaxPool`` give ``(m, C, 1, 1)``; ``Flatten`` makes it ``(m, C)``."""
    (x,) = inputs
    op_type = "GlobalMaxPool" if layer.mode == "max" else "GlobalAveragePool"
    pooled = g.op(op_type, [x.name], f"{layer.name}/pool")
    return Value(g.op("Flatten", [pooled], layer.name, axis=1), layer.compute_output_shape(x.shape))


@converts(L.Flatten)
def flatten(g, layer, inputs):
    """Back to NHWC before flattening, so the features come in npconv's (and Keras's) order."""
    (x,) = inputs
    name = g.to_nhwc(x.name, f"{layer.name}/nhwc") if x.is_image else x.name
    return Value(g.op("Flatten", [name], layer.name, axis=1), layer.compute_output_shape(x.shape))


@converts(L.Dense)
def dense(g, layer, inputs):
    """ONNX ``Gemm``: ``x @ W + b`` with ``W (n_in, units)`` as stored."""
    (x,) = inputs
    weights = [g.constant(f"{layer.name}/kernel", layer.kernel.value)]
    if layer.use_bias:
        weights.append(g.constant(f"{layer.name}/bias", layer.bias.value))
    z = Value(g.op("Gemm", [x.name, *weights], _affine_name(layer, "gemm")), (layer.units,))
    return activation(g, layer.name, z, layer.activation.name)


@converts(
    L.Dropout,
    L.RandomFlip,
    L.RandomTranslation,
    L.RandomRotation,
    L.RandomBrightness,
    L.RandomZoom,
    L.RandomContrast,
    L.RandomGrayscale,
    L.RandomWhiteBalance,
    L.RandomGaussianBlur,
    L.GaussianNoise,
    L.RandomReframe,
)
def identity_at_inference(g, layer, inputs):
    """Dropout and augmentation do nothing at inference: the layer's output is its input."""
    return inputs[0]


@converts(L.PerImageStandardization)
def per_image_standardization(g, layer, inputs):
    """``(x - mean) / max(std, 1 / sqrt(N))`` over each image's ``N`` values (ReduceMean, Sub, Mul,
    ReduceMean, Sqrt, Max, Div)."""
    (x,) = inputs
    axes = list(range(1, len(x.shape) + 1))
    floor = g.constant(f"{layer.name}/floor", np.float32(1.0 / np.sqrt(np.prod(x.shape))))
    mean = g.op("ReduceMean", [x.name], f"{layer.name}/mean", axes=axes, keepdims=1)
    centred = g.op("Sub", [x.name, mean], f"{layer.name}/centred")
    variance = g.op(
        "ReduceMean",
        [g.op("Mul", [centred, centred], f"{layer.name}/square")],
        f"{layer.name}/variance",
        axes=axes,
        keepdims=1,
    )
    scale = g.op("Max", [g.op("Sqrt", [variance], f"{layer.name}/std"), floor], f"{layer.name}/scale")
    return Value(g.op("Div", [centred, scale], layer.name), x.shape)


@converts(L.Add)
def add(g, layer, inputs):
    return Value(g.op("Sum", [x.name for x in inputs], layer.name), inputs[0].shape)


@converts(L.Average)
def average(g, layer, inputs):
    return Value(g.op("Mean", [x.name for x in inputs], layer.name), inputs[0].shape)


@converts(L.Concatenate)
def concatenate(g, layer, inputs):
    """ONNX ``Concat`` on the NCHW axis that holds npconv's (NHWC) ``axis``."""
    shapes = [x.shape for x in inputs]
    axis = layer._axis(len(shapes[0])) + 1
    out = g.op("Concat", [x.name for x in inputs], layer.name, axis=inputs[0].onnx_axis(axis))
    return Value(out, layer.compute_output_shape(shapes))
