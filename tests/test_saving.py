"""Saving: one .npz with architecture, weights, optimizer state; atomic writes; clear load errors."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

import npconv as nc
from npconv import layers as L
from npconv import saving
from npconv.errors import ModelFileError, ShapeError


def make_model():
    model = nc.Sequential(
        [
            L.Conv2D(3, 3, padding="same", input_shape=(6, 6, 2), name="conv"),
            L.BatchNormalization(),
            L.ReLU(),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dropout(0.2),
            L.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def data(m=48):
    rng = np.random.default_rng(0)
    x = rng.random((m, 6, 6, 2)).astype(np.float32)
    return x, (x[:, :3].mean(axis=(1, 2, 3)) > 0.5).astype(np.float32)[:, None]


def test_round_trip_predicts_identically_and_keeps_metadata(tmp_path):
    nc.utils.set_random_seed(0)
    model = make_model()
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    model.metadata = {"class_names": ["no", "yes"], "value_scale": 255}
    model.save(tmp_path / "m.npz")
    loaded = nc.load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.metadata == model.metadata
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert loaded.optimizer.get_config() == model.optimizer.get_config()


def test_functional_round_trip(tmp_path):
    inputs = nc.Input(shape=(4, 4, 2))
    h = L.Conv2D(2, 3, padding="same")(inputs)
    out = L.Dense(2, activation="softmax")(L.GlobalMaxPooling2D()(L.Add()([h, inputs])))
    model = nc.Model(inputs=inputs, outputs=out)
    model.save(tmp_path / "f.npz")
    x = np.random.default_rng(0).random((3, 4, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(nc.load_model(tmp_path / "f.npz").predict(x), model.predict(x))


def test_resume_is_bit_identical_to_training_straight(tmp_path):
    x, y = data()

    def fresh():
        nc.utils.set_random_seed(7)
        return make_model()

    straight = fresh()
    straight.fit(x, y, epochs=3, batch_size=16, verbose=0)
    first = fresh()
    first.fit(x, y, epochs=2, batch_size=16, verbose=0)
    first.save(tmp_path / "half.npz")
    resumed = nc.load_model(tmp_path / "half.npz")
    resumed.fit(x, y, epochs=3, initial_epoch=2, batch_size=16, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_adamw_and_label_smoothing_are_saved_and_resume_exactly(tmp_path):
    x, y = data()

    def fresh():
        nc.utils.set_random_seed(3)
        model = make_model()
        model.compile(
            optimizer=nc.optimizers.AdamW(0.01, weight_decay=0.05),
            loss=nc.losses.BinaryCrossentropy(label_smoothing=0.1),
            metrics=["accuracy"],
        )
        return model

    straight = fresh()
    straight.fit(x, y, epochs=2, batch_size=16, verbose=0)
    first = fresh()
    first.fit(x, y, epochs=1, batch_size=16, verbose=0)
    first.save(tmp_path / "half.npz")
    resumed = nc.load_model(tmp_path / "half.npz")
    assert type(resumed.optimizer) is nc.optimizers.AdamW and resumed.optimizer.weight_decay == 0.05
    assert resumed.loss.label_smoothing == 0.1
    resumed.fit(x, y, epochs=2, initial_epoch=1, batch_size=16, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_zoom_and_contrast_layers_are_saved(tmp_path):
    model = nc.Sequential(
        [
            L.RandomZoom((-0.2, 0.3), fill_mode="constant", fill_value=0.5, input_shape=(6, 6, 2), name="zoom"),
            L.RandomContrast(0.4, value_range=(0, 1), name="contrast"),
            L.Flatten(),
            L.Dense(1, activation="sigmoid"),
        ]
    )
    model.save(tmp_path / "aug.npz")
    loaded = nc.load_model(tmp_path / "aug.npz")
    for name in ("zoom", "contrast"):
        assert loaded.get_layer(name).get_config() == model.get_layer(name).get_config()
    x = data(4)[0]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_weights_only_round_trip_and_mismatch(tmp_path):
    model = make_model()
    model.save_weights(tmp_path / "w.npz")
    other = make_model()
    assert not np.array_equal(other.get_weights()[0], model.get_weights()[0])  # loading has work to do
    other.load_weights(tmp_path / "w.npz")
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    wider = nc.Sequential(
        [
            L.Conv2D(4, 3, padding="same", input_shape=(6, 6, 2), name="conv"),
            L.BatchNormalization(),
            L.ReLU(),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dropout(0.2),
            L.Dense(1, activation="sigmoid"),
        ]
    )
    with pytest.raises(ShapeError, match="conv/kernel"):
        wider.load_weights(tmp_path / "w.npz")
    with pytest.raises(ModelFileError, match="missing"):
        nc.Sequential([L.Dense(1, input_shape=(3,), name="d")]).load_weights(tmp_path / "w.npz")


def test_model_bytes_are_the_saved_file_and_load_as_it_does(tmp_path):
    """A worker process hands a trained model back as bytes (npconv.jobs): the same file, in memory."""
    nc.utils.set_random_seed(0)
    model = make_model()
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    content = saving.model_bytes(model)
    with np.load(tmp_path / "m.npz") as saved, np.load(io.BytesIO(content)) as sent:
        assert saved.files == sent.files
        for key in saved.files:
            np.testing.assert_array_equal(saved[key], sent[key])
    loaded = nc.load_model(content)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    loaded.fit(x, y, epochs=1, verbose=0)  # compiled, with the optimizer state
    with pytest.raises(ModelFileError, match="the model's bytes: not an npconv model file"):
        nc.load_model(b"hello")


def test_atomic_write_leaves_the_old_file_or_none(tmp_path):
    path = tmp_path / "results.json"
    saving.atomic_write(path, lambda f: f.write(b"old"))

    def interrupted(file):
        file.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        saving.atomic_write(path, interrupted)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_crash_mid_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    model = make_model()
    model.save(path)
    before = path.read_bytes()

    def crash(file, arrays):
        file.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(saving, "_write_npz", crash)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_bad_files_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        nc.load_model(tmp_path / "nope.npz")
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="notes.npz"):
        nc.load_model(text)
    good = tmp_path / "m.npz"
    make_model().save(good)
    truncated = tmp_path / "cut.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="cut.npz.*truncated"):
        nc.load_model(truncated)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(ModelFileError, match="not an npconv model"):
        nc.load_model(plain)


def _rewrite_config(src, dst, edit):
    with np.load(src) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["__config__"] = np.array(edit(str(arrays["__config__"])))
    np.savez(dst, **arrays)


def test_tampered_configs_are_refused(tmp_path):
    good = tmp_path / "m.npz"
    make_model().save(good)
    _rewrite_config(good, tmp_path / "json.npz", lambda s: s[:-5])
    with pytest.raises(ModelFileError, match="damaged"):
        nc.load_model(tmp_path / "json.npz")
    _rewrite_config(good, tmp_path / "class.npz", lambda s: s.replace('"Conv2D"', '"os.system"'))
    with pytest.raises(ModelFileError, match="class.npz.*Conv2D.*'os.system'"):
        nc.load_model(tmp_path / "class.npz")

    def drop_key(s):
        config = json.loads(s)
        del config["model"]["config"]["layers"]
        return json.dumps(config)

    _rewrite_config(good, tmp_path / "key.npz", drop_key)
    with pytest.raises(ModelFileError, match="damaged"):
        nc.load_model(tmp_path / "key.npz")


def test_files_hold_no_pickles(tmp_path):
    make_model().save(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        for name in z.namelist():
            assert np.load(z.open(name), allow_pickle=False) is not None


def test_to_json_heads_the_file_and_model_from_json_rebuilds_the_architecture(tmp_path):
    model = make_model()
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as data:
        assert json.loads(str(data["__config__"]))["model"] == json.loads(model.to_json())
    rebuilt = nc.models.model_from_json(model.to_json())
    assert [type(l) for l in rebuilt.layers] == [type(l) for l in model.layers]
    assert rebuilt.count_params() == model.count_params() and rebuilt.to_json() == model.to_json()


def test_saving_knows_the_format_not_the_model_classes():
    """The file format does not import npconv.models (models imports saving: no import circle)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(saving))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names} | {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    }
    assert "models" not in imported


def test_saved_files_get_the_permissions_open_would_give(tmp_path):
    """Written through a temporary file (mode 0600) and renamed, a model must still honour the
    umask when new, and keep its permissions when replaced."""
    import os

    model = make_model()
    previous = os.umask(0o022)
    try:
        model.save(tmp_path / "shared.npz")
        assert (tmp_path / "shared.npz").stat().st_mode & 0o777 == 0o644
        os.umask(0o027)
        model.save_weights(tmp_path / "group.npz")
        assert (tmp_path / "group.npz").stat().st_mode & 0o777 == 0o640
        os.chmod(tmp_path / "shared.npz", 0o600)
        model.save(tmp_path / "shared.npz")
        assert (tmp_path / "shared.npz").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(previous)
