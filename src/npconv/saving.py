"""One-file model format: a ``.npz`` of plain arrays plus a JSON config; no pickle, ever.

Entries
-------
``__npconv__``   format version (int)
``__config__``   JSON: ``{"kind": "model" | "weights", "model": {"class_name", "config"} (``to_json``),
                 "compile": {"optimizer", "loss", "metrics"} | null, "metadata": {...},
                 "training_seed": int | null}`` (the seed of ``fit``'s per-epoch generators)
``<layer>/<weight>``  one array per weight, e.g. ``conv0/kernel``
``optimizer/<key>``   the optimizer state (``iterations``, ``m/0``, ...), so training resumes exactly

Files are written to a temporary file in the target folder, fsynced and renamed into place, so a
crash or a full disk mid-write leaves the previous file intact (and no temporary file behind);
:func:`atomic_write` does the same for any file npconv writes (``npconv tune``'s results and cache).
:func:`model_bytes` is the same file in memory (how a worker process hands a trained model back,
:mod:`npconv.jobs`), and ``load_model`` reads those bytes as it reads a file. Loading uses
``np.load(allow_pickle=False)`` and rebuilds layers from registered class names only: a file can
describe a model, never run code.

This module knows the format, not the model classes: ``npconv.models.load_model`` reads a file
with :func:`read_model_file`, builds the model and hands it to :func:`restore`.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .errors import ModelFileError, ShapeError, expected

__all__ = [
    "save_model",
    "save_weights",
    "load_weights",
    "read_model_file",
    "restore",
    "model_bytes",
    "atomic_write",
    "FORMAT_VERSION",
]

FORMAT_VERSION = 1
_OPTIMIZER = "optimizer/"


# ---------------------------------------------------------------------------- writing


def _write_npz(file, arrays: dict) -> None:
    """Write ``arrays`` into the open binary ``file`` (a seam for crash tests)."""
    np.savez(file, **arrays)


def _file_mode(path: Path) -> int:
    """The permissions a plain ``open(path, "wb")`` would give: the old file's, or 0666 less the umask."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)  # reading the umask means setting it; put it straight back
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path, write) -> None:
    """Write the file ``path`` with ``write(binary_file)``, all or nothing.

    ``write`` fills a temporary file in the same folder, which is fsynced and renamed onto ``path``:
    a crash, a full disk or a Ctrl-C before the rename leaves the previous file (or none) and no
    temporary file. An ``OSError`` says whether the previous file is unchanged.
    """
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise FileNotFoundError(
            expected(
                "path", "a file in an existing folder", str(path), f"Create the folder {str(path.parent)!r} first."
            )
        )
    mode = _file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)  # mkstemp's 0600, else the model would be private whatever the umask
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        os.unlink(tmp)
        if isinstance(exc, OSError):
            previous = "the previous file is unchanged" if path.exists() else "nothing was written"
            message = (
                f"could not write {path} ({exc.strerror or exc}); {previous}. "
                "Free some disk space or save to another folder."
            )
            raise (type(exc)(exc.errno, message) if exc.errno is not None else type(exc)(message)) from exc
        raise


def _atomic_save(path, arrays: dict) -> None:
    atomic_write(path, lambda file: _write_npz(file, arrays))


def _header(kind: str, model, compile_config=None) -> dict:
    config = {
        "kind": kind,
        "model": json.loads(model.to_json()),
        "compile": compile_config,
        "metadata": model.metadata,
        "training_seed": model._training_seed,
    }
    try:
        text = json.dumps(config)
    except TypeError as exc:
        raise TypeError(
            expected(
                "model.metadata",
                "a JSON-serialisable dict (str, numbers, lists, dicts)",
                str(exc),
                "Convert arrays with .tolist().",
            )
        ) from None
    return {"__npconv__": np.array(FORMAT_VERSION), "__config__": np.array(text)}


def _weight_arrays(model) -> dict:
    return {f"{layer.name}/{w.name}": w.value for layer in model.layers for w in layer.weights}


