"""What a classifier gets wrong: the confusion matrix, and the misclassified pictures."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..errors import ShapeError, check_positive_int, expected
from .arrays import _as_labels, _columns, _name, _show, spread_over_classes
from .style import CMAP, MAX_ANNOTATED_CLASSES, WRONG_COLOUR, _bare, _figure, _image_grid, _message, _styled


@_styled
def plot_confusion_matrix(cm, class_names=None, normalize: bool = False, pictures: str | None = None) -> Figure:
    """A confusion matrix (rows: true class, columns: predicted) with every cell annotated, titled
    with what it counts: ``pictures`` (e.g. ``"the 90 validation pictures"``), else their number.

    Parameters
    ----------
    cm : ndarray (C, C) of counts, e.g. from :func:`confusion_matrix`.
    class_names : optional names of the C classes.
    normalize : show each row as fractions of its true class (its recall on the diagonal).
    pictures : what the counts are of, for the title (default ``"N pictures"``).
    path : optional PNG file to write.

    Cells are annotated up to 30 classes; beyond that the colours alone tell the story.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ShapeError(expected("cm", "a square (C, C) matrix", cm))
    n = cm.shape[0]
    names = [_name(i, class_names) for i in range(n)]
    if normalize:
        totals = cm.sum(axis=1, keepdims=True)
        values = np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)
        vmax = 1.0
    else:
        values = cm
        vmax = max(float(cm.max()), 1.0)

    size = min(max(3.6, 0.55 * n + 2.2), 12.0)
    fig = _figure(size + 0.9, size)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap=CMAP, vmin=0, vmax=vmax)
    # Text scaled to the cell (about 3/4 of the figure is matrix); past 30 classes cells are too small.
    cell_points = 72 * size * 0.75 / n
    fontsize = min(10.0, 0.24 * cell_points)
    cmap = matplotlib.colormaps[CMAP]
    for (t, p), value in np.ndenumerate(values if n <= MAX_ANNOTATED_CLASSES else np.empty((0, 0))):
        r, g, b, _ = cmap(value / vmax)
        # Dark cells get white text, light cells black (relative luminance threshold).
        colour = "white" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45 else "black"
        text = f"{value:.2f}" if normalize else f"{int(value)}"
        ax.text(p, t, text, ha="center", va="center", color=colour, fontsize=fontsize)
    ax.set_xticks(
        range(n),
        names,
        rotation=45 if max(map(len, names)) > 4 else 0,
        ha="right" if max(map(len, names)) > 4 else "center",
    )
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    accuracy = np.trace(cm) / cm.sum() if cm.sum() else 0.0
    counted = pictures or f"{int(cm.sum())} pictures"
    ax.set_title(
        f"Confusion matrix of {counted}{' (row-normalised)' if normalize else ''}\n"
        f"accuracy {accuracy:.1%} ({int(np.trace(cm))} of {int(cm.sum())} right)"
    )
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of true class" if normalize else "count")
    return fig


@_styled
def plot_misclassified(
    images, y_true, y_pred, class_names=None, probs=None, n: int = 16, ncols: int = 8, pictures: str | None = None
) -> Figure:
    """Up to ``n`` wrongly classified images, captioned ``pred: X (0.93)`` / ``true: Y``, taken from
    every true class in turn, so both directions of a binary model's errors show.

    Parameters
    ----------
    images : array (m, n_H, n_W, C) as in :func:`plot_samples`.
    y_true, y_pred : labels (m,) or one-hot/probability rows (m, n_classes).
    class_names : optional names indexed by label.
    probs : optional probabilities, (m, n_classes) or, for a sigmoid output, (m,) / (m, 1) of P(class 1);
        the caption shows the probability of the predicted class.
    n, ncols : how many images at most, and per row at most.
    pictures : what the images are, for the title (e.g. ``"the 90 validation pictures"``).
    path : optional PNG file to write.
    """
    images = np.asarray(images)
    y_true, y_pred = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if not len(images) == len(y_true) == len(y_pred):
        raise ShapeError(
            expected("y_true, y_pred", f"{len(images)} labels each, one per image", f"{len(y_true)} and {len(y_pred)}")
        )
    wrong = np.flatnonzero(y_true != y_pred)
    wrong = wrong[spread_over_classes(y_true[wrong], check_positive_int(n, "n"))]
    if wrong.size == 0:
        return _message(_figure(4.5, 1.6), "no misclassified images")

    confidence = None
    if probs is not None:
        probs = np.asarray(probs, dtype=float)
        if probs.ndim == 2 and probs.shape[1] > 1:
            confidence = probs[np.arange(len(probs)), y_pred]
        else:
            p1 = probs.reshape(-1)
            confidence = np.where(y_pred == 1, p1, 1.0 - p1)

    ncols = _columns(wrong.size, check_positive_int(ncols, "ncols"))
    nrows = math.ceil(wrong.size / ncols)
    fig = _figure(max(1.5 * ncols, 3.6), 1.95 * nrows + 0.35)  # wide enough for the title
    for ax, i in zip(_image_grid(fig, wrong.size, ncols), wrong):
        _show(ax, images[i])
        pred = f"pred: {_name(int(y_pred[i]), class_names)}"
        if confidence is not None:
            pred += f" ({confidence[i]:.2f})"
        # The wrong prediction above the image in colour, the truth quietly below it.
        ax.set_axis_on()
        _bare(ax)
        ax.set_title(pred, fontsize=7.5, color=WRONG_COLOUR, pad=3)
        ax.set_xlabel(f"true: {_name(int(y_true[i]), class_names)}", fontsize=7.5, color="0.2", labelpad=2)
    total = int(np.count_nonzero(y_true != y_pred))
    fig.suptitle(
        f"Misclassified: {total} of {pictures or len(y_true)}"
        + (f" ({wrong.size} shown)" if total > wrong.size else ""),
        fontsize=11,
    )
    return fig
