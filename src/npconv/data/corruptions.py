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

from ..errors import expected
from .images import LUMA


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


# ----------------------------------------------------------------------------- a cluttered background
# A learner's hand is seldom in front of a bare wall. The SIGNS pictures are: their wall is cut out
# by colour and replaced by a crop of a real scene (the Happy House pictures: a garden, a wall, a car,
# a person; the scenes are passed in, so this module reads no data set).

#: Largest luma difference from the wall's colour still taken for wall: wide, so that the hand's
#: shadow on the wall goes with it.
WALL_LUMA_TOLERANCE = 120.0
#: Largest chromaticity difference ``|c - c_wall|``, ``c = RGB / (R + G + B + 30)``, still taken for
#: wall: narrow, for skin is redder than a grey wall even in shadow (0.08 apart in SIGNS).
WALL_CHROMA_TOLERANCE = 0.03
#: The looser chromaticity for the one ring of pixels along the cut, where JPEG blends skin and wall.
EDGE_CHROMA_TOLERANCE = 0.06
#: Smallest enclosed patch of wall colour taken for wall (in the 120 test pictures every enclosed
#: patch is wall; the largest, through a "0" sign, is 81 px, the finger gaps 1-19).
HOLE_MIN_PIXELS = 8


def _chromaticity(f: np.ndarray) -> np.ndarray:
    return f / (f.sum(axis=-1, keepdims=True) + 30.0)  # +30: dark pixels' colour is mostly noise


def _neighbours(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one pixel up, down, left and right."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def _flood(seed: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The pixels of ``allowed`` connected to ``seed`` (4-neighbours), ``seed`` included where allowed."""
    filled = seed & allowed
    while True:
        grown = _neighbours(filled) & allowed
        if (grown == filled).all():
            return filled
        filled = grown


def wall_mask(image: np.ndarray) -> np.ndarray:
    """The plain background of one RGB uint8 picture ``(n_H, n_W, 3)``: a ``(n_H, n_W)`` bool mask.

    Wall-coloured pixels are those whose luma is within :data:`WALL_LUMA_TOLERANCE` and whose
    chromaticity is within :data:`WALL_CHROMA_TOLERANCE` of the wall's colour (the median of the
    outer ring, :func:`background_colour`). The mask is a flood fill from the outer ring through
    them, plus each enclosed patch of them of at least :data:`HOLE_MIN_PIXELS` (the wall seen through
    the ring of a "0" sign or between fingers; a smaller pale fleck could be skin, so it stays), plus
    one ring of pixels within the looser :data:`EDGE_CHROMA_TOLERANCE`, the blend of wall and skin
    along the hand's outline.
    """
    f = image.astype(np.float64)
    wall = np.asarray(background_colour(image), dtype=np.float64)
    chroma_gap = np.abs(_chromaticity(f) - _chromaticity(wall)).max(axis=-1)
    close = (np.abs(f @ LUMA - wall @ LUMA) <= WALL_LUMA_TOLERANCE) & (chroma_gap <= WALL_CHROMA_TOLERANCE)
    border = np.zeros_like(close)
    border[[0, -1], :] = border[:, [0, -1]] = True
    mask = _flood(border, close)
    enclosed = close & ~mask
    while enclosed.any():
        first = np.zeros_like(close)
        first.flat[np.flatnonzero(enclosed)[0]] = True
        patch = _flood(first, enclosed)
        if patch.sum() >= HOLE_MIN_PIXELS:
            mask |= patch
        enclosed &= ~patch
    return mask | (_neighbours(mask) & (chroma_gap <= EDGE_CHROMA_TOLERANCE))


def scene_crops(scenes: np.ndarray, m: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """``m`` crops of the uint8 pictures ``scenes`` ``(k, h, w, 3)``, each of a random picture, side
    ``s ~ U(0.5, 1)`` of the smaller side, at a random place, mirrored with probability 1/2 and
    resized (bilinear: most crops are enlarged) to ``size = (n_H, n_W)``: ``(m, n_H, n_W, 3)`` uint8."""
    rng = np.random.default_rng(seed)
    k, h, w = scenes.shape[:3]
    out = np.empty((m, *size, 3), dtype=np.uint8)
    for i in range(m):
        side = round(rng.uniform(0.5, 1.0) * min(h, w))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = Image.fromarray(scenes[rng.integers(k), top : top + side, left : left + side])
        if rng.random() < 0.5:
            crop = ImageOps.mirror(crop)
        out[i] = np.asarray(crop.resize(size[::-1], Image.Resampling.BILINEAR))
    return out


def cluttered_background(x: np.ndarray, scenes: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each RGB picture of ``x`` ``(m, n_H, n_W, 3)`` with its :func:`wall_mask` replaced by a crop
    of ``scenes`` (:func:`scene_crops` of ``seed``): the same hand in front of a real scene."""
    x = np.asarray(x, dtype=np.uint8)
    if x.shape[-1] != 3:
        raise ValueError(expected("x", "RGB pictures (m, n_H, n_W, 3)", x, "A grey picture has no wall colour to cut."))
    backgrounds = scene_crops(np.asarray(scenes, dtype=np.uint8), len(x), x.shape[1:3], seed)
    walls = np.stack([wall_mask(image) for image in x])
    return np.where(walls[..., None], backgrounds, x)
