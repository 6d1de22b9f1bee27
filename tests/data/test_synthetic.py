"""The built-in smiley faces and the load_dataset dispatcher."""

from __future__ import annotations

import numpy as np
import pytest

from npconv.data import list_builtin, load_dataset, make_smiley_faces


def test_shapes_labels_and_determinism():
    data = make_smiley_faces(600, seed=0)  # its speed (target < 2 s): benchmarks/data_loading.py
    assert data.x.shape == (600, 64, 64, 3) and data.x.dtype == np.uint8
    assert data.y.dtype == np.int64 and np.bincount(data.y).tolist() == [300, 300]
    assert data.class_names == ["not smiling", "smiling"]
    assert np.array_equal(make_smiley_faces(20, seed=4).x, make_smiley_faces(20, seed=4).x)
    assert not np.array_equal(make_smiley_faces(20, seed=4).x, make_smiley_faces(20, seed=5).x)


def test_mean_colour_does_not_give_the_label_away():
    data = make_smiley_faces(600, seed=1)
    means = data.x.reshape(len(data), -1).mean(axis=1)
    # A threshold on mean brightness is close to chance.
    best = max(np.mean((means > t) == data.y) for t in np.quantile(means, np.linspace(0.05, 0.95, 19)))
    assert max(best, 1 - best) < 0.65


def test_load_dataset_dispatch(data_dir):
    assert "smiles" in list_builtin()
    data = load_dataset("builtin:smiles", image_size=32, color_mode="grayscale", n=10, seed=2)
    assert data.x.shape == (10, 32, 32, 1)
    assert len(load_dataset("happy/test_happy.h5", data_dir=data_dir)) == 150
    with pytest.raises(ValueError, match="builtin:smiles"):
        load_dataset("builtin:nope")
    with pytest.raises(FileNotFoundError, match="builtin:smiles"):
        load_dataset("no/such/thing", data_dir=data_dir)
