"""A convolution layer's filters, each as a small image."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..errors import ShapeError, check_choice, check_positive_int, expected
from .style import _bare, _figure, _image_grid, _styled


def _normalise(a: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1]; a constant array becomes 0.5."""
    a = a.astype(np.float32)
    low, high = float(a.min()), float(a.max())
    return np.full_like(a, 0.5) if high - low == 0 else (a - low) / (high - low)


#: Kernels at least this wide show as colour images in ``plot_filters(mode="auto")``; smaller ones
#: (3x3, 4x4) are 9-16 colours of noise that way, so their channels are drawn side by side instead.
RGB_FILTER_MIN_SIZE = 5
MAX_FILTER_CHANNELS = 3


def _channels_side_by_side(kernel: np.ndarray) -> np.ndarray:
    """``(f_h, f_w, C)`` as ``(f_h, C*f_w + C-1)``: the channels in a row, NaN columns between
    them, scaled by the largest ``|w|`` so that 0 stays the middle of a diverging colour map."""
    f_h, _, channels = kernel.shape
    scale = float(np.abs(kernel).max()) or 1.0
    gap = np.full((f_h, 1), np.nan, dtype=np.float32)
    parts = []
    for c in range(channels):
        parts += [gap] if c else []
        parts.append((kernel[:, :, c] / scale).astype(np.float32))
    return np.concatenate(parts, axis=1)


@_styled
def plot_filters(w, max_filters: int = 64, ncols: int | None = None, mode: str = "auto") -> Figure:
    """Each convolution filter as a small image.

    Parameters
    ----------
    w : ndarray, shape (f_h, f_w, C, K) (a Conv2D kernel).
    max_filters : show at most this many of the K filters.
    ncols : filters per row (default: about the square root of K, at most 16).
    mode : "rgb" - the 3 channels as one colour image, min-max normalised per filter (the pattern,
        not the scale); "channels" - each input channel (the first 3) side by side on a diverging
        map, red positive and blue negative, scaled per filter by its largest ``|w|``; "auto"
        (default) - "rgb" for 3-channel kernels of 5x5 or more, else "channels".
    path : optional PNG file to write.
    """
    w = np.asarray(w)
    if w.ndim != 4:
        raise ShapeError(expected("w", "a kernel of shape (f_h, f_w, C, K)", w))
    f_h, f_w, channels, k = w.shape
    mode = check_choice(mode, "mode", {"auto", "rgb", "channels"})
    if mode == "auto":
        mode = "rgb" if channels == 3 and min(f_h, f_w) >= RGB_FILTER_MIN_SIZE else "channels"
    if mode == "rgb" and channels != 3:
        raise ValueError(expected("mode", "'channels' for a kernel without 3 input channels", "'rgb'"))
    k = min(k, check_positive_int(max_filters, "max_filters"))
    shown_channels = min(channels, MAX_FILTER_CHANNELS)
    ncols = ncols or min(16 if mode == "rgb" else 8, math.ceil(math.sqrt(k)))
    nrows = math.ceil(k / ncols)
    panel = 1.0 if mode == "rgb" else 0.45 + 0.45 * shown_channels
    # Rows as tall as the tiles: a channels tile is about as wide as its C side-by-side channels.
    row = 1.05 if mode == "rgb" else 0.4 + 0.75 * panel * f_h / (shown_channels * (f_w + 1) - 1)
    fig = _figure(max(panel * ncols + (1.0 if mode == "channels" else 0.0), 3.6), row * nrows + 0.75)
    # Filters far apart, one filter's channels close together (one blank column): the grid reads as
    # filters, each a row of its channels.
    fig.get_layout_engine().set(wspace=0.12 if mode == "rgb" else 0.35, hspace=0.12)
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
    axes = _image_grid(fig, k, ncols)
    channel_names = ["R", "G", "B"] if channels == 3 else [str(c) for c in range(shown_channels)]
    for i, ax in enumerate(axes):
        if mode == "rgb":
            ax.imshow(_normalise(w[:, :, :, i]), vmin=0, vmax=1)
        else:
            image = ax.imshow(_channels_side_by_side(w[:, :, :shown_channels, i]), cmap=cmap, vmin=-1, vmax=1)
            if i >= k - ncols and shown_channels > 1:  # the bottom row names the channels under each tile
                ax.set_axis_on()
                _bare(ax)
                ax.set_xticks(
                    [c * (f_w + 1) + (f_w - 1) / 2 for c in range(shown_channels)], channel_names, fontsize=6.5
                )
                ax.tick_params(length=0, pad=1.5)
        ax.set_title(str(i), fontsize=7, fontweight="normal", pad=2)
    count = f"{k} filters" if k == w.shape[3] else f"first {k} of {w.shape[3]} filters"
    if mode == "rgb":
        how = "RGB, each filter scaled to its own range"
    else:
        names = (
            "R, G, B"
            if channels == 3
            else f"channels 0-{shown_channels - 1} of {channels}"
            if channels > shown_channels
            else ", ".join(f"channel {c}" for c in range(channels))
        )
        how = f"{names} side by side; red +, blue \u2212" if channels > 1 else "red +, blue \u2212"
        fig.colorbar(
            image, ax=list(axes), shrink=0.9, aspect=12, pad=0.03, label="weight \u00f7 the filter's largest |weight|"
        )
    fig.suptitle(f"{count}, {f_h}\u00d7{f_w}\u00d7{channels}\n({how})", fontsize=10)
    return fig
