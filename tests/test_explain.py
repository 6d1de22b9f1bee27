"""Grad-CAM and saliency (:mod:`npconv.explain`) and the gradient they stand on (``Model.gradients``).

What a class score ``S`` (a logit) owes to each layer's output or pixel: held against PyTorch's
autograd on twins with the same weights, against central differences in float64, and against the
sanity checks of Adebayo et al. (2018), which a map that only looks like an explanation fails.
Explaining must leave the model exactly as it was: a later ``fit`` is bit for bit the same.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import npconv as nc
from npconv import explain
from npconv import layers as L
from npconv.apps.ensemble import average_models
from npconv.apps.happy import happyModel
from npconv.apps.residual import smallres
from npconv.apps.signs import convolutional_model
from npconv.data.resample import resize_bilinear
from npconv.errors import ShapeError
from npconv.functional._shapes import resolve_padding
from npconv.gradcheck import numerical_gradient

# ------------------------------------------------------------------ models


def _random_statistics(model, seed=0):
    """Batch-norm layers with non-trivial gamma, beta and moving statistics (fresh ones are 1, 0, 0, 1)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.gamma.shape
            layer.set_weights(
                [rng.uniform(0.5, 1.5, n), rng.normal(0, 0.3, n), rng.normal(0, 0.3, n), rng.uniform(0.5, 2.0, n)]
            )
    return model


def softmax_model():
    """Three classes; its ReLU feeds a max pool, so the model runs them swapped (engine/plan.py)."""
    nc.utils.set_random_seed(1)
    return _random_statistics(
        nc.Sequential(
            [
                L.Conv2D(4, 3, padding="same", input_shape=(10, 10, 3), name="conv1"),
                L.BatchNormalization(name="bn1"),
                L.ReLU(name="relu1"),
                L.MaxPooling2D(2, name="pool1"),
                L.Conv2D(6, 3, padding="same", activation="relu", name="conv2"),
                L.Flatten(name="flatten"),
                L.Dense(3, activation="softmax", name="fc"),
            ],
            dtype="float64",
        )
    )


def sigmoid_model():
    """One sigmoid unit: class 1 is scored by the logit z, class 0 by -z. An even kernel with
    "same" padding pads one more row and column at the bottom/right (TensorFlow's rule)."""
    nc.utils.set_random_seed(2)
    return nc.Sequential(
        [
            L.Conv2D(5, 4, padding="same", input_shape=(9, 9, 2), name="conv1"),
            L.ReLU(name="relu1"),
            L.MaxPooling2D(2, name="pool1"),
            L.Flatten(name="flatten"),
            L.Dense(1, activation="sigmoid", name="fc"),
        ],
        dtype="float64",
    )


def residual_model(n_classes=3, size=12):
    """npconv's smallres, tiny: augmentation layers first, Add, BatchNormalization, Dropout."""
    nc.utils.set_random_seed(3)
    return _random_statistics(smallres((size, size, 3), n_classes=n_classes, widths=(4, 6)).astype("float64"))


MODELS = {
    "softmax": softmax_model,
    "sigmoid": sigmoid_model,
    "residual-softmax": residual_model,
    "residual-sigmoid": lambda: residual_model(2),
}


def _images(model, m=3, seed=0):
    return np.random.default_rng(seed).random((m,) + model.input_shape[1:])


def _n_classes(model):
    return max(2, model.output_shape[-1])


# ------------------------------------------------------------------ the PyTorch twins


