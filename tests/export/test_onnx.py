"""ONNX export: every layer type, the course models and ``smallres`` run in onnxruntime as in npconv.

Each test builds a model, gives it non-trivial weights (random, or a few batches of training so
batch-norm statistics move), exports it and holds onnxruntime's output to ``model.predict`` within
1e-5 (float32). The graph takes NHWC input with a free batch size, like npconv.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import require
from hypothesis import given, settings
from hypothesis import strategies as st

import npconv as nc
from npconv import apps
from npconv import layers as L
from npconv.layers.base import Layer

try:
    import onnx
    import onnxruntime  # noqa: F401  (run_onnxruntime imports it)
except ImportError:
    onnx = None

TOLERANCE = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(autouse=True)
def onnx_installed():
    require(onnx is not None, "onnx and onnxruntime are not installed (pip install 'npconv[onnx]')")


def run_exported(model, x):
    """onnxruntime's output for ``x`` from ``model`` exported in memory."""
    from npconv.export.onnx_check import run_onnxruntime
    from npconv.export.onnx_model import to_onnx

    return run_onnxruntime(to_onnx(model).SerializeToString(), x)


def assert_onnx_matches(model, x):
    got = run_exported(model, x)
    want = model.predict(x)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, **TOLERANCE)


def randomize(model, rng):
    """Random weights everywhere; batch-norm variances positive and away from 1."""
    for weight in model.weights:
        if weight.name == "moving_variance":
            weight.value[...] = rng.uniform(0.2, 3.0, weight.shape)
        else:
            weight.value[...] = rng.normal(0.0, 0.5, weight.shape)
    return model


def one_layer_model(layer, input_shape, rng):
    model = nc.Sequential([layer])
    model.build(input_shape)
    return randomize(model, rng)


def images(rng, shape, m=3):
    return rng.random((m,) + tuple(shape), dtype=np.float32)


# ------------------------------------------------------------------------------- one layer each

IMAGE_LAYERS = {
    "conv 3x3 valid relu": lambda: L.Conv2D(4, 3, activation="relu"),
    "conv 2x4 stride (2,3) same sigmoid": lambda: L.Conv2D(
        5, (2, 4), strides=(2, 3), padding="same", activation="sigmoid"
    ),
    "conv 4x4 stride 2 same no bias tanh": lambda: L.Conv2D(
        3, 4, strides=2, padding="same", use_bias=False, activation="tanh"
    ),
    "conv 1x3 softmax over channels": lambda: L.Conv2D(6, (1, 3), activation="softmax"),
    "conv 5x2 stride (3,1) same": lambda: L.Conv2D(2, (5, 2), strides=(3, 1), padding="same"),
    "zero padding": lambda: L.ZeroPadding2D(((1, 2), (0, 3))),
    "batch norm": lambda: L.BatchNormalization(epsilon=1e-2),
    "relu": lambda: L.ReLU(),
    "relu activation": lambda: L.Activation("relu"),
    "sigmoid activation": lambda: L.Activation("sigmoid"),
    "tanh activation": lambda: L.Activation("tanh"),
    "softmax activation": lambda: L.Activation("softmax"),
    "linear activation": lambda: L.Activation("linear"),
    "max pool 3x2 stride (2,1)": lambda: L.MaxPooling2D((3, 2), strides=(2, 1)),
    "max pool 2 same": lambda: L.MaxPooling2D(2, padding="same"),
    "max pool 4 stride 3 same": lambda: L.MaxPooling2D(4, strides=3, padding="same"),
    "average pool 2x3 stride (1,2)": lambda: L.AveragePooling2D((2, 3), strides=(1, 2)),
    "average pool 3 stride 2 same": lambda: L.AveragePooling2D(3, strides=2, padding="same"),
    "average pool 4 same": lambda: L.AveragePooling2D(4, padding="same"),
    "global average pool": lambda: L.GlobalAveragePooling2D(),
    "global max pool": lambda: L.GlobalMaxPooling2D(),
    "flatten": lambda: L.Flatten(),
    "dropout": lambda: L.Dropout(0.5),
    "random flip": lambda: L.RandomFlip(),
    "random translation": lambda: L.RandomTranslation(0.2, 0.2),
    "random rotation": lambda: L.RandomRotation(0.1),
    "random brightness": lambda: L.RandomBrightness(0.2, value_range=(0, 1)),
    "random zoom": lambda: L.RandomZoom(0.2),
    "random contrast": lambda: L.RandomContrast(0.3, value_range=(0, 1)),
    "random grayscale": lambda: L.RandomGrayscale(0.5),
    "random white balance": lambda: L.RandomWhiteBalance(0.2, 0.3, value_range=(0, 1)),
    "random gaussian blur": lambda: L.RandomGaussianBlur(1.0),
    "gaussian noise": lambda: L.GaussianNoise(0.1),
    "random reframe": lambda: L.RandomReframe(0.4, degrees=20),
    "per-image standardization": lambda: L.PerImageStandardization(),
}


