"""Feature maps: one input followed through the layers, a row of channels per layer."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..errors import ShapeError, check_positive_int, expected
from .arrays import _show
from .filters import _normalise
from .style import CMAP, _bare, _figure, _styled


@_styled
def plot_feature_maps(
    feature_maps, names=None, max_channels: int = 16, image=None, image_title: str = "input"
) -> Figure:
    """Activations of one image through several layers: one row per layer, one column per channel,
    and, given ``image``, that picture on the left, as it is.

    Parameters
    ----------
    feature_maps : list of ndarrays (n_H, n_W, C) (a leading batch axis of 1 is dropped).
    names : optional row labels, one per layer (default ``layer 0``, ``layer 1``, ...).
    max_channels : show at most this many channels per layer.
    image : optional, the picture the maps are computed from, (n_H, n_W[, C]) as in :func:`plot_samples`.
    image_title : its caption (e.g. ``"held-out picture 0\ntrue: smiling"``).
    path : optional PNG file to write.

    Each channel is min-max normalised on its own.
    """
    maps = []
    for index, fmap in enumerate(feature_maps):
        fmap = np.asarray(fmap)
        if fmap.ndim == 4 and fmap.shape[0] == 1:
            fmap = fmap[0]
        if fmap.ndim != 3:
            raise ShapeError(
                expected(
                    f"feature_maps[{index}]",
                    "an activation (n_H, n_W, C) of one image",
                    fmap,
                    "Take one example first: a[0].",
                )
            )
        maps.append(fmap)
    if not maps:
        raise ValueError(expected("feature_maps", "a non-empty list of (n_H, n_W, C) arrays", "an empty list"))
    names = list(names) if names is not None else [f"layer {i}" for i in range(len(maps))]
    if len(names) != len(maps):
        raise ValueError(expected("names", f"{len(maps)} names, one per feature map", f"{len(names)} names"))
    max_channels = check_positive_int(max_channels, "max_channels")
    ncols = min(max_channels, max(m.shape[-1] for m in maps))

    picture_width = 0.0 if image is None else max(1.6, 0.5 * len(maps))
    fig = _figure(1.05 * ncols + 1.0 + picture_width, 1.15 * len(maps) + 0.2)
    if image is None:
        axes = fig.subplots(len(maps), ncols, squeeze=False)
    else:
        grid = fig.add_gridspec(len(maps), ncols + 1, width_ratios=[picture_width / 1.05] + [1] * ncols)
        picture = fig.add_subplot(grid[:, 0])
        _bare(picture)
        _show(picture, image)
        picture.set_title(image_title, fontsize=9)
        axes = np.array([[fig.add_subplot(grid[r, c + 1]) for c in range(ncols)] for r in range(len(maps))])
    for row, (fmap, name) in zip(axes, zip(maps, names)):
        for c, ax in enumerate(row):
            _bare(ax)
            if c < fmap.shape[-1] and c < max_channels:
                ax.imshow(_normalise(fmap[:, :, c]), cmap=CMAP, vmin=0, vmax=1)
        h, w, channels = fmap.shape
        row[0].set_ylabel(f"{name}\n{h}×{w}×{channels}", rotation=0, ha="right", va="center", fontsize=8, labelpad=6)
    fig.suptitle("Feature maps (each channel scaled to its own range)", fontsize=10)
    return fig