def torch_twin(torch, model, x):
    """``model`` run by PyTorch operations on its weights, layer by layer: ``(logits, tensors)``
    with ``tensors[name]`` each layer's output (NCHW for images; the input under its layer's name)."""
    F = torch.nn.functional

    def tensor(a):
        return torch.tensor(np.asarray(a, dtype=np.float64))

    values = {0: torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)}
    tensors = {model.inputs[0].layer.name: values[0]}
    activations = {"relu": torch.relu, "linear": lambda v: v, "softmax": lambda v: torch.softmax(v, 1)}
    for node in model._nodes:
        layer, args = node.layer, [values[i] for i in node.inputs]
        a, kind = args[0], type(layer).__name__
        if kind == "Conv2D":
            (top, bottom), (left, right) = resolve_padding(layer.padding, a.shape[2:], layer.kernel_size, layer.strides)
            out = F.conv2d(
                F.pad(a, (left, right, top, bottom)),
                tensor(layer.kernel.value.transpose(3, 2, 0, 1)),
                tensor(layer.bias.value) if layer.use_bias else None,
                stride=layer.strides,
            )
        elif kind == "Dense":
            out = a @ tensor(layer.kernel.value) + tensor(layer.bias.value)
        elif kind == "BatchNormalization":
            gamma, beta, mean, variance = map(tensor, layer.get_weights())
            out = F.batch_norm(a, mean, variance, gamma, beta, training=False, eps=layer.epsilon)
        elif kind == "ReLU":
            out = torch.relu(a)
        elif kind == "MaxPooling2D":
            out = F.max_pool2d(a, layer.pool_size, layer.strides)
        elif kind == "GlobalAveragePooling2D":
            out = a.mean(dim=(2, 3))
        elif kind == "Flatten":
            out = a.permute(0, 2, 3, 1).flatten(1)  # NHWC order, as npconv flattens
        elif kind == "Add":
            out = sum(args)
        elif kind == "Average":
            out = sum(args) / len(args)
        else:  # Dropout, augmentation and Activation: the identity at inference (Activation below)
            assert kind in {"Dropout", "RandomFlip", "RandomTranslation", "Activation"}, kind
            out = a
        activation = getattr(layer, "activation", None)
        if activation is not None and node is not model._nodes[-1]:
            out = activations[activation.name](out)
        values[node.output] = tensors[layer.name] = out
    return values[model._nodes[-1].output], tensors


def torch_score(torch, logits, classes):
    """``S`` summed over the images: the logit of each one's class (``z`` or ``-z`` for one unit)."""
    if logits.shape[1] == 1:
        return (logits[:, 0] * torch.tensor(np.where(classes == 1, 1.0, -1.0))).sum()
    return logits[torch.arange(len(classes)), torch.tensor(classes)].sum()


def torch_predicted(logits):
    z = logits.detach().numpy()
    return (z[:, 0] > 0).astype(int) if z.shape[1] == 1 else z.argmax(1)


def torch_grad_cam(torch, score, a, size=None):
    """Grad-CAM written out in PyTorch: alpha = mean_hw dS/dA, relu(sum_k alpha_k A_k) / max."""
    (grad,) = torch.autograd.grad(score, a, retain_graph=True)
    cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1))
    peak = cam.amax(dim=(1, 2), keepdim=True)
    cam = torch.where(peak > 0, cam / torch.where(peak > 0, peak, 1.0), torch.zeros_like(cam))
    if size is not None:
        cam = torch.nn.functional.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return cam.detach().numpy()


@pytest.mark.torch
@pytest.mark.parametrize("name", MODELS)
def test_grad_cam_matches_torch_at_every_spatial_layer_for_every_class(torch, name):
    model = MODELS[name]()
    x = _images(model)
    logits, tensors = torch_twin(torch, model, x)
    np.testing.assert_allclose(model._forward(x, False, logits=True), logits.detach().numpy(), atol=1e-12)
    predicted = torch_predicted(logits)
    for class_index in [None, *range(_n_classes(model))]:
        classes = predicted if class_index is None else np.full(len(x), class_index)
        score = torch_score(torch, logits, classes)
        for layer in explain.spatial_layers(model):
            for resize in (True, False):
                want = torch_grad_cam(torch, score, tensors[layer], x.shape[1:3] if resize else None)
                got = explain.grad_cam(model, x, layer=layer, class_index=class_index, resize=resize)
                np.testing.assert_allclose(got, want, atol=1e-10, err_msg=f"{layer}, class {class_index}")


