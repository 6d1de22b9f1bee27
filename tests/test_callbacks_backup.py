"""``npconv.callbacks.BackupAndRestore`` and its file (:mod:`npconv.backup`).

A ``fit`` stopped at any epoch and run again with the callback ends with the weights and history of
a ``fit`` that never stopped, bit for bit: with ``Dropout``, an augmentation layer that owns its
generator (``seed=``), validation, and callbacks that count (``ReduceLROnPlateau``,
``EarlyStopping``). A full disk while writing a backup leaves the previous one.
"""

from __future__ import annotations

import errno

import numpy as np
import pytest

import npconv as nc
from npconv import callbacks as C
from npconv import layers as L
from npconv import saving
from npconv.backup import read_backup, read_backup_state
from npconv.errors import ModelFileError

EPOCHS = 4


class Stop(Exception):
    """Stands for a kill: the process ends without ``fit`` finishing."""


class StopAt(C.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Stop


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8, 8, 1)).astype(np.float32)
    return x, (x.mean(axis=(1, 2, 3)) > 0).astype(np.int64)


def _model():
    """A fresh model, as a new process would build it."""
    nc.utils.set_random_seed(3)
    model = nc.Sequential(
        [
            L.Input((8, 8, 1)),
            L.RandomFlip("horizontal", seed=5),
            L.Conv2D(4, 3, activation="relu"),
            L.Flatten(),
            L.Dropout(0.3),
            L.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _callbacks():
    return [
        C.ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5),
        C.EarlyStopping(monitor="val_loss", patience=3),
    ]


def _fit(model, *callbacks, **kwargs):
    x, y = _data()
    return model.fit(
        x,
        y,
        epochs=EPOCHS,
        batch_size=8,
        verbose=0,
        validation_split=0.25,
        callbacks=[*_callbacks(), *callbacks],
        **kwargs,
    )


@pytest.fixture(scope="module")
def uninterrupted():
    model = _model()
    history = _fit(model)
    return model.get_weights(), history.history


def _assert_same(model, history, uninterrupted):
    weights, expected = uninterrupted
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))
    assert history.history == expected


@pytest.mark.parametrize("stops", [[1], [2, 3], [3]])
def test_a_fit_stopped_at_any_epoch_resumes_to_the_same_bits(stops, uninterrupted, tmp_path):
    backup = tmp_path / "backup"
    for epoch in stops:
        with pytest.raises(Stop):
            _fit(_model(), C.BackupAndRestore(backup), StopAt(epoch))
        assert read_backup_state(backup / "backup.npz")["epoch"] == epoch
    model = _model()
    history = _fit(model, C.BackupAndRestore(backup))
    _assert_same(model, history, uninterrupted)
    assert history.epoch == list(range(EPOCHS))
    assert not backup.exists()  # deleted at the end, with its folder


def test_the_backup_keeps_every_random_stream_and_counter(tmp_path):
    """What resuming needs beyond the model file: the layer's own generator, the callbacks' counters,
    the learning rate ReduceLROnPlateau set."""
    with pytest.raises(Stop):
        _fit(_model(), C.BackupAndRestore(tmp_path), StopAt(2))
    backup = read_backup(tmp_path / "backup.npz")
    assert backup.epoch == 2 and len(backup.history["loss"]) == 2
    assert set(backup.state["generators"]) == {"random_flip"}
    reduce, early = backup.state["callbacks"][1:3]  # after History
    assert set(reduce) == {"best", "wait", "cooldown_counter"} and set(early) == {"best", "wait"}
    assert backup.state["learning_rate"] is not None
    assert backup.config["training_seed"] is not None


def test_ctrl_c_keeps_the_backup_and_delete_checkpoint_false_keeps_it_at_the_end(uninterrupted, tmp_path):
    class CtrlC(C.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    with pytest.warns(UserWarning, match="fit interrupted"):
        _fit(_model(), C.BackupAndRestore(tmp_path), CtrlC())
    assert read_backup_state(tmp_path / "backup.npz")["epoch"] == 2
    model = _model()
    history = _fit(model, C.BackupAndRestore(tmp_path, delete_checkpoint=False))
    _assert_same(model, history, uninterrupted)
    assert read_backup_state(tmp_path / "backup.npz")["epoch"] == EPOCHS


def test_a_full_disk_while_writing_keeps_the_previous_backup(uninterrupted, tmp_path, monkeypatch):
    path = tmp_path / "backup.npz"
    write = saving._write_npz
    first = {}

    def full_after_the_first_backup(file, arrays):
        if "__backup__" in arrays and path.exists():
            first.setdefault("bytes", path.read_bytes())
            file.write(b"half a backup")
            raise OSError(errno.ENOSPC, "No space left on device")
        write(file, arrays)

    monkeypatch.setattr(saving, "_write_npz", full_after_the_first_backup)
    with pytest.warns(UserWarning, match="No space left on device.*previous file is unchanged.*goes on"):
        _fit(_model(), C.BackupAndRestore(tmp_path, delete_checkpoint=False))
    assert path.read_bytes() == first["bytes"] and read_backup_state(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.npz"]  # no temporary file
    monkeypatch.setattr(saving, "_write_npz", write)
    model = _model()
    history = _fit(model, C.BackupAndRestore(tmp_path))
    _assert_same(model, history, uninterrupted)


def test_bad_arguments_and_files_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="save_freq: expected 'epoch'"):
        C.BackupAndRestore(tmp_path, save_freq=10)
    (tmp_path / "backup.npz").write_text("not a backup")
    with pytest.raises(ModelFileError, match="not an npconv model file"):
        _fit(_model(), C.BackupAndRestore(tmp_path))
    model = _model()
    model.save(tmp_path / "backup.npz")
    with pytest.raises(ModelFileError, match="not a training backup"):
        _fit(_model(), C.BackupAndRestore(tmp_path))