def _model_arrays(model) -> dict:
    """Every entry of the model's file: header, weights, and (compiled) the optimizer state."""
    compile_config = None
    arrays = _weight_arrays(model)
    if model._compiled:
        from . import losses, optimizers

        compile_config = {
            "optimizer": optimizers.serialize(model.optimizer),
            "loss": losses.serialize(model.loss),
            "metrics": list(model._metric_names),
        }
        arrays.update({_OPTIMIZER + k: v for k, v in _optimizer_state(model).items()})
    return {**_header("model", model, compile_config), **arrays}


def save_model(model, path) -> None:
    """Save architecture, weights, compile settings, optimizer state and ``model.metadata`` to ``path``."""
    _atomic_save(path, _model_arrays(model))


def model_bytes(model) -> bytes:
    """The file :func:`save_model` would write, as bytes (``load_model(bytes)`` reads them back)."""
    buffer = io.BytesIO()
    _write_npz(buffer, _model_arrays(model))
    return buffer.getvalue()


def _optimizer_state(model) -> dict:
    """The optimizer's state, without its slots when layers were frozen or unfrozen since it last
    updated (they belong to the old set of trainable weights, and would not load)."""
    state = model.optimizer.get_state()
    updated = model._updated_weights
    if updated is not None and [id(w) for w in updated] != [id(w) for w in model.trainable_weights] and len(state) > 1:
        warnings.warn(
            "save: trainable changed since the last fit, so the optimizer's moments are not "
            "saved (they belong to the old trainable weights); training from the file starts "
            "them afresh, as compile() would.",
            stacklevel=3,
        )
        state = {"iterations": state["iterations"]}
    return state


def save_weights(model, path) -> None:
    """Save only the weights (``<layer>/<weight>`` arrays) to ``path``."""
    _atomic_save(path, {**_header("weights", model), **_weight_arrays(model)})


# ---------------------------------------------------------------------------- reading


def _first_bytes(source, n: int = 64) -> bytes:
    if isinstance(source, Path):
        with open(source, "rb") as handle:
            return handle.read(n)
    return source.getvalue()[:n]


def read_model_file(path) -> tuple[dict, dict]:
    """``(config, arrays)`` from an npconv file, or from its bytes (:func:`model_bytes`), with a clear
    error for anything else."""
    if isinstance(path, (bytes, bytearray, memoryview)):
        source, path = io.BytesIO(path), "the model's bytes"
    else:
        path = source = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                expected(
                    "path", "an existing npconv model file", str(path), "Check the file name and the working folder."
                )
            )
    if not zipfile.is_zipfile(source):  # np.load would try to unpickle it: say what it is instead
        head = _first_bytes(source)
        kind = (
            "a text file"
            if head and all(32 <= b < 127 or b in b"\r\n\t" for b in head)
            else "truncated or of another format"
        )
        raise ModelFileError(
            f"{path}: not an npconv model file ({kind}; npconv saves .npz zip "
            "archives with model.save). Check the file name, or save the model again."
        )
    arrays = {}
    try:
        with np.load(source, allow_pickle=False) as data:
            for key in data.files:
                arrays[key] = data[key]
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise ModelFileError(
                f"{path}: not a readable npconv file (ValueError: {exc}). Save the model again."
            ) from None
        raise ModelFileError(
            f"{path}: the entry {key!r} holds pickled Python objects, which npconv "
            "never loads (unpickling can run code). npconv files hold plain arrays "
            "only; this file was written by something else."
        ) from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise ModelFileError(
            f"{path}: not a readable npconv file ({type(exc).__name__}: {exc}). "
            "It may be truncated (an interrupted copy or download) or of another "
            "format; save the model again."
        ) from None
    if "__npconv__" not in arrays or "__config__" not in arrays:
        raise ModelFileError(
            f"{path}: an .npz file but not an npconv model (no __npconv__/__config__ "
            "entries). Save it with model.save(path)."
        )
    version = arrays.pop("__npconv__")
    try:
        version = int(version)
    except (TypeError, ValueError):
        version = repr(str(version))
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format version {version}, but this npconv reads version "
            f"{FORMAT_VERSION}. Upgrade npconv or re-save the model."
        )
    try:
        config = json.loads(str(arrays.pop("__config__")))
        for key in ("kind", "model", "metadata"):
            config[key]  # noqa: B018 - presence check
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ModelFileError(
            f"{path}: the model description is damaged ({type(exc).__name__}: {exc}). Save the model again."
        ) from None
    return config, arrays


