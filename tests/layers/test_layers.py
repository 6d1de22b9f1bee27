"""Layers: output shapes, numerical gradients through each layer (float64), and PyTorch agreement.

A layer's gradient is checked on the scalar ``L = sum(layer(x) * R)`` for a fixed random ``R``:
``backward(R)`` must give ``dL/dx`` and fill each weight's ``.grad`` with ``dL/dW``.
"""

from __future__ import annotations

import numpy as np
import pytest

from npconv import layers as L
from npconv.data import augment
from npconv.errors import ShapeError
from npconv.gradcheck import gradcheck, numerical_gradient, relative_error


def built(layer, input_shape, dtype=np.float64):
    layer.dtype = np.dtype(dtype)
    layer.build(input_shape)
    return layer


def layer_gradcheck(layer, x, training=True, seed=0):
    """Relative errors of ``dx`` and every trainable weight's gradient, by central differences."""
    out = layer.forward(x, training)
    R = np.random.default_rng(seed).standard_normal(out.shape)
    dx = layer.backward(R)

    def loss(_):
        value = float(np.sum(layer.forward(x, training) * R))
        layer._cache = None
        return value

    errors = {"x": relative_error(dx, numerical_gradient(loss, x))}
    for w in layer.trainable_weights:
        errors[w.name] = relative_error(w.grad, numerical_gradient(loss, w.value))
    return errors


def assert_gradients(layer, x, training=True, tol=1e-7):
    errors = layer_gradcheck(layer, x, training)
    assert max(errors.values()) < tol, errors


CASES = [
    (lambda: L.Conv2D(3, (3, 2), strides=(2, 1), padding="same"), (5, 6, 2), (3, 6, 3)),
    (lambda: L.Conv2D(2, 2, padding="valid", activation="relu"), (4, 4, 3), (3, 3, 2)),
    (lambda: L.ZeroPadding2D(((1, 2), (0, 1))), (3, 3, 2), (6, 4, 2)),
    (lambda: L.MaxPooling2D(2), (4, 5, 2), (2, 2, 2)),
    (lambda: L.MaxPool2D(3, strides=2, padding="same"), (5, 5, 1), (3, 3, 1)),
    (lambda: L.AveragePooling2D((2, 3), padding="same"), (4, 5, 2), (2, 2, 2)),
    (lambda: L.GlobalAveragePooling2D(), (3, 4, 5), (5,)),
    (lambda: L.GlobalMaxPooling2D(), (3, 4, 5), (5,)),
    (lambda: L.BatchNormalization(axis=3), (3, 3, 4), (3, 3, 4)),
    (lambda: L.BatchNormalization(), (6,), (6,)),
    (lambda: L.Dense(3, activation="tanh"), (5,), (3,)),
    (lambda: L.Dense(4, activation="softmax", use_bias=False), (5,), (4,)),
    (lambda: L.Activation("sigmoid"), (2, 3), (2, 3)),
    (lambda: L.ReLU(), (3, 2, 2), (3, 2, 2)),
    (lambda: L.Flatten(), (3, 2, 2), (12,)),
]


@pytest.mark.parametrize("make, in_shape, out_shape", CASES)
def test_output_shape_and_gradients(make, in_shape, out_shape, rng):
    layer = built(make(), in_shape)
    assert layer.compute_output_shape(in_shape) == out_shape
    x = rng.standard_normal((3,) + in_shape)
    x += 0.01 * np.arange(x.size).reshape(x.shape)  # distinct values: max pooling has no ties
    assert layer.forward(x, True).shape == (3,) + out_shape
    layer._cache = None
    assert_gradients(layer, x)


def test_batchnorm_inference_gradients(rng):
    layer = built(L.BatchNormalization(), (2, 2, 3))
    layer.moving_mean.value[:] = rng.standard_normal(3)
    layer.moving_variance.value[:] = rng.random(3) + 0.5
    assert_gradients(layer, rng.standard_normal((2, 2, 2, 3)), training=False)


def test_dropout_gradient_uses_the_same_mask(rng):
    layer = built(L.Dropout(0.5, seed=1), (10,))
    x = rng.standard_normal((4, 10))
    out = layer.forward(x, True)
    kept = out != 0
    np.testing.assert_allclose(out[kept], 2 * x[kept])
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), 2.0 * kept)
    np.testing.assert_array_equal(layer(x), x)  # inference: identity