@pytest.mark.torch
@pytest.mark.parametrize("name", MODELS)
def test_saliency_matches_torch_for_every_class(torch, name):
    model = MODELS[name]()
    x = _images(model)
    logits, tensors = torch_twin(torch, model, x)
    for class_index in [None, *range(_n_classes(model))]:
        classes = torch_predicted(logits) if class_index is None else np.full(len(x), class_index)
        (dx,) = torch.autograd.grad(
            torch_score(torch, logits, classes), tensors[model.inputs[0].layer.name], retain_graph=True
        )
        np.testing.assert_allclose(
            explain.saliency(model, x, class_index), dx.abs().amax(dim=1).numpy(), rtol=1e-10, atol=1e-14
        )


@pytest.mark.torch
def test_one_class_per_image_and_the_default_layer(torch):
    model = softmax_model()
    x = _images(model, m=4)
    classes = [2, 0, 1, 2]
    logits, tensors = torch_twin(torch, model, x)
    score = torch_score(torch, logits, np.array(classes))
    assert explain.default_layers(model) == ["conv2"]  # the last layer with a 4-D output
    np.testing.assert_allclose(
        explain.grad_cam(model, x, class_index=classes),
        torch_grad_cam(torch, score, tensors["conv2"], (10, 10)),
        atol=1e-10,
    )
    per_image = [explain.grad_cam(model, x[i], class_index=c)[0] for i, c in enumerate(classes)]
    np.testing.assert_allclose(explain.grad_cam(model, x, class_index=np.array(classes)), per_image, atol=1e-12)


def _torch_twins_module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "torch_twins.py"
    spec = importlib.util.spec_from_file_location("torch_twins", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _copy_weights(torch, model, net):
    """npconv's weights into the twin's modules, which come in the same order."""
    ours = [layer for layer in model.layers if isinstance(layer, (L.Conv2D, L.BatchNormalization, L.Dense))]
    theirs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear))]
    assert len(ours) == len(theirs)
    with torch.no_grad():
        for layer, module in zip(ours, theirs):
            if isinstance(layer, L.BatchNormalization):
                for target, value in zip(
                    (module.weight, module.bias, module.running_mean, module.running_var), layer.get_weights()
                ):
                    target.copy_(torch.tensor(value))
            else:
                kernel = layer.kernel.value
                module.weight.copy_(torch.tensor(kernel.T if kernel.ndim == 2 else kernel.transpose(3, 2, 0, 1)))
                if module.bias is not None:
                    module.bias.copy_(torch.tensor(layer.bias.value))
    net.eval()


def _nhwc_flatten(torch):
    """``nn.Flatten`` in npconv's (NHWC) order, so that the Dense kernel's rows line up."""

    class NHWCFlatten(torch.nn.Module):
        def forward(self, a):
            return a.permute(0, 2, 3, 1).flatten(1)

    return NHWCFlatten()


TWINS = {  # npconv model, its twin in benchmarks/torch_twins.py, the default layer
    "smallres-sigmoid": (
        lambda: smallres((16, 16, 3), n_classes=2, widths=(4, 8)),
        lambda twins: twins.smallres((16, 16, 3), n_out=1, widths=(4, 8)),
        "stage2_pool",
    ),
    "smallres-softmax": (
        lambda: smallres((16, 16, 3), n_classes=5, widths=(4, 8)),
        lambda twins: twins.smallres((16, 16, 3), n_out=5, widths=(4, 8)),
        "stage2_pool",
    ),
    "signs-course": (convolutional_model, lambda twins: twins.signs_course(6), "max_pooling2d_1"),
    "happy-course": (happyModel, lambda twins: twins.happy_course((64, 64, 3)), "max_pool0"),
}


