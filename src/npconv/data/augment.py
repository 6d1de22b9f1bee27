"""Augmentation kernels: pure functions of an image batch ``(m, n_H, n_W, n_C)`` and a generator.

Each draws one random value per image from ``rng`` (a ``np.random.Generator``), works on the whole
batch with index arithmetic (no per-image loop), and returns a new array of the same shape and dtype.
Factors follow Keras: a number ``f`` means the range ``(-f, f)``; a pair ``(lo, hi)`` is used as is
(contrast, as in Keras, draws its multiplier from ``[1 - lower, 1 + upper]``: see :func:`contrast_range`).
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError, check_choice, expected
from ..functional._tier import tiered
from .images import LUMA
from .normal_draws import standard_normal
from .resample import sample, sample_axes


def _batch(x) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "uif":
        raise TypeError(
            expected(
                "x",
                "a numeric NumPy array",
                x if isinstance(x, np.ndarray) else type(x).__name__,
                "Pass images as a float32 array.",
            )
        )
    if x.ndim != 4:
        raise ShapeError(expected("x", "a batch of shape (m, n_H, n_W, n_C)", x, "For one image use x[None]."))
    return x


def _range(factor, name: str, limit: float | None = None) -> tuple[float, float]:
    lo, hi = factor if isinstance(factor, (tuple, list)) else (-factor, factor)
    lo, hi = float(lo), float(hi)
    if not lo <= hi or (limit is not None and max(abs(lo), abs(hi)) > limit):
        bound = f" within [-{limit}, {limit}]" if limit is not None else ""
        raise ValueError(expected(name, f"a number f >= 0 or a pair (lo, hi) with lo <= hi{bound}", factor))
    return lo, hi


def _cast_like(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Float results back to ``like``'s dtype; integer images are rounded and clipped to their range."""
    if like.dtype.kind == "f":
        return values.astype(like.dtype, copy=False)
    info = np.iinfo(like.dtype)
    return np.clip(np.rint(values), info.min, info.max).astype(like.dtype)


def random_flip(x: np.ndarray, rng: np.random.Generator, mode: str = "horizontal") -> np.ndarray:
    """Mirror each image with probability 1/2: ``"horizontal"`` (left-right), ``"vertical"``
    (up-down) or ``"horizontal_and_vertical"`` (each axis drawn independently)."""
    x = _batch(x)
    mode = check_choice(mode, "mode", {"horizontal", "vertical", "horizontal_and_vertical"})
    no_flip = np.zeros(x.shape[0], bool)
    columns = rng.random(x.shape[0]) < 0.5 if mode in ("horizontal", "horizontal_and_vertical") else no_flip
    rows = rng.random(x.shape[0]) < 0.5 if mode in ("vertical", "horizontal_and_vertical") else no_flip
    return _mirror(x, rows, columns)


def _mirror_numpy(x, rows, columns):
    """``x`` with the images ``columns`` mirrored left-right and ``rows`` up-down (boolean masks)."""
    out = x.copy()
    out[columns] = out[columns, :, ::-1]
    out[rows] = out[rows, ::-1]
    return out


@tiered(_mirror_numpy)
def _mirror(kernels, x, rows, columns):
    """:func:`_mirror_numpy` in one parallel pass (3x faster on a smallres batch)."""
    out = np.empty_like(x)
    kernels.elementwise.mirror(np.ascontiguousarray(x), rows, columns, out)
    return out


def random_translation(x: np.ndarray, rng: np.random.Generator, height_factor=0.1, width_factor=0.1) -> np.ndarray:
    """Shift each image by whole pixels, ``dy = round(u * n_H)``, ``u ~ U(height range)`` (positive:
    down), likewise ``dx`` (positive: right); uncovered pixels are 0.

    ``out[i, r, c] = x[i, r - dy_i, c - dx_i]`` where that is inside the image, else 0.
    """
    x = _batch(x)
    m, n_h, n_w, _ = x.shape
    dy = np.rint(rng.uniform(*_range(height_factor, "height_factor", 1.0), size=m) * n_h).astype(np.int64)
    dx = np.rint(rng.uniform(*_range(width_factor, "width_factor", 1.0), size=m) * n_w).astype(np.int64)
    return _shift(x, dy, dx)


