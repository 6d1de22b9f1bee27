"""One photo made ready for a model, exactly as training prepares its pictures.

Every picture the tools give a model goes through the area filter (:func:`npconv.data.images.resize_area`):
an .h5 set's stored pictures by :func:`npconv.apps.datasets.fit_to_input`, an image folder's files
and a photo to classify (``npconv predict``, ``npconv serve``) decoded at their own size and then
resized. So a photo gives the same answer as the same picture in a training or test set. A phone's
photo (a JPEG over :data:`DECODE_PIXELS`) decodes at 1/2, 1/4 or 1/8 of its size first, where libjpeg
averages 2 x 2 to 8 x 8 blocks itself: the model's input then differs from a full decode's by rounding
(at most a few levels of 255), at a fiftieth of the memory.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image

from ..data.images import decode_image
from ..errors import DataError, expected

#: How the tools resize pictures for a model (training, evaluate, predict, serve).
RESAMPLING = "area"
#: A photo's JPEG decodes at a reduced scale (1/2, 1/4 or 1/8) down to about this many pixels: far
#: more than a model's input, far less than a phone's 12-48 megapixels. Smaller photos (and every
#: picture of a data set) decode in full.
DECODE_PIXELS = 1_000_000


def color_mode(input_shape) -> str:
    """``"grayscale"`` for a model taking ``(n_H, n_W, 1)``, else ``"rgb"``."""
    return "grayscale" if int(input_shape[-1]) == 1 else "rgb"


def prepare_photo(
    photo, input_shape, formats: tuple[str, ...] | None = None, max_pixels: int | None = None
) -> np.ndarray:
    """``photo`` (a file name or binary file object) as uint8 ``(n_H, n_W, n_C)`` for a model taking
    ``input_shape = (n_H, n_W, n_C)``: EXIF orientation applied, converted to the model's colour
    mode, resized by the area filter. A JPEG of more than :data:`DECODE_PIXELS` decodes at 1/2, 1/4
    or 1/8 of its size first (a phone's 48 MP photo costs 0.75 MP, not 48).

    ``formats`` and ``max_pixels`` limit what is decoded (see :func:`npconv.data.images.decode_image`:
    ``max_pixels`` counts the pixels actually decoded); Pillow's errors are raised unchanged, for the
    caller to report.
    """
    n_H, n_W, _ = (int(s) for s in input_shape)
    return decode_image(
        photo,
        (n_H, n_W),
        color_mode(input_shape),
        RESAMPLING,
        formats=formats,
        max_pixels=max_pixels,
        draft_pixels=DECODE_PIXELS,
    )


def photo_files(paths) -> list[str]:
    """``paths`` with each folder replaced by its files, sorted (hidden files and sub-folders left
    out); a missing path is a :class:`FileNotFoundError` naming it."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(name for name in os.listdir(path) if not name.startswith("."))
            files += [os.path.join(path, name) for name in names if os.path.isfile(os.path.join(path, name))]
        elif os.path.isfile(path):
            files.append(str(path))
        else:
            raise FileNotFoundError(expected("image", "an existing image file or a folder of images", str(path)))
    return files


def load_photos(paths, input_shape) -> tuple[list[str], np.ndarray]:
    """The photos ``paths`` (image files, or folders of them: :func:`photo_files`), each prepared by
    :func:`prepare_photo`: the files read and uint8 ``(m, n_H, n_W, n_C)``.

    A file named in ``paths`` that is not a readable image is an error; a folder's files that are
    not are left out with a warning naming them. A folder with no image at all is an error.
    """
    named = {str(path) for path in paths if not os.path.isdir(path)}
    read, images, skipped = [], [], []
    for path in photo_files(paths):
        try:
            images.append(prepare_photo(path, input_shape))
            read.append(path)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            if path not in named:
                skipped.append(os.path.basename(path))
                continue
            raise DataError(
                expected(
                    "image",
                    "an image Pillow can read (JPEG, PNG, BMP, GIF, ...)",
                    f"{path} ({exc})",
                    "Check that the file is a complete image.",
                )
            ) from exc
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} file(s) that are not images Pillow can read: {', '.join(skipped)}", stacklevel=1
        )
    if not images:
        raise DataError(
            expected(
                "IMAGE",
                "image files or folders holding images (JPEG, PNG, BMP, GIF, ...)",
                f"{', '.join(map(str, paths))} (no image in it)",
            )
        )
    return read, np.stack(images)