@pytest.mark.parametrize("case", sorted(IMAGE_LAYERS))
@pytest.mark.parametrize("seed", [0, 1])
def test_every_image_layer_on_odd_shapes(case, seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.choice([5, 7, 9, 11])), int(rng.choice([7, 9, 13])), int(rng.integers(1, 6)))
    model = one_layer_model(IMAGE_LAYERS[case](), shape, rng)
    assert_onnx_matches(model, images(rng, shape) * 4 - 2)  # negative inputs too: ReLU, max pool


VECTOR_LAYERS = {
    "dense": lambda: L.Dense(7),
    "dense relu no bias": lambda: L.Dense(5, activation="relu", use_bias=False),
    "dense sigmoid": lambda: L.Dense(1, activation="sigmoid"),
    "dense softmax": lambda: L.Dense(6, activation="softmax"),
    "dense tanh": lambda: L.Dense(3, activation="tanh"),
    "batch norm": lambda: L.BatchNormalization(),
    "softmax activation": lambda: L.Activation("softmax"),
    "dropout": lambda: L.Dropout(0.3),
}


def test_every_layer_class_npconv_has_has_a_converter():
    from npconv.export.onnx_layers import CONVERTERS

    ours = {cls for cls in L.registered_layers().values() if cls.__module__.startswith("npconv.layers")}
    assert ours - {L.InputLayer} <= set(CONVERTERS)  # a new layer type needs a converter and a case here
    tested = {type(make()) for make in [*IMAGE_LAYERS.values(), *VECTOR_LAYERS.values()]}
    assert set(CONVERTERS) - tested == {L.Add, L.Average, L.Concatenate}  # tested on branches below


@pytest.mark.parametrize("case", sorted(VECTOR_LAYERS))
def test_every_vector_layer(case):
    rng = np.random.default_rng(2)
    model = one_layer_model(VECTOR_LAYERS[case](), (11,), rng)
    assert_onnx_matches(model, rng.normal(size=(4, 11)).astype(np.float32))


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(3, 12),
    w=st.integers(3, 12),
    c=st.integers(1, 4),
    fh=st.integers(1, 4),
    fw=st.integers(1, 4),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    padding=st.sampled_from(["valid", "same"]),
    seed=st.integers(0, 2**16),
)
def test_conv_then_pools_on_random_shapes(h, w, c, fh, fw, sh, sw, padding, seed):
    """Conv, max pool and average pool with one window: TensorFlow's asymmetric "same" padding."""
    rng = np.random.default_rng(seed)
    h, w = max(h, fh), max(w, fw)  # "valid" needs the window to fit
    for layer in (
        L.Conv2D(3, (fh, fw), strides=(sh, sw), padding=padding),
        L.MaxPooling2D((fh, fw), strides=(sh, sw), padding=padding),
        L.AveragePooling2D((fh, fw), strides=(sh, sw), padding=padding),
    ):
        model = one_layer_model(layer, (h, w, c), rng)
        assert_onnx_matches(model, images(rng, (h, w, c), m=2) * 2 - 1)


def test_flatten_keeps_nhwc_order_so_dense_weights_line_up():
    rng = np.random.default_rng(3)
    model = randomize(nc.Sequential([L.Conv2D(3, 2, input_shape=(5, 7, 2)), L.Flatten(), L.Dense(4)]), rng)
    assert_onnx_matches(model, images(rng, (5, 7, 2)))


def test_image_output_comes_back_nhwc():
    rng = np.random.default_rng(4)
    model = randomize(nc.Sequential([L.Conv2D(4, 3, padding="same", input_shape=(6, 9, 2)), L.MaxPooling2D(2)]), rng)
    x = images(rng, (6, 9, 2))
    assert run_exported(model, x).shape == (3, 3, 4, 4)
    assert_onnx_matches(model, x)


@pytest.mark.parametrize("axis", [-1, 1, 2, 3])
def test_branches_add_average_and_concatenate(axis):
    rng = np.random.default_rng(5)
    inputs = nc.Input(shape=(7, 7, 3))
    a = L.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = L.Conv2D(4, 1, name="b")(inputs)
    c = L.ReLU(name="c")(L.Conv2D(4, 3, padding="same", name="c_conv")(inputs))
    added = L.Add(name="sum")([a, b, c])
    averaged = L.Average(name="mean")([added, b])
    joined = L.Concatenate(axis=axis, name="join")([averaged, a])
    model = randomize(
        nc.Model(inputs, L.GlobalAveragePooling2D()(joined) if axis in (-1, 3) else L.Flatten()(joined)), rng
    )
    assert_onnx_matches(model, images(rng, (7, 7, 3)))


