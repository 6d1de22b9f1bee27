"""An image folder read from disk batch by batch, for ``fit``/``evaluate``/``predict``, when the
whole folder would not fit in memory (:func:`load_image_folder` decodes it all at once)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError, check_positive_int, expected
from .folders import LAYOUT_HINT, SkippedFilesWarning, _class_folders, _list_files
from .images import COLOR_MODES, check_image_options, decode_image


class ImageFolderBatches:
    """``(x, y)`` batches of an image folder (one sub-folder per class), decoded as they are needed.

    ``x`` is ``(b, n_H, n_W, C)``: uint8, or float32 times ``rescale`` when given (``1/255``);
    ``y`` holds class indices into ``class_names``. Each pass reshuffles when ``shuffle`` (from
    ``seed``), so iterating again gives the next epoch; ``len`` is the number of batches.
    Unreadable files are left out of their batch with a :class:`SkippedFilesWarning`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        batch_size: int = 32,
        image_size=(64, 64),
        color_mode: str = "rgb",
        shuffle: bool = True,
        seed: int | None = None,
        rescale: float | None = None,
        class_names=None,
        interpolation: str = "bilinear",
    ):
        self.size, self.color_mode, self.interpolation = check_image_options(image_size, color_mode, interpolation)
        if self.size is None:
            raise ValueError(
                expected(
                    "image_size", "(height, width)", "None", "A batch needs one size; pass e.g. image_size=(64, 64)."
                )
            )
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.root = Path(path).expanduser()
        self.class_names = _class_folders(self.root, class_names)
        self.paths, self.labels = _list_files(self.root, self.class_names, None)
        if not self.paths:
            raise DataError(
                expected(
                    str(self.root),
                    "image files in the class sub-folders",
                    f"empty sub-folders {self.class_names}",
                    LAYOUT_HINT,
                )
            )
        self.shuffle, self.rescale = bool(shuffle), rescale
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return -(-len(self.paths) // self.batch_size)

    def __iter__(self):
        order = self._rng.permutation(len(self.paths)) if self.shuffle else np.arange(len(self.paths))
        for start in range(0, len(order), self.batch_size):
            yield self._batch(order[start : start + self.batch_size])

    def _batch(self, index):
        x = np.zeros((len(index), *self.size, COLOR_MODES[self.color_mode][1]), dtype=np.uint8)
        keep = np.ones(len(index), dtype=bool)
        for k, i in enumerate(index):
            try:
                x[k] = decode_image(self.paths[i], self.size, self.color_mode, self.interpolation)
            except Exception as exc:  # corrupt, truncated, not an image: leave it out and say so
                keep[k] = False
                warnings.warn(
                    f"{self.paths[i]} could not be read as an image and was skipped ({type(exc).__name__}: {exc})",
                    SkippedFilesWarning,
                    stacklevel=3,
                )
        x, y = x[keep], self.labels[index][keep]
        return (x if self.rescale is None else x.astype(np.float32) * np.float32(self.rescale)), y