def _shift_numpy(x, dy, dx):
    """Each image ``i`` of ``x`` moved ``dy[i]`` pixels down and ``dx[i]`` right, zeros where it
    left; one block copy per image (the covered rectangle)."""
    m, n_h, n_w, _ = x.shape
    out = np.zeros_like(x)
    for i in range(m):
        rows, cols = _shifted(n_h, int(dy[i])), _shifted(n_w, int(dx[i]))
        if rows and cols:
            out[i, rows[0], cols[0]] = x[i, rows[1], cols[1]]
    return out


@tiered(_shift_numpy)
def _shift(kernels, x, dy, dx):
    """:func:`_shift_numpy` in one parallel pass (3x faster on a smallres batch); each row's
    values copied as one run."""
    out = np.empty_like(x)
    kernels.elementwise.shift(_rows(x), dy, dx * x.shape[-1], _rows(out))
    return out


def _shifted(n: int, shift: int):
    """``(target slice, source slice)`` of an axis of ``n`` shifted by ``shift``, or ``None`` when
    nothing of it stays in view."""
    if abs(shift) >= n:
        return None
    return (slice(shift, n), slice(0, n - shift)) if shift >= 0 else (slice(0, n + shift), slice(-shift, n))


def random_rotation(
    x: np.ndarray, rng: np.random.Generator, factor=0.05, interpolation: str = "bilinear"
) -> np.ndarray:
    """Rotate each image about its centre by ``theta = 2 pi u``, ``u ~ U(factor range)`` (a fraction
    of a full turn, as Keras; positive: counter-clockwise); pixels from outside are 0.

    Inverse mapping, image coordinates (x right, y down) about the centre:
    ``x_src = cos(t) x - sin(t) y``, ``y_src = sin(t) x + cos(t) y``, sampled bilinearly or nearest.
    """
    x = _batch(x)
    m, n_h, n_w, _ = x.shape
    theta = 2.0 * np.pi * rng.uniform(*_range(factor, "factor"), size=m)
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    cy, cx = (n_h - 1) / 2.0, (n_w - 1) / 2.0
    yy = (np.arange(n_h) - cy)[None, :, None]
    xx = (np.arange(n_w) - cx)[None, None, :]
    src_x = cos * xx - sin * yy + cx  # (m, n_H, n_W)
    src_y = sin * xx + cos * yy + cy
    return _cast_like(sample(x, src_y, src_x, interpolation, "constant", 0.0), x)


def zoom_range(factor, name: str) -> tuple[float, float]:
    """Keras's zoom factor as ``(lo, hi)``: ``f`` means ``(-f, f)``; each bound at least -1."""
    lo, hi = _range(factor, name)
    if lo < -1.0:
        raise ValueError(expected(name, "bounds of at least -1 (-1 zooms in to a single point)", factor))
    return lo, hi


def random_zoom(
    x: np.ndarray,
    rng: np.random.Generator,
    height_factor=0.1,
    width_factor=None,
    fill_mode: str = "reflect",
    interpolation: str = "bilinear",
    fill_value: float = 0.0,
) -> np.ndarray:
    """Zoom each image about its centre, as Keras's ``RandomZoom``.

    ``z_y = 1 + u``, ``u ~ U(height_factor range)``; ``z_x`` likewise from ``width_factor``, or
    ``z_x = z_y`` (aspect kept) when it is ``None``. Positive factors zoom out (the picture shrinks
    and ``fill_mode`` fills the border), negative ones zoom in. Inverse mapping about the centre
    ``(cy, cx)``: ``y_src = cy + z_y (y - cy)``, ``x_src = cx + z_x (x - cx)``, sampled as
    :func:`npconv.data.resample.sample` says (by its separable form, ``sample_axes``).
    """
    x = _batch(x)
    m, n_h, n_w, _ = x.shape
    zoom_y = 1.0 + rng.uniform(*zoom_range(height_factor, "height_factor"), size=m)
    zoom_x = zoom_y if width_factor is None else 1.0 + rng.uniform(*zoom_range(width_factor, "width_factor"), size=m)
    cy, cx = (n_h - 1) / 2.0, (n_w - 1) / 2.0
    src_y = cy + zoom_y[:, None] * (np.arange(n_h) - cy)[None, :]  # (m, n_H): rows
    src_x = cx + zoom_x[:, None] * (np.arange(n_w) - cx)[None, :]  # (m, n_W): columns
    return _cast_like(sample_axes(x, src_y, src_x, interpolation, fill_mode, fill_value), x)