def test_concatenate_vectors():
    rng = np.random.default_rng(6)
    inputs = nc.Input(shape=(5,))
    joined = L.Concatenate()([L.Dense(3)(inputs), L.Dense(2, activation="tanh")(inputs)])
    model = randomize(nc.Model(inputs, L.Dense(2, activation="softmax")(joined)), rng)
    assert_onnx_matches(model, rng.normal(size=(3, 5)).astype(np.float32))


def test_a_float64_model_exports_float32():
    rng = np.random.default_rng(7)
    model = randomize(
        nc.Sequential([L.Conv2D(2, 3, input_shape=(5, 5, 1)), L.Flatten(), L.Dense(2)], dtype="float64"), rng
    )
    x = images(rng, (5, 5, 1))
    np.testing.assert_allclose(run_exported(model, x), model.predict(x), **TOLERANCE)


# ------------------------------------------------------------------------------- whole models


def train_a_little(model, n_classes, rng, shape=(64, 64, 3), batches=3):
    """A few batches of Adam, so batch-norm moving statistics leave their initial 0 and 1."""
    nc.utils.set_random_seed(0)
    x = images(rng, shape, m=16 * batches)
    y = rng.integers(0, n_classes, len(x))
    model.compile(optimizer="adam", loss=apps.loss_for(n_classes))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            assert np.all(layer.moving_mean.value != 0) and np.all(layer.moving_variance.value != 1)
    return model


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, build, n_classes",
    [
        ("happy", lambda: apps.happyModel(), 2),
        ("signs", lambda: apps.convolutional_model(), 6),
        ("smallres", lambda: apps.smallres(), 6),
        ("smallres binary", lambda: apps.smallres(n_classes=2), 2),
    ],
)
def test_course_models_and_smallres_trained_a_little(name, build, n_classes):
    rng = np.random.default_rng(8)
    model = train_a_little(build(), n_classes, rng)
    for m in (1, 5):  # the batch size is free
        assert_onnx_matches(model, images(rng, (64, 64, 3), m=m))


@pytest.mark.slow
@pytest.mark.parametrize("n_classes", [2, 6])
def test_averaged_smallres_models(n_classes):
    """``npconv train --ensemble``'s model: members' logits averaged, then the activation."""
    from npconv.apps.ensemble import average_models

    rng = np.random.default_rng(11)
    members = [
        train_a_little(apps.smallres((32, 32, 3), n_classes=n_classes), n_classes, rng, (32, 32, 3), 2)
        for _ in range(2)
    ]
    assert_onnx_matches(average_models(members), images(rng, (32, 32, 3), m=4))


# ------------------------------------------------------------------------------- the file and errors


def test_export_writes_a_checked_file_with_metadata(tmp_path):
    from npconv.export.onnx_check import max_difference

    rng = np.random.default_rng(9)
    model = randomize(apps.tiny((12, 10, 3), n_classes=3), rng)
    model.metadata = {"class_names": ["a", "b", "c"], "value_scale": 255}
    path = model.export(tmp_path / "tiny.onnx", format="onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    graph_input, graph_output = proto.graph.input[0], proto.graph.output[0]
    assert graph_input.name == "input" and graph_output.name == "output"
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [12, 10, 3]
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["npconv_metadata"])["class_names"] == ["a", "b", "c"]
    assert proto.opset_import[0].version == 17 and proto.producer_name == "npconv"
    assert max_difference(model, path) < 1e-5


class _Squash(Layer):
    """A user's own layer (the leading underscore keeps it out of the layer registry)."""

    def forward(self, x, training=False):
        return x / (1 + np.abs(x))


