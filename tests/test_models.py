"""Models: the course's two programs verbatim, training, gradients through whole models, errors."""

from __future__ import annotations

import numpy as np
import pytest

import npconv as nc
from npconv import layers as L
from npconv.errors import ShapeError
from npconv.gradcheck import numerical_gradient


def happyModel():
    model = nc.Sequential(
        [
            L.ZeroPadding2D(padding=(3, 3), input_shape=(64, 64, 3)),
            L.Conv2D(32, (7, 7), strides=(1, 1), name="conv0"),
            L.BatchNormalization(axis=3, name="bn0"),
            L.ReLU(),
            L.MaxPooling2D((2, 2), name="max_pool0"),
            L.Flatten(),
            L.Dense(1, activation="sigmoid", name="fc"),
        ]
    )
    return model


def convolutional_model(input_shape):
    input_img = nc.Input(shape=input_shape)
    Z1 = L.Conv2D(filters=8, kernel_size=(4, 4), strides=(1, 1), padding="same")(input_img)
    A1 = L.ReLU()(Z1)
    P1 = L.MaxPool2D(pool_size=(8, 8), strides=(8, 8), padding="same")(A1)
    Z2 = L.Conv2D(filters=16, kernel_size=(2, 2), strides=(1, 1), padding="same")(P1)
    A2 = L.ReLU()(Z2)
    P2 = L.MaxPool2D(pool_size=(4, 4), strides=(4, 4), padding="same")(A2)
    F = L.Flatten()(P2)
    outputs = L.Dense(units=6, activation="softmax")(F)
    model = nc.Model(inputs=input_img, outputs=outputs)
    return model


def small_model(dtype="float32"):
    """A small conv net with every kind of trainable layer, for fast training tests."""
    return nc.Sequential(
        [
            L.Conv2D(4, 3, padding="same", input_shape=(8, 8, 1)),
            L.BatchNormalization(momentum=0.9),  # Keras's 0.99 needs hundreds of steps to settle
            L.ReLU(),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(1, activation="sigmoid"),
        ],
        dtype=dtype,
    )


def bright_or_dark(m=96, seed=0):
    """Noise images; in those labelled 1 the top half is brighter."""
    rng = np.random.default_rng(seed)
    x = rng.random((m, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 2, m).astype(np.float32)
    x[y == 1, :4] += 0.5
    return x, y[:, None]


# --- the course programs -----------------------------------------------------------------------


def test_happy_model_summary_matches_keras():
    lines = []
    happyModel().summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "conv0 (Conv2D)" in text and "(None, 64, 64, 32)" in text and "4736" in text
    assert "zero_padding2d (ZeroPadding2D)" in text and "(None, 70, 70, 3)" in text
    assert "re_lu (ReLU)" in text and "(None, 32768)" in text
    assert "Total params: 37,633" in text
    assert "Trainable params: 37,569" in text
    assert "Non-trainable params: 64" in text


def test_signs_model_has_1310_params_and_keras_names():
    model = convolutional_model((64, 64, 3))
    assert model.count_params() == 1310
    names = [layer.name for layer in model.layers]
    assert names[1:] == [
        "conv2d",
        "re_lu",
        "max_pooling2d",
        "conv2d_1",
        "re_lu_1",
        "max_pooling2d_1",
        "flatten",
        "dense",
    ]
    assert model.output_shape == (None, 6)
    assert model.get_layer("conv2d_1").kernel.shape == (2, 2, 8, 16)


def test_signs_model_trains_on_one_hot_labels():
    nc.utils.set_random_seed(0)
    model = convolutional_model((16, 16, 3))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.random((20, 16, 16, 3)).astype(np.float32)
    y = np.eye(6, dtype=np.float32)[rng.integers(0, 6, 20)]
    history = model.fit(x, y, epochs=2, batch_size=8, validation_data=(x[:6], y[:6]), verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 2
    probabilities = model.predict(x)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


# --- training -------------------------------------------------------------------------------------


def test_fit_learns_a_small_task_and_evaluate_agrees():
    nc.utils.set_random_seed(0)
    x, y = bright_or_dark(256)
    model = small_model()
    model.compile(optimizer=nc.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    before = model.evaluate(x, y, verbose=0)[0]
    history = model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert loss < 0.5 * before and accuracy > 0.85
    predictions = model.predict(x, batch_size=50)
    assert predictions.shape == (256, 1) and predictions.dtype == np.float32
    np.testing.assert_allclose(model(x[:5]), predictions[:5], rtol=1e-6)
    # evaluate's figures are those of the predictions: cross-entropy (from the logits, as the fused
    # loss computes it) and the share on the right side of 1/2.
    z = model._forward(x, False, logits=True).astype(np.float64)
    assert loss == pytest.approx(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))), rel=1e-5)
    assert accuracy == np.mean((predictions > 0.5) == y)


