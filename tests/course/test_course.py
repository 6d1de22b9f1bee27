"""npconv.course reproduces the deeplearning.ai notebook's published outputs, digit for digit.

Two versions of "Convolution model - Step by Step" are covered:

* v1 (2017-2019): conv_forward on A_prev (10, 4, 4, 3), pad 2, stride 2 ("Z's mean 0.0489952035289");
  pool_forward on (2, 4, 4, 3) with f 3, stride 2.
* v2 (2021-): conv_forward on A_prev (2, 5, 7, 4), pad 1, stride 2 ("Z's mean 0.5511276474566768"),
  pool_forward on (2, 5, 5, 3) with stride 1 and 2, and the public_tests.py checks.

Expected values are pasted exactly as the notebooks print them; ``assert_printed`` checks every printed
digit (tolerance: half a unit of the last printed decimal). The course seeds NumPy's legacy global
generator, so these tests do too.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from npconv.course import (
    conv_backward,
    conv_forward,
    conv_single_step,
    convert_to_one_hot,
    create_mask_from_window,
    distribute_value,
    pool_backward,
    pool_forward,
    random_mini_batches,
    zero_pad,
)

_NUMBER = re.compile(r"[-+]?\d+\.?\d*(?:[eE][-+]?\d+)?")


def assert_printed(actual, printed: str) -> None:
    """``actual`` matches the notebook's printout ``printed`` to every printed digit.

    ``printed`` is NumPy's text for a scalar or array (``"[[ 0.9 -0.6] ...]"``). A number printed with
    ``d`` decimals must be within ``0.5 * 10**-d`` of ``actual``; one printed as ``0.`` must be exact.
    """
    tokens = _NUMBER.findall(printed)
    values = np.asarray(actual, dtype=np.float64).reshape(-1)
    assert values.size == len(tokens), f"{values.size} values but {len(tokens)} printed"
    for value, token in zip(values, tokens):
        mantissa = token.split("e")[0].split("E")[0]
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        exponent = int(token.lower().split("e")[1]) if "e" in token.lower() else 0
        expected = float(token)
        tolerance = 0.0 if decimals == 0 else 0.5 * 10.0 ** (exponent - decimals)
        assert abs(value - expected) <= tolerance + np.spacing(abs(expected)), f"{value!r} does not print as {token}"


def test_assert_printed_catches_a_wrong_last_digit():
    assert_printed(0.0489952035289, "0.0489952035289")
    with pytest.raises(AssertionError):
        assert_printed(0.0489952035299, "0.0489952035289")
    with pytest.raises(AssertionError):
        assert_printed([1e-9], "[0.]")


# ---------------------------------------------------------------- zero_pad


def test_zero_pad_v1_pad_2():
    np.random.seed(1)
    x = np.random.randn(4, 3, 3, 2)
    x_pad = zero_pad(x, 2)
    assert x.shape == (4, 3, 3, 2)
    assert x_pad.shape == (4, 7, 7, 2)
    assert_printed(
        x[1, 1],
        """[[ 0.90085595 -0.68372786]
     [-0.12289023 -0.93576943]
     [-0.26788808  0.53035547]]""",
    )
    assert_printed(x_pad[1, 1], "[[0. 0.] [0. 0.] [0. 0.] [0. 0.] [0. 0.] [0. 0.] [0. 0.]]")


def test_zero_pad_v2_pad_3_and_public_tests():
    np.random.seed(1)
    x = np.random.randn(4, 3, 3, 2)
    x_pad = zero_pad(x, 3)
    assert x_pad.shape == (4, 9, 9, 2)
    assert_printed(x[1, 1], "[[ 0.90085595 -0.68372786] [-0.12289023 -0.93576943] [-0.26788808  0.53035547]]")
    assert_printed(x_pad[1, 1], "[[0. 0.] [0. 0.] [0. 0.] [0. 0.] [0. 0.] [0. 0.] [0. 0.] [0. 0.] [0. 0.]]")
    assert np.array_equal(x_pad[:, 3:6, 3:6, :], x)
    # public_tests.py, second case: every border row and column is zero.
    np.random.seed(1)
    x = np.random.randn(5, 4, 4, 3)
    x_pad = zero_pad(x, 2)
    assert x_pad.shape == (5, 8, 8, 3)
    inner = np.zeros(x_pad.shape, dtype=bool)
    inner[:, 2:6, 2:6, :] = True
    assert np.all(x_pad[~inner] == 0)
    assert np.array_equal(x_pad[:, 2:6, 2:6, :], x)


def test_zero_pad_keeps_dtype():
    x = np.ones((1, 2, 2, 1), dtype=np.float32)
    assert zero_pad(x, 1).dtype == np.float32


# ---------------------------------------------------------------- conv_single_step


def test_conv_single_step_v1():
    np.random.seed(1)
    a_slice_prev = np.random.randn(4, 4, 3)
    W = np.random.randn(4, 4, 3)
    b = np.random.randn(1, 1, 1)
    Z = conv_single_step(a_slice_prev, W, b)
    assert_printed(Z, "-6.99908945068")  # the Expected Output table
    assert_printed(Z, "-6.999089450680221")  # what the notebook prints under Python 3
    assert np.ndim(Z) == 0


def test_conv_single_step_v2_public_test():
    np.random.seed(3)
    a_slice_prev = np.random.randn(5, 5, 3)
    W = np.random.randn(5, 5, 3)
    b = np.random.randn(1, 1, 1)
    Z = conv_single_step(a_slice_prev, W, b)
    assert type(Z) is np.float64, "the course asks for a NumPy float64 scalar"
    assert_printed(Z, "-3.5443670581382474")


# ---------------------------------------------------------------- conv_forward


def _v1_conv():
    np.random.seed(1)
    A_prev = np.random.randn(10, 4, 4, 3)
    W = np.random.randn(2, 2, 3, 8)
    b = np.random.randn(1, 1, 1, 8)
    return conv_forward(A_prev, W, b, {"pad": 2, "stride": 2})


def test_conv_forward_v1():
    Z, cache_conv = _v1_conv()
    assert Z.shape == (10, 4, 4, 8)
    assert_printed(np.mean(Z), "0.0489952035289")
    assert_printed(np.mean(Z), "0.048995203528855794")
    assert_printed(
        Z[3, 2, 1],
        """[-0.61490741 -6.7439236  -2.55153897  1.75698377  3.56208902  0.53036437
  5.18531798  8.75898442]""",
    )
    assert_printed(cache_conv[0][1][2][3], "[-0.20075807  0.18656139  0.41005165]")


def test_conv_forward_v2():
    np.random.seed(1)
    A_prev = np.random.randn(2, 5, 7, 4)
    W = np.random.randn(3, 3, 4, 8)
    b = np.random.randn(1, 1, 1, 8)
    Z, cache_conv = conv_forward(A_prev, W, b, {"pad": 1, "stride": 2})
    assert Z.shape == (2, 3, 4, 8)
    assert_printed(np.mean(Z), "0.5511276474566768")
    assert_printed(
        Z[0, 2, 1],
        """[-2.17796037  8.07171329 -0.5772704   3.36286738  4.48113645 -2.89198428
 10.99288867  3.03171932]""",
    )
    assert_printed(cache_conv[0][1][2][3], "[-1.1191154   1.9560789  -0.3264995  -1.34267579]")
    assert isinstance(cache_conv, tuple) and len(cache_conv) == 4
    assert cache_conv[0] is A_prev and cache_conv[3] == {"pad": 1, "stride": 2}


def test_conv_forward_v2_public_test_shapes_and_big_padding():
    np.random.seed(3)
    A_prev = np.random.randn(2, 5, 7, 4)
    W = np.random.randn(3, 3, 4, 8)
    b = np.random.randn(1, 1, 1, 8)
    assert conv_forward(A_prev, W, b, {"pad": 3, "stride": 1})[0].shape == (2, 9, 11, 8)
    assert conv_forward(A_prev, W, b, {"pad": 0, "stride": 2})[0].shape == (2, 2, 3, 8)
    W = np.random.randn(5, 5, 4, 8)
    b = np.random.randn(1, 1, 1, 8)
    Z, cache_conv = conv_forward(A_prev, W, b, {"pad": 6, "stride": 1})
    assert Z.shape == (2, 13, 15, 8)
    assert_printed(np.mean(Z), "-0.5384027772160062")
    assert_printed(
        cache_conv[0][1, 2],
        """[[ 1.98848968  1.19505834 -0.0952376  -0.52718778]
 [-0.32158469  0.15113037 -0.01862772  0.48352879]
 [ 0.76896516  1.36624284  1.14726479 -0.11022916]
 [ 0.38825041 -0.38712718 -0.58722031  1.91082685]
 [-0.45984615  1.99073781 -0.34903539  0.25282509]
 [ 1.08940955  0.02392202  0.39312528 -0.2413848 ]
 [-0.47552486 -0.16577702 -0.64971742  1.63138295]]""",
    )


def test_conv_forward_keeps_float32():
    rng = np.random.default_rng(0)
    A_prev = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    W = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)
    b = np.zeros((1, 1, 1, 2), dtype=np.float32)
    Z, cache = conv_forward(A_prev, W, b, {"pad": 1, "stride": 1})
    assert Z.dtype == np.float32
    dA_prev, dW, db = conv_backward(Z, cache)
    assert dA_prev.dtype == dW.dtype == db.dtype == np.float32


# ---------------------------------------------------------------- pool_forward


def test_pool_forward_v1():
    np.random.seed(1)
    A_prev = np.random.randn(2, 4, 4, 3)
    hparameters = {"stride": 2, "f": 3}
    A, cache = pool_forward(A_prev, hparameters)
    assert_printed(A, "[[[[ 1.74481176  0.86540763  1.13376944]]] [[[ 1.13162939  1.51981682  2.18557541]]]]")
    A, cache = pool_forward(A_prev, hparameters, mode="average")
    assert_printed(A, "[[[[ 0.02105773 -0.20328806 -0.40389855]]] [[[-0.22154621  0.51716526  0.48155844]]]]")
    assert cache[0] is A_prev and cache[1] is hparameters


def test_pool_forward_v2_stride_1():
    np.random.seed(1)
    A_prev = np.random.randn(2, 5, 5, 3)
    hparameters = {"stride": 1, "f": 3}
    A, _ = pool_forward(A_prev, hparameters, mode="max")
    assert A.shape == (2, 3, 3, 3)
    assert_printed(
        A[1, 1],
        """[[1.96710175 0.84616065 1.27375593]
 [1.96710175 0.84616065 1.23616403]
 [1.62765075 1.12141771 1.2245077 ]]""",
    )
    A, _ = pool_forward(A_prev, hparameters, mode="average")
    assert A.shape == (2, 3, 3, 3)
    assert_printed(
        A[1, 1],
        """[[ 0.44497696 -0.00261695 -0.31040307]
 [ 0.50811474 -0.23493734 -0.23961183]
 [ 0.11872677  0.17255229 -0.22112197]]""",
    )


def test_pool_forward_v2_stride_2():
    np.random.seed(1)
    A_prev = np.random.randn(2, 5, 5, 3)
    hparameters = {"stride": 2, "f": 3}
    A, _ = pool_forward(A_prev, hparameters)
    assert A.shape == (2, 2, 2, 3)
    assert_printed(
        A[0],
        """[[[1.74481176 0.90159072 1.65980218]
  [1.74481176 1.6924546  1.65980218]]
 [[1.13162939 1.51981682 2.18557541]
  [1.13162939 1.6924546  2.18557541]]]""",
    )
    A, _ = pool_forward(A_prev, hparameters, mode="average")
    assert_printed(
        A[1],
        """[[[-0.17313416  0.32377198 -0.34317572]
  [ 0.02030094  0.14141479 -0.01231585]]
 [[ 0.42944926  0.08446996 -0.27290905]
  [ 0.15077452  0.28911175  0.00123239]]]""",
    )


def test_pool_forward_v2_public_test_f2_stride1():
    np.random.seed(1)
    A_prev = np.random.randn(2, 5, 5, 3)
    A, cache = pool_forward(A_prev, {"stride": 1, "f": 2}, mode="max")
    assert_printed(
        A[1, 1],
        """[[1.19891788 0.74055645 0.07734007]
 [0.31515939 0.84616065 0.07734007]
 [0.69803203 0.84616065 1.2245077 ]
 [0.69803203 1.12141771 1.2245077 ]]""",
    )
    assert_printed(
        cache[0][1, 2],
        """[[ 0.16938243  0.74055645 -0.9537006 ]
 [-0.26621851  0.03261455 -1.37311732]
 [ 0.31515939  0.84616065 -0.85951594]
 [ 0.35054598 -1.31228341 -0.03869551]
 [-1.61577235  1.12141771  0.40890054]]""",
    )
    A, _ = pool_forward(A_prev, {"stride": 1, "f": 2}, mode="average")
    assert_printed(
        A[1, 1],
        """[[ 0.11583785  0.34545544 -0.6561907 ]
 [-0.2334108   0.3364666  -0.69382351]
 [ 0.25497093 -0.21741362 -0.07342615]
 [-0.04092568 -0.01110394  0.12495022]]""",
    )


def test_pool_forward_output_shapes_and_dtype():
    A_prev = np.zeros((2, 5, 7, 3), dtype=np.float32)
    A, _ = pool_forward(A_prev, {"stride": 2, "f": 2}, mode="average")
    assert A.shape == (2, 2, 3, 3) and A.dtype == np.float32
    A, _ = pool_forward(np.zeros((4, 5, 7, 4)), {"stride": 1, "f": 5}, mode="max")
    assert A.shape == (4, 1, 3, 4)


# ---------------------------------------------------------------- conv_backward


def test_conv_backward_v1_and_v2():
    """Both versions test conv_backward on the v1 conv_forward output, with dZ = Z."""
    Z, cache_conv = _v1_conv()
    dA, dW, db = conv_backward(Z, cache_conv)
    assert dA.shape == (10, 4, 4, 3) and dW.shape == (2, 2, 3, 8) and db.shape == (1, 1, 1, 8)
    assert_printed(np.mean(dA), "1.45243777754")
    assert_printed(np.mean(dW), "1.72699145831")
    assert_printed(np.mean(db), "7.83923256462")
    # The full values the notebook prints under Python 3.
    assert_printed(np.mean(dA), "1.4524377775388075")
    assert_printed(np.mean(dW), "1.7269914583139097")
    assert_printed(np.mean(db), "7.839232564616838")


def _numerical_gradient(f, x, eps=1e-6):
    """Central differences of the scalar ``f()`` with respect to every entry of ``x`` (changed in place)."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + eps
        plus = f()
        x[index] = old - eps
        minus = f()
        x[index] = old
        grad[index] = (plus - minus) / (2 * eps)
    return grad


