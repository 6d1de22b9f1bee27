"""Callbacks and the training loop's safety nets: early stopping, checkpoints, learning-rate
changes, progress output, Ctrl-C and divergence."""

from __future__ import annotations

import os
import re
import signal

import numpy as np
import pytest

import npconv as nc
from npconv import callbacks as C
from npconv import layers as L
from npconv.errors import TrainingDivergedError


def model_and_data(lr=0.01, m=40):
    nc.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)[:, None]
    model = nc.Sequential([L.Dense(4, activation="relu", input_shape=(5,)), L.Dense(1, activation="sigmoid")])
    model.compile(optimizer=nc.optimizers.SGD(lr), loss="binary_crossentropy", metrics=["accuracy"])
    return model, x, y


class Recorder(C.Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs)))

    def on_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch))

    def on_train_end(self, logs=None):
        self.calls.append("train_end")


def test_hooks_run_in_keras_order():
    model, x, y = model_and_data()
    recorder = Recorder()
    model.fit(x, y, epochs=2, batch_size=20, callbacks=[recorder], verbose=0)
    assert recorder.calls == [
        "train_begin",
        ("batch_end", 0),
        ("batch_end", 1),
        ("epoch_end", 0, ["accuracy", "loss"]),
        ("batch_end", 0),
        ("batch_end", 1),
        ("epoch_end", 1, ["accuracy", "loss"]),
        "train_end",
    ]


def test_early_stopping_stops_and_restores_the_best_weights():
    model, x, y = model_and_data()
    stopper = C.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    best = {}

    class Spy(C.Callback):
        def on_epoch_end(self, epoch, logs=None):
            best[epoch] = (logs["val_loss"], model.get_weights())

    # A validation set with flipped labels gets worse as training improves.
    history = model.fit(x, y, epochs=20, validation_data=(x, 1 - y), callbacks=[Spy(), stopper], verbose=0)
    epoch = min(best, key=lambda e: best[e][0])
    # patience=1: it stops at the first epoch that does not improve on the best.
    assert len(history.history["loss"]) == epoch + 2 < 20 and stopper.stopped_epoch == epoch + 1
    for a, b in zip(model.get_weights(), best[epoch][1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("patience, stopped_epoch", [(0, 2), (1, 2), (2, 3), (3, 7)])
def test_early_stopping_patience_counts_epochs_without_improvement_as_keras(patience, stopped_epoch):
    model, x, y = model_and_data()
    # Improves at epochs 0 and 1, stalls at 2 and 3, improves at 4, stalls from 5 on.
    script = WeightsPerEpoch("score", [1.0, 0.9, 0.95, 0.92, 0.8, 0.85, 0.85, 0.85, 0.85])
    stopper = C.EarlyStopping(monitor="score", patience=patience)
    history = model.fit(x, y, epochs=9, callbacks=[script, stopper], verbose=0)
    assert stopper.stopped_epoch == stopped_epoch and history.epoch == list(range(stopped_epoch + 1))


def test_model_checkpoint_formats_the_path(tmp_path):
    model, x, y = model_and_data()
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.2f}.npz")
    model.fit(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[C.ModelCheckpoint(pattern)])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[0].startswith("ckpt-01-") and names[1].startswith("ckpt-02-")
    loaded = nc.load_model(tmp_path / names[1])
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


class WeightsPerEpoch(C.Callback):
    """Keeps each epoch's weights; with ``name`` and ``values``, also logs ``values[epoch]`` as ``name``
    (callbacks share one logs dict, so a callback after this one sees the scripted value)."""

    def __init__(self, name=None, values=None):
        self.name, self.values, self.weights = name, values, []

    def on_epoch_end(self, epoch, logs=None):
        if self.name:
            logs[self.name] = self.values[epoch]
        self.weights.append(self.model.get_weights())


@pytest.mark.parametrize(
    "monitor, values, saved_epochs",
    [
        ("val_loss", [0.9, 0.5, 0.7, 0.3, 0.6], [1, 2, 4]),  # min: the lowest (epoch 4), not the last
        ("val_accuracy", [0.2, 0.8, 0.5, 0.8, 0.1], [1, 2]),  # max ("acc" in the name); a tie is no gain
    ],
)
def test_checkpoint_save_best_only_keeps_the_best_epochs_weights(tmp_path, monitor, values, saved_epochs):
    model, x, y = model_and_data()
    script = WeightsPerEpoch(monitor, values)
    model.fit(
        x,
        y,
        epochs=len(values),
        verbose=0,
        callbacks=[
            script,
            C.ModelCheckpoint(tmp_path / "best.npz", monitor=monitor, save_best_only=True, save_weights_only=True),
            C.ModelCheckpoint(tmp_path / "best-{epoch}.npz", monitor=monitor, save_best_only=True),
        ],
    )
    assert sorted(p.name for p in tmp_path.glob("best-*.npz")) == [f"best-{e}.npz" for e in saved_epochs]
    best = saved_epochs[-1] - 1
    model.load_weights(tmp_path / "best.npz")
    for kept, expected in zip(model.get_weights(), script.weights[best]):
        np.testing.assert_array_equal(kept, expected)
    assert not np.array_equal(script.weights[best][0], script.weights[-1][0])  # the last epoch differs


def test_checkpoint_save_best_only_on_a_real_validation_loss(tmp_path):
    model, x, y = model_and_data(lr=0.1)
    spy = WeightsPerEpoch()
    # Flipped validation labels: val_loss is lowest before training has gone far.
    history = model.fit(
        x,
        y,
        epochs=8,
        validation_data=(x, 1 - y),
        verbose=0,
        callbacks=[spy, C.ModelCheckpoint(tmp_path / "best.npz", save_best_only=True)],
    )
    best = int(np.argmin(history.history["val_loss"]))
    assert best < 7
    for kept, expected in zip(nc.load_model(tmp_path / "best.npz").get_weights(), spy.weights[best]):
        np.testing.assert_array_equal(kept, expected)


def test_learning_rate_callbacks():
    model, x, y = model_and_data(lr=0.1)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[C.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))])
    assert model.optimizer.learning_rate == pytest.approx(0.1 / 3)
    model, x, y = model_and_data(lr=0.1)
    plateau = C.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_lr=0.03)
    model.fit(x, y, epochs=6, validation_data=(x, 1 - y), verbose=0, callbacks=[plateau])
    assert model.optimizer.learning_rate == pytest.approx(0.03)


