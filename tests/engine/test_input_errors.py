"""Bad arrays get a clear answer: shapes, ranks, types, non-finite values, labels, counts (the
checklist: tests/reliability.py)."""

from __future__ import annotations

import numpy as np
import pytest
from reliability import X, Y, says, signs_like

import npconv as nc
from npconv import layers as L
from npconv.errors import ShapeError


@pytest.mark.parametrize(
    "x, parts",
    [
        (np.zeros((2, 16, 16, 1)), ["(None, 16, 16, 3)", "(2, 16, 16, 1)", "3 channel(s)", "np.repeat"]),
        (np.zeros((2, 8, 8, 3)), ["(None, 16, 16, 3)", "(2, 8, 8, 3)", "Resize"]),
        (np.zeros((16, 16, 3)), ["(None, 16, 16, 3)", "(16, 16, 3)", "x[None]"]),
        (np.zeros((2, 16, 16)), ["(None, 16, 16, 3)", "(2, 16, 16)", "channel axis"]),
    ],
)
def test_wrong_input_shapes_name_expected_received_and_fix(x, parts):
    with pytest.raises(ShapeError) as info:
        signs_like().predict(x)
    says(info, "x: expected", *parts)


def test_layer_rank_errors():
    with pytest.raises(ShapeError) as info:
        nc.Sequential([L.Input((64, 64)), L.Conv2D(8, 3)])
    says(info, "conv2d", "(None, n_H, n_W, n_C)", "(None, 64, 64)")


@pytest.mark.parametrize(
    "make, what, size",
    [(lambda: L.Conv2D(8, 9), "'conv2d' kernel", 9), (lambda: L.MaxPooling2D(5), "'max_pooling2d' pool", 5)],
)
def test_kernel_or_pool_larger_than_input_names_the_layer(make, what, size):
    with pytest.raises(ShapeError) as info:
        nc.Sequential([L.Input((4, 4, 3)), make()])
    says(info, what, "at most the padded input's 4 pixels", f"got {size}", "padding='same'")


@pytest.mark.parametrize(
    "x, error, parts",
    [
        (np.array([[1, "a"]], dtype=object), TypeError, ["x: expected a numeric array", "dtype object"]),
        (np.full((4, 16, 16, 3), "a"), TypeError, ["x: expected a numeric array", "<U1"]),
        (np.zeros((4, 16, 16, 3), complex), TypeError, ["x: expected a numeric array", "complex128"]),
        ([[1.0, 2.0], [3.0]], ValueError, ["x: expected", "ragged", "np.stack"]),
    ],
)
def test_non_numeric_inputs(x, error, parts):
    with pytest.raises(error) as info:
        signs_like().fit(x, Y, verbose=0)
    says(info, *parts)


@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_a_list_of_batch_pairs_names_what_npconv_takes_for_batches(call):
    """fit([(x1, y1), (x2, y2)]) is refused (Keras reads a list as several inputs), with the fix for
    batches, not the np.stack hint meant for ragged images."""
    batches = [(X[:2], Y[:2]), (X[2:], Y[2:])]
    model = signs_like()
    with pytest.raises(TypeError) as info:
        model.predict(batches) if call == "predict" else getattr(model, call)(batches, verbose=0)
    says(
        info,
        "x: expected",
        "a list of 2 (x, y) pairs",
        "several inputs",
        "nc.data.Dataset.from_tensor_slices((x, y)).batch(n)",
        "steps_per_epoch",
    )
    assert "np.stack" not in str(info.value)
    # what the message says works
    model.fit(nc.data.Dataset.from_tensor_slices((X, Y)).batch(2), epochs=1, verbose=0)
    model.fit((batch for _ in range(3) for batch in batches), steps_per_epoch=2, epochs=1, verbose=0)


