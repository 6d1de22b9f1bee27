"""Train/validation splits and k-fold indices: deterministic, stratified, covering, disjoint."""

from __future__ import annotations

import numpy as np
import pytest

from npconv.data import Dataset, kfold_indices, train_val_split

Y = np.repeat([0, 1, 2], [30, 60, 10])


def test_train_val_split_is_deterministic_and_stratified():
    x = np.arange(Y.size)
    (x_tr, y_tr), (x_val, y_val) = train_val_split((x, Y), val_fraction=0.2, seed=1)
    (x_tr2, _), (x_val2, _) = train_val_split((x, Y), val_fraction=0.2, seed=1)
    assert np.array_equal(x_val, x_val2) and np.array_equal(x_tr, x_tr2)
    assert np.bincount(y_val).tolist() == [6, 12, 2]  # each class keeps its share
    assert sorted(np.concatenate([x_tr, x_val]).tolist()) == x.tolist()
    (_, _), (x_val3, _) = train_val_split((x, Y), val_fraction=0.2, seed=2)
    assert not np.array_equal(x_val, x_val3)


def test_train_val_split_dataset_and_course_rows():
    data = Dataset(np.zeros((100, 2, 2, 1), np.uint8), Y, ["a", "b", "c"], "test", [str(i) for i in range(100)])
    train, val = train_val_split(data, 0.3)
    assert len(val) == 30 and np.bincount(val.y).tolist() == [9, 18, 3]  # 30%, stratified
    assert sorted(train.paths + val.paths, key=int) == data.paths and train.class_names == ["a", "b", "c"]
    np.testing.assert_array_equal(val.y, Y[[int(p) for p in val.paths]])  # labels travel with their images
    (_, y_tr), (_, y_val) = train_val_split((np.zeros(100), Y[None, :]), 0.3)
    assert y_tr.shape[0] == 1 and y_tr.shape[1] + y_val.shape[1] == 100


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1e-4])
def test_train_val_split_refuses_empty_parts(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split((np.zeros(Y.size), Y), fraction)


@pytest.mark.parametrize("stratify", [True, False])
def test_kfold_covers_every_example_once(stratify):
    folds = list(kfold_indices(Y, 5, seed=3, stratify=stratify))
    tests = np.concatenate([test for _, test in folds])
    assert sorted(tests.tolist()) == list(range(Y.size))
    for train, test in folds:
        assert not np.intersect1d(train, test).size and train.size + test.size == Y.size
    again = list(kfold_indices(Y, 5, seed=3, stratify=stratify))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))


def test_kfold_stratifies():
    for _, test in kfold_indices(Y, 5):
        assert np.bincount(Y[test], minlength=3).tolist() == [6, 12, 2]


def test_kfold_refuses_bad_k():
    with pytest.raises(ValueError, match="k"):
        list(kfold_indices(Y, 1))
