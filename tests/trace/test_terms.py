"""``StepTrace.terms``: the products ``a * b`` add up to the gradient entry (1e-9 relative), and each
``a``/``b`` is the value its index names."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import npconv
from npconv import layers as L
from npconv import trace


def _model(strides, padding, pool_padding, size=(8, 7)):
    return npconv.Sequential(
        [
            L.Conv2D(3, 3, strides=strides, padding=padding, activation="relu", input_shape=size + (2,), name="conv"),
            L.MaxPooling2D(2, strides=strides, padding=pool_padding, name="max_pool"),
            L.Conv2D(2, 2, strides=1, padding="same", name="even_conv"),  # TensorFlow pads 0 above, 1 below
            L.AveragePooling2D(2, strides=strides, padding=pool_padding, name="avg_pool"),
            L.Flatten(name="flatten"),
            L.Dense(3, activation="softmax", name="dense"),
        ],
        dtype="float64",
    )


def _entries(shape, count, rng):
    """Every corner and ``count`` random entries of an array of ``shape``."""
    corners = itertools.product(*[(0, n - 1) for n in shape])
    return list(corners) + [tuple(int(rng.integers(n)) for n in shape) for _ in range(count)]


@pytest.mark.parametrize(
    "strides,padding,pool_padding",
    [(1, "valid", "valid"), (2, "same", "same"), (1, "same", "same"), (2, "valid", "valid")],
)
def test_terms_add_up_to_every_gradient_entry(strides, padding, pool_padding):
    npconv.utils.set_random_seed(7)
    model = _model(strides, padding, pool_padding, size=(12, 11))
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    t = trace.step(model, rng.standard_normal((2, 12, 11, 2)), np.eye(3)[[0, 2]])
    checked = 0
    for row in t.layers():
        for which in row["terms"]:
            grad = t.grad(row["name"], which)
            scale = np.abs(grad).max()
            for index in _entries(grad.shape, 25, rng):
                terms = t.terms(row["name"], which, index)
                assert terms.value == grad[index]
                assert abs(terms.sum - grad[index]) <= 1e-9 * scale, (row["name"], which, index)
                checked += 1
    assert checked > 300


def test_each_term_is_what_its_index_names():
    npconv.utils.set_random_seed(8)
    model = _model(2, "same", "same")
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = np.random.default_rng(1).standard_normal((2, 8, 7, 2))
    t = trace.step(model, x, np.eye(3)[[1, 0]])
    dZ, W = t.grad("conv", "dZ"), t.record("conv").weights["W"]
    x_pad = np.pad(x, ((0, 0), (0, 1), (1, 1), (0, 0)))  # "same", 3x3, stride 2 on 8x7: 0/1 rows, 1/1 columns

    dW = t.terms("conv", "dW", (2, 1, 1, 0))
    assert (dW.a_label, dW.b_label, len(dW)) == ("A_prev_pad", "dZ", 2 * 4 * 4)
    for a, b, (n, r, c, ch), (n2, h, w, f) in zip(dW.a, dW.b, dW.a_index, dW.b_index):
        assert (r, c, ch, f, n) == (h * 2 + 2, w * 2 + 1, 1, 0, n2)
        assert a == x_pad[n, r, c, ch] and b == dZ[n, h, w, f]

    dx = t.terms("conv", "dx", (1, 4, 3, 1))  # padded (4, 4): windows h' in {1, 2} x w' in {1, 2}, 3 filters
    assert (dx.a_label, dx.b_label, len(dx)) == ("W", "dZ", 4 * 3)
    assert {tuple(i) for i in dx.b_index[:, 1:3]} == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert all(a == W[tuple(i)] for a, i in zip(dx.a, dx.a_index))

    corner = t.terms("conv", "dx", (0, 7, 6, 0))  # bottom-right: only the windows that reach it
    assert len(corner) > 0 and set(corner.b_index[:, 1]) == {3} and set(corner.b_index[:, 2]) == {3}

    pool = t.terms("max_pool", "dx", (0, 1, 1, 2))
    assert pool.a_label == "mask" and set(pool.a) <= {0.0, 1.0}
    average = t.terms("avg_pool", "dx", (0, 0, 0, 1))
    assert average.a_label == "1/(f*f)" and np.all(average.a >= 1 / 4)

    dense = t.terms("dense", "dW", (1, 2))
    assert np.array_equal(dense.a, t.record("dense").inputs[0][:, 1])
    assert np.array_equal(dense.b, t.grad("dense", "dZ")[:, 2])
    bias = t.terms("conv", "db", (2,))
    assert np.all(bias.a == 1) and bias.sum == pytest.approx(dZ[..., 2].sum(), rel=1e-12)

    conv = next(row for row in t.layers() if row["name"] == "conv")
    assert (conv["window"], conv["strides"], conv["pads"]) == ([3, 3], [2, 2], [[0, 1], [1, 1]])
    assert json.loads(json.dumps(t.layers()))[0]["terms"] == ["dW", "dx", "db"]
    page = json.loads(json.dumps(dW.to_dict(limit=5)))
    assert page["count"] == 32 and len(page["a"]) == 5 and page["a_index"][0] == list(dW.a_index[0])
    assert page["sum"] == pytest.approx(page["value"], rel=1e-9)


def test_max_pool_ties_after_relu_go_to_the_first_maximum():
    """A window of ReLU zeros: npconv (as PyTorch) sends the gradient to the first zero; its terms say so."""
    model = npconv.Sequential(
        [
            L.ReLU(input_shape=(4, 4, 1), name="relu"),
            L.MaxPooling2D(2, name="pool"),
            L.Flatten(name="flatten"),
            L.Dense(1, activation="sigmoid", name="out"),
        ],
        dtype="float64",
    )
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    x = -np.ones((1, 4, 4, 1))
    x[0, 3, 3, 0] = 2.0
    t = trace.step(model, x, np.array([1]))
    for index in itertools.product([0], range(4), range(4), [0]):
        terms = t.terms("pool", "dx", index)
        assert terms.sum == t.grad("pool", "dx")[index]
    assert t.terms("pool", "dx", (0, 0, 0, 0)).a.tolist() == [1.0]
    assert t.terms("pool", "dx", (0, 0, 1, 0)).a.tolist() == [0.0]
