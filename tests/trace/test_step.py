"""``npconv.trace.step`` against PyTorch autograd (float64): every layer's output, ``dout``, ``dZ``,
``dx``, ``dW`` and ``db``; and a step leaves the model exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest

import npconv
from npconv import layers as L
from npconv import trace
from npconv.apps.happy import happyModel
from npconv.apps.residual import smallres
from npconv.apps.signs import convolutional_model
from npconv.functional._shapes import resolve_padding


def _torch_step(torch, model, x, y):
    """The same step in PyTorch, NHWC throughout: ``{name: {"output", "dout", "dZ", "dx", "dW", ...}}``."""
    F = torch.nn.functional
    values, tensors = {}, {}
    a = torch.tensor(x, requires_grad=True)
    for layer in model.layers:
        if isinstance(layer, L.InputLayer):
            continue
        entry = {"input": a}
        if isinstance(layer, (L.Conv2D, L.MaxPooling2D, L.AveragePooling2D)):
            size = layer.kernel_size if isinstance(layer, L.Conv2D) else layer.pool_size
            (t, b), (l, r) = resolve_padding(layer.padding, tuple(a.shape[1:3]), size, layer.strides)
            nchw = a.permute(0, 3, 1, 2)
            if isinstance(layer, L.Conv2D):
                W = entry["W"] = torch.tensor(layer.kernel.value, requires_grad=True)
                bias = entry["b"] = torch.tensor(layer.bias.value, requires_grad=True)
                z = F.conv2d(F.pad(nchw, (l, r, t, b)), W.permute(3, 2, 0, 1), bias, stride=layer.strides)
            elif isinstance(layer, L.MaxPooling2D):
                z = F.max_pool2d(F.pad(nchw, (l, r, t, b), value=-np.inf), size, layer.strides)
            else:

                def total(v, pads=(l, r, t, b), size=size, strides=layer.strides):
                    return F.avg_pool2d(F.pad(v, pads), size, strides)

                z = total(nchw) / total(torch.ones_like(nchw))
            z = z.permute(0, 2, 3, 1)
        elif isinstance(layer, L.Dense):
            W = entry["W"] = torch.tensor(layer.kernel.value, requires_grad=True)
            bias = entry["b"] = torch.tensor(layer.bias.value, requires_grad=True)
            z = a @ W + bias
        elif isinstance(layer, L.Flatten):
            z = a.reshape(len(a), -1)
        elif isinstance(layer, L.ZeroPadding2D):
            (t, b), (l, r) = layer.padding
            z = F.pad(a, (0, 0, l, r, t, b))
        elif isinstance(layer, L.ReLU):
            z = torch.relu(a)
        elif isinstance(layer, L.BatchNormalization):
            gamma = entry["gamma"] = torch.tensor(layer.gamma.value, requires_grad=True)
            beta = entry["beta"] = torch.tensor(layer.beta.value, requires_grad=True)
            mean, var = a.mean(dim=(0, 1, 2)), a.var(dim=(0, 1, 2), unbiased=False)
            z = (a - mean) / torch.sqrt(var + layer.epsilon) * gamma + beta
        else:
            raise NotImplementedError(type(layer).__name__)
        activation = getattr(getattr(layer, "activation", None), "name", "linear")
        out = {
            "linear": lambda v: v,
            "relu": torch.relu,
            "sigmoid": torch.sigmoid,
            "softmax": lambda v: torch.softmax(v, dim=1),
        }[activation](z)
        if activation != "linear":
            entry["dZ"] = z
        z.retain_grad()
        out.retain_grad()
        entry["output"] = entry["dout"] = out
        tensors[layer.name] = entry
        a = out
    target = torch.tensor(np.asarray(y, dtype=np.float64)).reshape(a.shape)
    if model.loss.name == "binary_crossentropy":
        loss = -(target * torch.log(a) + (1 - target) * torch.log(1 - a)).mean()
    else:
        loss = -(target * torch.log(a)).sum(dim=1).mean()
    for entry in tensors.values():
        entry["input"].retain_grad()
    loss.backward()
    for name, entry in tensors.items():
        values[name] = {
            "output": entry["output"].detach().numpy(),
            "dout": entry["dout"].grad.numpy(),
            "dx": entry["input"].grad.numpy(),
        }
        for key, grad in (("W", "dW"), ("b", "db"), ("gamma", "dgamma"), ("beta", "dbeta"), ("dZ", "dZ")):
            if key in entry:
                values[name][grad] = entry[key].grad.numpy()
    return float(loss.detach()), values


def _signs_like(strides, padding):
    """CONV(relu) -> MAXPOOL -> CONV -> AVGPOOL -> FLATTEN -> DENSE(relu) -> DENSE(softmax), float64."""
    return npconv.Sequential(
        [
            L.Conv2D(4, 3, strides=strides, padding=padding, activation="relu", input_shape=(17, 17, 2), name="conv_a"),
            L.MaxPooling2D(2, strides=strides, padding=padding, name="max_pool"),
            L.Conv2D(3, 2, strides=strides, padding=padding, name="conv_b"),
            L.AveragePooling2D(2, strides=1, padding=padding, name="avg_pool"),
            L.Flatten(name="flatten"),
            L.Dense(5, activation="relu", name="hidden"),
            L.Dense(3, activation="softmax", name="classes"),
        ],
        dtype="float64",
    )


def _batch(model, m=3, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m,) + model.input_shape[1:])
    return x, np.eye(classes)[rng.integers(0, classes, m)]


def _assert_matches(t, loss, values):
    assert t.loss == pytest.approx(loss, rel=1e-12)
    for name, expected in values.items():
        np.testing.assert_allclose(t.output(name), expected["output"], rtol=1e-9, atol=1e-12, err_msg=name)
        for which, want in expected.items():
            if which != "output":
                np.testing.assert_allclose(t.grad(name, which), want, rtol=1e-8, atol=1e-12, err_msg=f"{name} {which}")


@pytest.mark.torch
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_every_layer_matches_torch_autograd(torch, strides, padding):
    npconv.utils.set_random_seed(3)
    model = _signs_like(strides, padding)
    for layer in model.layers:  # non-zero biases, so that a missed db shows
        if getattr(layer, "bias", None) is not None:
            layer.bias.value[:] = np.linspace(-0.2, 0.3, layer.bias.value.size)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = _batch(model)
    _assert_matches(trace.step(model, x, y), *_torch_step(torch, model, x, y))


@pytest.mark.torch
def test_happy_house_matches_torch_autograd(torch):
    """ZeroPadding2D, Conv2D 7x7, BatchNormalization (batch statistics), ReLU, MaxPool, sigmoid unit."""
    npconv.utils.set_random_seed(4)
    model = happyModel((12, 12, 3)).astype("float64")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x, y = np.random.default_rng(1).random((3, 12, 12, 3)), np.array([0, 1, 1])
    t = trace.step(model, x, y)
    _assert_matches(t, *_torch_step(torch, model, x, y))
    assert t.grad("conv0", "dW").shape == (7, 7, 3, 32)


def test_signs_and_smallres_give_every_layer_its_output_and_gradients():
    npconv.utils.set_random_seed(5)
    signs = convolutional_model((16, 16, 3), n_classes=4)
    signs.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = _batch(signs, m=2, classes=4)
    t = trace.step(signs, x.astype(np.float32), y)
    assert np.array_equal(t.grad(signs.layers[0].name, "dout"), t.grad(signs.layers[1].name, "dx"))
    for layer in signs.layers[1:]:
        assert t.output(layer.name).shape[1:] == layer.output_shape[1:]
        assert t.grad(layer.name, "dout").shape == t.output(layer.name).shape
        assert t.grad(layer.name, "dx").shape == t.record(layer.name).inputs[0].shape

    res = smallres((16, 16, 3), n_classes=3, widths=(4, 8))
    res.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = _batch(res, m=2, classes=3)
    t = trace.step(res, x, y)
    assert [row["name"] for row in t.layers()] == [layer.name for layer in res.layers]
    assert np.array_equal(
        t.output("image"), x.astype(np.float32)
    )  # the input layer: its output is x, no gradient reaches it
    assert t.whiches("image") == []
    add = t.grad("stage1_add", "dx")
    assert isinstance(add, list) and len(add) == 2 and np.array_equal(add[0], t.grad("stage1_add", "dout"))
    assert t.grad("stem_bn", "dgamma").shape == (4,)
    assert t.output("augment_flip").shape == x.shape
    with pytest.raises(ValueError, match="no backward pass"):
        t.grad("augment_flip", "dx")


def test_a_step_changes_nothing_and_repeats_exactly():
    npconv.utils.set_random_seed(6)
    res = smallres((16, 16, 3), n_classes=3, widths=(4,), dropout=0.5)
    res.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = _batch(res, m=4, classes=3)
    res.fit(x, y, epochs=1, verbose=0)  # the optimizer has state, each weight a .grad
    before = [(w.value.copy(), None if w.grad is None else w.grad.copy()) for w in res.weights]
    optimizer = [np.copy(v) for v in res.optimizer.get_state()]
    package = npconv.utils.global_rng().bit_generator.state
    first, second = trace.step(res, x, y), trace.step(res, x, y)
    assert first.loss == second.loss
    for name in first.names:
        assert np.array_equal(first.output(name), second.output(name))
        for which in first.whiches(name):
            for a, b in zip(np.atleast_1d(first.grad(name, which)), np.atleast_1d(second.grad(name, which))):
                assert np.array_equal(a, b)
    for w, (value, grad) in zip(res.weights, before):
        assert np.array_equal(w.value, value), w.name  # batch-norm moving statistics included
        assert (w.grad is None and grad is None) or np.array_equal(w.grad, grad)
    assert all(np.array_equal(a, b) for a, b in zip(optimizer, res.optimizer.get_state()))
    assert npconv.utils.global_rng().bit_generator.state == package
    dropped = first.output("dropout") == 0
    assert dropped.any() and not dropped.all()  # training mode: dropout drops, with a fixed seed


def test_bad_lookups_say_what_is_valid():
    model = _signs_like(1, "valid")
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    t = trace.step(model, *_batch(model))
    with pytest.raises(ValueError, match="'conv_a', 'max_pool'"):
        t.output("conv")
    with pytest.raises(ValueError, match="'dout', 'dZ', 'dW', 'db', 'dx'"):
        t.grad("conv_a", "dgamma")
    with pytest.raises(ValueError, match="'dout', 'dx'"):
        t.grad("max_pool", "dW")
    with pytest.raises(IndexError, match=r"shape \(3, 3, 2, 4\)"):
        t.terms("conv_a", "dW", (3, 0, 0, 0))
    with pytest.raises(ValueError, match="Conv2D: dW, dx, db"):
        t.terms("flatten", "dx", (0, 0, 0, 0))
    uncompiled = _signs_like(1, "valid")
    with pytest.raises(RuntimeError, match="compile the model first"):
        trace.step(uncompiled, *_batch(uncompiled))


def test_a_float32_model_traced_in_float64_stays_float32():
    npconv.utils.set_random_seed(9)
    model = happyModel((8, 8, 3))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x, y = np.random.default_rng(4).random((2, 8, 8, 3)).astype(np.float32), np.array([1, 0])
    arrays = [w.value for w in model.weights]
    exact, rounded = trace.step(model, x, y, dtype="float64"), trace.step(model, x, y)
    assert exact.dtype == np.float64 and exact.grad("conv0", "dW").dtype == np.float64
    assert rounded.grad("conv0", "dW").dtype == np.float32
    assert all(w.value is a and a.dtype == np.float32 for w, a in zip(model.weights, arrays))
    assert all(layer.dtype == np.float32 for layer in model.layers)
    assert rounded.first_difference(exact) is None  # at float32's tolerance
    np.testing.assert_allclose(rounded.grad("conv0", "dW"), exact.grad("conv0", "dW"), rtol=1e-3, atol=1e-6)