def test_validation_split_takes_the_last_examples():
    x, y = bright_or_dark(40)
    model = small_model()
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    history = model.fit(x, y, epochs=1, validation_split=0.25, verbose=0)
    assert set(history.history) == {"loss", "val_loss"}
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(x[30:], y[30:], verbose=0))


def test_seeded_runs_are_bit_identical():
    def run():
        nc.utils.set_random_seed(3)
        x, y = bright_or_dark(64)
        model = nc.Sequential(
            [
                L.RandomFlip("horizontal", input_shape=(8, 8, 1)),
                L.Conv2D(2, 3),
                L.Flatten(),
                L.Dropout(0.3),
                L.Dense(1, activation="sigmoid"),
            ]
        )
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        return model.get_weights(), history.history

    (w1, h1), (w2, h2) = run(), run()
    assert h1 == h2
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)


def test_uint8_images_and_row_labels_are_accepted():
    x, y = bright_or_dark(32)
    model = small_model()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    with pytest.warns(UserWarning, match=r"y\.T"):
        model.fit((x * 255).astype(np.uint8), y.T, epochs=1, verbose=0)


def test_residual_functional_model_gradients_match_numerical():
    inputs = nc.Input(shape=(5, 5, 2))
    a = L.Conv2D(3, 3, padding="same", activation="relu")(inputs)
    b = L.Conv2D(3, 1)(inputs)
    merged = L.Add()([a, b])
    c = L.Concatenate()([merged, L.Conv2D(2, 3, padding="same")(merged)])
    pooled = L.GlobalAveragePooling2D()(c)
    outputs = L.Dense(3, activation="softmax")(L.BatchNormalization()(pooled))
    model = nc.Model(inputs=inputs, outputs=outputs, dtype="float64")
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5, 5, 2))
    y = np.eye(3)[[0, 2, 1, 2]]
    fused = model._training_plan()

    def loss(_):
        out = model._forward(x, True, logits=fused)
        return model.loss.from_logits_and_grad(y, out)[0]

    out = model._forward(x, True, logits=fused)
    model._backward(model.loss.from_logits_and_grad(y, out)[1])
    for w in model.trainable_weights:
        # Biases feeding BatchNormalization have a zero gradient: compare absolutely too.
        np.testing.assert_allclose(w.grad, numerical_gradient(loss, w.value), rtol=1e-6, atol=1e-9)


@pytest.mark.torch
def test_branched_model_with_add_and_concatenate_matches_torch(torch):
    inputs = nc.Input(shape=(5, 5, 2))
    conv_a = L.Conv2D(3, 3, padding="same", activation="relu")
    conv_b, conv_c = L.Conv2D(3, 1), L.Conv2D(2, 3, padding="same")
    dense = L.Dense(3, activation="softmax")
    merged = L.Add()([conv_a(inputs), conv_b(inputs)])
    joined = L.Concatenate()([merged, conv_c(merged)])
    model = nc.Model(inputs, dense(L.GlobalAveragePooling2D()(joined)), dtype="float64")
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((4, 5, 5, 2)), np.eye(3)[[0, 2, 1, 2]]
    loss, dout = model.loss.from_logits_and_grad(y, model._forward(x, True, logits=model._training_plan()))
    model._backward(dout)

    def leaf(a, conv=False):
        return torch.tensor(a.transpose(3, 2, 0, 1) if conv else a, requires_grad=True)

    params = {
        layer: (leaf(layer.kernel.value, conv=layer is not dense), leaf(layer.bias.value))
        for layer in (conv_a, conv_b, conv_c, dense)
    }
    conv = torch.nn.functional.conv2d
    xt = torch.tensor(x.transpose(0, 3, 1, 2))
    merged_t = torch.relu(conv(xt, *params[conv_a], padding=1)) + conv(xt, *params[conv_b])
    joined_t = torch.cat([merged_t, conv(merged_t, *params[conv_c], padding=1)], dim=1)
    logits = joined_t.mean(dim=(2, 3)) @ params[dense][0] + params[dense][1]
    torch_loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y.argmax(1)))
    torch_loss.backward()
    assert loss == pytest.approx(torch_loss.item(), rel=1e-12)
    for layer, (w, b) in params.items():
        grad = w.grad.numpy() if layer is dense else w.grad.numpy().transpose(2, 3, 1, 0)
        np.testing.assert_allclose(layer.kernel.grad, grad, atol=1e-12, err_msg=layer.name)
        np.testing.assert_allclose(layer.bias.grad, b.grad.numpy(), atol=1e-12, err_msg=layer.name)


