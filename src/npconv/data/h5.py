"""The course's HDF5 files: ``train_set_x``/``train_set_y`` (or ``test_set_*``) and ``list_classes``."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import DataError, ShapeError, expected
from .dataset import Dataset
from .paths import find_file

_LAYOUTS = {"train": ("train_set_x", "train_set_y"), "test": ("test_set_x", "test_set_y")}
_CLASSES_KEY = "list_classes"


def _open(path: str | os.PathLike) -> h5py.File:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            expected("path", "an existing .h5 file", str(path), "Check the path, or set NPCONV_DATA / --data-dir.")
        )
    if not h5py.is_hdf5(path):
        with open(path, "rb") as handle:
            head = handle.read(64)
        kind = "a text file" if head and all(32 <= b < 127 or b in b"\r\n\t" for b in head) else "not HDF5"
        raise DataError(
            expected(
                "path",
                "an HDF5 file (.h5)",
                f"{path} ({kind})",
                "The file may be truncated, an HTML error page saved by a browser, "
                "or another format renamed .h5; download it again.",
            )
        )
    try:
        return h5py.File(path, "r")
    except OSError as exc:  # the HDF5 signature is there but the rest is not: a cut download
        raise DataError(
            expected(
                "path",
                "a complete HDF5 file",
                f"{path} ({exc})",
                "The file is probably truncated; download or copy it again.",
            )
        ) from exc


def _pick_layout(keys: list[str], split: str | None, path: Path) -> tuple[str, str]:
    candidates = [split] if split is not None else ["train", "test"]
    for name in candidates:
        if name not in _LAYOUTS:
            raise ValueError(expected("split", "'train', 'test' or None", split))
        x_key, y_key = _LAYOUTS[name]
        if x_key in keys and y_key in keys:
            return x_key, y_key
    wanted = " or ".join(f"{x}+{y}" for x, y in (_LAYOUTS[n] for n in candidates))
    raise DataError(
        expected(
            f"{path}",
            f"the course keys {wanted} (and {_CLASSES_KEY})",
            f"keys {sorted(keys)}",
            "Write the images under train_set_x/test_set_x (uint8, (m, 64, 64, 3)) "
            "and the labels under train_set_y/test_set_y.",
        )
    )


def _images(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:  # (m, H, W) grayscale: give it its channel axis
        x = x[..., None]
    if x.ndim != 4:
        raise ShapeError(
            expected(where, "images of shape (m, n_H, n_W, n_C)", x, "Store one image per row of the first axis.")
        )
    if x.dtype == np.uint8:
        return x
    # Whole numbers 0..255 in another dtype are pixels; fractions (images scaled to [0, 1]) are not.
    if (
        x.dtype.kind not in "uif"
        or not np.all(np.isfinite(x))
        or x.min() < 0
        or x.max() > 255
        or (x.dtype.kind == "f" and not np.all(np.mod(x, 1) == 0))
    ):
        raise DataError(
            expected(
                where,
                "pixel values 0..255 (uint8)",
                x,
                "Store images as uint8, e.g. np.rint(x * 255).astype(np.uint8) for images scaled to [0, 1].",
            )
        )
    return np.rint(x).astype(np.uint8)


def _labels(y: np.ndarray, m: int, where: str) -> np.ndarray:
    if y.ndim == 2 and 1 in y.shape:  # the course's (1, m) row, or a (m, 1) column
        y = y.reshape(-1)
    if y.ndim != 1:
        raise ShapeError(expected(where, "labels of shape (m,) or (1, m)", y))
    if y.dtype.kind not in "biuf" or (y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0)):
        raise DataError(
            expected(where, "integer class labels", y, "Store class indices 0..K-1, not one-hot rows or probabilities.")
        )
    if y.shape[0] != m:
        raise ShapeError(
            expected(
                where,
                f"{m} labels, one per image",
                f"{y.shape[0]} labels",
                "The x and y data sets must have the same length.",
            )
        )
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise DataError(expected(where, "labels >= 0", f"minimum {y.min()}"))
    return y


def _class_names(f: h5py.File, y: np.ndarray) -> list[str]:
    if _CLASSES_KEY in f:
        raw = np.asarray(f[_CLASSES_KEY][:]).reshape(-1)
        return [v.decode() if isinstance(v, bytes) else str(v) for v in raw.tolist()]
    return [str(i) for i in range(int(y.max()) + 1 if y.size else 0)]


def load_h5(path: str | os.PathLike, split: str | None = None) -> Dataset:
    """Load one course-layout .h5 file as a :class:`Dataset` (x uint8 (m, n_H, n_W, n_C), y int64 (m,)).

    ``split`` picks ``"train"`` or ``"test"`` keys; by default whichever the file has (train first).
    """
    path = Path(path)
    with _open(path) as f:
        x_key, y_key = _pick_layout(list(f.keys()), split, path)
        x = _images(np.asarray(f[x_key][:]), f"{path.name}[{x_key}]")
        y = _labels(np.asarray(f[y_key][:]), x.shape[0], f"{path.name}[{y_key}]")
        names = _class_names(f, y)
    if x.shape[0] == 0:
        raise DataError(
            expected(
                f"{path.name}[{x_key}]",
                "at least one image",
                x,
                "The file holds an empty data set; check how it was written.",
            )
        )
    if y.size and y.max() >= len(names):
        raise DataError(
            expected(f"{path.name}[{y_key}]", f"labels below {len(names)} ({_CLASSES_KEY})", f"maximum {y.max()}")
        )
    return Dataset(x, y, names, str(path))


def _course_arrays(path: Path, x_key: str, y_key: str):
    """Exactly the course's ``np.array(f[key][:])``, with y reshaped to (1, m)."""
    with _open(path) as f:
        missing = [k for k in (x_key, y_key, _CLASSES_KEY) if k not in f]
        if missing:
            raise DataError(
                expected(str(path), f"the keys {x_key}, {y_key}, {_CLASSES_KEY}", f"keys {sorted(f.keys())}")
            )
        x = np.array(f[x_key][:])
        y = np.array(f[y_key][:])
        classes = np.array(f[_CLASSES_KEY][:])
    return x, y.reshape((1, y.shape[0])), classes


