"""The learner's course functions inside a network (``step(..., kernels=...)``): ``npconv.course`` gives
npconv's numbers; each classic mistake is found at its layer and gradient, with its hint; bad kernels
and layers the course cannot express get clear errors."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

import npconv
from npconv import course, trace
from npconv import layers as L
from npconv.apps.happy import happyModel
from npconv.apps.signs import convolutional_model
from npconv.testing import mistakes

LEARNER = Path(__file__).with_name("learner_loops.py")


def _model():
    """9x9 -> CONV 3x3 stride 2 (relu) 4x4 -> MAXPOOL 2 stride 1 3x3 -> CONV 3x3 same 3x3 -> AVGPOOL 2 1x1."""
    npconv.utils.set_random_seed(11)
    model = npconv.Sequential(
        [
            L.Conv2D(3, 3, strides=2, activation="relu", input_shape=(9, 9, 2), name="conv1"),
            L.MaxPooling2D(2, strides=1, name="pool"),
            L.Conv2D(2, 3, padding="same", name="conv2"),
            L.AveragePooling2D(2, name="avg"),
            L.Flatten(name="flatten"),
            L.Dense(3, activation="softmax", name="dense"),
        ],
        dtype="float64",
    )
    for layer in (model.layers[0], model.layers[2]):
        layer.bias.value[:] = np.linspace(-0.1, 0.2, layer.bias.value.size)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def _batch():
    rng = np.random.default_rng(2)
    return rng.standard_normal((2, 9, 9, 2)), np.eye(3)[[0, 2]]


def _learner(tmp_path, *edits) -> Path:
    """The learner's file with each ``(right, wrong)`` edit made (each ``right`` is unique in it)."""
    text = LEARNER.read_text()
    for right, wrong in edits:
        assert text.count(right) == 1, right
        text = text.replace(right, wrong)
    path = tmp_path / "mine.py"
    path.write_text(text)
    return path


def _assert_same_step(mine, reference, skip=()):
    assert mine.loss == pytest.approx(reference.loss, rel=1e-12)
    for name in reference.names:
        np.testing.assert_allclose(mine.output(name), reference.output(name), rtol=1e-10, atol=1e-13)
        for which in reference.whiches(name):
            if (name, which) not in skip:
                np.testing.assert_allclose(
                    mine.grad(name, which),
                    reference.grad(name, which),
                    rtol=1e-10,
                    atol=1e-13,
                    err_msg=f"{name} {which}",
                )


def test_the_course_and_a_right_learner_give_npconvs_numbers(tmp_path):
    model = _model()
    x, y = _batch()
    reference = trace.step(model, x, y)
    for kernels in (
        "npconv.course",
        course,
        _learner(tmp_path),
        str(_learner(tmp_path)),
        {name: getattr(course, name) for name in ("conv_forward", "conv_backward", "pool_forward", "pool_backward")},
    ):
        mine = trace.step(model, x, y, kernels=kernels)
        assert mine.first_difference(reference) is None
        # ReLU zeros tie in max-pool windows: the course's mask marks every tie, npconv the first one
        # (the ReLU then zeroes both); first_difference accepts the course's rule.
        _assert_same_step(mine, reference, skip={("pool", "dx"), ("conv1", "dout")})


def test_the_course_inside_the_happy_house_model():
    """Its ReLU's zeros tie in max-pool windows: the course's mask marks every tie, npconv the first;
    the ReLU zeroes both, so everything but the pool's dx agrees, and first_difference accepts it."""
    npconv.utils.set_random_seed(12)
    model = happyModel((10, 10, 3)).astype("float64")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x, y = np.random.default_rng(3).random((2, 10, 10, 3)), np.array([1, 0])
    reference, mine = trace.step(model, x, y), trace.step(model, x, y, kernels=course)
    assert mine.first_difference(reference) is None
    _assert_same_step(mine, reference, skip={("max_pool0", "dx"), ("re_lu", "dout")})


