"""Freezing layers (``trainable = False``) and putting a new head on a model: transfer learning.

Keras 2's rules: a frozen layer's weights get no updates and count as non-trainable; a frozen
``BatchNormalization`` also runs in inference mode while the model trains; ``model.trainable``
sets every layer; the flags are saved with the model; and any model's ``inputs`` and its layers'
``output`` tensors can start a new functional model.
"""

from __future__ import annotations

import numpy as np
import pytest

import npconv as nc
from npconv import layers as L
from npconv.gradcheck import numerical_gradient


def base_model(dtype="float32"):
    return nc.Sequential(
        [
            L.Conv2D(4, 3, padding="same", input_shape=(6, 6, 2), name="conv"),
            L.BatchNormalization(momentum=0.5, name="bn"),
            L.ReLU(name="relu"),
            L.MaxPooling2D(2, name="pool"),
            L.Flatten(name="flatten"),
            L.Dense(1, activation="sigmoid", name="fc"),
        ],
        dtype=dtype,
    )


def data(m=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((m, 6, 6, 2)).astype(np.float32)
    return x, (x[:, :3].mean(axis=(1, 2, 3)) > 0.5).astype(np.float32)[:, None]


def weights_of(layer):
    return [w.value.copy() for w in layer.weights]


def test_a_frozen_layer_gets_no_updates_and_its_weights_count_as_non_trainable():
    nc.utils.set_random_seed(0)
    model = base_model()
    model.get_layer("conv").trainable = False
    model.compile(optimizer="adam", loss="binary_crossentropy")
    conv_before, fc_before = weights_of(model.get_layer("conv")), weights_of(model.get_layer("fc"))
    model.fit(*data(), epochs=2, batch_size=8, verbose=0)
    for before, after in zip(conv_before, weights_of(model.get_layer("conv"))):
        np.testing.assert_array_equal(before, after)
    assert not np.array_equal(fc_before[0], model.get_layer("fc").kernel.value)
    lines = []
    model.summary(print_fn=lines.append)
    # conv: 3*3*2*4 + 4 = 76 frozen; bn: 8 trainable + 8 moving statistics; fc: 36 + 1
    assert "Total params: 129" in lines and "Trainable params: 45" in lines
    assert "Non-trainable params: 84" in lines
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 4


def test_a_frozen_batchnorm_runs_in_inference_mode_while_the_model_trains():
    nc.utils.set_random_seed(0)
    model = base_model()
    bn = model.get_layer("bn")
    bn.trainable = False
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    moving = weights_of(bn)
    x, y = data()
    np.testing.assert_array_equal(
        bn.forward(x[:, :, :, :1].repeat(4, -1), training=True),
        bn.forward(x[:, :, :, :1].repeat(4, -1), training=False),
    )
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for before, after in zip(moving, weights_of(bn)):  # gamma, beta and the statistics
        np.testing.assert_array_equal(before, after)


def frozen_bn_net():
    nc.utils.set_random_seed(3)
    model = base_model("float64")
    bn = model.get_layer("bn")
    rng = np.random.default_rng(1)
    bn.moving_mean.value[...] = rng.standard_normal(4) * 0.1
    bn.moving_variance.value[...] = rng.random(4) + 0.5
    bn.trainable = False
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    x = rng.standard_normal((5, 6, 6, 2))
    y = np.array([[0.0], [1.0], [1.0], [0.0], [1.0]])
    return model, x, y


def backprop(model, x, y):
    fused = model._training_plan()
    loss, dout = model.loss.from_logits_and_grad(y, model._forward(x, True, logits=fused))
    model._backward(dout)
    return loss


def test_gradients_through_a_frozen_batchnorm_match_numerical():
    model, x, y = frozen_bn_net()
    backprop(model, x, y)
    fused = model._training_plan()

    def loss(_):
        return model.loss.from_logits_and_grad(y, model._forward(x, True, logits=fused))[0]

    assert [w.name for w in model.trainable_weights] == ["kernel", "bias", "kernel", "bias"]
    for w in model.trainable_weights:
        np.testing.assert_allclose(w.grad, numerical_gradient(loss, w.value), rtol=1e-6, atol=1e-10)


@pytest.mark.torch
def test_gradients_through_a_frozen_batchnorm_match_torch_in_eval_mode(torch):
    model, x, y = frozen_bn_net()
    loss = backprop(model, x, y)
    conv, bn, fc = model.get_layer("conv"), model.get_layer("bn"), model.get_layer("fc")
    w = torch.tensor(conv.kernel.value.transpose(3, 2, 0, 1), requires_grad=True)
    v = torch.tensor(fc.kernel.value, requires_grad=True)
    norm = torch.nn.BatchNorm2d(4, eps=bn.epsilon).double().eval()  # eval: the moving statistics
    with torch.no_grad():
        norm.running_mean[:] = torch.tensor(bn.moving_mean.value)
        norm.running_var[:] = torch.tensor(bn.moving_variance.value)
    h = torch.nn.functional.conv2d(torch.tensor(x.transpose(0, 3, 1, 2)), w, torch.tensor(conv.bias.value), padding=1)
    h = torch.nn.functional.max_pool2d(torch.relu(norm(h)), 2)
    logits = h.permute(0, 2, 3, 1).reshape(5, -1) @ v + torch.tensor(fc.bias.value)
    torch_loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor(y))
    torch_loss.backward()
    assert loss == pytest.approx(torch_loss.item(), rel=1e-12)
    np.testing.assert_allclose(conv.kernel.grad, w.grad.numpy().transpose(2, 3, 1, 0), atol=1e-12)
    np.testing.assert_allclose(fc.kernel.grad, v.grad.numpy(), atol=1e-12)


