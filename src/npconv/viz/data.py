"""Pictures of the data: the course's zero-padding figure, sample grids, one row of samples per set."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..errors import ShapeError, check_positive_int, expected
from .arrays import _as_labels, _columns, _name, _show, spread_over_classes
from .style import _bare, _figure, _image_grid, _message, _styled


@_styled
def plot_zero_pad(x, x_pad, example: int = 0, channel: int = 0) -> Figure:
    """The course's zero-padding picture: ``x[example, :, :, channel]`` beside its padded version.

    Parameters
    ----------
    x : ndarray, shape (m, n_H, n_W, n_C) (or one image (n_H, n_W)).
    x_pad : ndarray, shape (m, n_H + 2*pad, n_W + 2*pad, n_C) (or (n_H + 2*pad, n_W + 2*pad)).
    example, channel : which image and channel to show (the course shows ``[0, :, :, 0]``).
    path : optional PNG file to write.
    """
    panels = []
    for name, a in (("x", x), ("x_pad", x_pad)):
        a = np.asarray(a)
        if a.ndim == 4:
            a = a[example, :, :, channel]
        if a.ndim != 2:
            raise ShapeError(expected(name, "an array (m, n_H, n_W, n_C) or one image (n_H, n_W)", a))
        panels.append((name, a))
    vmin = min(float(a.min()) for _, a in panels)
    vmax = max(float(a.max()) for _, a in panels)

    fig = _figure(7.0, 3.4)
    axes = fig.subplots(1, 2)
    for ax, (name, a) in zip(axes, panels):
        image = ax.imshow(a, vmin=vmin, vmax=vmax)
        ax.set_title(f"{name}   {a.shape[0]}×{a.shape[1]}")
        ax.set_xticks([])
        ax.set_yticks([])
    pad_h = (panels[1][1].shape[0] - panels[0][1].shape[0]) // 2
    pad_w = (panels[1][1].shape[1] - panels[0][1].shape[1]) // 2
    if pad_h > 0 or pad_w > 0:
        # Outline where the original image sits inside the padding.
        h, w = panels[0][1].shape
        axes[1].add_patch(
            Rectangle((pad_w - 0.5, pad_h - 0.5), w, h, fill=False, edgecolor="white", linestyle="--", linewidth=1.5)
        )
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="value")
    return fig


@_styled
def plot_samples(images, labels=None, class_names=None, n: int = 16, ncols: int = 8) -> Figure:
    """A grid of ``n`` images with their labels as titles: taken from every class in turn when
    labelled (data sorted by class still shows each class; a small class leaves its share to the
    others, so every slot is filled), else the first ``n``.

    Parameters
    ----------
    images : array (m, n_H, n_W, 3) or (m, n_H, n_W, 1) or (m, n_H, n_W); uint8, or floats in [0, 1]
        or [0, 255].
    labels : optional labels (m,), (1, m) or one-hot (m, C).
    class_names : optional names indexed by label.
    n, ncols : how many images, and per row at most.
    path : optional PNG file to write.

    To show several sets, one row each (training faces above, test pictures below), use
    :func:`plot_sample_rows`.
    """
    images = np.asarray(images)
    n = min(check_positive_int(n, "n"), len(images))
    if n == 0:
        return _message(_figure(4.0, 1.5), "no images")
    ncols = _columns(n, check_positive_int(ncols, "ncols"))
    label_ids = None if labels is None else _as_labels(labels, "labels")
    shown = np.arange(n) if label_ids is None else spread_over_classes(label_ids[: len(images)], n)
    nrows = math.ceil(n / ncols)
    fig = _figure(1.35 * ncols, 1.5 * nrows + 0.1)
    for i, ax in zip(shown, _image_grid(fig, n, ncols)):
        _show(ax, images[i])
        if label_ids is not None:
            ax.set_title(_name(int(label_ids[i]), class_names), fontsize=8, fontweight="normal")
    return fig


@_styled
def plot_sample_rows(rows: dict, class_names=None, ncols: int = 8) -> Figure:
    """One row of ``ncols`` images per set, named on the left: ``rows`` maps a name (``"training
    faces"``) to ``(images, labels)`` (labels may be ``None``), each row taken from every class in
    turn as in :func:`plot_samples`. Each row holds its own set only, whatever the classes' sizes.

    Parameters
    ----------
    rows : dict name -> (images (m, n_H, n_W[, C]), labels (m,) or None).
    class_names : optional names indexed by label.
    ncols : images per row (fewer where a set has fewer).
    path : optional PNG file to write.
    """
    if not rows:
        raise ValueError(expected("rows", "a dict of name -> (images, labels)", "an empty dict"))
    ncols = check_positive_int(ncols, "ncols")
    fig = _figure(1.35 * ncols + 1.2, 1.5 * len(rows) + 0.1)
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for row_axes, (name, (images, labels)) in zip(axes, rows.items()):
        images = np.asarray(images)
        count = min(ncols, len(images))
        label_ids = None if labels is None else _as_labels(labels, f"rows[{name!r}] labels")
        shown = np.arange(count) if label_ids is None else spread_over_classes(label_ids[: len(images)], count)
        for c, ax in enumerate(row_axes):
            _bare(ax)
            if c >= count:
                ax.set_visible(False)
                continue
            _show(ax, images[shown[c]])
            if label_ids is not None:
                ax.set_title(_name(int(label_ids[shown[c]]), class_names), fontsize=8, fontweight="normal")
        row_axes[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9, labelpad=8)
    return fig
