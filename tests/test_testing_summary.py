"""npconv.testing.summary / comparator: the course's Keras model checks, run unchanged on npconv models.

The expected lists are the course's ("Convolution model - Application"). ``summary`` reads the Keras
attributes (``layer.output_shape``, ``activation.__name__``, ``kernel_initializer.__class__.__name__``)
that npconv's layers gain with the Keras-attributes work (issue 11); until that is merged, the two
model tests here fail on those attributes.
"""
from __future__ import annotations

import pytest

import npconv as nc
from npconv import layers as L
from npconv.testing import comparator, summary

HAPPY_OUTPUT = [['ZeroPadding2D', (None, 70, 70, 3), 0, ((3, 3), (3, 3))],
                ['Conv2D', (None, 64, 64, 32), 4736, 'valid', 'linear', 'GlorotUniform'],
                ['BatchNormalization', (None, 64, 64, 32), 128],
                ['ReLU', (None, 64, 64, 32), 0],
                ['MaxPooling2D', (None, 32, 32, 32), 0, (2, 2), (2, 2), 'valid'],
                ['Flatten', (None, 32768), 0],
                ['Dense', (None, 1), 32769, 'sigmoid']]

SIGNS_OUTPUT = [['InputLayer', [(None, 64, 64, 3)], 0],
                ['Conv2D', (None, 64, 64, 8), 392, 'same', 'linear', 'GlorotUniform'],
                ['ReLU', (None, 64, 64, 8), 0],
                ['MaxPooling2D', (None, 8, 8, 8), 0, (8, 8), (8, 8), 'same'],
                ['Conv2D', (None, 8, 8, 16), 528, 'same', 'linear', 'GlorotUniform'],
                ['ReLU', (None, 8, 8, 16), 0],
                ['MaxPooling2D', (None, 2, 2, 16), 0, (4, 4), (4, 4), 'same'],
                ['Flatten', (None, 64), 0],
                ['Dense', (None, 6), 390, 'softmax']]


def happyModel():
    """The course's Sequential model, as a learner writes it."""
    return nc.Sequential([
        L.ZeroPadding2D(padding=(3, 3), input_shape=(64, 64, 3)),
        L.Conv2D(32, (7, 7), strides=(1, 1), name='conv0'),
        L.BatchNormalization(axis=3, name='bn0'),
        L.ReLU(),
        L.MaxPooling2D((2, 2), name='max_pool0'),
        L.Flatten(),
        L.Dense(1, activation='sigmoid', name='fc'),
    ])


def convolutional_model(input_shape):
    """The course's functional-API SIGNS model, as a learner writes it."""
    input_img = nc.Input(shape=input_shape)
    Z1 = L.Conv2D(filters=8, kernel_size=(4, 4), strides=(1, 1), padding='same')(input_img)
    A1 = L.ReLU()(Z1)
    P1 = L.MaxPool2D(pool_size=(8, 8), strides=(8, 8), padding='same')(A1)
    Z2 = L.Conv2D(filters=16, kernel_size=(2, 2), strides=(1, 1), padding='same')(P1)
    A2 = L.ReLU()(Z2)
    P2 = L.MaxPool2D(pool_size=(4, 4), strides=(4, 4), padding='same')(A2)
    F = L.Flatten()(P2)
    outputs = L.Dense(units=6, activation='softmax')(F)
    return nc.Model(inputs=input_img, outputs=outputs)


def test_happy_model_passes_the_course_check(capsys):
    comparator(summary(happyModel()), HAPPY_OUTPUT)
    assert "All tests passed!" in capsys.readouterr().out


def test_signs_model_passes_the_course_check(capsys):
    comparator(summary(convolutional_model((64, 64, 3))), SIGNS_OUTPUT)
    assert "All tests passed!" in capsys.readouterr().out


# comparator alone: these need nothing from the models.

def test_comparator_names_the_layer_and_the_descriptor():
    learner = [row[:] for row in HAPPY_OUTPUT]
    learner[1] = ['Conv2D', (None, 64, 64, 32), 4736, 'same', 'linear', 'GlorotUniform']
    with pytest.raises(AssertionError, match=r"layer 1 \(Conv2D\): the padding should be 'valid'; got 'same'"):
        comparator(learner, HAPPY_OUTPUT)
    learner = [row[:] for row in HAPPY_OUTPUT]
    learner[5] = ['Flatten', (None, 25088), 0]
    with pytest.raises(AssertionError, match=r"layer 5 \(Flatten\): the output shape should be \(None, 32768\); "
                                             r"got \(None, 25088\): check the previous layers"):
        comparator(learner, HAPPY_OUTPUT)


def test_comparator_explains_missing_and_misordered_layers():
    with pytest.raises(AssertionError, match=r"should have 7 layers; got 6: .*'ReLU'"):
        comparator(HAPPY_OUTPUT[:3] + HAPPY_OUTPUT[4:], HAPPY_OUTPUT[:3] + HAPPY_OUTPUT[4:] + [HAPPY_OUTPUT[3]])
    swapped = HAPPY_OUTPUT[:2] + [HAPPY_OUTPUT[3], HAPPY_OUTPUT[2]] + HAPPY_OUTPUT[4:]
    with pytest.raises(AssertionError, match=r"layer 2 \(BatchNormalization\): the layer type should be "
                                             r"'BatchNormalization'; got 'ReLU': the layers are in the wrong order"):
        comparator(swapped, HAPPY_OUTPUT)


def test_comparator_accepts_both_spellings_of_an_input_shape(capsys):
    """Keras 2 lists an InputLayer's output shape as [(None, 64, 64, 3)]; a plain tuple is the same shape."""
    learner = [['InputLayer', (None, 64, 64, 3), 0]] + SIGNS_OUTPUT[1:]
    comparator(learner, SIGNS_OUTPUT)
    assert "All tests passed!" in capsys.readouterr().out