MISTAKES = {  # the classic mistake: ([(what the learner wrote, instead of)], layer, gradient, hint)
    "= for += in dA_prev": (
        [("dA_prev_pad[i, vs : vs + f, hs : hs + f, :] += W", "dA_prev_pad[i, vs : vs + f, hs : hs + f, :] = W")],
        "conv2",
        "dx",
        mistakes.ADD_UP,
    ),
    "= for += in dW": ([("dW[:, :, :, c] += a_slice", "dW[:, :, :, c] = a_slice")], "conv2", "dW", mistakes.LAST_ONLY),
    "padding left on dA_prev": (
        [("    return dA_prev, dW, db", "    return dA_prev_pad, dW, db")],
        "conv2",
        "dx",
        mistakes.CUT_PADDING,
    ),
    "stride ignored in conv_backward": (
        [("vs = h * stride", "vs = h"), ("hs = w * stride", "hs = w")],
        "conv1",
        "dW",
        mistakes.MOVE_HINT,
    ),
    "window end off by one in pool_backward": (
        [("v1 = v0 + f", "v1 = v0 + f - 1"), ("h1 = h0 + f", "h1 = h0 + f - 1")],
        "pool",
        "dx",
        mistakes.OFF_BY_ONE,
    ),
    "window end off by one in pool_forward": (
        [("top : top + f, left : left + f", "top : top + f - 1, left : left + f - 1")],
        "pool",
        "output",
        mistakes.OFF_BY_ONE,
    ),
    "db not summed": ([("db[:, :, :, c] += dZ", "db[:, :, :, c] = dZ")], "conv2", "db", "+=, not ="),
    "db not summed at all": (
        [("    return dA_prev, dW, db", "    return dA_prev, dW, dZ")],
        "conv2",
        "db",
        mistakes.DB_AXES,
    ),
    "= for += in pool_backward": (
        [("dA_prev[i, v0:v1, h0:h1, c] += mask", "dA_prev[i, v0:v1, h0:h1, c] = mask")],
        "pool",
        "dx",
        mistakes.ADD_UP,
    ),
    "stride ignored in conv_forward": (
        [
            ("/ stride) + 1\n    n_W", "/ 1) + 1\n    n_W"),
            ("n_W_prev - f + 2 * pad) / stride", "n_W_prev - f + 2 * pad) / 1"),
            ("vert_start = h * stride", "vert_start = h"),
            ("horiz_start = w * stride", "horiz_start = w"),
        ],
        "conv1",
        "output",
        "is the stride used?",
    ),
}


@pytest.mark.parametrize("name", MISTAKES)
def test_first_difference_finds_each_classic_mistake(tmp_path, name):
    edits, layer, which, hint = MISTAKES[name]
    model = _model()
    x, y = _batch()
    reference = trace.step(model, x, y)
    mine = trace.step(model, x, y, kernels=_learner(tmp_path, *edits))
    difference = mine.first_difference(reference)
    assert difference is not None
    assert (difference.layer, difference.which) == (layer, which), difference
    assert hint in difference.hint, difference
    assert difference.to_dict()["layer"] == layer
    if difference.index is None:  # a wrong shape stops the step there
        assert mine.stopped and str(difference.got) in mine.stopped


def test_kernels_that_cannot_be_used_say_why(tmp_path):
    model = _model()
    x, y = _batch()
    only_conv = tmp_path / "half.py"
    only_conv.write_text("def conv_forward(A_prev, W, b, hparameters):\n    pass\n")
    with pytest.raises(trace.LearnerCodeError, match="does not define conv_backward, pool_forward, pool_backward"):
        trace.step(model, x, y, kernels=only_conv)
    with pytest.raises(trace.LearnerCodeError, match="does not define pool_backward"):
        trace.step(
            model,
            x,
            y,
            kernels=types.SimpleNamespace(
                **{n: getattr(course, n) for n in ("conv_forward", "conv_backward", "pool_forward")}
            ),
        )

    broken = tmp_path / "broken.py"
    broken.write_text("import numpy as np\n\nraise RuntimeError('half written')\n")
    with pytest.raises(trace.LearnerCodeError, match=r"broken.py, line 3: raise RuntimeError\('half written'\)"):
        trace.step(model, x, y, kernels=broken)

    typo = _learner(tmp_path, ("dW[:, :, :, c] += a_slice *", "dW[:, :, :, c] += a_slise *"))
    with pytest.raises(trace.LearnerCodeError) as error:
        trace.step(model, x, y, kernels=typo)
    line = next(k for k, text in enumerate(typo.read_text().splitlines(), 1) if "a_slise" in text)
    assert (
        f"your conv_backward raised NameError: name 'a_slise' is not defined (at {typo}, line {line}: "
        "dW[:, :, :, c] += a_slise * dZ[i, h, w, c])" in str(error.value)
    )

    with pytest.raises(trace.LearnerCodeError, match="which does not exist"):
        trace.step(model, x, y, kernels=tmp_path / "missing.py")