def test_non_finite_inputs_and_labels():
    model = signs_like()
    x = X.copy()
    x[1, 2, 3, 0] = np.nan
    x[2, 0, 0, 0] = np.inf
    with pytest.raises(ValueError) as info:
        model.fit(x, Y, verbose=0)
    says(info, "x: expected finite values", "2 NaN or infinite", "Clean")
    with pytest.raises(ValueError) as info:
        model.fit(X, np.array([0, 1, np.nan, 2]), verbose=0)
    says(info, "y: expected finite values", "1 NaN or infinite")


def test_finite_values_whose_sum_overflows_are_accepted():
    """check_finite clears data by its sum first: a sum that overflows must fall back, not refuse."""
    from npconv.errors import check_finite

    huge = np.full((4, 8), 3e38, np.float32)  # finite, but their float32 sum is inf
    check_finite(huge, "x")
    check_finite(np.array([np.finfo(np.float32).max, -np.finfo(np.float32).max] * 3, np.float32), "x")
    for bad in (np.inf, -np.inf, np.nan):
        values = huge.copy()
        values[2, 5] = bad
        with pytest.raises(ValueError, match="1 NaN or infinite"):
            check_finite(values, "x")


@pytest.mark.parametrize(
    "loss, k, y, parts",
    [
        ("sparse_categorical_crossentropy", 6, np.array([0, 1, 7, 2]), ["[0, 6)", "got 7", "more units"]),
        ("sparse_categorical_crossentropy", 6, np.array([0, -1, 1, 2]), ["[0, 6)", "got -1", "re-index"]),
        (
            "categorical_crossentropy",
            6,
            np.eye(4),
            ["one-hot labels of shape (4, 6)", "4 column(s)", "outputs 6 classes", "to_categorical"],
        ),
        ("categorical_crossentropy", 6, Y, ["(4, 6)", "1 column(s)", "sparse_categorical_crossentropy"]),
        ("binary_crossentropy", 1, np.zeros((4, 2)), ["shape (4, 1)", "(4, 2)", "one 0/1 value"]),
        ("binary_crossentropy", 1, np.array([0, 1, 2, 1]), ["in [0, 1]", "got 2.0", "0/1"]),
    ],
)
def test_labels_out_of_range_or_of_the_wrong_width(loss, k, y, parts):
    model = signs_like(k)
    if loss == "binary_crossentropy":
        model.pop()
        model.add(L.Dense(1, activation="sigmoid"))
    model.compile(optimizer="adam", loss=loss)
    for run in (lambda: model.fit(X, y, verbose=0), lambda: model.evaluate(X, y, verbose=0)):
        with pytest.raises(ValueError) as info:
            run()
        says(info, "y_true: expected", *parts)


def test_sample_count_mismatch_and_empty_data():
    model = signs_like()
    with pytest.raises(ValueError) as info:
        model.fit(X, Y[:3], verbose=0)
    says(info, "y: expected 4 labels", "shape (3,)", "same number of examples")
    with pytest.raises(ValueError) as info:
        model.fit(np.zeros((0, 16, 16, 3)), np.zeros(0), verbose=0)
    says(info, "x: expected at least one example", "(0, 16, 16, 3)", "data loading")
    with pytest.raises(ValueError) as info:
        model.fit(X, np.zeros(0), verbose=0)
    says(info, "y: expected 4 labels", "shape (0,)")
    with pytest.raises(ValueError) as info:
        model.predict(np.zeros((0, 16, 16, 3)))
    says(info, "at least one example")


def test_fit_before_compile_says_compile():
    # Integer labels used to reach the loss before the compile check: AttributeError 'loss'.
    model = nc.Sequential([L.Flatten(input_shape=(16, 16, 3)), L.Dense(6, activation="softmax")])
    for run in (lambda: model.fit(X, Y, verbose=0), lambda: model.evaluate(X, Y, verbose=0)):
        with pytest.raises(RuntimeError) as info:
            run()
        says(info, "compile the model first", "model.compile(")