@pytest.mark.parametrize("pad, stride", [(0, 1), (1, 2), (2, 1)])
def test_conv_backward_matches_numerical_gradients(pad, stride):
    rng = np.random.default_rng(pad * 10 + stride)
    A_prev = rng.standard_normal((2, 5, 4, 2))
    W = rng.standard_normal((3, 3, 2, 3))
    b = rng.standard_normal((1, 1, 1, 3))
    hparameters = {"pad": pad, "stride": stride}
    Z, cache = conv_forward(A_prev, W, b, hparameters)
    dZ = rng.standard_normal(Z.shape)

    def loss():
        return np.sum(conv_forward(A_prev, W, b, hparameters)[0] * dZ)

    dA_prev, dW, db = conv_backward(dZ, cache)
    np.testing.assert_allclose(dA_prev, _numerical_gradient(loss, A_prev), atol=1e-7)
    np.testing.assert_allclose(dW, _numerical_gradient(loss, W), atol=1e-7)
    np.testing.assert_allclose(db, _numerical_gradient(loss, b), atol=1e-7)


# ---------------------------------------------------------------- create_mask_from_window, distribute_value


def test_create_mask_from_window_v1():
    np.random.seed(1)
    x = np.random.randn(2, 3)
    mask = create_mask_from_window(x)
    assert_printed(x, "[[ 1.62434536 -0.61175641 -0.52817175] [-1.07296862  0.86540763 -2.3015387 ]]")
    assert mask.tolist() == [[True, False, False], [False, False, False]]