def test_layers_the_course_cannot_express_are_refused():
    signs = convolutional_model((16, 16, 3), n_classes=3)
    signs.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = np.zeros((1, 16, 16, 3), np.float32), np.eye(3)[[1]]
    with pytest.raises(
        trace.LearnerCodeError, match=r"layer 'conv2d' \(Conv2D\): padding='same' pads 1 above, 2 below"
    ):
        trace.step(signs, x, y, kernels=course)
    rectangle = npconv.Sequential(
        [L.Conv2D(2, (3, 1), input_shape=(5, 5, 1), name="tall"), L.Flatten(), L.Dense(1, activation="sigmoid")]
    )
    rectangle.compile(optimizer="sgd", loss="binary_crossentropy")
    with pytest.raises(trace.LearnerCodeError, match="layer 'tall' .*3x1 window is not square"):
        trace.step(rectangle, np.zeros((1, 5, 5, 1)), np.array([1]), kernels=course)


def test_fit_through_the_course_trains_as_npconvs_kernels_do():
    x, y = np.random.default_rng(5).standard_normal((8, 9, 9, 2)), np.eye(3)[[0, 1, 2, 0, 1, 2, 0, 1]]
    histories, weights = [], []
    for kernels in (None, "npconv.course"):
        model = _model()
        npconv.utils.set_random_seed(6)  # the same shuffles
        histories.append(model.fit(x, y, batch_size=4, epochs=2, verbose=0, kernels=kernels).history["loss"])
        weights.append(model.get_weights())
        assert "forward" not in vars(model.layers[0])  # npconv's own methods are back
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-12)
    for mine, npconvs in zip(*weights):
        np.testing.assert_allclose(mine, npconvs, rtol=1e-9, atol=1e-12)


def test_fit_through_the_course_runs_a_convolution_and_its_large_pool_as_two_layers():
    # npconv runs them as one step whose backward is its own; the learner's functions need both
    def model():
        npconv.utils.set_random_seed(7)
        m = npconv.Sequential(
            [
                L.Conv2D(3, 3, padding="same", input_shape=(8, 8, 2), name="conv"),
                L.ReLU(name="relu"),
                L.MaxPooling2D(4, name="pool"),
                L.Flatten(name="flatten"),
                L.Dense(3, activation="softmax", name="dense"),
            ],
            dtype="float64",
        )
        m.compile(optimizer="adam", loss="categorical_crossentropy")
        return m

    x, y = np.random.default_rng(8).standard_normal((8, 8, 8, 2)), np.eye(3)[[0, 1, 2, 0, 1, 2, 0, 1]]
    histories, weights = [], []
    for kernels in (None, "npconv.course"):
        trained = model()
        assert type(trained._steps[0].layer).__name__ == "ConvMaxPool"
        npconv.utils.set_random_seed(9)
        histories.append(trained.fit(x, y, batch_size=4, epochs=2, verbose=0, kernels=kernels).history["loss"])
        weights.append(trained.get_weights())
        assert type(trained._steps[0].layer).__name__ == "ConvMaxPool"  # npconv's plan is back
        assert trained._steps[0].need_dx is False  # and planned: the first layer needs no dx
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-12)
    for mine, npconvs in zip(*weights):
        np.testing.assert_allclose(mine, npconvs, rtol=1e-9, atol=1e-12)


def test_fit_stops_at_a_learner_function_that_returns_a_wrong_shape(tmp_path):
    model = _model()
    x, y = _batch()
    with pytest.raises(
        trace.LearnerCodeError,
        match=r"layer 'conv2': your conv_backward returned dA_prev shape "
        r"\(2, 5, 5, 3\) for dx, expected \(2, 3, 3, 3\)",
    ):
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            kernels=_learner(tmp_path, ("    return dA_prev, dW, db", "    return dA_prev_pad, dW, db")),
        )
    assert "forward" not in vars(model.layers[2])


