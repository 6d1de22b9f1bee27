"""Image folders laid out one sub-folder per class, like Keras's ``image_dataset_from_directory``::

root/
  class_a/ img001.jpg img002.png ...
  class_b/ ...
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import DataError, check_positive_int, expected
from .dataset import Dataset
from .images import COLOR_MODES, check_image_options, decode_image
from .paths import user_cache_dir

LAYOUT_HINT = (
    "Expected one sub-folder per class holding its images, e.g. root/smiling/*.jpg and "
    "root/not_smiling/*.jpg; the class names are the sub-folder names, sorted."
)
#: Pillow releases the GIL while decoding, so a few threads overlap the work of small JPEGs.
WORKERS = min(4, os.cpu_count() or 1)


class SkippedFilesWarning(UserWarning):
    """Some files in an image folder could not be read as images and were left out."""


def _visible(entry: os.DirEntry) -> bool:
    return not entry.name.startswith(".")


def _class_folders(root: Path, class_names) -> list[str]:
    if not root.is_dir():
        raise FileNotFoundError(expected("path", "an existing folder of class sub-folders", str(root), LAYOUT_HINT))
    found = sorted(e.name for e in os.scandir(root) if e.is_dir() and _visible(e))
    if class_names is None:
        if not found:
            raise DataError(expected(str(root), "class sub-folders", "no sub-folders", LAYOUT_HINT))
        return found
    names = [str(n) for n in class_names]
    missing = [n for n in names if n not in found]
    if missing:
        raise DataError(
            expected("class_names", f"sub-folders of {root} (found {found})", f"missing {missing}", LAYOUT_HINT)
        )
    return names


def _list_files(root: Path, classes: list[str], max_per_class: int | None):
    """Sorted files per class (hidden files ignored), at most ``max_per_class`` each."""
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(e.path for e in os.scandir(root / name) if e.is_file() and _visible(e))
        files = files[:max_per_class] if max_per_class is not None else files
        paths += files
        labels += [label] * len(files)
    return paths, np.asarray(labels, dtype=np.int64)


def _cache_path(root: Path, paths: list[str], options: dict) -> Path:
    """Cache file keyed by the folder, the options, and every file's name, size and mtime."""
    digest = hashlib.sha256(json.dumps([str(root.resolve()), options], sort_keys=True).encode())
    for p in paths:
        st = os.stat(p)
        digest.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return user_cache_dir() / "folders" / f"{root.name}-{digest.hexdigest()[:20]}.npz"


def _read_cache(path: Path):
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["x"], z["keep"]
    except (OSError, ValueError, KeyError):
        return None


def _write_cache(path: Path, x: np.ndarray, keep: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, x=x, keep=keep)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache must never stop loading
        warnings.warn(f"could not write the image cache {path}: {exc}", RuntimeWarning, stacklevel=3)


def _decode_all(paths, size, color_mode, interpolation, crop, workers):
    """Decode every file into one preallocated batch; return it and the mask of readable files."""
    x = np.zeros((len(paths), size[0], size[1], COLOR_MODES[color_mode][1]), dtype=np.uint8)
    keep = np.ones(len(paths), dtype=bool)
    errors: dict[int, str] = {}

    def work(i: int) -> None:
        try:
            x[i] = decode_image(paths[i], size, color_mode, interpolation, crop)
        except Exception as exc:  # corrupt, truncated, not an image: skip it and say so
            keep[i] = False
            errors[i] = f"{type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(work, range(len(paths)), chunksize=64))
    return x, keep, errors


def load_image_folder(
    path: str | os.PathLike,
    image_size=(64, 64),
    color_mode: str = "rgb",
    class_names=None,
    max_per_class: int | None = None,
    interpolation: str = "bilinear",
    crop_to_aspect_ratio: bool = False,
    cache: bool = False,
    workers: int = WORKERS,
) -> Dataset:
    """Load an image folder (one sub-folder per class) as a :class:`Dataset`.

    Parameters
    ----------
    image_size : (n_H, n_W)
        Every image is resized to this (Pillow, ``interpolation``: bilinear, area, nearest, ...);
        with ``crop_to_aspect_ratio`` the largest centred box of that aspect is cropped first.
    color_mode : "rgb" or "grayscale"
        x is ``(m, n_H, n_W, 3)`` or ``(m, n_H, n_W, 1)``; grayscale files become RGB when asked.
    class_names : list of str, optional
        Sub-folders to use, in label order; default: all sub-folders, sorted.
    max_per_class : int, optional
        Use only the first files (sorted by name) of each class: a quick look at a big folder.
    cache : bool
        Keep the decoded batch in an ``.npz`` in the user cache folder, keyed by the folder, the
        options, and every file's size and mtime; a second load reads it back at disk speed.

    Unreadable files (corrupt, not images) are skipped with one :class:`SkippedFilesWarning`
    that names each of them.
    """
    size, color_mode, interpolation = check_image_options(image_size, color_mode, interpolation)
    if size is None:
        raise ValueError(
            expected("image_size", "(height, width)", "None", "A batch needs one size; pass e.g. image_size=(64, 64).")
        )
    if max_per_class is not None:
        max_per_class = check_positive_int(max_per_class, "max_per_class")
    root = Path(path).expanduser()
    classes = _class_folders(root, class_names)
    paths, labels = _list_files(root, classes, max_per_class)
    if not paths:
        raise DataError(
            expected(str(root), "image files in the class sub-folders", f"empty sub-folders {classes}", LAYOUT_HINT)
        )

    options = dict(
        size=size, color_mode=color_mode, interpolation=interpolation, crop=bool(crop_to_aspect_ratio), classes=classes
    )
    cached = _cache_path(root, paths, options) if cache else None
    loaded = _read_cache(cached) if cached is not None and cached.is_file() else None
    if loaded is not None:
        x, keep = loaded
        errors = {int(i): "unreadable when cached" for i in np.flatnonzero(~keep)}
    else:
        x, keep, errors = _decode_all(paths, size, color_mode, interpolation, crop_to_aspect_ratio, workers)
        if cached is not None:
            _write_cache(cached, x, keep)
    if errors:
        lines = "\n".join(f"  {paths[i]} ({msg})" for i, msg in sorted(errors.items()))
        warnings.warn(
            f"{len(errors)} file(s) in {root} could not be read as images and were skipped:\n{lines}",
            SkippedFilesWarning,
            stacklevel=2,
        )
    if not keep.any():
        raise DataError(expected(str(root), "at least one readable image", "none", LAYOUT_HINT))
    if not keep.all():
        x, labels = x[keep], labels[keep]
        paths = [p for p, k in zip(paths, keep) if k]
    return Dataset(x, labels, classes, str(root), paths)