def test_progress_output(capsys):
    model, x, y = model_and_data()
    model.fit(x, y, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert re.search(r"Epoch 1/\d+ - \d+s - loss: ", out) and "Epoch 2/" in out and "accuracy:" in out
    model.fit(x, y, epochs=1, verbose=1)
    assert "Epoch 1" in capsys.readouterr().err  # tqdm writes to stderr
    model.fit(x, y, epochs=1, verbose=0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_ctrl_c_stops_after_the_batch_and_returns_the_history():
    model, x, y = model_and_data()
    snapshots = []

    class Interrupt(C.Callback):
        def on_batch_end(self, batch, logs=None):
            snapshots.append(model.get_weights())
            if len(snapshots) == 5:
                raise KeyboardInterrupt

    with pytest.warns(UserWarning, match="interrupted at epoch 2, batch 1"):
        history = model.fit(x, y, epochs=10, batch_size=10, callbacks=[Interrupt()], verbose=0)
    assert len(history.history["loss"]) == 1 and model.stop_training
    for a, b in zip(model.get_weights(), snapshots[-1]):
        np.testing.assert_array_equal(a, b)


def test_a_real_sigint_is_deferred_to_the_end_of_the_batch():
    # Python's own Ctrl-C handler, as in a terminal: a process started in the background by a
    # non-interactive shell (a CI script's `cmd &`) inherits SIGINT ignored, and fit leaves that alone.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    model, x, y = model_and_data()

    class CtrlC(C.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                os.kill(os.getpid(), signal.SIGINT)

    try:
        with pytest.warns(UserWarning, match="interrupted at epoch 1, batch 2"):
            history = model.fit(x, y, epochs=3, batch_size=10, callbacks=[CtrlC()], verbose=0)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert history.history == {}


def test_divergence_at_the_first_batch_keeps_the_initial_weights():
    # Mid-training divergence (the weights of the last good batch kept) is in engine/test_divergence.py.
    model, x, y = model_and_data(lr=1e30)
    initial = model.get_weights()
    with (
        np.errstate(over="ignore", invalid="ignore"),
        pytest.raises(TrainingDivergedError, match=r"epoch 1, batch 1:.*[Ll]ower the learning rate \(now 1e\+30\)"),
    ):
        model.fit(x * 1e10, y, epochs=5, batch_size=8, verbose=0)
    for kept, expected in zip(model.get_weights(), initial):
        np.testing.assert_array_equal(kept, expected)


def test_callbacks_must_be_callbacks():
    model, x, y = model_and_data()
    with pytest.raises(TypeError, match="Callback"):
        model.fit(x, y, callbacks=[print], verbose=0)