@pytest.mark.torch
@pytest.mark.parametrize("name", TWINS)
def test_the_apps_models_against_their_benchmark_twins(torch, name):
    """smallres (augmentation layers first, Add, batch norm; the twin has no augmentation: npconv's
    is the identity at inference) and the course's two models (zero padding, TensorFlow's "same"
    pooling) against the nn.Modules of ``benchmarks/torch_twins.py``, with npconv's weights copied."""
    build, build_twin, default = TWINS[name]
    nc.utils.set_random_seed(4)
    model = _random_statistics(build().astype("float64"), 4)
    net = build_twin(_torch_twins_module())
    _copy_weights(torch, model, net)
    for k, module in enumerate(net):
        if isinstance(module, torch.nn.Flatten):
            net[k] = _nhwc_flatten(torch)
    captured = {}
    last_pool = [m for m in net if isinstance(m, torch.nn.MaxPool2d)][-1]
    last_pool.register_forward_hook(lambda module, inputs, output: captured.update(a=output))
    x = _images(model, m=3, seed=5)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    logits = net(xt)
    np.testing.assert_allclose(model._forward(x, False, logits=True), logits.detach().numpy(), atol=1e-12)
    assert explain.default_layers(model) == [default]
    for class_index in [None, *range(_n_classes(model))]:
        classes = torch_predicted(logits) if class_index is None else np.full(len(x), class_index)
        score = torch_score(torch, logits, classes)
        np.testing.assert_allclose(
            explain.grad_cam(model, x, class_index=class_index),
            torch_grad_cam(torch, score, captured["a"], x.shape[1:3]),
            atol=1e-10,
        )
        (dx,) = torch.autograd.grad(score, xt, retain_graph=True)
        np.testing.assert_allclose(
            explain.saliency(model, x, class_index), dx.abs().amax(dim=1).numpy(), rtol=1e-10, atol=1e-14
        )


@pytest.mark.torch
@pytest.mark.parametrize(
    "size, new_size", [((4, 4), (16, 16)), ((3, 5), (12, 7)), ((7, 6), (4, 3)), ((1, 1), (5, 5)), ((70, 70), (64, 64))]
)
def test_the_resize_is_torch_bilinear_with_half_pixel_centres(torch, size, new_size):
    """Enlarging or shrinking, as ``interpolate(mode="bilinear", align_corners=False)``."""
    maps = np.random.default_rng(0).random((2, *size, 1))
    want = torch.nn.functional.interpolate(
        torch.tensor(maps[..., 0][:, None]), size=new_size, mode="bilinear", align_corners=False
    )[:, 0].numpy()
    np.testing.assert_allclose(resize_bilinear(maps, new_size)[..., 0], want, atol=1e-15)


# ------------------------------------------------------------------ the gradient itself, in float64


def _numerical(model, x, seed, name):
    """``dS/dA`` by central differences: ``A``, the named layer's output, gets a perturbation added."""
    if name == model.inputs[0].layer.name:
        return numerical_gradient(lambda v: np.sum(seed * model._forward(v, False, logits=True)), x.copy())
    layer = model.get_layer(name)
    delta = np.zeros_like(model.intermediate_outputs(x, [name])[name])
    forward = layer.forward
    layer.forward = lambda *args, **kwargs: forward(*args, **kwargs) + delta
    try:  # record={} runs the graph as built, where the ReLU comes before the pool
        return numerical_gradient(lambda _: np.sum(seed * model._forward(x, False, logits=True, record={})), delta)
    finally:
        del layer.forward


@pytest.mark.parametrize(
    "build, names",
    [
        (softmax_model, ["conv1_input", "conv1", "bn1", "relu1", "pool1", "conv2", "fc"]),
        # stage1_out feeds the next block's two branches (its gradient is their sum); the input goes
        # through the augmentation layers, the identity at inference.
        (
            lambda: residual_model(size=8),
            ["image", "stem_bn", "stage1_out", "stage2_b_bn", "stage2_proj_bn", "stage2_add", "gap"],
        ),
    ],
    ids=["softmax", "residual"],
)
def test_gradients_match_central_differences(build, names):
    model = build()
    x = _images(model, m=1)
    seed = np.random.default_rng(1).standard_normal((1,) + model.output_shape[1:])
    z, activations, gradients = model.gradients(x, seed, names)
    # the logits inference gives: the same but for rounding, as inference folds each batch norm
    np.testing.assert_allclose(z, model._forward(x, False, logits=True), rtol=1e-12, atol=1e-14)
    assert list(gradients) == names
    for name in names:
        assert gradients[name].shape == activations[name].shape
        np.testing.assert_allclose(
            gradients[name], _numerical(model, x, seed, name), rtol=1e-6, atol=1e-9, err_msg=name
        )


