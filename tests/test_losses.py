"""Cross-entropy losses: Keras's values on probabilities, fused logits forms against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from npconv import losses
from npconv.errors import ShapeError
from npconv.gradcheck import numerical_gradient

TOL = dict(rtol=1e-9, atol=1e-12)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def binary_case(rng, m=6):
    return rng.integers(0, 2, (m, 1)).astype(np.float64), 2 * rng.standard_normal((m, 1))


def categorical_case(rng, m=5, n=4):
    labels = rng.integers(0, n, m)
    return labels, np.eye(n)[labels], 2 * rng.standard_normal((m, n))


# ----- PyTorch -----


def test_binary_logits_match_torch(torch, rng):
    y, z = binary_case(rng)
    value, dz = losses.BinaryCrossentropy().from_logits_and_grad(y, z)
    tz = torch.tensor(z, requires_grad=True)
    tloss = torch.nn.functional.binary_cross_entropy_with_logits(tz, torch.tensor(y))
    tloss.backward()
    np.testing.assert_allclose(value, tloss.item(), **TOL)
    np.testing.assert_allclose(dz, tz.grad.numpy(), **TOL)


@pytest.mark.parametrize("sparse", [False, True])
def test_categorical_logits_match_torch(torch, rng, sparse):
    labels, onehot, z = categorical_case(rng)
    loss = losses.SparseCategoricalCrossentropy() if sparse else losses.CategoricalCrossentropy()
    value, dz = loss.from_logits_and_grad(labels if sparse else onehot, z)
    tz = torch.tensor(z, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tz, torch.tensor(labels))
    tloss.backward()
    np.testing.assert_allclose(value, tloss.item(), **TOL)
    np.testing.assert_allclose(dz, tz.grad.numpy(), **TOL)


def test_soft_categorical_labels_match_torch(torch, rng):
    y = softmax(rng.standard_normal((4, 3)))
    z = rng.standard_normal((4, 3))
    value, dz = losses.CategoricalCrossentropy().from_logits_and_grad(y, z)
    tz = torch.tensor(z, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tz, torch.tensor(y))
    tloss.backward()
    np.testing.assert_allclose(value, tloss.item(), **TOL)
    np.testing.assert_allclose(dz, tz.grad.numpy(), **TOL)


# ----- the three forms agree -----


def labels_logits_probabilities(name, rng):
    """Labels in the form loss ``name`` takes, logits, and the probabilities they make."""
    if name == "binary_crossentropy":
        y, z = binary_case(rng)
        return y, z, sigmoid(z)
    labels, onehot, z = categorical_case(rng)
    return (labels if name.startswith("sparse") else onehot), z, softmax(z)


@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_probability_form_equals_fused_form_away_from_the_clip(name, rng):
    loss = losses.get(name)
    y, z, p = labels_logits_probabilities(name, rng)
    value, _ = loss.from_logits_and_grad(y, z)
    # Keras adds 1e-7 inside the binary logs: equal to about 1e-7, not to rounding.
    np.testing.assert_allclose(loss(y, p), value, rtol=1e-6)


@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_grad_is_the_derivative_of_call(name, rng):
    loss = losses.get(name)
    y, z, p = labels_logits_probabilities(name, rng)
    numeric = numerical_gradient(lambda a: loss(y, a), p)
    np.testing.assert_allclose(loss.grad(y, p), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy"])
def test_dlogits_is_the_derivative_of_the_fused_value(name, rng):
    loss = losses.get(name)
    y, z = binary_case(rng) if name.startswith("binary") else categorical_case(rng)[1:]
    numeric = numerical_gradient(lambda a: loss.from_logits_and_grad(y, a)[0], z)
    np.testing.assert_allclose(loss.from_logits_and_grad(y, z)[1], numeric, rtol=1e-6, atol=1e-9)


def test_keras_clipping_bounds_a_confident_mistake():
    value = losses.BinaryCrossentropy()(np.array([1.0]), np.array([0.0]))
    np.testing.assert_allclose(value, -np.log(1e-7 + 1e-7), rtol=1e-12)  # clip, then log(p + eps)
    value = losses.CategoricalCrossentropy()(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    np.testing.assert_allclose(value, -np.log(1e-7), rtol=1e-12)


def test_fused_forms_are_stable_for_huge_logits():
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        value, dz = losses.BinaryCrossentropy().from_logits_and_grad(np.array([1.0, 0.0]), np.array([-1000.0, 1000.0]))
        assert value == pytest.approx(1000.0) and np.allclose(dz, [-0.5, 0.5])
        value, dz = losses.SparseCategoricalCrossentropy().from_logits_and_grad(
            np.array([0]), np.array([[-1000.0, 1000.0]])
        )
        assert value == pytest.approx(2000.0) and np.allclose(dz, [[-1.0, 1.0]])


def test_binary_accepts_flat_labels_and_from_logits(rng):
    y, z = binary_case(rng)
    loss = losses.BinaryCrossentropy(from_logits=True)
    assert loss(y.ravel(), z) == losses.BinaryCrossentropy().from_logits_and_grad(y, z)[0]
    np.testing.assert_array_equal(loss.grad(y.ravel(), z), losses.BinaryCrossentropy().from_logits_and_grad(y, z)[1])


def test_float32_logits_give_float32_gradients(rng):
    labels, onehot, z = categorical_case(rng)
    value, dz = losses.CategoricalCrossentropy().from_logits_and_grad(onehot, z.astype(np.float32))
    assert dz.dtype == np.float32 and isinstance(value, float)
    np.testing.assert_allclose(value, losses.CategoricalCrossentropy().from_logits_and_grad(onehot, z)[0], rtol=1e-6)


def test_activation_attribute_names_the_fused_activation():
    assert losses.get("binary_crossentropy").activation == "sigmoid"
    assert losses.get("categorical_crossentropy").activation == "softmax"
    assert losses.get("sparse_categorical_crossentropy").activation == "softmax"


# ----- registry and config -----


def test_get_accepts_names_instances_and_configs():
    instance = losses.BinaryCrossentropy(from_logits=True)
    assert losses.get(instance) is instance
    assert isinstance(losses.get("BinaryCrossentropy"), losses.BinaryCrossentropy)
    assert isinstance(losses.get("Sparse_Categorical_Crossentropy"), losses.SparseCategoricalCrossentropy)
    again = losses.get(instance.get_config())
    assert isinstance(again, losses.BinaryCrossentropy) and again.from_logits
    assert losses.get(losses.serialize(instance)).get_config() == instance.get_config()


def test_get_unknown_name_lists_the_valid_ones():
    with pytest.raises(
        ValueError,
        match="'binary_crossentropy', 'categorical_crossentropy', 'sparse_categorical_crossentropy', got 'mse'",
    ):
        losses.get("mse")


# ----- bad labels -----


def test_rows_must_match(rng):
    with pytest.raises(ShapeError, match=r"y_true: expected 6 rows, one per example of y_pred"):
        losses.BinaryCrossentropy().from_logits_and_grad(np.zeros(5), rng.standard_normal((6, 1)))


def test_binary_labels_must_be_in_unit_interval(rng):
    with pytest.raises(ValueError, match=r"binary labels in \[0, 1\], got 2.0 at index \(1, 0\)"):
        losses.BinaryCrossentropy().from_logits_and_grad(np.array([[0.0], [2.0]]), rng.standard_normal((2, 1)))


def test_binary_labels_of_the_wrong_width(rng):
    with pytest.raises(ShapeError, match=r"y_true: expected shape \(4, 1\)"):
        losses.BinaryCrossentropy().from_logits_and_grad(np.zeros((4, 2)), rng.standard_normal((4, 1)))


def test_categorical_width_mismatch_suggests_the_fix(rng):
    with pytest.raises(
        ShapeError,
        match="labels with 4 column.* the model outputs 6 classes.*sparse_categorical_crossentropy.*convert_to_one_hot",
    ):
        losses.CategoricalCrossentropy().from_logits_and_grad(np.eye(4), rng.standard_normal((4, 6)))


def test_categorical_refuses_integer_labels(rng):
    with pytest.raises(ShapeError, match="sparse_categorical_crossentropy"):
        losses.CategoricalCrossentropy().from_logits_and_grad(np.arange(3), rng.standard_normal((3, 6)))


@pytest.mark.parametrize(
    "labels, bad", [([0, 6, 1], "6 at index 1"), ([0, -1, 1], "-1 at index 1"), ([0.5, 1, 2], "0.5 at index 0")]
)
def test_sparse_labels_must_be_class_indices(labels, bad, rng):
    with pytest.raises(ValueError, match=rf"integer class labels in \[0, 6\), got .*{bad}"):
        losses.SparseCategoricalCrossentropy().from_logits_and_grad(np.array(labels), rng.standard_normal((3, 6)))


def test_sparse_refuses_one_hot_labels(rng):
    with pytest.raises(ShapeError, match="categorical_crossentropy"):
        losses.SparseCategoricalCrossentropy().from_logits_and_grad(np.eye(3), rng.standard_normal((3, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_labels_are_refused(bad, rng):
    with pytest.raises(ValueError, match="y_true: expected finite values"):
        losses.BinaryCrossentropy().from_logits_and_grad(np.array([0.0, bad]), rng.standard_normal(2))


def test_probabilities_outside_unit_interval_suggest_from_logits(rng):
    with pytest.raises(ValueError, match="y_pred: expected probabilities.*from_logits=True"):
        losses.BinaryCrossentropy()(np.array([0.0, 1.0]), np.array([-3.0, 2.0]))


def test_string_labels_are_refused(rng):
    with pytest.raises(TypeError, match="y_true: expected numeric labels"):
        losses.BinaryCrossentropy().from_logits_and_grad(np.array(["a", "b"]), rng.standard_normal(2))


# ----- label smoothing -----

SMOOTHED = ["binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"]


def test_binary_smoothing_pulls_targets_half_way_to_one_half():
    # s = 0.2: labels 1 and 0 become 0.9 and 0.1, so the fused gradient is p - 0.9 and p - 0.1.
    loss = losses.BinaryCrossentropy(label_smoothing=0.2)
    _, dz = loss.from_logits_and_grad(np.array([[1.0], [0.0]]), np.zeros((2, 1)))
    np.testing.assert_allclose(dz, [[(0.5 - 0.9) / 2], [(0.5 - 0.1) / 2]], rtol=1e-12)


@pytest.mark.parametrize("smoothing", [0.1, 0.3])
def test_binary_smoothing_matches_torch_on_smoothed_targets(torch, rng, smoothing):
    y, z = binary_case(rng)
    value, dz = losses.BinaryCrossentropy(label_smoothing=smoothing).from_logits_and_grad(y, z)
    tz = torch.tensor(z, requires_grad=True)
    target = torch.tensor(y * (1 - smoothing) + smoothing / 2)
    tloss = torch.nn.functional.binary_cross_entropy_with_logits(tz, target)
    tloss.backward()
    np.testing.assert_allclose(value, tloss.item(), **TOL)
    np.testing.assert_allclose(dz, tz.grad.numpy(), **TOL)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("smoothing", [0.1, 0.4])
def test_categorical_smoothing_matches_torch(torch, rng, sparse, smoothing):
    # torch's label_smoothing is Keras's rule: y * (1 - s) + s / n_classes.
    labels, onehot, z = categorical_case(rng)
    make = losses.SparseCategoricalCrossentropy if sparse else losses.CategoricalCrossentropy
    value, dz = make(label_smoothing=smoothing).from_logits_and_grad(labels if sparse else onehot, z)
    tz = torch.tensor(z, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tz, torch.tensor(labels), label_smoothing=smoothing)
    tloss.backward()
    np.testing.assert_allclose(value, tloss.item(), **TOL)
    np.testing.assert_allclose(dz, tz.grad.numpy(), **TOL)


@pytest.mark.parametrize("name", SMOOTHED)
def test_smoothed_dlogits_is_the_derivative_of_the_fused_value(name, rng):
    loss = losses.get({"name": name, "label_smoothing": 0.15})
    y, z, _ = labels_logits_probabilities(name, rng)
    numeric = numerical_gradient(lambda a: loss.from_logits_and_grad(y, a)[0], z)
    np.testing.assert_allclose(loss.from_logits_and_grad(y, z)[1], numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", SMOOTHED)
def test_smoothing_applies_to_the_probability_form_too(name, rng):
    loss = losses.get({"name": name, "label_smoothing": 0.15})
    y, z, p = labels_logits_probabilities(name, rng)
    np.testing.assert_allclose(loss(y, p), loss.from_logits_and_grad(y, z)[0], rtol=1e-6)
    numeric = numerical_gradient(lambda a: loss(y, a), p)
    np.testing.assert_allclose(loss.grad(y, p), numeric, rtol=1e-6, atol=1e-8)
    assert loss(y, p) != losses.get(name)(y, p)


def test_smoothing_keeps_float32_and_leaves_the_labels_alone(rng):
    labels, onehot, z = categorical_case(rng)
    original = onehot.astype(np.float32)
    kept = original.copy()
    _, dz = losses.CategoricalCrossentropy(label_smoothing=0.1).from_logits_and_grad(original, z.astype(np.float32))
    assert dz.dtype == np.float32
    np.testing.assert_array_equal(original, kept)


def test_smoothing_config_round_trip_and_bad_values():
    loss = losses.SparseCategoricalCrossentropy(label_smoothing=0.1)
    assert loss.get_config()["label_smoothing"] == 0.1
    assert losses.get(losses.serialize(loss)).label_smoothing == 0.1
    assert "label_smoothing" not in losses.BinaryCrossentropy().get_config()
    for bad in (-0.1, 1.5, "some", True):
        with pytest.raises(ValueError, match="label_smoothing: expected a number in"):
            losses.BinaryCrossentropy(label_smoothing=bad)
