"""One entry point for every data source: a course .h5 file, an image folder, or ``builtin:NAME``."""

from __future__ import annotations

import os
from glob import escape as glob_escape
from pathlib import Path

from ..errors import DataError, expected
from ..functional._shapes import as_pair
from .dataset import Dataset
from .folders import load_image_folder
from .h5 import load_h5
from .images import grayscale_uint8
from .paths import candidate_paths
from .paths import data_dir as resolve_data_dir
from .synthetic import make_smiley_faces

BUILTIN_PREFIX = "builtin:"
#: name -> (generator, description). Generators take ``n``, ``image_size`` and ``seed``.
BUILTIN = {
    "smiles": (make_smiley_faces, "cartoon faces, smiling or not (2 classes, 600 images, 64x64 RGB)"),
}


def list_builtin() -> list[str]:
    """Names of the built-in synthetic data sets, to use as ``"builtin:NAME"``."""
    return sorted(BUILTIN)


def _builtin(name: str, image_size, color_mode: str, **options) -> Dataset:
    if name not in BUILTIN:
        raise ValueError(
            expected("source", f"one of {[BUILTIN_PREFIX + b for b in list_builtin()]}", BUILTIN_PREFIX + name)
        )
    height, width = as_pair(image_size, "image_size")
    if height != width:
        raise ValueError(expected("image_size", "a square size for a built-in set", image_size))
    data = BUILTIN[name][0](image_size=height, **options)
    if color_mode == "grayscale":
        data.x = grayscale_uint8(data.x)
    return data


def resolve_source(source: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Path:
    """``source`` as given if it exists, else relative to the data directory or one of its known
    sub-folders (``test_signs.h5`` finds ``signs/test_signs.h5``, as :func:`~.paths.find_file` does)."""
    path = Path(source).expanduser()
    if path.exists() or path.is_absolute():
        return path
    for inside in candidate_paths(str(path), data_dir):
        if inside.exists():
            return inside
    return path


def similar_in_data_dir(source: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> list[str]:
    """Paths, relative to the data directory, of entries one folder down named like ``source``'s
    last part: what to suggest when ``source`` is found nowhere."""
    root = resolve_data_dir(data_dir)
    name = Path(source).name
    if not name or not root.is_dir():
        return []
    return sorted(str(p.relative_to(root)) for p in root.glob(f"*/{glob_escape(name)}"))


def not_found(source: str, data_dir: str | os.PathLike | None = None) -> str:
    """The error for a data source found neither here nor in the data directory, suggesting the
    data directory's files of that name."""
    similar = similar_in_data_dir(source, data_dir)
    hint = (
        f"Did you mean {' or '.join(similar)} (in the data directory)? "
        if similar
        else f"Set NPCONV_DATA or --data-dir, or try {BUILTIN_PREFIX}{list_builtin()[0]}."
    )
    return expected(
        "source",
        "an .h5 file, an image folder or 'builtin:NAME'",
        f"{source} (not found here nor in {resolve_data_dir(data_dir)})",
        hint,
    )


def load_dataset(
    source: str | os.PathLike,
    image_size=(64, 64),
    color_mode: str = "rgb",
    data_dir: str | os.PathLike | None = None,
    split: str | None = None,
    **options,
) -> Dataset:
    """Load a :class:`Dataset` from

    * ``"builtin:NAME"`` - a synthetic set (:func:`list_builtin`); ``options``: ``n``, ``seed``;
    * a ``.h5`` file in the course layout (:func:`load_h5`; ``split`` picks train/test keys;
      images come as stored, ``image_size`` is not applied);
    * a folder of class sub-folders (:func:`load_image_folder`; ``options`` go to it).

    A relative path that does not exist here is looked up in the data directory.
    """
    text = os.fspath(source)
    if text.startswith(BUILTIN_PREFIX):
        return _builtin(text[len(BUILTIN_PREFIX) :], image_size, color_mode, **options)
    path = resolve_source(text, data_dir)
    if path.is_dir():
        return load_image_folder(path, image_size=image_size, color_mode=color_mode, **options)
    if not path.exists():
        raise FileNotFoundError(not_found(text, data_dir))
    if path.suffix.lower() in (".h5", ".hdf5"):
        return load_h5(path, split=split)
    raise DataError(
        expected(
            "source",
            "an .h5 file, an image folder or 'builtin:NAME'",
            str(path),
            "A single image is not a data set: give a folder with one sub-folder per "
            "class (to classify one photo, use predict).",
        )
    )
