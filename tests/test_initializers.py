"""Initialisers: Keras's fans, limits and standard deviations, checked on large draws."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from npconv import initializers, utils
from npconv.initializers import (
    Constant,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    Ones,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    Zeros,
    fans,
)

CONV = (5, 5, 16, 32)  # fan_in 400, fan_out 800
DENSE = (300, 100)


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((), (1, 1)),
        ((7,), (7, 7)),
        ((300, 100), (300, 100)),
        ((5, 5, 16, 32), (5 * 5 * 16, 5 * 5 * 32)),
        ((3, 2, 4), (3 * 2, 3 * 4)),
    ],
)
def test_fans_follow_keras(shape, expected):
    assert fans(shape) == expected


@pytest.mark.parametrize(
    "init, shape, limit",
    [
        (GlorotUniform(), CONV, math.sqrt(6 / (400 + 800))),
        (GlorotUniform(), DENSE, math.sqrt(6 / 400)),
        (HeUniform(), CONV, math.sqrt(6 / 400)),
        (RandomUniform(-0.3, 0.1), DENSE, None),
    ],
)
def test_uniform_limits_and_spread(init, shape, limit):
    w = init(shape, dtype=np.float64, rng=np.random.default_rng(0))
    low, high = (-limit, limit) if limit else (-0.3, 0.1)
    assert low <= w.min() and w.max() <= high
    # a uniform sample of 30k reaches within 0.1% of both ends, and its std is (high - low) / sqrt(12)
    assert w.min() < low + 1e-3 * (high - low) and w.max() > high - 1e-3 * (high - low)
    assert w.std() == pytest.approx((high - low) / math.sqrt(12), rel=0.02)


@pytest.mark.parametrize(
    "init, shape, std",
    [
        (GlorotNormal(), CONV, math.sqrt(2 / (400 + 800))),
        (HeNormal(), CONV, math.sqrt(2 / 400)),
        (HeNormal(), DENSE, math.sqrt(2 / 300)),
        (TruncatedNormal(0.0, 0.5), DENSE, 0.5 * 0.87962566103423978),
    ],
)
def test_truncated_normals_have_the_keras_std_and_cut_at_two_sigma(init, shape, std):
    w = init(shape, dtype=np.float64, rng=np.random.default_rng(1))
    assert w.std() == pytest.approx(std, rel=0.02)
    assert abs(w.mean()) < 0.02 * std
    # the untruncated sigma is std / 0.8796...; nothing lies beyond two of those
    assert np.abs(w).max() <= 2 * std / 0.87962566103423978 + 1e-12


def test_random_normal_mean_and_std():
    w = RandomNormal(mean=1.0, stddev=0.2)((200, 200), rng=np.random.default_rng(2))
    assert w.mean() == pytest.approx(1.0, abs=0.005) and w.std() == pytest.approx(0.2, rel=0.02)


def test_constants():
    assert np.array_equal(Zeros()((2, 3)), np.zeros((2, 3), np.float32))
    assert np.array_equal(Ones()((4,), dtype=np.float64), np.ones(4))
    assert np.all(Constant(0.25)((2, 2)) == 0.25)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "name",
    ["glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "zeros", "ones", "random_normal", "random_uniform"],
)
def test_shape_and_dtype(name, dtype):
    w = initializers.get(name)((3, 3, 2, 4), dtype=dtype)
    assert w.shape == (3, 3, 2, 4) and w.dtype == dtype


def test_integer_dtype_is_refused():
    with pytest.raises(TypeError, match="dtype"):
        GlorotUniform()((2, 2), dtype=np.int32)


def test_seeded_initialiser_repeats_like_keras():
    init = HeNormal(seed=7)
    assert np.array_equal(init((10, 10)), init((10, 10)))
    assert not np.array_equal(init((10, 10)), HeNormal(seed=8)((10, 10)))


def test_unseeded_draws_follow_the_package_seed():
    utils.set_random_seed(123)
    first = [GlorotUniform()((4, 5)), HeNormal()((3, 3, 2, 2))]
    utils.set_random_seed(123)
    second = [GlorotUniform()((4, 5)), HeNormal()((3, 3, 2, 2))]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], GlorotUniform()((4, 5)))


def test_explicit_rng_wins():
    a = GlorotUniform(seed=1)((6,), rng=np.random.default_rng(5))
    b = GlorotUniform(seed=2)((6,), rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "identifier, cls",
    [
        ("glorot_uniform", GlorotUniform),
        ("GlorotUniform", GlorotUniform),
        ("he_normal", HeNormal),
        ("HeNormal", HeNormal),
        ("he_uniform", HeUniform),
        ("glorot_normal", GlorotNormal),
        ("zeros", Zeros),
        ("Zeros", Zeros),
        ("ones", Ones),
        ("random_normal", RandomNormal),
        ("RandomUniform", RandomUniform),
        ("constant", Constant),
    ],
)
def test_get_by_keras_name(identifier, cls):
    assert type(initializers.get(identifier)) is cls


def test_get_instance_and_config_round_trip():
    init = RandomUniform(-1.0, 2.0, seed=3)
    assert initializers.get(init) is init
    config = json.loads(json.dumps(initializers.serialize(init)))
    clone = initializers.get(config)
    assert type(clone) is RandomUniform and clone.get_config() == init.get_config()
    assert np.array_equal(clone((5,)), init((5,)))
    assert Constant.from_config(Constant(0.5).get_config()).value == 0.5


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'glorot_uniform'.*'zeros'"):
        initializers.get("xavier")


def test_bad_arguments():
    with pytest.raises(ValueError, match="maxval"):
        RandomUniform(1.0, 0.0)
    with pytest.raises(ValueError, match="stddev"):
        RandomNormal(stddev=-1)
    with pytest.raises(ValueError, match="seed"):
        HeNormal(seed=1.5)
    with pytest.raises(TypeError, match="initializer"):
        initializers.get(3)