def test_model_trainable_sets_every_layer():
    model = base_model()
    model.trainable = False
    assert not any(layer.trainable for layer in model.layers) and model.trainable_weights == []
    assert len(model.non_trainable_weights) == len(model.weights) == 8
    model.trainable = True
    assert all(layer.trainable for layer in model.layers) and len(model.trainable_weights) == 6


def test_changing_trainable_after_training_asks_for_compile_again():
    model = base_model()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    model.get_layer("conv").trainable = False
    with pytest.raises(RuntimeError, match=r"compile\(\.\.\.\) again"):
        model.fit(x, y, epochs=1, verbose=0)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    before = weights_of(model.get_layer("conv"))
    model.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(before[0], model.get_layer("conv").kernel.value)


def test_flags_survive_save_and_load_and_fine_tuning_resumes_exactly(tmp_path):
    x, y = data()

    def frozen():
        nc.utils.set_random_seed(5)
        model = base_model()
        model.get_layer("conv").trainable = False
        model.get_layer("bn").trainable = False
        model.compile(optimizer="adam", loss="binary_crossentropy")
        return model

    straight = frozen()
    straight.fit(x, y, epochs=3, batch_size=8, verbose=0)
    first = frozen()
    first.fit(x, y, epochs=2, batch_size=8, verbose=0)
    first.save(tmp_path / "tuned.npz")
    resumed = nc.load_model(tmp_path / "tuned.npz")
    assert [layer.trainable for layer in resumed.layers] == [False, False, True, True, True, True]
    resumed.fit(x, y, epochs=3, initial_epoch=2, batch_size=8, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    first.trainable = False
    with pytest.warns(UserWarning, match="moments are not saved"):
        first.save(tmp_path / "all_frozen.npz")
    assert nc.load_model(tmp_path / "all_frozen.npz").trainable is False


@pytest.mark.parametrize("functional", [False, True])
def test_a_new_head_on_a_loaded_models_layers(tmp_path, functional):
    nc.utils.set_random_seed(0)
    if functional:
        inputs = nc.Input(shape=(6, 6, 2))
        h = L.Flatten()(L.MaxPooling2D(2)(L.ReLU()(L.Conv2D(4, 3, padding="same")(inputs))))
        trained = nc.Model(inputs, L.Dense(1, activation="sigmoid")(h))
    else:
        trained = base_model()
    trained.save(tmp_path / "base.npz")
    base = nc.load_model(tmp_path / "base.npz")
    base.trainable = False
    features = base.layers[-2].output  # Flatten's output, (None, 36)
    assert features.shape == (None, 36)
    outputs = L.Dense(3, activation="softmax", name="new_head")(L.Dense(8, activation="relu")(features))
    model = nc.Model(base.inputs, outputs)
    assert model.layers[0] is base.inputs[0].layer and model.layers[-1].name == "new_head"
    assert [layer.name for layer in model.layers[1:-2]] == [
        layer.name for layer in base.layers if not isinstance(layer, L.InputLayer)
    ][:-1]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, _ = data()
    frozen = [w.copy() for w in base.get_weights()]
    model.fit(x, np.arange(len(x)) % 3, epochs=2, batch_size=8, verbose=0)
    for before, after in zip(frozen, base.get_weights()):
        np.testing.assert_array_equal(before, after)
    flat = base.intermediate_outputs(x, [base.layers[-2].name])[base.layers[-2].name]
    np.testing.assert_allclose(model.predict(x), model.layers[-1](model.layers[-2](flat)), rtol=1e-5)
    model.save(tmp_path / "head.npz")
    np.testing.assert_array_equal(nc.load_model(tmp_path / "head.npz").predict(x), model.predict(x))


def test_a_layers_output_stays_its_first_models_when_it_joins_another():
    base = base_model()
    flatten = base.get_layer("flatten")
    first = flatten.output
    reused = nc.Sequential(base.layers[:-1] + [L.Dense(2, activation="softmax")])
    assert flatten.output is first and reused.inputs[0] is not base.inputs[0]
    model = nc.Model(base.inputs, L.Dense(2, activation="softmax")(base.get_layer("flatten").output))
    assert model.layers[0] is base.inputs[0].layer
    base.build((6, 6, 2))  # rebuilt by its own model: its layers take the new tensors
    assert flatten.output is not first and base.outputs[0].inputs[0] is flatten.output
