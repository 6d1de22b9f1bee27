"""Augmentation kernels: pure functions of an image batch ``(m, n_H, n_W, n_C)`` and a generator.

Each draws one random value per image from ``rng`` (a ``np.random.Generator``), works on the whole
batch with index arithmetic (no per-image loop), and returns a new array of the same shape and dtype.
Factors follow Keras: a number ``f`` means the range ``(-f, f)``; a pair ``(lo, hi)`` is used as is.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, check_choice, expected


def _batch(x) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "uif":
        raise TypeError(expected("x", "a numeric NumPy array", x if isinstance(x, np.ndarray)
                                 else type(x).__name__, "Pass images as a float32 array."))
    if x.ndim != 4:
        raise ShapeError(expected("x", "a batch of shape (m, n_H, n_W, n_C)", x,
                                  "For one image use x[None]."))
    return x


def _range(factor, name: str, limit: float | None = None) -> tuple[float, float]:
    lo, hi = (factor if isinstance(factor, (tuple, list)) else (-factor, factor))
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
    out = x.copy()
    if mode in ("horizontal", "horizontal_and_vertical"):
        flip = rng.random(x.shape[0]) < 0.5
        out[flip] = out[flip, :, ::-1]
    if mode in ("vertical", "horizontal_and_vertical"):
        flip = rng.random(x.shape[0]) < 0.5
        out[flip] = out[flip, ::-1]
    return out


def random_translation(x: np.ndarray, rng: np.random.Generator, height_factor=0.1,
                       width_factor=0.1) -> np.ndarray:
    """Shift each image by whole pixels, ``dy = round(u * n_H)``, ``u ~ U(height range)`` (positive:
    down), likewise ``dx`` (positive: right); uncovered pixels are 0.

    ``out[i, r, c] = x[i, r - dy_i, c - dx_i]`` where that is inside the image, else 0.
    """
    x = _batch(x)
    m, n_h, n_w, _ = x.shape
    dy = np.rint(rng.uniform(*_range(height_factor, "height_factor", 1.0), size=m) * n_h).astype(np.int64)
    dx = np.rint(rng.uniform(*_range(width_factor, "width_factor", 1.0), size=m) * n_w).astype(np.int64)
    rows = np.arange(n_h)[None, :] - dy[:, None]                     # (m, n_H) source rows
    cols = np.arange(n_w)[None, :] - dx[:, None]                     # (m, n_W) source columns
    inside = ((rows >= 0) & (rows < n_h))[:, :, None] & ((cols >= 0) & (cols < n_w))[:, None, :]
    gathered = x[np.arange(m)[:, None, None], np.clip(rows, 0, n_h - 1)[:, :, None],
                 np.clip(cols, 0, n_w - 1)[:, None, :]]
    return np.where(inside[..., None], gathered, np.zeros((), dtype=x.dtype))


def random_rotation(x: np.ndarray, rng: np.random.Generator, factor=0.05,
                    interpolation: str = "bilinear") -> np.ndarray:
    """Rotate each image about its centre by ``theta = 2 pi u``, ``u ~ U(factor range)`` (a fraction
    of a full turn, as Keras; positive: counter-clockwise); pixels from outside are 0.

    Inverse mapping, image coordinates (x right, y down) about the centre:
    ``x_src = cos(t) x - sin(t) y``, ``y_src = sin(t) x + cos(t) y``, sampled bilinearly or nearest.
    """
    x = _batch(x)
    interpolation = check_choice(interpolation, "interpolation", {"bilinear", "nearest"})
    m, n_h, n_w, _ = x.shape
    theta = 2.0 * np.pi * rng.uniform(*_range(factor, "factor"), size=m)
    work = x.dtype if x.dtype.kind == "f" else np.float64
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    cy, cx = (n_h - 1) / 2.0, (n_w - 1) / 2.0
    yy = (np.arange(n_h) - cy)[None, :, None]
    xx = (np.arange(n_w) - cx)[None, None, :]
    src_x = cos * xx - sin * yy + cx                                   # (m, n_H, n_W)
    src_y = sin * xx + cos * yy + cy
    batch = np.arange(m)[:, None, None]
    if interpolation == "nearest":
        return _cast_like(_sample(x, batch, np.rint(src_y).astype(np.int64),
                                  np.rint(src_x).astype(np.int64), np.ones((), work)), x)
    y0, x0 = np.floor(src_y), np.floor(src_x)
    fy, fx = (src_y - y0).astype(work), (src_x - x0).astype(work)
    y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
    out = (_sample(x, batch, y0, x0, (1 - fy) * (1 - fx)) + _sample(x, batch, y0, x0 + 1, (1 - fy) * fx)
           + _sample(x, batch, y0 + 1, x0, fy * (1 - fx)) + _sample(x, batch, y0 + 1, x0 + 1, fy * fx))
    return _cast_like(out, x)


def _sample(x, batch, rows, cols, weight) -> np.ndarray:
    """``weight * x[batch, rows, cols]`` with 0 for positions outside the image; shape (m, n_H, n_W, n_C)."""
    n_h, n_w = x.shape[1:3]
    inside = (rows >= 0) & (rows < n_h) & (cols >= 0) & (cols < n_w)
    values = x[batch, np.clip(rows, 0, n_h - 1), np.clip(cols, 0, n_w - 1)]
    return values * np.where(inside, weight, 0)[..., None]


def random_brightness(x: np.ndarray, rng: np.random.Generator, max_delta=0.1,
                      value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Add one ``delta ~ U(-max_delta, max_delta)`` per image (in the data's units: 0.1 for images
    in [0, 1], 25 for images in [0, 255]); clip to ``value_range`` when given (integer images
    are always clipped to their dtype's range)."""
    x = _batch(x)
    delta = rng.uniform(*_range(max_delta, "max_delta"), size=x.shape[0])
    work = x.dtype if x.dtype.kind == "f" else np.float64
    out = x.astype(work) + delta.astype(work)[:, None, None, None]
    if value_range is not None:
        out = np.clip(out, value_range[0], value_range[1], out=out)
    return _cast_like(out, x)