def test_create_mask_from_window_v2_integers():
    x = np.array([[-1, 2, 3], [2, -3, 2], [1, 5, -2]])
    mask = create_mask_from_window(x)
    assert isinstance(mask, np.ndarray) and mask.shape == x.shape
    assert mask.tolist() == [[False, False, False], [False, False, False], [False, True, False]]


def test_distribute_value_v1_and_v2():
    a = distribute_value(2, (2, 2))
    assert_printed(a, "[[ 0.5  0.5] [ 0.5  0.5]]")
    a = distribute_value(100, (10, 10))
    assert isinstance(a, np.ndarray) and a.shape == (10, 10)
    assert np.sum(a) == 100


def test_distribute_value_keeps_float32():
    assert distribute_value(np.float32(1.0), (2, 3)).dtype == np.float32


def test_distribute_value_of_a_python_number_is_float64():
    """A Python float is a double: it must not come back rounded to float32 (NumPy 2's weak scalars)."""
    a = distribute_value(0.1, (3, 3))
    assert a.dtype == np.float64 and a[0, 0] == 0.1 / 9
    assert distribute_value(2, (2, 2)).dtype == np.float64


# ---------------------------------------------------------------- pool_backward


def _pool_backward_case():
    np.random.seed(1)
    A_prev = np.random.randn(5, 5, 3, 2)
    _, cache = pool_forward(A_prev, {"stride": 1, "f": 2})
    dA = np.random.randn(5, 4, 2, 2)
    return dA, cache