def test_a_layer_onnx_does_not_know_is_named(tmp_path):
    model = nc.Sequential([L.Conv2D(2, 3, input_shape=(6, 6, 1)), _Squash(name="squash"), L.Flatten()])
    with pytest.raises(ValueError, match=r"layer 'squash' \(_Squash\): .*Conv2D"):
        model.export(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_subclasses_of_known_layers_are_refused_too(tmp_path):
    class _Doubled(L.ReLU):
        def forward(self, x, training=False):
            return 2 * super().forward(x, training)

    model = nc.Sequential([_Doubled(name="doubled", input_shape=(4,))])
    with pytest.raises(ValueError, match="layer 'doubled'"):
        model.export(tmp_path / "m.onnx")


def test_bad_format_input_and_folder_are_clear_errors(tmp_path):
    model = apps.tiny((8, 8, 1))
    with pytest.raises(ValueError, match="format.*'onnx'"):
        model.export(tmp_path / "m", format="tf_saved_model")
    with pytest.raises(FileNotFoundError, match="Create the folder"):
        model.export(tmp_path / "missing" / "m.onnx")
    with pytest.raises(ValueError, match="no input shape yet"):
        nc.Sequential([L.Dense(2)]).export(tmp_path / "m.onnx")
    odd = nc.Sequential([L.Flatten(input_shape=(4, 5))])
    with pytest.raises(ValueError, match=r"images \(n_H, n_W, n_C\) or vectors"):
        odd.export(tmp_path / "m.onnx")


# ------------------------------------------------------------------------------- the command line

N_CLASSES = {"signs": 6, "sign-language-digits": 10, "smiles": 2, "happy": 2, "builtin:smiles": 2}


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(N_CLASSES))
def test_cli_export_on_each_apps_default_model(dataset, tmp_path, capsys):
    from npconv.apps import recipe_for, training
    from npconv.cli import main
    from npconv.export.onnx_check import run_onnxruntime

    recipe = recipe_for(dataset)
    shape = (recipe.image_size, recipe.image_size, 1 if recipe.color_mode == "grayscale" else 3)
    classes = [f"class {k}" for k in range(N_CLASSES[dataset])]
    model = training.build(recipe.arch, shape, classes, recipe, dataset=dataset)
    training.compile_for(model, recipe.learning_rate, steps=2)
    rng = np.random.default_rng(10)
    train_a_little(model, len(classes), rng, shape, batches=2)
    model.save(tmp_path / "model.npz")

    code = main(["export", str(tmp_path / "model.npz"), str(tmp_path / "model.onnx")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "onnxruntime matches npconv" in out and "pixels divided by 255" in out
    x = images(rng, shape, m=4)
    np.testing.assert_allclose(run_onnxruntime(tmp_path / "model.onnx", x), model.predict(x), **TOLERANCE)


def test_cli_export_errors_are_one_line(tmp_path, capsys):
    from npconv.cli import main

    code = main(["export", str(tmp_path / "none.npz"), str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith("npconv: error: MODEL: expected a model file")
    apps.tiny((8, 8, 3)).save(tmp_path / "tiny.npz")
    code = main(["export", str(tmp_path / "tiny.npz"), str(tmp_path / "no" / "m.onnx")])
    err = capsys.readouterr().err
    assert code == 1 and "Create the folder" in err and len(err.splitlines()) == 1


def test_the_onnx_guide_example_runs(tmp_path, monkeypatch):
    """The ONNX guide's five lines, on a SIGNS-shaped model and uint8 test images."""
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "guides" / "onnx.md").read_text()
    code = guide.split("```python\n", 1)[1].split("```", 1)[0]
    rng = np.random.default_rng(11)
    model = randomize(apps.convolutional_model((64, 64, 3), n_classes=6), rng)
    x_test = rng.integers(0, 256, (120, 64, 64, 3), dtype=np.uint8)
    monkeypatch.chdir(tmp_path)
    exec(code, {"np": np, "model": model, "X_test": x_test})
    assert (tmp_path / "signs.onnx").is_file()


def _without(monkeypatch, package):
    """Pretend ``package`` is not installed (and forget the export modules that imported it)."""
    import sys

    monkeypatch.setitem(sys.modules, package, None)
    for name in ("onnx_model", "onnx_layers", "onnx_graph", "onnx_check"):
        monkeypatch.delitem(sys.modules, f"npconv.export.{name}", raising=False)


def test_without_onnx_the_error_says_what_to_install(tmp_path, monkeypatch):
    _without(monkeypatch, "onnx")
    with pytest.raises(ImportError, match=r"pip install 'npconv\[onnx\]'"):
        apps.tiny((8, 8, 3)).export(tmp_path / "m.onnx")


def test_cli_without_onnxruntime_writes_the_file_unchecked(tmp_path, monkeypatch, capsys):
    from npconv.cli import main

    apps.tiny((8, 8, 3)).save(tmp_path / "tiny.npz")
    _without(monkeypatch, "onnxruntime")
    assert main(["export", str(tmp_path / "tiny.npz"), str(tmp_path / "m.onnx")]) == 0
    assert "not checked: onnxruntime is not installed" in capsys.readouterr().out
    assert (tmp_path / "m.onnx").is_file()
