"""One photo made ready for a model, exactly as training prepares its pictures.

Every picture the tools give a model goes through the area filter (:func:`npconv.data.images.resize_area`):
an .h5 set's stored pictures by :func:`npconv.apps.datasets.fit_to_input`, an image folder's files
and a photo to classify (``npconv predict``, ``npconv serve``) decoded at their own size and then
resized. So a photo gives the same answer as the same picture in a training or test set.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from ..data.images import decode_image
from ..errors import DataError, expected

#: How the tools resize pictures for a model (training, evaluate, predict, serve).
RESAMPLING = "area"


def color_mode(input_shape) -> str:
    """``"grayscale"`` for a model taking ``(n_H, n_W, 1)``, else ``"rgb"``."""
    return "grayscale" if int(input_shape[-1]) == 1 else "rgb"


def prepare_photo(photo, input_shape, formats: tuple[str, ...] | None = None,
                  max_pixels: int | None = None) -> np.ndarray:
    """``photo`` (a file name or binary file object) as uint8 ``(n_H, n_W, n_C)`` for a model taking
    ``input_shape = (n_H, n_W, n_C)``: EXIF orientation applied, converted to the model's colour
    mode, resized by the area filter.

    ``formats`` and ``max_pixels`` limit what is decoded (see :func:`npconv.data.images.decode_image`);
    Pillow's errors are raised unchanged, for the caller to report.
    """
    n_H, n_W, _ = (int(s) for s in input_shape)
    return decode_image(photo, (n_H, n_W), color_mode(input_shape), RESAMPLING,
                        formats=formats, max_pixels=max_pixels)


def load_photos(paths, input_shape) -> np.ndarray:
    """The photo files ``paths``, each prepared by :func:`prepare_photo`: uint8 ``(m, n_H, n_W, n_C)``."""
    images = []
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(expected("image", "an existing image file", str(path)))
        try:
            images.append(prepare_photo(path, input_shape))
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(expected("image", "an image Pillow can read (JPEG, PNG, BMP, GIF, ...)",
                                     f"{path} ({exc})", "Check that the file is a complete image.")) from exc
    return np.stack(images)
