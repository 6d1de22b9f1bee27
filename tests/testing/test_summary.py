"""npconv.testing.summary / comparator: the course's Keras model checks, run unchanged on npconv models.

The expected lists are the course's ("Convolution model - Application"). ``summary`` reads the Keras
attributes (``layer.output_shape``, ``activation.__name__``, ``kernel_initializer.__class__.__name__``)
of npconv's layers.
"""

from __future__ import annotations

import pytest
from course_expected import CONVOLUTIONAL_MODEL, HAPPY_MODEL

from npconv.apps import convolutional_model, happyModel
from npconv.testing import comparator, summary


def test_happy_model_passes_the_course_check(capsys):
    comparator(summary(happyModel()), HAPPY_MODEL)
    assert "All tests passed!" in capsys.readouterr().out


def test_signs_model_passes_the_course_check(capsys):
    comparator(summary(convolutional_model((64, 64, 3))), CONVOLUTIONAL_MODEL)
    assert "All tests passed!" in capsys.readouterr().out


# comparator alone: these need nothing from the models.


def test_comparator_names_the_layer_and_the_descriptor():
    learner = [row[:] for row in HAPPY_MODEL]
    learner[1] = ["Conv2D", (None, 64, 64, 32), 4736, "same", "linear", "GlorotUniform"]
    with pytest.raises(AssertionError, match=r"layer 1 \(Conv2D\): the padding should be 'valid'; got 'same'"):
        comparator(learner, HAPPY_MODEL)
    learner = [row[:] for row in HAPPY_MODEL]
    learner[5] = ["Flatten", (None, 25088), 0]
    with pytest.raises(
        AssertionError,
        match=r"layer 5 \(Flatten\): the output shape should be \(None, 32768\); "
        r"got \(None, 25088\): check the previous layers",
    ):
        comparator(learner, HAPPY_MODEL)


def test_comparator_explains_missing_and_misordered_layers():
    with pytest.raises(AssertionError, match=r"should have 7 layers; got 6: .*'ReLU'"):
        comparator(HAPPY_MODEL[:3] + HAPPY_MODEL[4:], HAPPY_MODEL[:3] + HAPPY_MODEL[4:] + [HAPPY_MODEL[3]])
    swapped = HAPPY_MODEL[:2] + [HAPPY_MODEL[3], HAPPY_MODEL[2]] + HAPPY_MODEL[4:]
    with pytest.raises(
        AssertionError,
        match=r"layer 2 \(BatchNormalization\): the layer type should be "
        r"'BatchNormalization'; got 'ReLU': the layers are in the wrong order",
    ):
        comparator(swapped, HAPPY_MODEL)


def test_comparator_accepts_both_spellings_of_an_input_shape(capsys):
    """Keras 2 lists an InputLayer's output shape as [(None, 64, 64, 3)]; a plain tuple is the same shape."""
    learner = [["InputLayer", (None, 64, 64, 3), 0]] + CONVOLUTIONAL_MODEL[1:]
    comparator(learner, CONVOLUTIONAL_MODEL)
    assert "All tests passed!" in capsys.readouterr().out
