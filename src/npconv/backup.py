"""A training's backup: one ``.npz`` file that lets ``fit`` go on exactly where it stopped.

The file is the model's own file (:mod:`npconv.saving`: weights, optimizer state, compile settings,
``metadata`` and the training seed from which each epoch's generator is derived) plus one JSON entry,
``__backup__``: the number of epochs finished, the history so far, the position of every generator
a layer owns (layers given ``seed=``), the learning rate when it is a plain number (callbacks such as
``ReduceLROnPlateau`` change it) and the state of the callbacks that keep one (``EarlyStopping``'s and
``ReduceLROnPlateau``'s counters), and whatever its writer adds (``extra``).

That is every random stream a resumed ``fit`` needs: the shuffling, ``Dropout`` and the augmentation
layers draw from a generator that is a function of the training seed, the epoch and the optimizer's
update count (``Training._epoch_rng``), so nothing of a generator's position needs saving but the
layers' own.

The file is written as the model files are (:func:`npconv.saving.atomic_write`): a temporary file in
the same folder, fsynced and renamed onto the old one, so a kill or a full disk while writing leaves
the previous backup whole.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import saving
from .errors import ModelFileError

__all__ = [
    "Backup",
    "backup_state",
    "read_backup",
    "read_backup_state",
    "restore_backup",
    "write_backup",
    "write_or_warn",
]

_STATE = "__backup__"


@dataclass
class Backup:
    """What :func:`read_backup` gives: ``epoch`` (epochs finished), ``history`` (``History.history``),
    ``extra`` (the writer's own JSON values) and the model's ``config`` and ``arrays`` for
    :func:`restore_backup`."""

    path: Path
    epoch: int
    history: dict
    extra: dict
    state: dict
    config: dict
    arrays: dict


def _layer_generators(model) -> dict:
    """The generators the model's layers own (``seed=``), by layer name."""
    return {layer.name: layer._rng for layer in model.layers if getattr(layer, "_rng", None) is not None}


def backup_state(model, epoch: int, history: dict, callbacks=(), extra=None) -> dict:
    """The JSON part of a backup taken after ``epoch`` epochs (see the module docstring)."""
    rate = model.optimizer._learning_rate
    return {
        "epoch": int(epoch),
        "history": history,
        "extra": dict(extra or {}),
        "generators": {name: rng.bit_generator.state for name, rng in _layer_generators(model).items()},
        "learning_rate": rate if isinstance(rate, float) else None,
        "callbacks": [callback.get_state() if hasattr(callback, "get_state") else None for callback in callbacks],
    }


def write_backup(path, model, state: dict) -> None:
    """Write the backup of compiled ``model`` with ``state`` (:func:`backup_state`) to ``path``,
    all or nothing."""
    arrays = saving._model_arrays(model)
    arrays[_STATE] = np.array(json.dumps(state))
    saving.atomic_write(path, lambda file: saving._write_npz(file, arrays))


def write_or_warn(path, model, state: dict) -> bool:
    """:func:`write_backup`, with a warning instead of an error when the disk refuses it (full,
    read-only): the previous backup is then unchanged and training goes on. Returns whether it wrote."""
    try:
        write_backup(path, model, state)
    except OSError as exc:
        warnings.warn(f"{exc} The training goes on; a kill now would resume from the previous backup.", stacklevel=2)
        return False
    return True


def read_backup_state(path) -> dict | None:
    """Only the JSON part of the backup at ``path`` (``None`` when there is none or it is damaged)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data[_STATE]))
    except (OSError, ValueError, KeyError):
        return None


def read_backup(path) -> Backup | None:
    """The backup at ``path``, or ``None`` when there is none (a clear error when it is damaged)."""
    path = Path(path)
    if not path.exists():
        return None
    config, arrays = saving.read_model_file(path)
    if _STATE not in arrays:
        raise ModelFileError(
            f"{path}: an npconv model file, not a training backup (no {_STATE} entry). "
            "Delete it or move it away, then run again."
        )
    state = json.loads(str(arrays.pop(_STATE)))
    return Backup(path, int(state["epoch"]), state["history"], state.get("extra", {}), state, config, arrays)


def restore_backup(model, backup: Backup, callbacks=(), optimizer=True) -> None:
    """Put ``backup`` into the compiled ``model``: weights, training seed, the layers' generators, and
    with ``optimizer`` the optimizer's state and learning rate and the ``callbacks``' states (in the
    order they were saved); the next ``fit`` epoch then runs as it would have."""
    saving._assign_weights(model, backup.arrays, backup.path)
    model._training_seed = backup.config.get("training_seed")
    for name, rng in _layer_generators(model).items():
        if name in backup.state["generators"]:
            rng.bit_generator.state = backup.state["generators"][name]
    if not optimizer:
        return
    prefix = saving._OPTIMIZER
    model.optimizer.set_state({k[len(prefix) :]: v for k, v in backup.arrays.items() if k.startswith(prefix)})
    if backup.state.get("learning_rate") is not None:
        model.optimizer.learning_rate = backup.state["learning_rate"]
    for callback, saved in zip(callbacks, backup.state.get("callbacks", [])):
        if saved is not None and hasattr(callback, "set_state"):
            callback.set_state(saved)
