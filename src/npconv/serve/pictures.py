"""Arrays as the PNG pictures the page shows: the model's input and a grid of feature maps."""

from __future__ import annotations

import base64
import io
import math

import matplotlib
import numpy as np
from PIL import Image

from ..viz import CMAP

#: The colour map of ``npconv.viz`` as a lookup table: value 0..255 -> RGB.
_LUT = (matplotlib.colormaps[CMAP](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def png_data_url(image: np.ndarray) -> str:
    """uint8 ``(n_H, n_W)``, ``(n_H, n_W, 1)`` or ``(n_H, n_W, 3)`` as a ``data:image/png`` URL."""
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def feature_map_grid(fmap: np.ndarray, max_channels: int = 32, ncols: int = 8) -> np.ndarray:
    """The first ``max_channels`` channels of one activation ``(n_H, n_W, C)`` side by side, as uint8
    RGB ``(rows * (n_H + 1) - 1, ncols * (n_W + 1) - 1, 3)`` with white 1-pixel gaps.

    Each channel is min-max scaled on its own, ``(a - min) / (max - min)`` (a constant channel is
    mid-grey), then coloured with the map of ``npconv.viz``, so the pattern shows whatever its scale.
    """
    n_H, n_W, channels = fmap.shape
    shown = fmap[:, :, : min(channels, max_channels)].astype(np.float32)
    low, high = shown.min(axis=(0, 1)), shown.max(axis=(0, 1))
    span = np.where(high > low, high - low, 1.0)
    scaled = np.where(high > low, (shown - low) / span, 0.5)
    tiles = _LUT[np.rint(scaled * 255).astype(np.uint8)]  # (n_H, n_W, k, 3)
    k = tiles.shape[2]
    ncols = min(ncols, k)
    nrows = math.ceil(k / ncols)
    grid = np.full((nrows * (n_H + 1) - 1, ncols * (n_W + 1) - 1, 3), 255, np.uint8)
    for c in range(k):
        top, left = (c // ncols) * (n_H + 1), (c % ncols) * (n_W + 1)
        grid[top : top + n_H, left : left + n_W] = tiles[:, :, c]
    return grid
