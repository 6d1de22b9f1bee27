"""Model files that are missing, not a model, tampered with, pickled or damaged get a clear error, and
nothing in them runs."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from reliability import says, signs_like

import npconv as nc
from npconv.errors import ModelFileError, ShapeError


@pytest.fixture
def saved(tmp_path):
    """A trained small model saved to ``m.npz``; returns (model, path, arrays in the file)."""
    model = signs_like()
    model.fit(np.random.default_rng(0).random((8, 16, 16, 3)).astype(np.float32), np.arange(8) % 6, epochs=1, verbose=0)
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    return model, path, arrays


def test_missing_model_paths(tmp_path):
    for path in (tmp_path / "nope.npz", tmp_path):
        with pytest.raises(FileNotFoundError) as info:
            nc.load_model(path)
        says(info, "path: expected an existing npconv model file", str(path), "Check the file name")


def test_not_a_model_file(tmp_path, saved):
    _, good, _ = saved
    text = tmp_path / "model.h5"
    text.write_text("model weights, trust me")
    with pytest.raises(ModelFileError) as info:
        nc.load_model(text)
    says(info, str(text), "not an npconv model file", "a text file", "model.save")
    assert "allow_pickle" not in str(info.value)  # never advise loading pickles
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ModelFileError) as info:
        nc.load_model(cut)
    says(info, str(cut), "save the model again")


def rewrite(path, arrays, **changes):
    np.savez(path, **{**arrays, **changes})
    return path


def edit_config(arrays, edit):
    config = json.loads(str(arrays["__config__"]))
    edit(config)
    return np.array(json.dumps(config))


def test_tampered_model_files(tmp_path, saved):
    _, _, arrays = saved

    def set_filters(c):
        c["model"]["config"]["layers"][0]["config"]["filters"] = -2

    def foreign_optimizer(c):
        c["compile"]["optimizer"]["class_name"] = "Evil"

    cases = [
        ("json.npz", {"__config__": np.array(str(arrays["__config__"])[:-7])}, ["model description is damaged"]),
        (
            "filters.npz",
            {"__config__": edit_config(arrays, set_filters)},
            ["model description is damaged", "filters: expected a positive integer"],
        ),
        ("version.npz", {"__npconv__": np.array("x")}, ["format version 'x'", "reads version 1"]),
        (
            "optimizer.npz",
            {"__config__": edit_config(arrays, foreign_optimizer)},
            ["training settings are damaged", "'Evil'", "compile=False"],
        ),
        (
            "state.npz",
            {"optimizer/m/0": np.zeros(3, np.float32)},
            ["training settings are damaged", "optimizer state m/0: expected shape (3, 3, 3, 2)", "got shape (3,)"],
        ),
        (
            "slots.npz",
            {"optimizer/v/1": None},
            ["training settings are damaged", "optimizer slot 'v'", "v/0 ... v/3", "['0', '2', '3']"],
        ),
    ]
    for name, change, parts in cases:
        path = tmp_path / name
        np.savez(path, **{k: v for k, v in {**arrays, **change}.items() if v is not None})
        with pytest.raises(ModelFileError) as info:
            nc.load_model(path)
        says(info, str(path), *parts)
    # The weights of a file with damaged training settings still load, as the message says.
    assert nc.load_model(tmp_path / "optimizer.npz", compile=False).built


class _Armed:
    """Unpickling this creates ``marker``: what a malicious model file would do instead."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_pickled_objects_are_never_loaded(tmp_path, saved):
    _, _, arrays = saved
    marker = tmp_path / "code-ran"
    armed = np.array([_Armed(str(marker))], dtype=object)
    for key in ("conv2d/kernel", "__config__"):
        path = tmp_path / f"armed-{key.replace('/', '-')}.npz"
        np.savez(path, allow_pickle=True, **{**arrays, key: armed})
        with pytest.raises(ModelFileError) as info:
            nc.load_model(path)
        says(info, str(path), repr(key), "pickled Python objects", "never loads")
        with pytest.raises(ModelFileError):
            signs_like().load_weights(path)
        assert not marker.exists()
    with np.load(path, allow_pickle=True) as f:  # control: the file really was armed
        f["__config__"]
    assert marker.exists()


def test_weights_missing_or_damaged(tmp_path, saved):
    _, _, arrays = saved
    missing = tmp_path / "missing.npz"
    np.savez(missing, **{k: v for k, v in arrays.items() if k != "dense/bias"})
    with pytest.raises(ModelFileError) as info:
        nc.load_model(missing)
    says(info, str(missing), "missing ['dense/bias']", "different architecture")
    bias = arrays["dense/bias"]
    for name, value, got in [
        ("int.npz", bias.astype(np.int64), "dtype int64"),
        ("text.npz", np.array(["a"] * bias.size), "dtype <U1"),
        ("nan.npz", np.full_like(bias, np.nan), "6 NaN or infinite"),
    ]:
        path = rewrite(tmp_path / name, arrays, **{"dense/bias": value})
        with pytest.raises(ModelFileError) as info:
            nc.load_model(path)
        says(info, f"weight dense/bias in {path}", "finite floating-point values", got, "damaged")
    path = rewrite(tmp_path / "shape.npz", arrays, **{"dense/bias": np.zeros(5, np.float32)})
    with pytest.raises(ShapeError) as info:
        nc.load_model(path)
    says(info, "weight dense/bias", "shape (6,)", "shape (5,)", "other layer sizes")
