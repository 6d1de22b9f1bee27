"""Pictures changed as a learner's own photos differ from a data set's: darker, greyer, further away.

Each change is a deterministic function of a uint8 batch ``(m, n_H, n_W, n_C)`` (1 or 3 channels)
returning a new uint8 batch of the same shape, made with Pillow where Pillow has the operation
(as ImageNet-C, Hendrycks and Dietterich 2019, changes its pictures). :data:`CORRUPTIONS` names
them in the order ``benchmarks/robustness.py`` reports them::

    grayscale        luma (ITU-R 601-2, Pillow's "L"), copied back to every channel
    dimmed           brightness x0.45 (ImageEnhance.Brightness)
    washed out       contrast x0.4 about the picture's mean grey (ImageEnhance.Contrast)
    zoomed out       the picture shrunk to 65% (area filter), centred on its background colour
    mirrored         left-right
    jpeg q10         JPEG-compressed at quality 10 and decoded
    blurred          Gaussian blur, radius 1.2 px
    rotated 25       25 degrees anticlockwise, corners filled with the background colour
    noise            Gaussian noise, sigma 0.08 of the range (ImageNet-C's severity 1), fixed seed
    white balance    red x1.25, blue x0.75 (a warm, tungsten-lit camera)

The background colour (for the zoom's border and the rotation's corners) is the median of the
picture's outermost ring of pixels: a flat wall of the colour around the hand, rather than the
picture's edge smeared outwards.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps


def _pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def _array(picture: Image.Image, channels: int) -> np.ndarray:
    picture = picture.convert("L" if channels == 1 else "RGB")
    out = np.asarray(picture, dtype=np.uint8)
    return out[..., None] if channels == 1 else out


def background_colour(image: np.ndarray) -> tuple[int, ...]:
    """The median of ``image``'s outermost ring of pixels, per channel: ``(n_C,)`` ints."""
    ring = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])
    return tuple(int(v) for v in np.median(ring, axis=0).round())


def _per_image(change):
    """``change(PIL image, uint8 array)`` applied to each picture of a batch, back as uint8."""

    def apply(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.uint8)
        return np.stack([_array(change(_pil(image), image), x.shape[-1]) for image in x])

    return apply


@_per_image
def grayscale(picture, image):
    return picture.convert("L")


@_per_image
def dimmed(picture, image):
    return ImageEnhance.Brightness(picture).enhance(0.45)


@_per_image
def washed_out(picture, image):
    return ImageEnhance.Contrast(picture).enhance(0.4)


def _fill(picture, image):
    colour = background_colour(image)
    return colour[0] if picture.mode == "L" else colour


@_per_image
def zoomed_out(picture, image, scale: float = 0.65):
    w, h = picture.size
    small = picture.resize((round(w * scale), round(h * scale)), Image.Resampling.BOX)
    canvas = Image.new(picture.mode, (w, h), _fill(picture, image))
    canvas.paste(small, ((w - small.width) // 2, (h - small.height) // 2))
    return canvas


@_per_image
def mirrored(picture, image):
    return ImageOps.mirror(picture)


@_per_image
def jpeg_q10(picture, image):
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=10)
    buffer.seek(0)
    return Image.open(buffer)


@_per_image
def blurred(picture, image):
    return picture.filter(ImageFilter.GaussianBlur(1.2))


@_per_image
def rotated_25(picture, image):
    return picture.rotate(25, resample=Image.Resampling.BILINEAR, fillcolor=_fill(picture, image))


def noise(x: np.ndarray, sigma: float = 0.08, seed: int = 0) -> np.ndarray:
    """Gaussian noise of ``sigma`` times 255 added to every pixel (generator of ``seed``), clipped."""
    x = np.asarray(x, dtype=np.uint8)
    noisy = x + np.random.default_rng(seed).normal(0.0, sigma * 255, x.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def white_balance(x: np.ndarray, gains=(1.25, 1.0, 0.75)) -> np.ndarray:
    """Each channel multiplied by its gain (red, green, blue), clipped; grayscale pictures unchanged."""
    x = np.asarray(x, dtype=np.uint8)
    if x.shape[-1] == 1:
        return x.copy()
    return np.clip(np.rint(x * np.asarray(gains, dtype=np.float64)), 0, 255).astype(np.uint8)


#: name -> change, in the benchmark's order.
CORRUPTIONS = {
    "grayscale": grayscale,
    "dimmed": dimmed,
    "washed out": washed_out,
    "zoomed out": zoomed_out,
    "mirrored": mirrored,
    "jpeg q10": jpeg_q10,
    "blurred": blurred,
    "rotated 25": rotated_25,
    "noise": noise,
    "white balance": white_balance,
}
