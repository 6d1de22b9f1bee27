"""One-file model format: a ``.npz`` of plain arrays plus a JSON config; no pickle, ever.

Entries
-------
``__npconv__``   format version (int)
``__config__``   JSON: ``{"kind": "model" | "weights", "model": {"class_name", "config"},
                 "compile": {"optimizer", "loss", "metrics"} | null, "metadata": {...}}``
``<layer>/<weight>``  one array per weight, e.g. ``conv0/kernel``
``optimizer/<key>``   the optimizer state (``iterations``, ``m/0``, ...), so training resumes exactly

Files are written to a temporary file in the target folder, fsynced and renamed into place, so a
crash mid-write leaves the previous file intact. Loading uses ``np.load(allow_pickle=False)`` and
rebuilds layers from registered class names only: a file can describe a model, never run code.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import ModelFileError, ShapeError, expected

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_OPTIMIZER = "optimizer/"


# ---------------------------------------------------------------------------- writing

def _write_npz(file, arrays: dict) -> None:
    """Write ``arrays`` into the open binary ``file`` (a seam for crash tests)."""
    np.savez(file, **arrays)


def _atomic_save(path, arrays: dict) -> None:
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise FileNotFoundError(expected("path", "a file in an existing folder", str(path),
                                         f"Create the folder {str(path.parent)!r} first."))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _header(kind: str, model, compile_config=None) -> dict:
    config = {"kind": kind, "model": {"class_name": type(model).__name__, "config": model.get_config()},
              "compile": compile_config, "metadata": model.metadata}
    try:
        text = json.dumps(config)
    except TypeError as exc:
        raise TypeError(expected("model.metadata", "a JSON-serialisable dict (str, numbers, lists, dicts)",
                                 str(exc), "Convert arrays with .tolist().")) from None
    return {"__npconv__": np.array(FORMAT_VERSION), "__config__": np.array(text)}


def _weight_arrays(model) -> dict:
    return {f"{layer.name}/{w.name}": w.value for layer in model.layers for w in layer.weights}


def save_model(model, path) -> None:
    """Save architecture, weights, compile settings, optimizer state and ``model.metadata`` to ``path``."""
    compile_config = None
    arrays = _weight_arrays(model)
    if model._compiled:
        from . import losses, optimizers
        compile_config = {"optimizer": optimizers.serialize(model.optimizer),
                          "loss": losses.serialize(model.loss),
                          "metrics": [n for n in model.metrics_names if isinstance(n, str)]}
        arrays.update({_OPTIMIZER + k: v for k, v in model.optimizer.get_state().items()})
    _atomic_save(path, {**_header("model", model, compile_config), **arrays})


def save_weights(model, path) -> None:
    """Save only the weights (``<layer>/<weight>`` arrays) to ``path``."""
    _atomic_save(path, {**_header("weights", model), **_weight_arrays(model)})


# ---------------------------------------------------------------------------- reading

def _read(path) -> tuple[dict, dict]:
    """``(config, arrays)`` from an npconv file, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(expected("path", "an existing npconv model file", str(path),
                                         "Check the file name and the working folder."))
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise ModelFileError(f"{path}: not a readable npconv file ({type(exc).__name__}: {exc}). "
                             "It may be truncated (an interrupted copy or download) or of another "
                             "format; save the model again.") from None
    if not isinstance(arrays, dict) or "__npconv__" not in arrays or "__config__" not in arrays:
        raise ModelFileError(f"{path}: an .npz file but not an npconv model (no __npconv__/__config__ "
                             "entries). Save it with model.save(path).")
    version = int(arrays.pop("__npconv__"))
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {version}, but this npconv reads version "
                             f"{FORMAT_VERSION}. Upgrade npconv or re-save the model.")
    try:
        config = json.loads(str(arrays.pop("__config__")))
        for key in ("kind", "model", "metadata"):
            config[key]  # noqa: B018 - presence check
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{path}: the model description is damaged ({type(exc).__name__}: {exc}). "
                             "Save the model again.") from None
    return config, arrays


def _assign_weights(model, arrays: dict, path) -> None:
    """Copy every ``<layer>/<weight>`` array into ``model``, checking names and shapes first."""
    mine = {f"{layer.name}/{w.name}": w for layer in model.layers for w in layer.weights}
    stored = {k: v for k, v in arrays.items() if not k.startswith(_OPTIMIZER)}
    missing, extra = sorted(set(mine) - set(stored)), sorted(set(stored) - set(mine))
    if missing or extra:
        raise ModelFileError(f"{path}: the weights do not match the model: missing {missing}, "
                             f"unexpected {extra}. Was it saved from a different architecture?")
    for name, w in mine.items():
        if stored[name].shape != w.value.shape:
            raise ShapeError(expected(f"weight {name} in {path}", f"shape {w.value.shape} (the model's)",
                                      f"shape {stored[name].shape}",
                                      "The file was saved from a model with other layer sizes."))
    for name, w in mine.items():
        w.value[...] = stored[name]


def load_model(path, compile=True):
    """Rebuild the model saved at ``path``: same predictions, and ``fit`` resumes where it stopped.

    Building the layers does not consume the package random stream, so a seeded run that saves and
    reloads goes on exactly like one that did not.
    """
    from . import models, utils
    config, arrays = _read(path)
    spec = config["model"]
    try:
        cls = {"Sequential": models.Sequential, "Model": models.Model}[spec["class_name"]]
        rng = utils.global_rng()
        state = rng.bit_generator.state
        try:
            model = cls.from_config(spec["config"])
        finally:
            rng.bit_generator.state = state
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the model description is damaged ({type(exc).__name__}: {exc}). "
                             "Save the model again.") from None
    _assign_weights(model, arrays, path)
    model.metadata = dict(config["metadata"])
    if compile and config.get("compile"):
        c = config["compile"]
        model.compile(optimizer=c["optimizer"], loss=c["loss"], metrics=c["metrics"])
        state = {k[len(_OPTIMIZER):]: v for k, v in arrays.items() if k.startswith(_OPTIMIZER)}
        if state:
            model.optimizer.set_state(state)
    return model


def load_weights(model, path) -> None:
    """Load weights saved by ``save_weights`` or ``save`` into ``model`` (names and shapes must match)."""
    _, arrays = _read(path)
    _assign_weights(model, arrays, path)