def merge_pair(layer):
    """The merge layer as a forward/backward pair of two inputs, for :func:`gradcheck`."""
    return (lambda a, b: (layer.forward([a, b], True), None), lambda dout, _: tuple(layer.backward(dout)))


@pytest.mark.parametrize("axis, b_shape", [(-1, (2, 3, 3, 4)), (3, (2, 3, 3, 4)), (2, (2, 3, 5, 2))])
def test_concatenate_joins_and_its_backward_splits_the_gradient(rng, axis, b_shape):
    a, b = rng.standard_normal((2, 3, 3, 2)), rng.standard_normal(b_shape)
    cat = L.Concatenate(axis=axis)  # Keras counts the batch axis: 3 is the channel axis of images
    data_axis = axis % 4
    out = cat([a, b])
    np.testing.assert_array_equal(out, np.concatenate([a, b], axis=data_axis))
    assert cat.compute_output_shape([a.shape[1:], b.shape[1:]]) == out.shape[1:]
    cat.forward([a, b], True)
    dout = rng.standard_normal(out.shape)
    da, db = cat.backward(dout)
    np.testing.assert_array_equal(da, np.take(dout, range(a.shape[data_axis]), axis=data_axis))
    np.testing.assert_array_equal(db, np.take(dout, range(a.shape[data_axis], out.shape[data_axis]), axis=data_axis))
    gradcheck(*merge_pair(cat), {"a": a, "b": b})


def test_add_sums_and_its_backward_copies_the_gradient(rng):
    a, b = rng.standard_normal((2, 3, 3, 2)), rng.standard_normal((2, 3, 3, 2))
    add = L.Add()
    np.testing.assert_array_equal(add([a, b]), a + b)
    add.forward([a, b], True)
    dout = rng.standard_normal(a.shape)
    da, db = add.backward(dout)
    np.testing.assert_array_equal(da, dout)
    np.testing.assert_array_equal(db, dout)
    gradcheck(*merge_pair(add), {"a": a, "b": b})
    with pytest.raises(ShapeError, match="one shape"):
        add.compute_output_shape([(3, 3, 2), (3, 3, 4)])


def test_average_means_and_its_backward_shares_the_gradient(rng):
    a, b, c = (rng.standard_normal((2, 3, 3, 2)) for _ in range(3))
    average = L.Average()
    np.testing.assert_allclose(average([a, b, c]), (a + b + c) / 3)
    assert not np.shares_memory(average([a, b]), a)  # the output is a new array: the inputs are kept
    average.forward([a, b, c], True)
    dout = rng.standard_normal(a.shape)
    for d in average.backward(dout):
        np.testing.assert_allclose(d, dout / 3)
    gradcheck(*merge_pair(average), {"a": a, "b": b})
    with pytest.raises(ShapeError, match="one shape"):
        average.compute_output_shape([(6,), (5,)])


@pytest.mark.torch
def test_average_matches_torch(torch, rng):
    xs = [rng.standard_normal((4, 6)) for _ in range(3)]
    dout = rng.standard_normal((4, 6))
    average = L.Average()
    out = average.forward(xs, True)
    grads = average.backward(dout)
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    torch.stack(ts).mean(0).backward(torch.tensor(dout))
    np.testing.assert_allclose(out, torch.stack(ts).mean(0).detach().numpy(), rtol=1e-12)
    for g, t in zip(grads, ts):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)


def test_layers_keep_float32(rng):
    for layer, shape in [
        (L.Conv2D(2, 3), (5, 5, 2)),
        (L.BatchNormalization(), (5, 5, 2)),
        (L.Dense(3, activation="softmax"), (4,)),
    ]:
        layer.build(shape)
        x = rng.standard_normal((2,) + shape).astype(np.float32)
        assert layer(x).dtype == np.float32
        assert all(w.value.dtype == np.float32 for w in layer.weights)