@pytest.mark.torch
def test_conv_model_loss_gradient_matches_torch(torch):
    nc.utils.set_random_seed(0)
    model = nc.Sequential(
        [
            L.Conv2D(3, 2, padding="same", input_shape=(6, 6, 2)),
            L.ReLU(),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(4, activation="softmax"),
        ],
        dtype="float64",
    )
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 6, 6, 2)), np.eye(4)[[0, 1, 2, 3, 0]]
    out = model._forward(x, True, logits=model._training_plan())
    loss, dout = model.loss.from_logits_and_grad(y, out)
    model._backward(dout)

    conv, dense = model.layers[0], model.layers[-1]
    w = torch.tensor(conv.kernel.value.transpose(3, 2, 0, 1), requires_grad=True)
    b = torch.tensor(conv.bias.value, requires_grad=True)
    v = torch.tensor(dense.kernel.value, requires_grad=True)
    c = torch.tensor(dense.bias.value, requires_grad=True)
    xt = torch.nn.functional.pad(torch.tensor(x.transpose(0, 3, 1, 2)), (0, 1, 0, 1))  # TF "same"
    h = torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(xt, w, b)), 2)
    logits = h.permute(0, 2, 3, 1).reshape(5, -1) @ v + c
    torch_loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y.argmax(1)))
    torch_loss.backward()
    assert loss == pytest.approx(torch_loss.item(), rel=1e-12)
    np.testing.assert_allclose(conv.kernel.grad, w.grad.numpy().transpose(2, 3, 1, 0), atol=1e-12)
    np.testing.assert_allclose(dense.kernel.grad, v.grad.numpy(), atol=1e-12)


# --- model bookkeeping ----------------------------------------------------------------------------


def test_branched_summary_says_what_each_layer_reads():
    inputs = nc.Input(shape=(4, 4, 2), name="image")
    h = L.Conv2D(2, 3, padding="same", name="conv")(inputs)
    out = L.Add(name="skip")([h, inputs])
    lines = []
    nc.Model(inputs, L.Flatten()(out)).summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text and "conv, image" in text and "Total params: 38" in text


def test_sequential_add_and_deferred_build():
    model = nc.Sequential()
    model.add(L.Conv2D(2, 3))
    model.add(L.Flatten())
    model.add(L.Dense(1))
    assert not model.built
    out = model.predict(np.zeros((2, 5, 5, 1), np.float32))
    assert out.shape == (2, 1) and model.input_shape == (None, 5, 5, 1)
    weights = model.get_weights()
    model.set_weights([w + 1 for w in weights])
    np.testing.assert_array_equal(model.get_weights()[0], weights[0] + 1)


def softmax_model(loss):
    nc.utils.set_random_seed(0)
    model = nc.Sequential([L.Flatten(input_shape=(8, 8, 1)), L.Dense(2), L.Activation("softmax")])
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


def test_sparse_labels_evaluate_to_the_cross_entropy_and_accuracy_of_the_predictions():
    x, y = bright_or_dark(16)
    labels = y[:, 0].astype(int)
    model = softmax_model("sparse_categorical_crossentropy")
    loss, accuracy = model.evaluate(x, labels, verbose=0)
    p = model.predict(x).astype(np.float64)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(16), labels])), rel=1e-5)
    assert accuracy == np.mean(p.argmax(axis=1) == labels)