def test_pool_backward_max_v1_and_v2():
    dA, cache = _pool_backward_case()
    dA_prev = pool_backward(dA, cache, mode="max")
    assert dA_prev.shape == (5, 5, 3, 2)
    assert_printed(np.mean(dA), "0.145713902729")
    assert_printed(np.mean(dA), "0.14571390272918056")
    assert_printed(
        dA_prev[1, 1],
        """[[ 0.          0.        ]
 [ 5.05844394 -1.68282702]
 [ 0.          0.        ]]""",
    )


def test_pool_backward_average_v1_and_v2():
    dA, cache = _pool_backward_case()
    dA_prev = pool_backward(dA, cache, mode="average")
    assert dA_prev.shape == (5, 5, 3, 2)
    assert_printed(
        dA_prev[1, 1],
        """[[ 0.08485462  0.2787552 ]
 [ 1.26461098 -0.25749373]
 [ 1.17975636 -0.53624893]]""",
    )


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("f, stride", [(2, 2), (3, 1), (2, 3)])
def test_pool_backward_matches_numerical_gradients(mode, f, stride):
    rng = np.random.default_rng(f * 10 + stride)
    A_prev = rng.standard_normal((2, 6, 5, 2))
    hparameters = {"f": f, "stride": stride}
    A, cache = pool_forward(A_prev, hparameters, mode)
    dA = rng.standard_normal(A.shape)

    def loss():
        return np.sum(pool_forward(A_prev, hparameters, mode)[0] * dA)

    np.testing.assert_allclose(pool_backward(dA, cache, mode), _numerical_gradient(loss, A_prev), atol=1e-7)


