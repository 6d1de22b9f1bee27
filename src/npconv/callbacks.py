"""Keras's training callbacks: ``History``, ``EarlyStopping``, ``ModelCheckpoint``,
``ReduceLROnPlateau``, ``LearningRateScheduler``, ``BackupAndRestore`` and a tqdm ``ProgressBar``.

``fit`` calls ``on_train_begin``, then per epoch ``on_epoch_begin(epoch)``, ``on_batch_end(batch,
logs)`` after every update (``logs`` hold the epoch's running means) and ``on_epoch_end(epoch, logs)``
with the epoch's ``loss``, metrics and ``val_*`` values; a callback stops training by setting
``model.stop_training = True``.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import numpy as np

from .errors import check_choice, expected

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "EarlyStopping",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "LearningRateScheduler",
    "BackupAndRestore",
    "ProgressBar",
]


class Callback:
    """Base class: override the hooks you need; ``self.model`` is the model being trained."""

    model = None
    #: ``fit``'s settings, as Keras gives them: ``{"verbose": 1, "epochs": 100, "steps": 17}``.
    params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = dict(params)

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...

    def close(self) -> None:
        """Release resources when training stops early (error or Ctrl-C)."""


class CallbackList:
    """Calls every callback's hook in order."""

    def __init__(self, callbacks, model, params=None):
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    expected("callbacks", "a list of npconv.callbacks.Callback objects", type(callback).__name__)
                )
            callback.set_model(model)
            callback.set_params(params or {})
            if isinstance(callback, BackupAndRestore):
                callback.peers = [c for c in self.callbacks if c is not callback]

    def __getattr__(self, hook):
        if not hook.startswith("on_") and hook != "close":
            raise AttributeError(hook)

        def call(*args):
            for callback in self.callbacks:
                getattr(callback, hook)(*args)

        return call


class History(Callback):
    """``history[key]`` is the list of per-epoch values (``"loss"``, ``"accuracy"``, ``"val_loss"`` ...)."""

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch, self.history = [], {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class _Monitor(Callback):
    """Shared by callbacks that watch one logged value and compare it with the best so far."""

    def __init__(self, monitor, mode, min_delta=0.0):
        self.monitor = monitor
        mode = check_choice(mode, "mode", {"auto", "min", "max"})
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.mode = mode
        self.min_delta = abs(float(min_delta))
        self.best = math.inf if mode == "min" else -math.inf

    def _current(self, logs):
        if self.monitor not in (logs or {}):
            warnings.warn(
                f"{type(self).__name__}: monitor {self.monitor!r} is not among the logged "
                f"values {sorted(logs or {})}; pass validation data or pick one of those.",
                stacklevel=3,
            )
            return None
        return float(logs[self.monitor])

    def _improved(self, value) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    #: The counters a resumed training needs (``BackupAndRestore`` saves them with the model).
    _state_keys = ("best",)

    def get_state(self) -> dict:
        return {key: getattr(self, key) for key in self._state_keys}

    def set_state(self, state: dict) -> None:
        for key in self._state_keys:
            setattr(self, key, state[key])


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; optionally
    restore the weights of the best epoch."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, mode="auto", restore_best_weights=False):
        super().__init__(monitor, mode, min_delta)
        self.patience = int(patience)
        self.restore_best_weights = restore_best_weights
        self.wait = 0
        self.stopped_epoch = None
        self.best_weights = None

    _state_keys = ("best", "wait")

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_weights = 0, None, None
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs)
        if value is None:
            return
        if self._improved(value):
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:  # as Keras: patience 0 and 1 both stop at the first stall
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the model (or its weights) after each epoch to ``filepath``, which may hold
    ``{epoch:02d}`` (1-based, as Keras) and logged values like ``{val_loss:.2f}``."""

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, save_weights_only=False, mode="auto"):
        super().__init__(monitor, mode)
        self.filepath = str(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = self._current(logs)
            if value is None or not self._improved(value):
                return
            self.best = value
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as exc:
            raise ValueError(
                expected(
                    "filepath",
                    f"fields among epoch, {', '.join(sorted(logs))}",
                    f"{{{exc.args[0]}}} in {self.filepath!r}",
                )
            ) from None
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls for ``patience`` epochs."""

    def __init__(
        self, monitor="val_loss", factor=0.1, patience=10, mode="auto", min_delta=1e-4, cooldown=0, min_lr=0.0
    ):
        super().__init__(monitor, mode, min_delta)
        if not 0 < factor < 1:
            raise ValueError(expected("factor", "a number in (0, 1)", factor))
        self.factor, self.patience, self.cooldown, self.min_lr = factor, int(patience), int(cooldown), min_lr
        self.wait = self.cooldown_counter = 0

    _state_keys = ("best", "wait", "cooldown_counter")

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs)
        if value is None:
            return
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            old = self.model.optimizer.learning_rate
            self.model.optimizer.learning_rate = max(old * self.factor, self.min_lr)
            self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """``optimizer.learning_rate = schedule(epoch, lr)`` at the start of each epoch (0-based)."""

    def __init__(self, schedule):
        if not callable(schedule):
            raise TypeError(expected("schedule", "a function (epoch, lr) -> lr", type(schedule).__name__))
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        self.model.optimizer.learning_rate = float(self.schedule(epoch, self.model.optimizer.learning_rate))


