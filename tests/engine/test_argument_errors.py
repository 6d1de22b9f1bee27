"""Bad layer, compile and fit arguments are refused at once, naming the argument and the valid choices."""

from __future__ import annotations

import pytest
from reliability import X, Y, says, signs_like

import npconv as nc
from npconv import callbacks as C
from npconv import layers as L
from npconv.errors import ShapeError


@pytest.mark.parametrize(
    "make, parts",
    [
        (lambda: L.Conv2D(0, 3), ["filters: expected a positive integer", "0"]),
        (lambda: L.Conv2D(8, -3), ["kernel_size: expected", ">= 1", "-3"]),
        (lambda: L.Conv2D(8, 3, strides=0), ["strides: expected", ">= 1"]),
        (lambda: L.Dense(0), ["units: expected a positive integer"]),
        (lambda: L.MaxPooling2D(0), ["pool_size: expected", ">= 1"]),
        (lambda: L.Dropout(1.5), ["rate: expected a fraction in [0, 1)", "1.5"]),
        (lambda: nc.Input(shape=(0, 3)), ["shape: expected positive integers", "(0, 3)"]),
    ],
)
def test_zero_or_negative_sizes_are_refused_at_construction(make, parts):
    with pytest.raises(ValueError) as info:
        make()
    says(info, *parts)


@pytest.mark.parametrize(
    "make, parts",
    [
        (lambda: L.Conv2D(8, 3, padding="full"), ["padding: expected one of 'same', 'valid'", "full"]),
        (lambda: L.MaxPooling2D(2, padding="full"), ["padding: expected one of 'same', 'valid'"]),
        (
            lambda: L.Dense(1, activation="swish-ish"),
            ["activation: expected one of", "'relu'", "'softmax'", "swish-ish"],
        ),
        (
            lambda: signs_like().compile(optimizer="adamw?", loss="binary_crossentropy"),
            ["optimizer: expected one of 'adam', 'adamw', 'rmsprop', 'sgd'", "'adamw?'"],
        ),
        (
            lambda: signs_like().compile(optimizer="adam", loss="mse?"),
            [
                "loss: expected one of 'binary_crossentropy', 'categorical_crossentropy', "
                "'sparse_categorical_crossentropy'",
                "'mse?'",
            ],
        ),
        (lambda: signs_like().compile(optimizer="adam", loss="mse"), ["loss: expected one of", "'mse'"]),
        (
            lambda: signs_like().compile(optimizer="adam", loss="binary_crossentropy", metrics=["f1"]),
            ["metric: expected one of", "'accuracy'", "'f1'"],
        ),
    ],
)
def test_unknown_names_list_the_valid_choices(make, parts):
    with pytest.raises(ValueError) as info:
        make()
    says(info, *parts)


@pytest.mark.parametrize(
    "kwargs, error, parts",
    [
        ({"batch_size": 0}, ValueError, ["batch_size: expected a positive integer", "0"]),
        ({"epochs": -1}, ValueError, ["epochs: expected a positive integer", "-1"]),
        ({"epochs": 0}, ValueError, ["epochs: expected a positive integer"]),
        ({"epochs": 1.5}, ValueError, ["epochs: expected a positive integer", "1.5"]),
        (
            {"epochs": 2, "initial_epoch": 4},
            ValueError,
            ["initial_epoch: expected an integer from 0 to epochs=2", "4", "fit(initial_epoch=2, epochs=4)"],
        ),
        ({"initial_epoch": -1}, ValueError, ["initial_epoch", "-1"]),
        ({"validation_split": 1.5}, ValueError, ["validation_split: expected a fraction in [0, 1)", "1.5"]),
        ({"validation_split": 0.1}, ValueError, ["validation_split", "both parts of the 4 examples"]),
        ({"verbose": 5}, ValueError, ["verbose: expected 0", "5"]),
        ({"callbacks": C.History()}, TypeError, ["callbacks: expected a list", "History", "callbacks=[...]"]),
        ({"callbacks": [print]}, TypeError, ["callbacks: expected", "Callback"]),
        (
            {"validation_data": (X, Y, Y)},
            TypeError,
            ["validation_data: expected a tuple (x_val, y_val)", "a tuple of 3 items"],
        ),
        ({"validation_data": (X[..., :1], Y)}, ShapeError, ["validation_data[0]: expected", "3 channel(s)"]),
    ],
)
def test_bad_fit_arguments(kwargs, error, parts):
    with pytest.raises(error) as info:
        signs_like().fit(X, Y, **{"verbose": 0, **kwargs})
    says(info, *parts)
