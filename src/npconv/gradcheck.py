"""Numerical gradient checking: is a hand-written backward the derivative of its forward?

Central differences, ``df/dx[i] ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``, cost two forwards
per element, so check on small shapes, in float64 (float32's 7 digits drown a 1e-6 step).

A kernel's forward gives an array, not a scalar. :func:`check_gradients` turns it into one with a
fixed random projection ``L = sum(out * R)``, whose gradient with respect to ``out`` is ``R``: it
runs ``backward(R, cache)`` and compares each input's gradient with the numerical one.

Example
-------
>>> import numpy as np
>>> from npconv.functional.dense import dense_forward, dense_backward
>>> rng = np.random.default_rng(0)
>>> inputs = {"x": rng.standard_normal((4, 3)), "w": rng.standard_normal((3, 2)),
...           "b": rng.standard_normal(2)}
>>> errors = gradcheck(dense_forward, dense_backward, inputs)   # raises if any error > 1e-7
>>> sorted(errors)
['b', 'w', 'x']
>>> all(e < 1e-7 for e in errors.values())
True

Hyperparameters go in with ``functools.partial`` or a lambda, e.g.
``gradcheck(lambda x, w, b: conv2d_forward(x, w, b, stride=2), conv2d_backward, inputs)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from .errors import ShapeError, expected

_TINY = 1e-300


def _require_float64(x, name: str) -> None:
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError(
            expected(
                name,
                "a float64 array",
                x,
                "Numerical gradients need float64: float32 rounding (1e-7) swamps "
                "the finite-difference step. Use x.astype(np.float64).",
            )
        )


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6):
    """``df/dx`` by central differences, perturbing ``x`` in place (each entry is restored).

    Parameters
    ----------
    f : callable, called as ``f(x)``; returns a scalar that depends on the current contents of ``x``
    x : float64 ndarray, any shape
    eps : the step

    Returns
    -------
    ndarray, shape of ``x``, float64
    """
    _require_float64(x, "x")
    grad = np.empty_like(x)
    flat, grad_flat = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError(expected("x", "a contiguous array (perturbed in place)", x, "Pass np.ascontiguousarray(x)."))
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        plus = float(f(x))
        flat[i] = saved - eps
        minus = float(f(x))
        flat[i] = saved
        grad_flat[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``|a - n| / max(|a| + |n|, tiny)`` with Frobenius norms: 0 is perfect, ~1e-10 is typical."""
    return float(np.linalg.norm(analytic - numeric) / max(np.linalg.norm(analytic) + np.linalg.norm(numeric), _TINY))


def check_gradients(
    forward_fn: Callable,
    backward_fn: Callable,
    inputs: Mapping[str, np.ndarray],
    wrt=None,
    seed: int = 0,
    eps: float = 1e-6,
) -> dict[str, float]:
    """Relative error between the analytical and numerical gradient of each input.

    Parameters
    ----------
    forward_fn : ``forward_fn(**inputs) -> (out, cache)``
    backward_fn : ``backward_fn(dout, cache)`` returning one gradient (for a single input) or a
        tuple with one gradient per input, in the order of ``inputs`` (``dx, dw, db``); ``None``
        entries (``need_dx=False``) are skipped
    inputs : dict name -> float64 array, in the order of the forward's arguments
    wrt : names to check (default: every input with a gradient)
    seed : seeds the projection ``R``
    eps : finite-difference step

    Returns
    -------
    dict name -> relative error (see :func:`relative_error`)
    """
    inputs = dict(inputs)
    for name, value in inputs.items():
        _require_float64(value, name)
        inputs[name] = np.array(value)  # a private copy: it is perturbed in place
    out, cache = forward_fn(**inputs)
    projection = np.random.default_rng(seed).standard_normal(np.shape(out))
    grads = backward_fn(projection, cache)
    if not isinstance(grads, tuple):
        grads = (grads,)
    if len(grads) != len(inputs):
        raise ShapeError(
            expected("backward_fn", f"{len(inputs)} gradients, one per input ({', '.join(inputs)})", f"{len(grads)}")
        )
    names = list(inputs) if wrt is None else list(wrt)

    def loss(_):
        return np.sum(forward_fn(**inputs)[0] * projection)

    errors = {}
    for name in names:
        if name not in inputs:
            raise ValueError(expected("wrt", f"names among {list(inputs)}", repr(name)))
        analytic = grads[list(inputs).index(name)]
        if analytic is None:
            continue
        if np.shape(analytic) != inputs[name].shape:
            raise ShapeError(expected(f"gradient of {name}", f"shape {inputs[name].shape}", np.asarray(analytic)))
        errors[name] = relative_error(np.asarray(analytic), numerical_gradient(loss, inputs[name], eps))
    return errors


def gradcheck(
    forward_fn: Callable,
    backward_fn: Callable,
    inputs: Mapping[str, np.ndarray],
    wrt=None,
    seed: int = 0,
    eps: float = 1e-6,
    tol: float = 1e-7,
) -> dict[str, float]:
    """:func:`check_gradients`, raising ``AssertionError`` with a report if any error exceeds ``tol``."""
    errors = check_gradients(forward_fn, backward_fn, inputs, wrt=wrt, seed=seed, eps=eps)
    failed = {name: err for name, err in errors.items() if not err <= tol}
    if failed:
        lines = [f"  {name}: relative error {err:.3g} > tol {tol:g}" for name, err in failed.items()]
        passed = [f"  {name}: {err:.3g} ok" for name, err in errors.items() if name not in failed]
        raise AssertionError(
            "gradient check failed: the backward does not match the forward\n" + "\n".join(lines + passed)
        )
    return errors