class BackupAndRestore(Callback):
    """Keep a backup of the training in ``backup_dir`` after every epoch, and go on from it (Keras's).

    At the start of ``fit``, a backup in ``backup_dir`` is put back: the weights, the optimizer's
    state, the training seed and the layers' own generators, the history so far and the counters of
    the other callbacks that keep one (``EarlyStopping``, ``ReduceLROnPlateau``); ``fit`` then goes on
    from the epoch after the last one backed up, and ends with the weights, bit for bit, of a ``fit``
    that was never interrupted (see :mod:`npconv.backup`). After every epoch the backup is
    written, all or nothing (a kill while writing leaves the previous one; a full disk, a warning and
    the previous one). When ``fit`` ends normally (not on Ctrl-C or an error), the backup is deleted
    if ``delete_checkpoint``.

    Call ``fit`` again with the same arguments (``epochs`` included) on a model built and compiled
    as before: ``model.fit(x, y, epochs=10, callbacks=[BackupAndRestore("backup")])``.
    ``EarlyStopping(restore_best_weights=True)`` keeps only the best weights seen since the resume.
    """

    FILE = "backup.npz"

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        if save_freq != "epoch":
            raise ValueError(
                expected("save_freq", "'epoch' (npconv backs up at the end of each epoch)", repr(save_freq))
            )
        self.backup_dir = Path(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self.peers: list = []
        self._pending = None

    @property
    def path(self) -> Path:
        """The backup file, ``backup_dir/backup.npz``."""
        return self.backup_dir / self.FILE

    def on_train_begin(self, logs=None):
        from .backup import read_backup, restore_backup

        backup = read_backup(self.path)
        if backup is None:
            return
        restore_backup(self.model, backup)
        self.model.history.history = {k: list(v) for k, v in backup.history.items()}
        self.model.history.epoch = list(range(backup.epoch - len(backup.history.get("loss", [])), backup.epoch))
        self.model._initial_epoch = backup.epoch
        self._pending = backup  # the other callbacks' counters, once their own on_train_begin has run

    def on_epoch_begin(self, epoch, logs=None):
        if self._pending is not None:
            for callback, saved in zip(self.peers, self._pending.state.get("callbacks", [])):
                if saved is not None and hasattr(callback, "set_state"):
                    callback.set_state(saved)
            self._pending = None

    def on_epoch_end(self, epoch, logs=None):
        from .backup import backup_state, write_or_warn

        self.backup_dir.mkdir(parents=True, exist_ok=True)
        write_or_warn(
            self.path, self.model, backup_state(self.model, epoch + 1, self.model.history.history, self.peers)
        )

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            self.path.unlink(missing_ok=True)
            try:
                self.backup_dir.rmdir()  # when it holds nothing else
            except OSError:
                pass


class ProgressBar(Callback):
    """``verbose=1``: a tqdm bar per epoch with the running loss/metrics; ``verbose=2``: one line per
    epoch, as Keras prints it (``Epoch 3/10 - 2s - loss: 0.4123 - accuracy: 0.8500``)."""

    #: What the bar says while the first batch of a first run waits for Numba to compile the kernels.
    COMPILING = "compiling kernels, first run only (up to three minutes)"

    def __init__(self, verbose=1, epochs=None):
        self.verbose = verbose
        self.epochs = epochs
        self._bar = None
        self._compiling = None  # decided at the first epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._title = f"Epoch {epoch + 1}" + (f"/{self.epochs}" if self.epochs else "")
        self._started = time.perf_counter()
        if self._compiling is None:
            from .functional._tier import kernels_will_compile

            self._compiling = bool(self.verbose) and kernels_will_compile()
        if self.verbose == 1:
            from tqdm.auto import tqdm

            title = f"{self._title} - {self.COMPILING}" if self._compiling else self._title
            self._bar = tqdm(total=(logs or {}).get("steps"), desc=title, unit="batch", leave=True, dynamic_ncols=True)
        elif self._compiling:
            print(f"{self.COMPILING}...", flush=True)
            self._compiling = False

    def on_batch_end(self, batch, logs=None):
        if self._bar is not None:
            if self._compiling:
                # The compilation is not training: the time left is reckoned from the next batch on
                # (a first batch of 20 s had promised "05:05 left").
                self._compiling = False
                self._bar.set_description(self._title, refresh=False)
                self._bar.reset(total=self._bar.total)
            self._bar.update(1)
            self._bar.set_postfix({k: f"{v:.4f}" for k, v in (logs or {}).items()}, refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        text = " - ".join(f"{k}: {v:.4f}" for k, v in (logs or {}).items() if isinstance(v, (float, np.floating)))
        if self._bar is not None:
            self._bar.set_postfix_str(text)
            self.close()
        elif self.verbose == 2:
            print(f"{self._title} - {time.perf_counter() - self._started:.0f}s - {text}")

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