@pytest.mark.parametrize(
    "layer, scale, kernel, kwargs",
    [
        (lambda: L.RandomFlip("horizontal", seed=3), 1, augment.random_flip, {"mode": "horizontal"}),
        (
            lambda: L.RandomTranslation(0.2, 0.3, seed=3),
            1,
            augment.random_translation,
            {"height_factor": 0.2, "width_factor": 0.3},
        ),
        (lambda: L.RandomRotation(0.1, seed=3), 1, augment.random_rotation, {"factor": 0.1}),
        # Keras scales the delta to value_range and clips the output to it.
        (
            lambda: L.RandomBrightness(0.5, value_range=(0, 1), seed=3),
            1,
            augment.random_brightness,
            {"max_delta": 0.5, "value_range": (0.0, 1.0)},
        ),
        (
            lambda: L.RandomBrightness(0.1, seed=3),
            255,
            augment.random_brightness,
            {"max_delta": 25.5, "value_range": (0.0, 255.0)},
        ),
    ],
)
def test_augmentation_layers_apply_their_kernel_in_training_and_nothing_at_inference(rng, layer, scale, kernel, kwargs):
    x = rng.random((6, 8, 8, 3)).astype(np.float32) * scale
    out = layer()(x, training=True)
    np.testing.assert_array_equal(out, kernel(x, np.random.default_rng(3), **kwargs))
    assert out.dtype == x.dtype and not np.array_equal(out, x)
    np.testing.assert_array_equal(layer()(x), x)


def test_random_brightness_clips_to_its_value_range(rng):
    x = rng.random((20, 4, 4, 1)).astype(np.float32)
    out = L.RandomBrightness(0.5, value_range=(0, 1), seed=0)(x, training=True)
    assert out.min() == 0 and out.max() == 1  # some images were pushed past each end, and clipped


def test_augmentation_layers_are_identity_at_inference(rng):
    x = rng.random((2, 8, 8, 3)).astype(np.float32)
    for layer in [
        L.RandomFlip(),
        L.RandomTranslation(0.2, 0.2),
        L.RandomRotation(0.1),
        L.RandomBrightness(0.2, value_range=(0, 1)),
        L.RandomZoom(0.2),
        L.RandomContrast(0.3, value_range=(0, 1)),
    ]:
        np.testing.assert_array_equal(layer(x), x)
        out = layer(x, training=True)
        assert out.shape == x.shape and out.dtype == x.dtype


def test_zoom_and_contrast_layers_run_their_kernels_and_round_trip_configs(rng):
    import json

    from npconv.data import augment

    x = rng.random((3, 8, 8, 3)).astype(np.float32)
    zoom = L.RandomZoom((-0.3, 0.2), width_factor=0.1, fill_mode="wrap", seed=4)
    expected = augment.random_zoom(x, np.random.default_rng(4), (-0.3, 0.2), 0.1, fill_mode="wrap")
    np.testing.assert_array_equal(zoom(x, training=True), expected)
    contrast = L.RandomContrast((0.2, 0.5), value_range=(0, 1), seed=2)
    expected = augment.random_contrast(x, np.random.default_rng(2), (0.2, 0.5), value_range=(0, 1))
    np.testing.assert_array_equal(contrast(x, training=True), expected)
    for layer in (zoom, contrast, L.RandomZoom(0.1)):
        config = json.loads(json.dumps(layer.get_config()))  # as a saved model reads it
        assert type(layer).from_config(config).get_config() == layer.get_config()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: L.RandomZoom(-1.5), "height_factor"),
        (lambda: L.RandomZoom(0.1, width_factor="x"), "width_factor"),
        (lambda: L.RandomZoom(0.1, fill_mode="mirror"), "fill_mode"),
        (lambda: L.RandomContrast(1.5), "factor"),
        (lambda: L.RandomContrast((0.1, -1)), "factor"),
    ],
)
def test_zoom_and_contrast_refuse_bad_factors_when_built(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --- argument errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: L.Conv2D(0, 3), "filters"),
        (lambda: L.Conv2D(4, 3, padding="full"), "padding"),
        (lambda: L.Dense(-1), "units"),
        (lambda: L.Dense(3, activation="swish"), "activation"),
        (lambda: L.MaxPooling2D(0), "pool_size"),
        (lambda: L.Dropout(1.0), "rate"),
    ],
)
def test_bad_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_dense_on_images_suggests_flatten():
    with pytest.raises(ShapeError, match="Flatten"):
        L.Dense(3).build((4, 4, 3))


def test_kernel_larger_than_input_names_the_layer():
    with pytest.raises(ShapeError, match="'big'"):
        L.Conv2D(2, 5, name="big").build((3, 3, 1))


def test_batchnorm_refuses_channels_first():
    with pytest.raises(ValueError, match="axis=-1"):
        L.BatchNormalization(axis=1).build((3, 8, 8))


def test_config_round_trip():
    layer = L.Conv2D(4, (3, 2), strides=2, padding="same", activation="relu", name="c")
    clone = L.Conv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


