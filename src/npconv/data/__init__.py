"""Data for npconv: where it lives, the course's .h5 files, image folders, splits, augmentation,
verified downloads and a built-in synthetic set.

>>> from npconv.data import load_dataset
>>> data = load_dataset("builtin:smiles")          # works on a fresh machine
>>> data.x.shape, data.y.shape, data.class_names
((600, 64, 64, 3), (600,), ['not smiling', 'smiling'])
"""

from __future__ import annotations

from . import augment
from .dataset import Dataset
from .download import REMOTE, DownloadError, Remote, fetch
from .folder_stream import ImageFolderBatches
from .folders import SkippedFilesWarning, load_image_folder
from .h5 import load_h5, load_happy_dataset, load_signs_dataset
from .images import load_image
from .known import KNOWN_FILES, sha256_file, verify
from .paths import data_dir, find_file, user_cache_dir
from .registry import BUILTIN, list_builtin, load_dataset
from .splits import kfold_indices, train_val_split
from .synthetic import make_smiley_faces
from .tensor_slices import TensorSlices, from_tensor_slices

__all__ = [
    "BUILTIN",
    "Dataset",
    "DownloadError",
    "ImageFolderBatches",
    "KNOWN_FILES",
    "REMOTE",
    "Remote",
    "SkippedFilesWarning",
    "TensorSlices",
    "augment",
    "data_dir",
    "fetch",
    "find_file",
    "from_tensor_slices",
    "kfold_indices",
    "list_builtin",
    "load_dataset",
    "load_h5",
    "load_happy_dataset",
    "load_image",
    "load_image_folder",
    "load_signs_dataset",
    "make_smiley_faces",
    "sha256_file",
    "train_val_split",
    "user_cache_dir",
    "verify",
]
