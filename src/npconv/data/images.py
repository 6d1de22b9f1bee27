"""Decode one image file with Pillow into a uint8 array of a fixed size; the area filter npconv's
tools resize every picture with (:func:`resize_area`)."""

from __future__ import annotations

import os
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from ..errors import DataError, check_choice, expected
from ..functional._shapes import as_pair

#: RGB -> grey weights: ITU-R 601 luma, as Pillow's ``convert("L")``.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def grayscale_uint8(x: np.ndarray) -> np.ndarray:
    """uint8 RGB(A) images ``(..., 3 or 4)`` as uint8 grey ``(..., 1)``: ``rint(x[..., :3] @ LUMA)``."""
    return np.rint(x[..., :3].astype(np.float32) @ LUMA)[..., None].astype(np.uint8)


#: ``color_mode`` -> (Pillow mode, channels).
COLOR_MODES = {"rgb": ("RGB", 3), "grayscale": ("L", 1)}
#: ``interpolation`` names (Keras's) -> Pillow filters. ``"area"`` is :func:`resize_area` (the box
#: filter, with whole-factor reductions as exact block means).
INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "area": Image.Resampling.BOX,
    "lanczos": Image.Resampling.LANCZOS,
}


def check_image_options(image_size, color_mode: str, interpolation: str):
    """Validate the options shared by :func:`load_image` and the folder loader."""
    size = None if image_size is None else as_pair(image_size, "image_size")
    mode = check_choice(color_mode, "color_mode", set(COLOR_MODES))
    check_choice(interpolation, "interpolation", set(INTERPOLATIONS))
    return size, mode, interpolation.lower()


def _center_crop_box(width: int, height: int, target_h: int, target_w: int):
    """The largest centred box of aspect ``target_w / target_h`` inside a ``width x height`` image."""
    scale = min(width / target_w, height / target_h)
    crop_w, crop_h = round(target_w * scale), round(target_h * scale)
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return left, top, left + crop_w, top + crop_h