def test_astype_float64_keeps_the_weights_and_sparse_labels_train_like_one_hot():
    x, y = bright_or_dark(16)
    initial = softmax_model("sparse_categorical_crossentropy").get_weights()
    sparse = softmax_model("sparse_categorical_crossentropy").astype("float64")
    one_hot = softmax_model("categorical_crossentropy").astype("float64")
    for a, b in zip(sparse.get_weights(), initial):
        assert a.dtype == np.float64 and np.array_equal(a, b)
    assert sparse.predict(x).dtype == np.float64
    for model, labels in [(sparse, y.astype(int)), (one_hot, np.eye(2)[y[:, 0].astype(int)])]:
        nc.utils.set_random_seed(1)  # the same shuffles
        model.fit(x, labels, epochs=2, batch_size=4, verbose=0)
    for a, b in zip(sparse.get_weights(), one_hot.get_weights()):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert not np.array_equal(sparse.get_weights()[0], initial[0])  # it trained


def test_duplicate_layer_names_are_refused():
    with pytest.raises(ValueError, match="unique"):
        nc.Sequential([L.Dense(2, name="d", input_shape=(3,)), L.Dense(2, name="d")])


# --- errors -------------------------------------------------------------------------------------


def test_input_shape_errors_name_the_expected_shape_and_the_fix():
    model = happyModel()
    with pytest.raises(ShapeError, match=r"\(None, 64, 64, 3\).*x\[None\]"):
        model.predict(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ShapeError, match=r"3 channel\(s\), the data has 1"):
        model.predict(np.zeros((2, 64, 64, 1), np.float32))
    with pytest.raises(ShapeError, match=r"\(None, 64, 64, 3\).*\(2, 32, 32, 3\)"):
        model.predict(np.zeros((2, 32, 32, 3), np.float32))


def test_training_data_errors():
    x, y = bright_or_dark(8)
    model = small_model()
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y, verbose=0)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    with pytest.raises(ValueError, match="8 labels"):
        model.fit(x, y[:5], verbose=0)
    with pytest.raises(ValueError, match="at least one example"):
        model.fit(x[:0], y[:0], verbose=0)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        model.fit(bad, y, verbose=0)
    with pytest.raises(ValueError, match="finite"):
        model.fit(x, np.full_like(y, np.inf), verbose=0)


def test_loss_and_last_activation_must_fit_together():
    model = nc.Sequential([L.Dense(3, input_shape=(4,))])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="softmax"):
        model.fit(np.zeros((2, 4)), np.eye(3)[:2], verbose=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"optimizer": "adagrad", "loss": "binary_crossentropy"}, "adam"),
        ({"optimizer": "adam", "loss": "hinge"}, "binary_crossentropy"),
        ({"optimizer": "adam", "loss": "binary_crossentropy", "metrics": ["f1"]}, "accuracy"),
    ],
)
def test_unknown_names_list_the_valid_ones(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_model().compile(**kwargs)


@pytest.mark.parametrize("functional", [False, True])
def test_augmentation_after_a_layer_with_weights_is_refused_when_built(functional):
    """Augmentation layers have no backward pass; after a Conv2D, fit would fail at the first batch."""
    with pytest.raises(ValueError, match=r"'random_flip' \(RandomFlip\).*after 'conv2d'.*right after the input"):
        if functional:
            x = nc.Input(shape=(8, 8, 1))
            h = L.RandomFlip()(L.ReLU()(L.Conv2D(2, 3)(x)))
            nc.Model(x, L.Dense(1, activation="sigmoid")(L.Flatten()(h)))
        else:
            nc.Sequential([L.Conv2D(2, 3, input_shape=(8, 8, 1)), L.RandomFlip(), L.Flatten(), L.Dense(1)])
    before = nc.Sequential(
        [L.RandomFlip(input_shape=(8, 8, 1)), L.RandomTranslation(0.1, 0.1), L.Conv2D(2, 3), L.Flatten(), L.Dense(1)]
    )
    assert len(before.layers) == 5
