"""Metrics: accuracy for sigmoid and softmax outputs, confusion matrix and precision/recall."""

from __future__ import annotations

import numpy as np
import pytest

from npconv import metrics
from npconv.metrics import accuracy, confusion_matrix, precision_recall

PROBS = np.array(
    [
        [0.7, 0.2, 0.1],  # predicts 0
        [0.1, 0.8, 0.1],  # predicts 1
        [0.3, 0.3, 0.4],  # predicts 2
        [0.5, 0.4, 0.1],
    ]
)  # predicts 0
LABELS = np.array([0, 1, 1, 0])  # 3 of 4 right


@pytest.mark.parametrize(
    "y_true, y_pred",
    [
        (np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.4, 0.6])),
        (np.array([[1], [0], [1], [0]]), np.array([[0.9], [0.2], [0.4], [0.6]])),
        (np.array([1.0, 0.0, 1.0, 0.0]), np.array([[0.9], [0.2], [0.4], [0.6]])),
    ],
)
def test_binary_accuracy_thresholds_at_one_half(y_true, y_pred):
    assert accuracy(y_true, y_pred) == 0.5


def test_threshold_is_strict_like_keras():
    assert accuracy(np.array([0]), np.array([0.5])) == 1.0


def test_categorical_and_sparse_accuracy():
    one_hot = np.eye(3)[LABELS]
    assert accuracy(one_hot, PROBS) == 0.75
    assert accuracy(LABELS, PROBS) == 0.75
    assert accuracy(LABELS[:, None], PROBS) == 0.75


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="y_true"):
        accuracy(LABELS[:3], PROBS)
    with pytest.raises(ValueError, match="y_true"):
        metrics.categorical_accuracy(np.eye(2)[[0, 1, 1, 0]], PROBS)


@pytest.mark.parametrize(
    "name, fn",
    [
        ("accuracy", accuracy),
        ("acc", accuracy),
        ("ACC", accuracy),
        ("binary_accuracy", metrics.binary_accuracy),
        ("BinaryAccuracy", metrics.binary_accuracy),
        ("categorical_accuracy", metrics.categorical_accuracy),
        ("sparse_categorical_accuracy", metrics.sparse_categorical_accuracy),
    ],
)
def test_get(name, fn):
    assert metrics.get(name) is fn


def test_get_passes_functions_and_lists_names():
    def custom(y_true, y_pred):
        return 0.0

    assert metrics.get(custom) is custom
    with pytest.raises(ValueError, match="'accuracy'"):
        metrics.get("f1")


def test_confusion_matrix_counts_true_rows_predicted_columns():
    cm = confusion_matrix(LABELS, PROBS, 3)
    np.testing.assert_array_equal(cm, [[2, 0, 0], [0, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(cm, confusion_matrix(np.eye(3)[LABELS], PROBS.argmax(1), 3))


def test_confusion_matrix_matches_a_loop_on_random_labels(rng):
    true, pred = rng.integers(0, 5, 500), rng.integers(0, 5, 500)
    expected = np.zeros((5, 5), dtype=np.int64)
    for t, p in zip(true, pred):
        expected[t, p] += 1
    np.testing.assert_array_equal(confusion_matrix(true, pred, 5), expected)


def test_confusion_matrix_for_sigmoid_probabilities():
    cm = confusion_matrix(np.array([[1], [0], [1]]), np.array([[0.9], [0.6], [0.2]]), 2)
    np.testing.assert_array_equal(cm, [[0, 1], [1, 1]])


def test_confusion_matrix_refuses_labels_out_of_range():
    with pytest.raises(ValueError, match="n_classes"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="n_classes"):
        confusion_matrix(LABELS, LABELS, 0)


def test_precision_recall_per_class_with_zero_division_as_zero():
    precision, recall = precision_recall(np.array([[2, 0, 0], [0, 1, 1], [0, 0, 0]]))
    np.testing.assert_allclose(precision, [1.0, 1.0, 0.0])  # class 2 predicted once, never right
    np.testing.assert_allclose(recall, [1.0, 0.5, 0.0])  # class 2 never present
    with pytest.raises(ValueError, match="cm"):
        precision_recall(np.zeros((2, 3)))