def _assign_weights(model, arrays: dict, path) -> None:
    """Copy every ``<layer>/<weight>`` array into ``model``, checking names and shapes first."""
    mine = {f"{layer.name}/{w.name}": w for layer in model.layers for w in layer.weights}
    stored = {k: v for k, v in arrays.items() if not k.startswith(_OPTIMIZER)}
    missing, extra = sorted(set(mine) - set(stored)), sorted(set(stored) - set(mine))
    if missing or extra:
        raise ModelFileError(
            f"{path}: the weights do not match the model: missing {missing}, "
            f"unexpected {extra}. Was it saved from a different architecture?"
        )
    for name, w in mine.items():
        if stored[name].shape != w.value.shape:
            raise ShapeError(
                expected(
                    f"weight {name} in {path}",
                    f"shape {w.value.shape} (the model's)",
                    f"shape {stored[name].shape}",
                    "The file was saved from a model with other layer sizes.",
                )
            )
        value = stored[name]
        bad = value if value.dtype.kind != "f" else np.size(value) - np.count_nonzero(np.isfinite(value))
        if value.dtype.kind != "f" or bad:
            got = value if value.dtype.kind != "f" else f"{bad} NaN or infinite value(s)"
            raise ModelFileError(
                expected(
                    f"weight {name} in {path}",
                    "finite floating-point values",
                    got,
                    "The file is damaged; save the model again.",
                )
            )
    for name, w in mine.items():
        w.value[...] = stored[name]


def _check_slots(state: dict, params: list) -> None:
    """Every optimizer slot ``<slot>/<i>`` has one array per trainable weight, shaped like it (the
    optimizer itself would only notice at the next update, with a message about the caller's code)."""
    slots: dict[str, list] = {}
    for key, value in state.items():
        slot, _, index = key.rpartition("/")
        if slot:
            slots.setdefault(slot, []).append((index, value))
    want = [str(i) for i in range(len(params))]
    for slot, entries in slots.items():
        if sorted(i for i, _ in entries) != sorted(want):
            raise ValueError(
                expected(
                    f"optimizer slot {slot!r}",
                    f"{slot}/0 ... {slot}/{len(params) - 1}, one per trainable weight",
                    f"{sorted(i for i, _ in entries)}",
                )
            )
        for index, value in entries:
            if value.shape != params[int(index)].shape:
                raise ValueError(
                    expected(
                        f"optimizer state {slot}/{index}",
                        f"shape {params[int(index)].shape} (its weight's)",
                        f"shape {value.shape}",
                    )
                )


def restore(model, config: dict, arrays: dict, path, compile=True) -> None:
    """Fill a model built from ``config["model"]`` from its file: weights, metadata, training seed,
    and (with ``compile``) the compile settings and optimizer state, so ``fit`` resumes exactly."""
    _assign_weights(model, arrays, path)
    model.metadata = dict(config["metadata"])
    model._training_seed = config.get("training_seed")
    if compile and config.get("compile"):
        c = config["compile"]
        state = {k[len(_OPTIMIZER) :]: v for k, v in arrays.items() if k.startswith(_OPTIMIZER)}
        try:
            model.compile(optimizer=c["optimizer"], loss=c["loss"], metrics=c["metrics"])
            if state:
                _check_slots(state, [w.value for w in model.trainable_weights])
                model.optimizer.set_state(state)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(
                f"{path}: the training settings are damaged ({type(exc).__name__}: "
                f"{exc}). Load it with compile=False and compile it again."
            ) from None


def load_weights(model, path) -> None:
    """Load weights saved by ``save_weights`` or ``save`` into ``model`` (names and shapes must match)."""
    _, arrays = read_model_file(path)
    _assign_weights(model, arrays, path)