def test_the_seed_can_be_chosen_from_the_logits():
    model = softmax_model()
    x = _images(model)

    def predicted_class(z):
        return np.eye(3)[z.argmax(1)]

    z, _, by_function = model.gradients(x, predicted_class, "pool1")
    _, _, by_array = model.gradients(x, np.eye(3)[z.argmax(1)], ["pool1"])
    np.testing.assert_array_equal(by_function["pool1"], by_array["pool1"])


# ------------------------------------------------------------------ Adebayo et al.'s sanity checks


def _squares(n, rng):
    """16x16 grey noise; half the pictures have a bright 4x4 square somewhere (label 1)."""
    x = rng.uniform(0, 0.3, (n, 16, 16, 1)).astype(np.float32)
    y = np.arange(n) % 2
    corners = rng.integers(0, 13, (n, 2))
    for i in np.flatnonzero(y):
        r, c = corners[i]
        x[i, r : r + 4, c : c + 4] = 1.0
    return x, y, corners


def _rank_correlation(a, b):
    ranks = [np.argsort(np.argsort(v.ravel())) for v in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def test_grad_cam_finds_the_evidence_and_changes_when_the_weights_are_randomised():
    """A model that learnt "is there a bright square?" looks at the square. That alone proves
    little: random convolutions respond to a bright square too, and with random weights the map
    often still peaks on it. What the model-randomisation test asks is that the map change when
    the learnt weights are replaced by random ones, as it does here (rank correlation about 0.2)."""
    nc.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y, corners = _squares(256, rng)
    model = nc.Sequential(
        [
            L.Conv2D(8, 3, padding="same", activation="relu", input_shape=(16, 16, 1), name="conv1"),
            L.MaxPooling2D(2, name="pool1"),
            L.Conv2D(8, 3, padding="same", activation="relu", name="conv2"),
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(1, activation="sigmoid", name="fc"),
        ]
    )
    model.compile(optimizer=nc.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    x_test, y_test, corners_test = _squares(40, np.random.default_rng(1))
    assert model.evaluate(x_test, y_test, verbose=0)[1] >= 0.95
    squares = np.flatnonzero(y_test)
    trained = explain.grad_cam(model, x_test[squares], class_index=1)

    def on_the_square(cams):
        peaks = [np.unravel_index(cam.argmax(), cam.shape) for cam in cams]
        return np.mean(
            [r - 1 <= pr <= r + 4 and c - 1 <= pc <= c + 4 for (pr, pc), (r, c) in zip(peaks, corners_test[squares])]
        )

    assert on_the_square(trained) >= 0.9
    for layer in model.layers:  # fresh random weights, the same architecture
        layer.set_weights([rng.standard_normal(w.shape) * 0.3 for w in layer.get_weights()])
    randomised = explain.grad_cam(model, x_test[squares], class_index=1)
    assert np.mean([_rank_correlation(a, b) for a, b in zip(trained, randomised)]) < 0.5
    assert not np.allclose(explain.saliency(model, x_test[squares], 1), 0)


def test_pixels_the_model_never_reads_get_exactly_zero_saliency():
    """The second convolution's kernel spans the whole picture but is zero over its right half, and
    the first is 1x1 (it mixes no columns): the right half cannot change any score."""
    nc.utils.set_random_seed(5)
    model = _random_statistics(
        nc.Sequential(
            [
                L.Conv2D(4, 1, input_shape=(8, 8, 3), name="pixelwise"),
                L.BatchNormalization(name="bn"),
                L.ReLU(name="relu"),
                L.Conv2D(5, (8, 8), name="left_half"),
                L.Flatten(),
                L.Dense(3, activation="softmax"),
            ]
        )
    )
    kernel = model.get_layer("left_half").kernel.value
    kernel[:, 4:] = 0
    x = _images(model, m=4)
    for class_index in (None, 0, 1, 2):
        maps = explain.saliency(model, x, class_index)
        assert np.all(maps[:, :, 4:] == 0)
        assert np.all(maps[:, :, :4].max(axis=(1, 2)) > 0)


# ------------------------------------------------------------------ explaining leaves the model alone


def _trained_residual():
    nc.utils.set_random_seed(6)
    model = smallres((12, 12, 3), n_classes=2, widths=(4, 6))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x = (np.random.default_rng(6).random((16, 12, 12, 3)) * 255).astype(np.uint8)
    y = np.arange(16) % 2
    return model, x, y


def _explain_everything(model, x):
    explain.grad_cam(model, x)
    explain.grad_cam(model, x, layer="stage1_a_bn", class_index=0, resize=False)
    explain.saliency(model, x[0], class_index=1)
    model.gradients(x / 255, lambda z: np.ones_like(z), ["image", "stem_bn", "gap"])


def test_explaining_changes_no_weight_statistic_gradient_or_optimizer_state():
    model, x, y = _trained_residual()
    model.fit(x / 255, y, epochs=1, batch_size=8, verbose=0)
    weights = model.get_weights()  # gamma, beta and the moving statistics included
    grads = [w.grad for w in model.weights]
    optimizer = {k: v.copy() for k, v in model.optimizer.get_state().items()}
    plan = [(node.skip, node.need_dx) for node in model._steps]
    rng_state = nc.utils.global_rng().bit_generator.state
    _explain_everything(model, x[:3])
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert all(w.grad is g for w, g in zip(model.weights, grads))
    after = model.optimizer.get_state()
    assert list(after) == list(optimizer) and all(np.array_equal(after[k], v) for k, v in optimizer.items())
    assert [(node.skip, node.need_dx) for node in model._steps] == plan
    assert nc.utils.global_rng().bit_generator.state == rng_state
    assert all(layer._cache is None for layer in model.layers)


def test_fit_after_explaining_is_bit_identical_to_fit_without():
    runs = []
    for explain_between in (False, True):
        model, x, y = _trained_residual()
        model.fit(x / 255, y, epochs=1, batch_size=8, verbose=0)
        if explain_between:
            _explain_everything(model, x[:3])
        model.fit(x / 255, y, epochs=2, initial_epoch=1, batch_size=8, verbose=0)
        runs.append((model.get_weights(), model.optimizer.get_state()))
    (weights_a, state_a), (weights_b, state_b) = runs
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)
    assert all(np.array_equal(state_a[k], state_b[k]) for k in state_a)


def test_uint8_images_one_image_and_float_batches_agree():
    model = residual_model()
    x = (np.random.default_rng(7).random((2, 12, 12, 3)) * 255).astype(np.uint8)
    as_float = x.astype(np.float64)
    np.testing.assert_array_equal(explain.grad_cam(model, x), explain.grad_cam(model, as_float))
    np.testing.assert_array_equal(explain.saliency(model, x[1]), explain.saliency(model, as_float[1:]))
    cams = explain.grad_cam(model, x, resize=False)
    assert cams.shape == (2, 3, 3) and cams.min() >= 0 and cams.max(axis=(1, 2)).tolist() == [1.0, 1.0]


def test_a_map_with_no_positive_evidence_is_all_zeros():
    """relu(sum_k alpha_k A_k) is 0 everywhere when the layer holds no evidence for the class: the
    map is then zeros, not 0/0."""
    model = sigmoid_model()
    model.get_layer("fc").kernel.value[...] = 0  # the score no longer depends on any feature map
    cam = explain.grad_cam(model, _images(model), class_index=1)
    assert cam.shape == (3, 9, 9) and np.all(cam == 0)


# ------------------------------------------------------------------ averaged models


def test_an_averaged_model_is_explained_through_its_averaged_logit():
    """Its score is the mean of the members' logits, so its saliency is the mean of their input
    gradients, and its Grad-CAM over every member's last feature maps is the mean of the members'
    linear maps, relu'd and normalised."""
    members = [residual_model(2), _random_statistics(residual_model(2), seed=1)]
    members[1].set_weights(
        [w + 0.1 * np.random.default_rng(k).standard_normal(w.shape) for k, w in enumerate(members[1].get_weights())]
    )
    for member in members:  # the average is built in float32: round the members' weights alike
        member.set_weights([w.astype(np.float32) for w in member.get_weights()])
    model = average_models(members).astype("float64")
    x = _images(model, m=3)
    assert explain.default_layers(model) == ["m1_stage2_pool", "m2_stage2_pool"]
    classes = [0, 1, 1]
    linear, gradients = [], []
    for member in members:
        seed = np.where(np.array(classes) == 1, 1.0, -1.0)[:, None]
        _, a, g = member.gradients(x, seed, ["image", "stage2_pool"])
        linear.append(np.einsum("ihwk,ik->ihw", a["stage2_pool"], g["stage2_pool"].mean(axis=(1, 2))))
        gradients.append(g["image"])
    cam = np.maximum(np.mean(linear, axis=0), 0)
    peak = cam.max(axis=(1, 2), keepdims=True)
    cam = np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0)
    np.testing.assert_allclose(explain.grad_cam(model, x, class_index=classes, resize=False), cam, atol=1e-12)
    np.testing.assert_allclose(explain.saliency(model, x, classes), np.abs(np.mean(gradients, 0)).max(-1), atol=1e-14)
    one = explain.grad_cam(model, x, layer="m2_stage2_pool", class_index=classes)  # one member's view
    assert one.shape == (3, 12, 12)