# --- PyTorch agreement (float64) --------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize(
    "kernel, stride, padding", [((3, 3), 1, "valid"), ((4, 4), 1, "same"), ((2, 3), 2, "same"), ((3, 3), 2, "valid")]
)
def test_conv2d_matches_torch(torch, rng, kernel, stride, padding):
    layer = built(L.Conv2D(4, kernel, strides=stride, padding=padding), (7, 8, 3))
    x = rng.standard_normal((2, 7, 8, 3))
    out = layer.forward(x, True)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)

    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    wt = torch.tensor(layer.kernel.value.transpose(3, 2, 0, 1), requires_grad=True)
    bt = torch.tensor(layer.bias.value, requires_grad=True)
    xp = xt
    if padding == "same":  # TensorFlow's rule: the odd pixel of padding goes bottom/right
        (top, bottom), (left, right) = [
            (t // 2, t - t // 2)
            for t in (max((-(-n // stride) - 1) * stride + f - n, 0) for n, f in zip((7, 8), kernel))
        ]
        xp = torch.nn.functional.pad(xt, (left, right, top, bottom))
    yt = torch.nn.functional.conv2d(xp, wt, bt, stride=stride)
    yt.backward(torch.tensor(dout.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(out, yt.detach().numpy().transpose(0, 2, 3, 1), atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), atol=1e-12)
    np.testing.assert_allclose(layer.kernel.grad, wt.grad.numpy().transpose(2, 3, 1, 0), atol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, bt.grad.numpy(), atol=1e-12)


@pytest.mark.torch
def test_pooling_and_dense_match_torch(torch, rng):
    x = rng.standard_normal((2, 6, 6, 3))
    for layer, ref in [
        (L.MaxPooling2D(2), torch.nn.functional.max_pool2d),
        (L.AveragePooling2D(3, strides=3), torch.nn.functional.avg_pool2d),
    ]:
        xt = torch.tensor(x.transpose(0, 3, 1, 2))
        size = layer.pool_size[0]
        expected_out = ref(xt, size, stride=layer.strides[0]).numpy().transpose(0, 2, 3, 1)
        np.testing.assert_allclose(built(layer, (6, 6, 3))(x), expected_out, atol=1e-12)
    dense = built(L.Dense(3), (5,))
    v = rng.standard_normal((4, 5))
    ref = torch.nn.functional.linear(
        torch.tensor(v), torch.tensor(dense.kernel.value.T), torch.tensor(dense.bias.value)
    )
    np.testing.assert_allclose(dense(v), ref.numpy(), atol=1e-12)


@pytest.mark.torch
def test_batchnorm_matches_torch_in_both_modes(torch, rng):
    layer = built(L.BatchNormalization(momentum=0.9, epsilon=1e-3), (4, 4, 3))
    layer.gamma.value[:] = rng.random(3) + 0.5
    layer.beta.value[:] = rng.standard_normal(3)
    bn = torch.nn.BatchNorm2d(3, eps=1e-3, momentum=0.1)  # torch's momentum weighs the new batch
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(layer.gamma.value))
        bn.bias.copy_(torch.tensor(layer.beta.value))
    x = rng.standard_normal((5, 4, 4, 3)) * 2 + 1
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    out = layer.forward(x, True)
    yt = bn.train()(xt)
    np.testing.assert_allclose(out, yt.detach().numpy().transpose(0, 2, 3, 1), atol=1e-10)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    yt.backward(torch.tensor(dout.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), atol=1e-10)
    np.testing.assert_allclose(layer.gamma.grad, bn.weight.grad.numpy(), atol=1e-10)
    # Moving statistics: Keras keeps the biased batch variance, torch the unbiased one.
    n = x.size // 3
    np.testing.assert_allclose(layer.moving_mean.value, bn.running_mean.numpy(), atol=1e-12)
    torch_biased = (bn.running_var.numpy() - 0.9) * (n - 1) / n + 0.9
    np.testing.assert_allclose(layer.moving_variance.value, torch_biased, atol=1e-12)
    # Inference with the same moving statistics.
    with torch.no_grad():
        bn.running_var.copy_(torch.tensor(layer.moving_variance.value))
    np.testing.assert_allclose(
        layer(x), bn.eval()(torch.tensor(x.transpose(0, 3, 1, 2))).detach().numpy().transpose(0, 2, 3, 1), atol=1e-10
    )