def _load_course_pair(train_name: str, test_name: str, data_dir, alternative: str):
    try:
        train_path = find_file(train_name, data_dir)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc} {alternative}") from None
    test_path = find_file(test_name, data_dir)
    x_train, y_train, _ = _course_arrays(train_path, "train_set_x", "train_set_y")
    x_test, y_test, classes = _course_arrays(test_path, "test_set_x", "test_set_y")
    return x_train, y_train, x_test, y_test, classes


def load_happy_dataset(data_dir: str | os.PathLike | None = None):
    """The course's ``load_happy_dataset()``: ``X_train_orig (600, 64, 64, 3)`` uint8,
    ``Y_train_orig (1, 600)``, ``X_test_orig (150, 64, 64, 3)``, ``Y_test_orig (1, 150)``, ``classes``.

    Needs ``train_happy.h5`` and ``test_happy.h5`` in the data directory (or its ``happy/`` folder).
    """
    return _load_course_pair(
        "train_happy.h5",
        "test_happy.h5",
        data_dir,
        "Without the course's train file, train on an image folder of smiles "
        "or on the built-in synthetic set 'builtin:smiles'.",
    )


def load_signs_dataset(data_dir: str | os.PathLike | None = None):
    """The course's SIGNS ``load_dataset()``: ``X_train_orig (1080, 64, 64, 3)`` uint8,
    ``Y_train_orig (1, 1080)``, ``X_test_orig (120, 64, 64, 3)``, ``Y_test_orig (1, 120)``,
    ``classes`` ``[0 1 2 3 4 5]``."""
    return _load_course_pair(
        "train_signs.h5",
        "test_signs.h5",
        data_dir,
        "The SIGNS files come with the course's 'Convolution model - Application' assignment.",
    )
