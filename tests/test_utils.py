"""utils: the package generator, to_categorical, registry look-ups and the course re-exports."""

from __future__ import annotations

import numpy as np
import pytest

from npconv import course, utils


def test_set_random_seed_repeats_the_package_generator_and_legacy_state():
    utils.set_random_seed(42)
    first = utils.global_rng().random(5), np.random.rand(3)
    utils.set_random_seed(42)
    second = utils.global_rng().random(5), np.random.rand(3)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert isinstance(utils.global_rng(), np.random.Generator)


def test_package_generator_is_pcg64_of_the_seed():
    utils.set_random_seed(3)
    expected = np.random.Generator(np.random.PCG64(3)).standard_normal(4)
    np.testing.assert_array_equal(utils.global_rng().standard_normal(4), expected)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        utils.set_random_seed(seed)


def test_to_categorical_like_keras():
    out = utils.to_categorical([0, 2, 1])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.eye(3, dtype=np.float32)[[0, 2, 1]])
    assert utils.to_categorical(np.array([[1], [0]]), num_classes=4).shape == (2, 4)
    assert utils.to_categorical(np.array([1.0, 0.0])).tolist() == [[0, 1], [1, 0]]


@pytest.mark.parametrize(
    "y, num_classes, error",
    [
        ([0, 3], 3, ValueError),
        ([-1, 0], None, ValueError),
        ([0.5, 1.0], None, TypeError),
        ([0, 1], 0, ValueError),
    ],
)
def test_to_categorical_refuses(y, num_classes, error):
    with pytest.raises(error, match="y|num_classes"):
        utils.to_categorical(y, num_classes)


def test_to_categorical_message_says_the_range():
    with pytest.raises(ValueError, match=r"labels in \[0, 2\].*from 0 to 3"):
        utils.to_categorical([0, 3], 3)


def test_lookup_ignores_case_and_underscores_and_lists_names():
    registry = {"glorot_uniform": 1, "he_normal": 2}
    assert utils.lookup("GlorotUniform", registry, "x") == 1
    assert utils.lookup("HE_NORMAL", registry, "x") == 2
    with pytest.raises(ValueError, match="x: expected one of 'glorot_uniform', 'he_normal'"):
        utils.lookup("lecun", registry, "x")


def test_course_helpers_are_re_exported():
    assert utils.random_mini_batches is course.random_mini_batches
    assert utils.convert_to_one_hot is course.convert_to_one_hot


def test_unknown_attribute():
    with pytest.raises(AttributeError):
        utils.no_such_helper  # noqa: B018 (the attribute access itself must raise)