def test_train_command_with_kernels_says_how_much_slower(tmp_path, capsys):
    from npconv.cli import main

    code = main(
        [
            "train",
            "--out",
            str(tmp_path / "mine.npz"),
            "--arch",
            "happy",
            "--image-size",
            "8",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--examples",
            "8",
            "--kernels",
            str(LEARNER),
            "--no-report",
            "--quiet",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "your kernels:" in out and "x slower)" in out
    code = main(["train", "--arch", "happy", "--kernels", str(LEARNER), "--folds", "2", "--quiet"])
    assert (
        code != 0
        and "--kernels: your functions train one model in this process; leave out --folds" in capsys.readouterr().err
    )


def _tied_model():
    """6x6 photo of two flat squares -> CONV 2x2 (ones and minus ones) 5x5 -> ReLU -> MAXPOOL 2 stride 1
    4x4 -> Dense: the flat squares give 2x2 windows with tied positive maxima (as saturated areas of a
    photo do in the Happy House model)."""
    model = npconv.Sequential(
        [
            L.Conv2D(2, 2, input_shape=(6, 6, 1), name="conv"),
            L.ReLU(name="re_lu"),
            L.MaxPooling2D(2, strides=1, name="pool"),
            L.Flatten(name="flatten"),
            L.Dense(1, activation="sigmoid", name="dense"),
        ],
        dtype="float64",
    )
    model.layers[0].kernel.value[:] = np.ones((2, 2, 1, 1)) * np.array([1.0, -1.0])
    model.layers[0].bias.value[:] = [0.5, 0.25]
    model.layers[-1].kernel.value[:] = np.linspace(-1, 1, 32).reshape(32, 1)
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    x = np.zeros((1, 6, 6, 1))
    x[0, :3, :3], x[0, 3:, 3:] = 1.0, 2.0
    return model, x, np.array([1])


def test_tied_positive_maxima_are_no_difference(tmp_path):
    """The course's pool_backward gives every tied maximum the gradient, npconv the first one; the ReLU
    and the convolution below carry that on. first_difference once reported a right learner at re_lu's
    dx ("no known mistake gives this pattern"); each layer is now held to npconv's backward of the
    learner's own upstream gradient."""
    model, x, y = _tied_model()
    reference = trace.step(model, x, y)
    for kernels in ("npconv.course", _learner(tmp_path)):
        mine = trace.step(model, x, y, kernels=kernels)
        assert not np.allclose(mine.grad("re_lu", "dx"), reference.grad("re_lu", "dx"))  # the ties are there
        assert mine.first_difference(reference) is None


@pytest.mark.parametrize(
    "name", ["= for += in pool_backward", "window end off by one in pool_backward", "= for += in dW", "db not summed"]
)
def test_a_mistake_beside_tied_maxima_is_still_found(tmp_path, name):
    edits, layer, which, hint = MISTAKES[name]
    layer = {"pool": "pool", "conv1": "conv", "conv2": "conv"}[layer]
    model, x, y = _tied_model()
    difference = trace.step(model, x, y, kernels=_learner(tmp_path, *edits)).first_difference(trace.step(model, x, y))
    assert difference is not None
    assert (difference.layer, difference.which) == (layer, which), difference
    assert hint in difference.hint, difference


def test_fit_through_the_course_validates_through_the_course_too():
    # at inference npconv folds a batch norm into its convolution; the learner's forward must run instead
    seen = []

    class Steps(npconv.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append([type(node.layer).__name__ for node in self.model._inference_steps])

    npconv.utils.set_random_seed(3)
    model = npconv.Sequential(
        [
            L.Conv2D(3, 3, padding="same", use_bias=False, input_shape=(8, 8, 2)),
            L.BatchNormalization(),
            L.ReLU(),
            L.Flatten(),
            L.Dense(2, activation="softmax"),
        ],
        dtype="float64",
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = np.random.default_rng(4).standard_normal((6, 8, 8, 2)), np.array([0, 1, 0, 1, 1, 0])
    model.fit(
        x, y, epochs=1, batch_size=3, verbose=0, validation_data=(x, y), kernels="npconv.course", callbacks=[Steps()]
    )
    assert seen == [["Conv2D", "BatchNormReLU", "Flatten", "Dense"]]
    assert type(model._inference_steps[0].layer).__name__ == "ConvBatchNorm"  # npconv's own again