# ---------------------------------------------------------------- input checks


def test_missing_hyper_parameter_names_the_key():
    A_prev = np.zeros((1, 4, 4, 1))
    with pytest.raises(KeyError, match=r"'pad'.*'stride', 'pad'"):
        conv_forward(A_prev, np.zeros((2, 2, 1, 1)), np.zeros((1, 1, 1, 1)), {"stride": 1})
    with pytest.raises(KeyError, match=r"'f'.*'f', 'stride'"):
        pool_forward(A_prev, {"stride": 1})
    with pytest.raises(KeyError, match="'stride'"):
        pool_backward(np.zeros((1, 2, 2, 1)), (A_prev, {"f": 2}))


def test_unknown_mode_lists_the_modes():
    A_prev = np.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match=r"mode: expected one of 'average', 'max'"):
        pool_forward(A_prev, {"f": 2, "stride": 2}, mode="min")
    _, cache = pool_forward(A_prev, {"f": 2, "stride": 2})
    with pytest.raises(ValueError, match="'average', 'max'"):
        pool_backward(np.zeros((1, 2, 2, 1)), cache, mode="sum")


def test_bad_shapes_and_values_are_explained():
    with pytest.raises(ValueError, match="A_prev"):
        conv_forward(np.zeros((4, 4, 3)), np.zeros((2, 2, 3, 1)), np.zeros((1, 1, 1, 1)), {"pad": 0, "stride": 1})
    with pytest.raises(ValueError, match="W, b"):
        conv_forward(np.zeros((1, 4, 4, 3)), np.zeros((2, 2, 2, 1)), np.zeros((1, 1, 1, 1)), {"pad": 0, "stride": 1})
    with pytest.raises(ValueError, match="window"):
        pool_forward(np.zeros((1, 2, 2, 1)), {"f": 3, "stride": 1})
    with pytest.raises(ValueError, match=r"hparameters\['stride'\]"):
        pool_forward(np.zeros((1, 4, 4, 1)), {"f": 2, "stride": 0})
    with pytest.raises(TypeError, match="A_prev"):
        pool_forward(np.zeros((1, 4, 4, 1), dtype=int), {"f": 2, "stride": 2})


