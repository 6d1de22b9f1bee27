"""Finding the data a command names and shaping it for a model.

``resolve("signs")`` -> the path of ``train_signs.h5`` in the data directory; ``load_for_input`` loads
a source's pictures prepared for a model's input as :func:`npconv.apps.photos.prepare_photo` prepares
one photo; ``fit_to_input`` resizes uint8 images (area filter) and converts their channels to what a
model takes; ``match_classes`` maps a data set's class names onto a model's.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..data import Dataset, find_file, load_dataset
from ..data import data_dir as resolve_data_dir
from ..data.images import grayscale_uint8, resize_area
from ..data.registry import BUILTIN_PREFIX, resolve_source
from ..errors import DataError, expected
from .happy import HAPPY_CLASSES
from .photos import RESAMPLING
from .photos import color_mode as color_mode_for

#: Bare names ``npconv train NAME`` understands -> file or folder in the data directory.
NAMED = {
    "signs": "train_signs.h5",
    "happy": "train_happy.h5",
    "smiles": "smiles",
    "sign-language-digits": "sign-language-digits",
}
DEFAULT_SOURCE = BUILTIN_PREFIX + "smiles"


def resolve(data: str | None, data_dir=None, prefer_test: bool = False) -> str:
    """The source to load for ``data``: a path, a ``builtin:`` name, or a bare name of :data:`NAMED`.

    ``prefer_test`` (for evaluation): a bare name of a course set means its ``test_*.h5`` file.
    """
    if data is None:
        return DEFAULT_SOURCE
    if data.startswith(BUILTIN_PREFIX) or Path(data).expanduser().exists():
        return data
    if data in NAMED:
        target = NAMED[data]
        if target.endswith(".h5"):
            if prefer_test:
                target = "test_" + target[len("train_") :]
            if data == "happy" and not prefer_test:
                return str(_happy_train_file(data_dir))
            return str(find_file(target, data_dir))
        folder = resolve_data_dir(data_dir) / target
        if not folder.is_dir():
            raise FileNotFoundError(
                expected(
                    "DATA",
                    f"the folder {target}/ in the data directory",
                    f"nothing at {folder}",
                    "Point npconv at the data: NPCONV_DATA=/path/to/datasets or --data-dir.",
                )
            )
        return str(folder)
    source = resolve_source(data, data_dir)
    if not source.exists() and _looks_like_a_name(data):
        raise FileNotFoundError(_unknown_name(data, data_dir))
    return str(source)


def _looks_like_a_name(data: str) -> bool:
    """A bare word (``sings``), not a path or a file name (``data/x``, ``x.h5``)."""
    return re.fullmatch(r"[A-Za-z][\w-]*", data) is not None


def known_names() -> list[str]:
    """The data-set names ``npconv train NAME`` takes: :data:`NAMED` and the built-in sets."""
    from ..data.registry import list_builtin

    return list(NAMED) + [BUILTIN_PREFIX + name for name in list_builtin()]


def _unknown_name(data: str, data_dir) -> str:
    """The error for a name that is neither known nor in the data directory, with the nearest names."""
    import difflib

    names = known_names()
    close = difflib.get_close_matches(data.lower(), names, n=2, cutoff=0.6)
    hint = f"Did you mean {' or '.join(repr(n) for n in close)}? " if close else ""
    return expected(
        "DATA",
        f"a data-set name ({', '.join(names)}), a course .h5 file or an image folder",
        f"{data!r} (no such name, and no such file or folder here or in the data directory "
        f"{resolve_data_dir(data_dir)})",
        hint + "Or point npconv at your data: NPCONV_DATA=/path/to/datasets.",
    )


def _happy_train_file(data_dir) -> Path:
    """``train_happy.h5``, or an error saying what works without it (fine-tuning on the test set)."""
    try:
        return find_file("train_happy.h5", data_dir)
    except FileNotFoundError:
        pass
    try:
        test = find_file("test_happy.h5", data_dir)
    except FileNotFoundError:
        raise FileNotFoundError(
            "happy: the course's Happy House files (train_happy.h5, test_happy.h5) are not in the data "
            f"directory {resolve_data_dir(data_dir)}. Put them there (or set NPCONV_DATA), or train "
            "the smile detector on SMILEsmileD: npconv train smiles --out runs/smiles.npz"
        ) from None
    raise FileNotFoundError(
        f"happy: the course's train_happy.h5 (600 pictures) is not in the data directory; only {test.name} "
        "(150) is, so there is nothing to train on and test on apart. Train on SMILEsmileD and fine-tune "
        "on the Happy House pictures with 5-fold cross-validation: npconv train smiles --out "
        f"runs/smiles.npz && npconv train {test} --init runs/smiles.npz --folds 5"
    ) from None


def dataset_name(source: str) -> str | None:
    """The recipe name of a source: ``train_signs.h5`` -> ``"signs"``, ``.../smiles`` -> ``"smiles"``."""
    if source.startswith(BUILTIN_PREFIX):
        return source
    path = Path(source)
    stem = path.stem.lower() if path.suffix.lower() in (".h5", ".hdf5") else path.name.lower()
    stem = re.sub(r"^(train|test)_", "", stem)
    return stem if stem in NAMED else None


def paired_test_file(source: str) -> Path | None:
    """``test_x.h5`` next to a ``train_x.h5`` source, when it exists."""
    path = Path(source)
    if path.suffix.lower() not in (".h5", ".hdf5") or not path.name.lower().startswith("train_"):
        return None
    test = path.with_name("test_" + path.name[len("train_") :])
    return test if test.is_file() else None


def load(source: str, image_size: int, color_mode: str, data_dir=None, **options) -> Dataset:
    """Load ``source`` at ``image_size`` x ``image_size`` in ``color_mode``, with readable class names.

    Folders are decoded once and cached (the user cache folder); see :func:`load_for_input`.
    """
    channels = 1 if color_mode == "grayscale" else 3
    kwargs = {"cache": True} if Path(source).is_dir() else {}
    data = load_for_input(source, (image_size, image_size, channels), data_dir, **kwargs, **options)
    if dataset_name(source) == "happy" and data.class_names == ["0", "1"]:
        data.class_names = list(HAPPY_CLASSES)  # the course's labels: 0 = not smiling, 1 = smiling
    return data


def load_for_input(source: str, input_shape, data_dir=None, **options) -> Dataset:
    """``source``'s pictures as uint8 ``(m, n_H, n_W, n_C)`` for a model taking ``input_shape``, each
    prepared as :func:`npconv.apps.photos.prepare_photo` prepares a photo file: a folder's files
    decoded by the area filter, an .h5 set's stored pictures resized by :func:`fit_to_input`.
    ``options`` go to :func:`npconv.data.load_dataset`."""
    n_H, n_W, n_C = (int(s) for s in input_shape)
    if Path(source).is_dir():
        options = {"interpolation": RESAMPLING, **options}
    data = load_dataset(
        source, image_size=(n_H, n_W), color_mode=color_mode_for(input_shape), data_dir=data_dir, **options
    )
    data.x = fit_to_input(data.x, (n_H, n_W, n_C))
    return data


def fit_to_input(x: np.ndarray, input_shape) -> np.ndarray:
    """uint8 images ``(m, h, w, c)`` resized to ``input_shape = (n_H, n_W, n_C)`` (area filter,
    :func:`npconv.data.images.resize_area`) and converted to ``n_C`` channels (gray -> RGB by
    copying, RGB -> gray by luma)."""
    n_H, n_W, n_C = (int(s) for s in input_shape)
    if x.shape[-1] != n_C:
        if n_C == 3 and x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        elif n_C == 1 and x.shape[-1] in (3, 4):
            x = grayscale_uint8(x)
        elif n_C == 3 and x.shape[-1] == 4:
            x = x[..., :3]
        else:
            raise DataError(expected("images", f"1 or 3 channels to make {n_C}", x))
    return resize_area(x, (n_H, n_W))


def to_float(x: np.ndarray, value_scale: float = 255.0) -> np.ndarray:
    """uint8 images as float32 in [0, 1]: ``x / value_scale``."""
    return x.astype(np.float32) / np.float32(value_scale)


def _normalise(name: str) -> str:
    return str(name).strip().lower().replace("_", " ").replace("-", " ")


def match_classes(data_names, model_names) -> np.ndarray:
    """``index[i]``: the model's class for the data's class ``i``, matched by name (case, ``_`` and
    ``-`` ignored). Data with only integer names ``0..K-1`` (a course .h5's ``list_classes``) and as
    many classes as the model maps by position. A data class the model lacks is a ``DataError``."""
    model_index = {_normalise(n): k for k, n in enumerate(model_names)}
    index = [model_index.get(_normalise(n), -1) for n in data_names]
    if -1 in index:
        numeric = [str(i) for i in range(len(data_names))]
        if list(map(str, data_names)) == numeric and len(data_names) == len(model_names):
            return np.arange(len(data_names))
        missing = [n for n, k in zip(data_names, index) if k == -1]
        raise DataError(
            expected(
                "class names of the data",
                f"names the model knows: {list(model_names)}",
                f"{list(data_names)} ({missing} unknown)",
                "Evaluate on data with the classes the model was trained on.",
            )
        )
    return np.asarray(index, dtype=np.int64)
