"""The gradient checker itself: it must pass correct backwards and catch wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

from npconv.errors import ShapeError
from npconv.functional.activations import tanh_backward, tanh_forward
from npconv.functional.dense import dense_backward, dense_forward
from npconv.gradcheck import check_gradients, gradcheck, numerical_gradient, relative_error


def test_numerical_gradient_of_a_known_function_restores_x(rng):
    x = rng.standard_normal((3, 4))
    before = x.copy()
    grad = numerical_gradient(lambda a: np.sum(a**3), x)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-8)
    np.testing.assert_array_equal(x, before)


def test_check_gradients_reports_every_input(rng):
    inputs = {"x": rng.standard_normal((3, 2)), "w": rng.standard_normal((2, 4)), "b": rng.standard_normal(4)}
    errors = check_gradients(dense_forward, dense_backward, inputs)
    assert set(errors) == {"x", "w", "b"} and max(errors.values()) < 1e-8


def test_wrt_selects_inputs_and_caller_arrays_are_untouched(rng):
    inputs = {"x": rng.standard_normal((3, 2)), "w": rng.standard_normal((2, 4)), "b": rng.standard_normal(4)}
    copies = {k: v.copy() for k, v in inputs.items()}
    assert set(check_gradients(dense_forward, dense_backward, inputs, wrt=["w"])) == {"w"}
    for name in inputs:
        np.testing.assert_array_equal(inputs[name], copies[name])


def test_none_gradients_are_skipped(rng):
    inputs = {"x": rng.standard_normal((3, 2)), "w": rng.standard_normal((2, 4)), "b": rng.standard_normal(4)}
    backward = lambda dout, cache: dense_backward(dout, cache, need_dx=False)  # noqa: E731
    assert set(check_gradients(dense_forward, backward, inputs)) == {"w", "b"}


def test_gradcheck_catches_a_wrong_backward(rng):
    def wrong_tanh_backward(dout, cache):
        return dout * (1 - cache)  # forgot the square

    with pytest.raises(AssertionError, match=r"x: relative error .* > tol 1e-07"):
        gradcheck(tanh_forward, wrong_tanh_backward, {"x": rng.standard_normal((3, 3))})
    gradcheck(tanh_forward, tanh_backward, {"x": rng.standard_normal((3, 3))})


def test_relative_error_is_symmetric_and_zero_for_zeros():
    a, b = np.array([1.0, 2.0]), np.array([1.0, 2.5])
    assert relative_error(a, b) == relative_error(b, a) == pytest.approx(0.5 / (np.sqrt(5) + np.sqrt(7.25)))
    assert relative_error(np.zeros(3), np.zeros(3)) == 0


def test_refuses_float32(rng):
    with pytest.raises(TypeError, match="x: expected a float64 array.*need float64"):
        gradcheck(tanh_forward, tanh_backward, {"x": rng.standard_normal(3).astype(np.float32)})
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(np.sum, np.ones(3, np.float32))


def test_refuses_a_backward_with_the_wrong_number_of_gradients(rng):
    with pytest.raises(ShapeError, match="backward_fn: expected 2 gradients"):
        check_gradients(
            lambda x, y: tanh_forward(x + y), tanh_backward, {"x": rng.standard_normal(3), "y": rng.standard_normal(3)}
        )


def test_refuses_unknown_wrt_names(rng):
    with pytest.raises(ValueError, match="wrt: expected names among"):
        check_gradients(tanh_forward, tanh_backward, {"x": rng.standard_normal(3)}, wrt=["w"])


def test_refuses_a_gradient_of_the_wrong_shape(rng):
    with pytest.raises(ShapeError, match=r"gradient of x: expected shape \(3,\)"):
        check_gradients(tanh_forward, lambda dout, cache: dout[:2], {"x": rng.standard_normal(3)})


def test_the_docstring_example_runs():
    import doctest

    import npconv.gradcheck

    result = doctest.testmod(npconv.gradcheck)
    assert result.attempted > 0 and result.failed == 0  # an example that vanished would pass silently