# ---------------------------------------------------------------- cnn_utils helpers


def test_random_mini_batches_follows_the_seeded_permutation():
    m = 150
    X = np.arange(m, dtype=np.float64).reshape(m, 1, 1, 1) * np.ones((1, 2, 2, 3))
    Y = np.eye(6)[np.arange(m) % 6]
    batches = random_mini_batches(X, Y, mini_batch_size=64, seed=3)
    assert [len(bx) for bx, _ in batches] == [64, 64, 22]  # the last batch holds the rest
    np.random.seed(3)
    permutation = np.random.permutation(m)
    order = np.concatenate([bx[:, 0, 0, 0] for bx, _ in batches]).astype(int)
    assert np.array_equal(order, permutation)
    for bx, by in batches:  # rows of X and Y stay paired
        assert bx.shape[1:] == (2, 2, 3) and by.shape[1:] == (6,)
        assert np.array_equal(np.argmax(by, axis=1), bx[:, 0, 0, 0].astype(int) % 6)
    again = random_mini_batches(X, Y, mini_batch_size=64, seed=3)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again))


def test_random_mini_batches_exact_multiple_has_no_empty_batch():
    X, Y = np.zeros((128, 1, 1, 1)), np.zeros((128, 2))
    assert [len(bx) for bx, _ in random_mini_batches(X, Y, 64)] == [64, 64]
    with pytest.raises(ValueError, match="Y"):
        random_mini_batches(X, np.zeros((2, 128)))


def test_convert_to_one_hot_is_the_course_shape():
    Y = np.array([[1, 2, 3, 0, 2, 1]])  # the course's labels are (1, m)
    one_hot = convert_to_one_hot(Y, 4)
    assert one_hot.shape == (4, 6)
    assert np.array_equal(one_hot, np.eye(4)[Y.reshape(-1)].T)
    assert np.array_equal(one_hot.T.argmax(axis=1), Y.reshape(-1))
    with pytest.raises(ValueError, match="0..3"):
        convert_to_one_hot(np.array([[4]]), 4)