def random_brightness(
    x: np.ndarray, rng: np.random.Generator, max_delta=0.1, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Add one ``delta ~ U(-max_delta, max_delta)`` per image (in the data's units: 0.1 for images
    in [0, 1], 25 for images in [0, 255]); clip to ``value_range`` when given (integer images
    are always clipped to their dtype's range)."""
    x = _batch(x)
    delta = rng.uniform(*_range(max_delta, "max_delta"), size=x.shape[0])
    work = x.dtype if x.dtype.kind == "f" else np.float64
    return _clipped_like(x.astype(work) + delta.astype(work)[:, None, None, None], x, value_range)


def contrast_range(factor) -> tuple[float, float]:
    """Keras's contrast factor as the range of the multiplier: ``f`` gives ``(1 - f, 1 + f)``, a pair
    ``(lower, upper)`` gives ``(1 - lower, 1 + upper)``; ``lower`` in [0, 1], ``upper`` >= 0."""
    lower, upper = factor if isinstance(factor, (tuple, list)) else (factor, factor)
    if isinstance(lower, bool) or isinstance(upper, bool) or not 0 <= float(lower) <= 1 or not 0 <= float(upper):
        raise ValueError(
            expected(
                "factor",
                "a number in [0, 1] or a pair (lower, upper) with lower in [0, 1] and upper >= 0",
                factor,
                "The contrast multiplier is drawn from [1 - lower, 1 + upper].",
            )
        )
    return 1.0 - float(lower), 1.0 + float(upper)


def random_contrast(
    x: np.ndarray, rng: np.random.Generator, factor=0.1, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Scale each image's contrast by one ``c ~ U(contrast_range(factor))``, as Keras's ``RandomContrast``:
    ``out[i, :, :, k] = (x[i, :, :, k] - mean_k) * c_i + mean_k``, ``mean_k`` the mean of channel
    ``k`` of image ``i``; clipped to ``value_range`` when given (integer images always to their dtype's
    range)."""
    x = _batch(x)
    lo, hi = contrast_range(factor)
    work = x.dtype if x.dtype.kind == "f" else np.float64
    scale = rng.uniform(lo, hi, size=x.shape[0]).astype(work)[:, None, None, None]
    values = x.astype(work)
    mean = values.mean(axis=(1, 2), keepdims=True)
    return _clipped_like((values - mean) * scale + mean, x, value_range)


# ----------------------------------------------------------------------------- a photo's light and lens
# What differs between a data set's photos and a learner's own: colour or not, the camera's white
# balance, focus and sensor noise (issue 30; ``npconv.data.corruptions`` makes the test versions).


def random_grayscale(x: np.ndarray, rng: np.random.Generator, probability=0.2) -> np.ndarray:
    """Replace each RGB image, with ``probability``, by its luma ``0.299 R + 0.587 G + 0.114 B``
    copied to the three channels; one-channel images are returned unchanged (a copy)."""
    x = _batch(x)
    chosen = rng.random(x.shape[0]) < float(probability)
    out = x.copy()
    if x.shape[-1] == 3 and chosen.any():
        gray = x[chosen].astype(np.float32) @ LUMA
        out[chosen] = _cast_like(np.repeat(gray[..., None], 3, axis=-1), x)
    return out


def random_channel_gain(
    x: np.ndarray, rng: np.random.Generator, factor=0.2, brightness=0.0, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Multiply each channel of each image by its own gain ``g_c ~ U(1 - factor, 1 + factor)`` (a
    camera's white balance) and the whole image by ``b ~ U(1 - brightness, 1 + brightness)`` (its
    exposure): ``out[i, :, :, c] = x[i, :, :, c] * g_ic * b_i``, clipped to ``value_range``."""
    x = _batch(x)
    m, n_c = x.shape[0], x.shape[-1]
    lo, hi = _range(factor, "factor", limit=1.0)
    b_lo, b_hi = _range(brightness, "brightness", limit=1.0)
    work = x.dtype if x.dtype.kind == "f" else np.float64
    gain = rng.uniform(1 + lo, 1 + hi, size=(m, n_c)) * rng.uniform(1 + b_lo, 1 + b_hi, size=(m, 1))
    return _scale_channels(x, gain.astype(work), value_range)


def _scale_channels_numpy(x, gain, value_range):
    """``x * gain[:, None, None, :]`` in ``gain``'s dtype, clipped to ``value_range``, as ``x``."""
    return _clipped_like(x.astype(gain.dtype) * gain[:, None, None, :], x, value_range)


def _clipped_like(values, x, value_range):
    """``values`` clipped in place to ``value_range`` (``None``: not clipped), then as ``x``."""
    if value_range is not None:
        values = np.clip(values, value_range[0], value_range[1], out=values)
    return _cast_like(values, x)


@tiered(_scale_channels_numpy, applies=lambda x, gain, value_range: _compiles(x, gain))
def _scale_channels(kernels, x, gain, value_range):
    """:func:`_scale_channels_numpy` in one parallel pass."""
    out = np.empty(x.shape, x.dtype)
    kernels.augment.channel_gain(_rows(x), gain, *_clip_bounds(value_range, x.dtype), _rows(out))
    return out


def _compiles(x: np.ndarray, work: np.ndarray) -> bool:
    """Whether the compiled kernels take ``x``: float32 or float64, worked on in its own dtype."""
    return x.dtype in (np.float32, np.float64) and work.dtype == x.dtype


def _rows(x: np.ndarray) -> np.ndarray:
    """``x (m, H, W, C)`` as ``(m, H, W * C)`` (contiguous): the compiled kernels' view of images."""
    return np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)


def _clip_bounds(value_range, dtype) -> tuple:
    """``(lo, hi, clip)`` for the compiled kernels: the range in ``dtype``, or no clipping."""
    lo, hi = value_range or (0.0, 0.0)
    return dtype.type(lo), dtype.type(hi), value_range is not None


def random_gaussian_blur(x: np.ndarray, rng: np.random.Generator, max_sigma=1.5) -> np.ndarray:
    """Blur each image by a Gaussian of its own ``sigma ~ U(0, max_sigma)`` pixels: two separable
    passes of a 7-tap kernel ``k_i[t] ∝ exp(-t^2 / (2 sigma_i^2))``, ``t = -3..3``, edges repeated."""
    x = _batch(x)
    sigma = rng.uniform(0.0, float(max_sigma), size=x.shape[0])
    taps = np.arange(-3, 4)
    kernel = np.exp(-(taps[None, :] ** 2) / (2 * np.maximum(sigma[:, None], 1e-3) ** 2))
    kernel /= kernel.sum(axis=1, keepdims=True)  # (m, 7); sigma -> 0: identity
    work = x.dtype if x.dtype.kind == "f" else np.float64
    return _blur(x, kernel.astype(work))


def _blur_numpy(x, kernel):
    """``x`` blurred by ``kernel (m, 7)`` down the columns, then along the rows, edges repeated."""
    kernel = kernel[:, :, None, None, None]
    out = x.astype(kernel.dtype)
    n_h, n_w = x.shape[1:3]
    padded = np.pad(out, ((0, 0), (3, 3), (0, 0), (0, 0)), mode="edge")
    out = kernel[:, 0] * padded[:, 0:n_h]
    for t in range(1, 7):
        out += kernel[:, t] * padded[:, t : t + n_h]
    padded = np.pad(out, ((0, 0), (0, 0), (3, 3), (0, 0)), mode="edge")
    out = kernel[:, 0] * padded[:, :, 0:n_w]
    for t in range(1, 7):
        out += kernel[:, t] * padded[:, :, t : t + n_w]
    return _cast_like(out, x)


@tiered(_blur_numpy, applies=lambda x, kernel: _compiles(x, kernel))
def _blur(kernels, x, kernel):
    """:func:`_blur_numpy` in one parallel pass per direction, each image's rows in cache (7x faster
    on a (32, 64, 64, 3) batch)."""
    out = np.empty(x.shape, x.dtype)
    kernels.augment.gaussian_blur(_rows(x), kernel, x.shape[-1], _rows(out))
    return out


def gaussian_noise(
    x: np.ndarray, rng: np.random.Generator, stddev=0.05, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Add noise ``N(0, s_i^2)`` to every pixel, ``s_i ~ U(0, stddev)`` per image (a sensor's grain
    varies with the light), clipped to ``value_range`` when given."""
    x = _batch(x)
    work = x.dtype if x.dtype.kind == "f" else np.float64
    scale = rng.uniform(0.0, float(stddev), size=(x.shape[0], 1, 1, 1))
    return _add_noise(x, rng, scale.astype(np.float32 if work == np.float32 else np.float64), value_range)


def _add_noise_numpy(x, rng, scale, value_range):
    """``x + N(0, 1) * scale``, draws and ``scale (m, 1, 1, 1)`` in ``scale``'s dtype, clipped."""
    noise = rng.standard_normal(x.shape, dtype=scale.dtype)
    noise *= scale
    return _clipped_like(x.astype(noise.dtype) + noise, x, value_range)


@tiered(_add_noise_numpy, applies=lambda x, rng, *rest: _compiles(x, rest[0]) and type(rng) is np.random.Generator)
def _add_noise(kernels, x, rng, scale, value_range):
    """:func:`_add_noise_numpy` with the same draws taken by compiled code, then one parallel pass
    written over them."""
    noise = np.empty(x.shape, x.dtype)
    standard_normal(kernels, rng, noise)
    kernels.augment.add_noise(_rows(x), scale.reshape(-1), *_clip_bounds(value_range, x.dtype), _rows(noise))
    return noise


def random_reframe(
    x: np.ndarray,
    rng: np.random.Generator,
    min_scale=0.6,
    max_degrees=0.0,
    probability=0.5,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """With ``probability``, show each image as if taken from further away and a little askew: rotate
    it by ``a ~ U(-max_degrees, max_degrees)``, shrink it to ``s ~ U(min_scale, 1)`` of its size by
    the area filter (as the tools resize photos) and place it at a uniformly random position, on a
    plain background of its border's median colour (see :func:`npconv.data.corruptions.background_colour`).

    Pillow does the work (the compiled tier repeats its arithmetic), on the images mapped from
    ``value_range`` to uint8 (what a photo holds); the others are returned unchanged.
    """
    x = _batch(x)
    m, n_h, n_w, n_c = x.shape
    lo, hi = (float(v) for v in value_range)
    chosen = rng.random(m) < float(probability)
    scales = rng.uniform(float(min_scale), 1.0, size=m)
    angles = rng.uniform(-float(max_degrees), float(max_degrees), size=m)
    offsets = rng.random((m, 2))
    # The shrunk size (height, width) and where its top-left corner goes, as Python's round and int.
    sizes = np.maximum(1, np.rint(np.array([n_h, n_w]) * scales[:, None])).astype(np.int64)
    corners = (offsets * (np.array([n_h, n_w]) - sizes + 1)).astype(np.int64)
    return _reframe(x, chosen, angles, sizes, corners, lo, hi)


def _reframe_numpy(x, chosen, angles, sizes, corners, lo, hi):
    """Pillow's reframing of the ``chosen`` images (see :func:`random_reframe`), one at a time."""
    from PIL import Image

    from .corruptions import background_colour

    n_h, n_w, n_c = x.shape[1:]
    out = x.copy()
    for i in np.flatnonzero(chosen):
        image = np.clip(np.rint((x[i].astype(np.float64) - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)
        fill = background_colour(image)
        fill = fill[0] if n_c == 1 else fill
        picture = Image.fromarray(image[..., 0] if n_c == 1 else image)
        if angles[i]:
            picture = picture.rotate(angles[i], resample=Image.Resampling.BILINEAR, fillcolor=fill)
        small = picture.resize((int(sizes[i, 1]), int(sizes[i, 0])), Image.Resampling.BOX)
        canvas = Image.new(picture.mode, (n_w, n_h), fill)
        canvas.paste(small, (int(corners[i, 1]), int(corners[i, 0])))
        framed = np.asarray(canvas, dtype=np.float64).reshape(n_h, n_w, n_c) / 255 * (hi - lo) + lo
        out[i] = _cast_like(framed[None], x[i : i + 1])[0]
    return out


@tiered(_reframe_numpy, applies=lambda x, *draws: _compiles(x, x) and x.shape[-1] in (1, 3))
def _reframe(kernels, x, chosen, angles, sizes, corners, lo, hi):
    """:func:`_reframe_numpy` with Pillow's arithmetic compiled, the images in parallel (see
    :mod:`npconv.functional.compiled.reframe`)."""
    out = np.empty(x.shape, x.dtype)
    kernels.reframe.reframe(np.ascontiguousarray(x), chosen, angles, sizes, corners, lo, hi, out)
    return out
