"""The course's own grader, run on npconv's models: Keras 2's attributes, one for one.

The Application notebook grades ``happyModel()`` and ``convolutional_model()`` with its
``test_utils.summary``/``comparator``; they are written again here with npconv's classes where the
course imports tf.keras's, and the expected lists are the notebook's. Below them, the rest of the
Keras 2 surface a learner reaches for: shapes with the batch axis, ``layer.input``/``output``,
``metrics_names``, ``history.params``, activations as named functions, initializer objects.
"""

from __future__ import annotations

import numpy as np
import pytest
from course_expected import CONVOLUTIONAL_MODEL, HAPPY_MODEL

from npconv import initializers
from npconv import layers as L
from npconv.apps import convolutional_model, happyModel
from npconv.layers import Conv2D, Dense, Dropout, MaxPooling2D, ZeroPadding2D

# --- the course's test_utils, with npconv's classes ----------------------------------------------


def comparator(learner, instructor):
    for a, b in zip(learner, instructor):
        if tuple(a) != tuple(b):
            raise AssertionError(f"Test failed\n Expected value\n{b}\n does not match the input value:\n{a}")
    assert len(learner) == len(instructor), "the models have different numbers of layers"


def summary(model):
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    result = []
    for layer in model.layers:
        descriptors = [layer.__class__.__name__, layer.output_shape, layer.count_params()]
        if type(layer) == Conv2D:
            descriptors.append(layer.padding)
            descriptors.append(layer.activation.__name__)
            descriptors.append(layer.kernel_initializer.__class__.__name__)
        if type(layer) == MaxPooling2D:
            descriptors.append(layer.pool_size)
            descriptors.append(layer.strides)
            descriptors.append(layer.padding)
        if type(layer) == Dropout:
            descriptors.append(layer.rate)
        if type(layer) == ZeroPadding2D:
            descriptors.append(layer.padding)
        if type(layer) == Dense:
            descriptors.append(layer.activation.__name__)
        result.append(descriptors)
    return result


def test_the_course_grader_passes_on_happy_model():
    comparator(summary(happyModel()), HAPPY_MODEL)


def test_the_course_grader_passes_on_convolutional_model():
    comparator(summary(convolutional_model((64, 64, 3))), CONVOLUTIONAL_MODEL)


def test_the_grader_would_catch_a_wrong_model():
    wrong = summary(happyModel())
    wrong[1][3] = "same"
    with pytest.raises(AssertionError, match="does not match"):
        comparator(wrong, HAPPY_MODEL)


# --- the rest of Keras 2's attributes -------------------------------------------------------------


def test_max_pool_2d_is_max_pooling_2d():
    assert L.MaxPool2D is L.MaxPooling2D and L.AvgPool2D is L.AveragePooling2D


def test_layer_shapes_carry_the_batch_axis():
    model = happyModel()
    conv = model.get_layer("conv0")
    assert conv.input_shape == (None, 70, 70, 3) and conv.output_shape == (None, 64, 64, 32)
    assert conv.compute_output_shape((None, 70, 70, 3)) == (None, 64, 64, 32)
    assert conv.compute_output_shape((70, 70, 3)) == (64, 64, 32)  # npconv's own form, no batch axis
    assert model.input_shape == (None, 64, 64, 3) and model.output_shape == (None, 1)
    add = L.Add()
    assert add.compute_output_shape([(None, 4, 4, 2), (None, 4, 4, 2)]) == (None, 4, 4, 2)
    fresh = L.Dense(3)
    with pytest.raises(AttributeError, match="never been called"):
        fresh.output_shape  # noqa: B018 - the attribute access is the test
    assert L.Dense(3, input_shape=(5,)).input_shape == (None, 5)


def test_layer_input_and_output_are_the_graph_tensors():
    model = convolutional_model((64, 64, 3))
    conv, relu = model.layers[1], model.layers[2]
    assert model.inputs == [model.layers[0].output] and model.input is model.layers[0].input
    assert conv.input is model.inputs[0] and relu.input is conv.output
    assert model.outputs == [model.layers[-1].output] and model.output.shape == (None, 6)
    sequential = happyModel()
    assert sequential.layers[1].input is sequential.layers[0].output
    assert sequential.inputs[0].shape == (None, 64, 64, 3)
    assert sequential.inputs[0].layer.name == "zero_padding2d_input"  # Keras's hidden input layer
    with pytest.raises(AttributeError, match="not connected"):
        L.ReLU().output  # noqa: B018


def test_activations_are_named_functions_and_initializers_objects():
    dense = L.Dense(2, activation="relu")
    assert dense.activation is L.activations.relu and dense.activation.__name__ == "relu"
    np.testing.assert_array_equal(L.activations.relu(np.array([-1.0, 2.0])), [0.0, 2.0])
    assert L.Dense(2).activation.__name__ == "linear"
    assert isinstance(dense.kernel_initializer, initializers.GlorotUniform)
    assert isinstance(dense.bias_initializer, initializers.Zeros)
    conv = L.Conv2D(2, 3, kernel_initializer="he_normal")
    assert type(conv.kernel_initializer).__name__ == "HeNormal"
    rebuilt = L.Conv2D.from_config(conv.get_config())
    assert type(rebuilt.kernel_initializer).__name__ == "HeNormal"


def test_padding_pool_size_and_strides_are_normalised_tuples():
    assert L.ZeroPadding2D(2).padding == ((2, 2), (2, 2))
    assert L.ZeroPadding2D((1, 2)).padding == ((1, 1), (2, 2))
    pool = L.MaxPool2D(3)
    assert pool.pool_size == (3, 3) and pool.strides == (3, 3) and pool.padding == "valid"
    conv = L.Conv2D(4, 5, strides=2)
    assert conv.kernel_size == (5, 5) and conv.strides == (2, 2)


def test_metrics_names_and_history_params():
    model = convolutional_model((8, 8, 1), n_classes=3)
    assert model.metrics_names == []
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert model.metrics_names == ["loss", "accuracy"]
    rng = np.random.default_rng(0)
    x, y = rng.random((10, 8, 8, 1)), rng.integers(0, 3, 10)
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert history.params == {"verbose": 0, "epochs": 2, "steps": 3}
    assert list(history.history) == model.metrics_names
    assert len(model.evaluate(x, y, verbose=0)) == len(model.metrics_names)