# ------------------------------------------------------------------ mistakes


def test_bad_layers_classes_and_images_are_named_with_the_fix():
    model = sigmoid_model()
    x = _images(model)
    with pytest.raises(ValueError, match=r"'nope', which is not a layer.*4-D outputs: 'conv1', 'relu1', 'pool1'"):
        explain.grad_cam(model, x, layer="nope")
    with pytest.raises(
        ValueError,
        match=r"'fc' with output \(None, 1\)\. Grad-CAM needs feature maps: choose one "
        r"of 'conv1', 'relu1', 'pool1'",
    ):
        explain.grad_cam(model, x, layer="fc")
    with pytest.raises(ValueError, match=r"the input layer 'conv1_input'.*use saliency"):
        explain.grad_cam(model, x, layer="conv1_input")
    with pytest.raises(ValueError, match=r"class_index: expected a class in 0\.\.1, got 2\. The model has 2 classes"):
        explain.saliency(model, x, class_index=2)
    with pytest.raises(ValueError, match=r"class_index: expected a class in 0\.\.1 \(0 'no', 1 'yes'\), got -1"):
        model.metadata["class_names"] = ["no", "yes"]
        explain.grad_cam(model, x, class_index=[0, 1, -1])
    with pytest.raises(ValueError, match=r"a sequence of 3 ints \(one per image\), got \[0, 1\]"):
        explain.grad_cam(model, x, class_index=[0, 1])
    with pytest.raises(
        ShapeError,
        match=r"one image of shape \(9, 9, 2\) or a batch \(m, 9, 9, 2\), got shape "
        r"\(3, 9, 9, 3\)\. Prepare photos as predict does",
    ):
        explain.saliency(model, np.zeros((3, 9, 9, 3)))
    with pytest.raises(ValueError, match="layers of one spatial size"):
        explain.grad_cam(model, x, layer=["conv1", "pool1"])
    dense_only = nc.Sequential([L.Flatten(input_shape=(4, 4, 1)), L.Dense(2, activation="softmax")])
    with pytest.raises(ValueError, match=r"a layer with a spatial \(4-D\) output for Grad-CAM, got none"):
        explain.grad_cam(dense_only, np.zeros((4, 4, 1)))


def test_gradients_name_unknown_layers_and_a_seed_of_the_wrong_shape():
    model = softmax_model()
    x = _images(model)
    with pytest.raises(
        ValueError,
        match=r"layers: expected names of this model's layers \(conv1_input, conv1, bn1, "
        r"relu1, pool1, conv2, flatten, fc\), got 'conv3'",
    ):
        model.gradients(x, np.ones((3, 3)), ["conv1", "conv3"])
    with pytest.raises(ShapeError, match=r"seed: expected an array of the logits' shape \(3, 3\)"):
        model.gradients(x, np.ones((3, 1)), "conv1")
    assert all(layer._cache is None for layer in model.layers)  # also after a failure