def resize_area(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 images ``(m, h, w, c)`` resized to ``size = (n_H, n_W)`` by the area (box) filter:
    each output pixel is the mean of the input pixels its box covers, rounded.

    A whole-factor reduction (``h % n_H == w % n_W == 0``) is one reshape-mean, no loop; any other
    ratio goes through Pillow's box filter, one image at a time. ``c`` is 1, 3 or 4.
    """
    n_H, n_W = size
    m, h, w, c = x.shape
    if (h, w) == (n_H, n_W):
        return x
    if h % n_H == 0 and w % n_W == 0:
        blocks = x.reshape(m, n_H, h // n_H, n_W, w // n_W, c).mean(axis=(2, 4))
        return np.rint(blocks).astype(np.uint8)
    out = np.empty((m, n_H, n_W, c), np.uint8)
    for i, image in enumerate(x):
        pil = Image.fromarray(image[..., 0] if c == 1 else image)
        out[i] = np.asarray(pil.resize((n_W, n_H), Image.Resampling.BOX)).reshape(n_H, n_W, c)
    return out


def draft_scale(width: int, height: int, size: tuple[int, int] | None, draft_pixels: int) -> int:
    """The reduced scale (1, 2, 4 or 8: libjpeg decodes a JPEG at 1/scale of its size) for a
    ``width x height`` JPEG: the smallest that brings it within ``draft_pixels`` pixels, never
    smaller than ``size = (n_H, n_W)``. At 1/8 each decoded pixel is the mean of an 8 x 8 block (the
    DCT's constant term), so an area-filtered result changes only by rounding."""
    scale = 1
    while (
        scale < 8
        and width * height > draft_pixels * scale * scale
        and (size is None or (width // (2 * scale) >= size[1] and height // (2 * scale) >= size[0]))
    ):
        scale *= 2
    return scale


def decode_image(
    path: str | os.PathLike | BinaryIO,
    size: tuple[int, int] | None,
    color_mode: str = "rgb",
    interpolation: str = "bilinear",
    crop_to_aspect_ratio: bool = False,
    formats: tuple[str, ...] | None = None,
    max_pixels: int | None = None,
    draft_pixels: int | None = None,
) -> np.ndarray:
    """Read ``path`` (a file name or a binary file object) as uint8 ``(n_H, n_W, C)``: EXIF
    orientation applied, converted to RGB or grayscale, resized to ``size = (n_H, n_W)`` (kept as is
    when ``None``) by ``interpolation``; ``"area"`` averages every decoded pixel (:func:`resize_area`).

    ``formats`` (Pillow names, e.g. ``("PNG", "JPEG")``) limits the decoders tried. ``draft_pixels``
    decodes a JPEG of more pixels than that at a reduced scale (:func:`draft_scale`: a 48-megapixel
    8000 x 6000 photo at 1/8, 1000 x 750, with ``draft_pixels=1_000_000``). ``max_pixels`` refuses
    images that would still decode to more pixels with ``Image.DecompressionBombError``, from the
    header alone, before any pixel is decoded. Raises any Pillow/OS error unchanged; callers decide
    whether to skip or report.
    """
    pil_mode, _ = COLOR_MODES[color_mode]
    with Image.open(path, formats=formats) as img:
        scale = 1
        if draft_pixels is not None and img.format == "JPEG":
            scale = draft_scale(img.width, img.height, size, draft_pixels)
            if scale > 1:
                declared = img.size
                img.draft(img.mode, (img.width // scale, img.height // scale))
        if max_pixels is not None and img.width * img.height > max_pixels:
            at_scale = f" (its {declared[0]}x{declared[1]} decoded at 1/{scale})" if scale > 1 else ""
            raise Image.DecompressionBombError(
                f"{img.width}x{img.height} pixels{at_scale} is over the limit of {max_pixels:,} pixels"
            )
        if size is not None and img.format == "JPEG" and interpolation != "area" and scale == 1:
            # draft() lets libjpeg decode at 1/2, 1/4 or 1/8 scale (never below the target):
            # large photos decode several times faster. Not for "area": resize_area averages the
            # full-size pixels, and a photo must come out as a stored picture of it would.
            img.draft(pil_mode, (size[1], size[0]))
        img = ImageOps.exif_transpose(img)
        if img.mode != pil_mode:
            # Palette/alpha images go through RGBA so transparency does not become garbage colours.
            if img.mode in ("P", "PA", "LA") and pil_mode == "RGB":
                img = img.convert("RGBA")
            img = img.convert(pil_mode)
        resize = size is not None and img.size != (size[1], size[0])
        box = _center_crop_box(*img.size, *size) if resize and crop_to_aspect_ratio else None
        if resize and interpolation == "area":
            img = img.crop(box) if box is not None else img
        elif resize:
            img = img.resize((size[1], size[0]), INTERPOLATIONS[interpolation], box=box)
        array = np.asarray(img, dtype=np.uint8)
    array = array[..., None] if array.ndim == 2 else array
    return resize_area(array[None], size)[0] if resize and interpolation == "area" else array


def load_image(
    path: str | os.PathLike,
    image_size=(64, 64),
    color_mode: str = "rgb",
    interpolation: str = "bilinear",
    crop_to_aspect_ratio: bool = False,
) -> np.ndarray:
    """One photo as uint8 ``(n_H, n_W, C)`` (C = 3 for ``"rgb"``, 1 for ``"grayscale"``), e.g. for
    ``npconv predict``. ``image_size=None`` keeps the original size."""
    size, mode, interpolation = check_image_options(image_size, color_mode, interpolation)
    if not os.path.isfile(path):
        raise FileNotFoundError(expected("path", "an existing image file", str(path)))
    try:
        return decode_image(path, size, mode, interpolation, crop_to_aspect_ratio)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(
            expected(
                "path",
                "an image Pillow can read (JPEG, PNG, BMP, GIF, ...)",
                f"{path} ({exc})",
                "Check that the file is a complete image.",
            )
        ) from exc
