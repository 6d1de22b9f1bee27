"""Pictures: padded inputs, sample grids, training curves, confusion matrices, filters, feature maps.

Every function takes plain arrays, returns a :class:`matplotlib.figure.Figure` and, given ``path=``,
also writes it as a PNG (120 dpi). Figures are drawn on matplotlib's Agg canvas and are never
registered with ``pyplot``: nothing pops up, nothing needs closing, and library code never calls
``show``. In a notebook, the returned figure displays itself.

One look for all of them (:func:`style`): plain axes without top/right spines, readable fonts,
constrained layout, ``viridis`` for values (perceptually uniform and colour-blind safe) and the
Okabe-Ito palette for lines.
"""
from __future__ import annotations

import contextlib
import functools
import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from . import metrics
from .errors import ShapeError, check_choice, check_positive_int, expected

__all__ = [
    "style", "confusion_matrix", "spread_over_classes", "plot_zero_pad", "plot_samples", "plot_sample_rows",
    "plot_history",
    "plot_confusion_matrix", "plot_misclassified", "plot_filters", "plot_feature_maps", "plot_variant_scores",
]

DPI = 120
CMAP = "viridis"
# Okabe & Ito (2008), readable with every common colour-vision deficiency.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
TRAIN_COLOUR, VAL_COLOUR = OKABE_ITO[0], OKABE_ITO[1]
WRONG_COLOUR = OKABE_ITO[3]
MAX_ANNOTATED_CLASSES = 30

STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "figure.titlesize": 12,
    "figure.titleweight": "bold",
    "image.cmap": CMAP,
    "image.interpolation": "nearest",
    "legend.frameon": False,
    "savefig.dpi": DPI,
    "savefig.facecolor": "white",
}


@contextlib.contextmanager
def style():
    """Context manager applying npconv's plot style (``with npconv.viz.style(): ...``)."""
    with matplotlib.rc_context(STYLE):
        yield


def _styled(plot):
    """Draw ``plot`` inside :func:`style` and save it when called with ``path=``."""
    @functools.wraps(plot)
    def wrapper(*args, path: str | Path | None = None, **kwargs) -> Figure:
        with style():
            fig = plot(*args, **kwargs)
            if path is not None:
                fig.savefig(path, dpi=DPI)
        return fig
    return wrapper


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _image_grid(fig: Figure, n: int, ncols: int):
    """``n`` image axes in rows of ``ncols``, ticks and frames off; unused cells hidden."""
    nrows = math.ceil(n / ncols)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()
    return axes[:n]


def _bare(ax) -> None:
    """No ticks and no frame, but keep the axis labels (unlike ``set_axis_off``)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _message(fig: Figure, text: str) -> Figure:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, color="0.35", transform=ax.transAxes)
    return fig


# ------------------------------------------------------------------ array helpers

def _display_image(image) -> tuple[np.ndarray, str | None]:
    """An image ready for ``imshow`` and its colour map (``"gray"`` for one channel, else None).

    Accepts (n_H, n_W), (n_H, n_W, 1) or (n_H, n_W, 3); uint8, or floats in [0, 1] or [0, 255].
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (3, 4)):
        raise ShapeError(expected("images", "images of shape (n_H, n_W), (n_H, n_W, 1) or (n_H, n_W, 3)",
                                  image))
    if image.dtype != np.uint8:
        image = image.astype(np.float32)
        # Floats above 1 are taken as 0-255 data (the course's X_train before / 255).
        if image.size and np.nanmax(image) > 1.0:
            image = image / 255.0
        image = np.clip(image, 0.0, 1.0)
    return image, ("gray" if image.ndim == 2 else None)


def _show(ax, image) -> None:
    image, cmap = _display_image(image)
    if cmap is None:
        ax.imshow(image)
    else:
        vmax = 255 if image.dtype == np.uint8 else 1.0
        ax.imshow(image, cmap=cmap, vmin=0, vmax=vmax)


def _as_labels(y, name: str) -> np.ndarray:
    """Integer labels from labels ``(m,)``/``(1, m)``/``(m, 1)``, one-hot or probabilities ``(m, C)``."""
    y = np.asarray(y)
    if y.ndim == 2 and min(y.shape) > 1:
        return np.argmax(y, axis=1)
    y = y.reshape(-1)
    if y.dtype.kind == "f":
        if np.all(np.mod(y, 1) == 0):
            return y.astype(np.int64)
        raise ValueError(expected(name, "integer class labels (or one-hot rows)", y,
                                  "Round sigmoid outputs first, e.g. (p > 0.5).astype(int)."))
    return y.astype(np.int64)


def spread_over_classes(labels, n: int) -> np.ndarray:
    """Indices of ``min(n, m)`` examples taken from each class in turn (classes in order of first
    appearance, examples evenly spaced within a class), so data sorted by class still shows them all.
    A class that runs out leaves its turns to the others: with unbalanced classes every slot is
    still filled."""
    labels = _as_labels(labels, "labels")
    classes, first = np.unique(labels, return_index=True)
    groups = [np.flatnonzero(labels == c) for c in classes[np.argsort(first)]]
    counts = [0] * len(groups)
    for _ in range(min(n, len(labels))):   # one slot at a time, to the next class with examples left
        k = min((c for c in range(len(groups)) if counts[c] < len(groups[c])), key=lambda c: counts[c])
        counts[k] += 1
    picks = [g[np.linspace(0, len(g) - 1, c).round().astype(int)] for g, c in zip(groups, counts)]
    return np.array([p[k] for k in range(max(counts, default=0)) for p in picks if k < len(p)],
                    dtype=np.int64)


def _columns(count: int, ncols: int) -> int:
    """Columns for ``count`` images in rows of at most ``ncols``, as few empty cells as the rows allow
    (13 images in rows of 8: 2 rows of 7, one cell empty, not 8 + 5 with three)."""
    return math.ceil(count / math.ceil(count / ncols))


def _name(label: int, class_names) -> str:
    if class_names is not None and 0 <= label < len(class_names):
        return str(class_names[label])
    return str(label)


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts ``cm[t, p]`` of examples of true class ``t`` predicted as ``p``.

    Parameters
    ----------
    y_true, y_pred : int arrays (m,) (or one-hot/probability rows (m, n_classes)), read as the plots
        read labels; the counting is :func:`npconv.metrics.confusion_matrix`'s.
    n_classes : int

    Returns
    -------
    cm : int64 ndarray, shape (n_classes, n_classes); rows are true classes, columns predictions.
    """
    return metrics.confusion_matrix(_as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred"), n_classes)


# ------------------------------------------------------------------ the plots

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
        axes[1].add_patch(Rectangle((pad_w - 0.5, pad_h - 0.5), w, h, fill=False, edgecolor="white",
                                    linestyle="--", linewidth=1.5))
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
    shown = np.arange(n) if label_ids is None else spread_over_classes(label_ids[:len(images)], n)
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
        shown = np.arange(count) if label_ids is None else spread_over_classes(label_ids[:len(images)], count)
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


def _curve(ax, values, label, colour, linestyle, marker):
    epochs = np.arange(1, len(values) + 1)
    ax.plot(epochs, values, color=colour, linestyle=linestyle, marker=marker, markersize=3.5,
            linewidth=1.8, label=label)


@_styled
def plot_history(history, title: str | None = None) -> Figure:
    """Training curves: loss and, when recorded, accuracy; training solid, validation dashed.

    Parameters
    ----------
    history : dict of per-epoch lists like Keras ``History.history`` (``loss``, ``accuracy``,
        ``val_loss``, ``val_accuracy``; validation keys optional), or an object with ``.history``.
    title : optional line above both panels (what the curves are, e.g. a mean of several models)
    path : optional PNG file to write.

    The best validation epoch (lowest ``val_loss``, highest ``val_accuracy``) is marked. The legends
    sit below the panels, clear of the curves.
    """
    history = getattr(history, "history", history)
    if not isinstance(history, dict) or not history.get("loss"):
        raise ValueError(expected("history", "a dict with a non-empty 'loss' list (Keras History.history)",
                                  history if not isinstance(history, dict) else f"keys {sorted(history)}"))
    metrics = ["loss"] + [k for k in ("accuracy", "acc") if history.get(k)][:1]
    fig = _figure(4.2 * len(metrics), 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, metric in zip(axes, metrics):
        train = np.asarray(history[metric], dtype=float)
        marker = "o" if len(train) <= 30 else None
        _curve(ax, train, "train", TRAIN_COLOUR, "-", marker)
        val = history.get(f"val_{metric}")
        if val:
            val = np.asarray(val, dtype=float)
            _curve(ax, val, "validation", VAL_COLOUR, "--", marker)
            best = int(np.nanargmin(val) if metric == "loss" else np.nanargmax(val))
            ax.plot(best + 1, val[best], "o", markersize=10, markerfacecolor="none",
                    markeredgecolor="0.2", markeredgewidth=1.3,
                    label=f"best validation {val[best]:.4g} (epoch {best + 1})")
        ax.set_title("Loss" if metric == "loss" else "Accuracy")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(True, axis="y", color="0.92")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.margins(x=0.04, y=0.12)
        # Below the panel, not on it: inside, a legend sits on the curves wherever they run.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, fontsize=8,
                  handlelength=2.2, columnspacing=1.2)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


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
    ax.set_xticks(range(n), names, rotation=45 if max(map(len, names)) > 4 else 0,
                  ha="right" if max(map(len, names)) > 4 else "center")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    accuracy = np.trace(cm) / cm.sum() if cm.sum() else 0.0
    counted = pictures or f"{int(cm.sum())} pictures"
    ax.set_title(f"Confusion matrix of {counted}{' (row-normalised)' if normalize else ''}\n"
                 f"accuracy {accuracy:.1%} ({int(np.trace(cm))} of {int(cm.sum())} right)")
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of true class" if normalize else "count")
    return fig


@_styled
def plot_misclassified(images, y_true, y_pred, class_names=None, probs=None, n: int = 16,
                       ncols: int = 8, pictures: str | None = None) -> Figure:
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
        raise ShapeError(expected("y_true, y_pred", f"{len(images)} labels each, one per image",
                                  f"{len(y_true)} and {len(y_pred)}"))
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
    fig.suptitle(f"Misclassified: {total} of {pictures or len(y_true)}"
                 + (f" ({wrong.size} shown)" if total > wrong.size else ""), fontsize=11)
    return fig


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
            if i >= k - ncols and shown_channels > 1:   # the bottom row names the channels under each tile
                ax.set_axis_on()
                _bare(ax)
                ax.set_xticks([c * (f_w + 1) + (f_w - 1) / 2 for c in range(shown_channels)], channel_names,
                              fontsize=6.5)
                ax.tick_params(length=0, pad=1.5)
        ax.set_title(str(i), fontsize=7, fontweight="normal", pad=2)
    count = f"{k} filters" if k == w.shape[3] else f"first {k} of {w.shape[3]} filters"
    if mode == "rgb":
        how = "RGB, each filter scaled to its own range"
    else:
        names = "R, G, B" if channels == 3 else f"channels 0-{shown_channels - 1} of {channels}" \
            if channels > shown_channels else ", ".join(f"channel {c}" for c in range(channels))
        how = f"{names} side by side; red +, blue \u2212" if channels > 1 else "red +, blue \u2212"
        fig.colorbar(image, ax=list(axes), shrink=0.9, aspect=12, pad=0.03,
                     label="weight \u00f7 the filter's largest |weight|")
    fig.suptitle(f"{count}, {f_h}\u00d7{f_w}\u00d7{channels}\n({how})", fontsize=10)
    return fig


@_styled
def plot_feature_maps(feature_maps, names=None, max_channels: int = 16, image=None,
                      image_title: str = "input") -> Figure:
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
            raise ShapeError(expected(f"feature_maps[{index}]", "an activation (n_H, n_W, C) of one image",
                                      fmap, "Take one example first: a[0]."))
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
        row[0].set_ylabel(f"{name}\n{h}×{w}×{channels}", rotation=0, ha="right", va="center",
                          fontsize=8, labelpad=6)
    fig.suptitle("Feature maps (each channel scaled to its own range)", fontsize=10)
    return fig


@_styled
def plot_variant_scores(names, accuracies, best: int | None = None, title: str | None = None) -> Figure:
    """A recipe search's variants (``npconv tune``): each one's mean accuracy (a diamond) +- std (its
    whiskers), and each of its folds and seeds as a small dot below.

    Parameters
    ----------
    names : one label per variant (``"learning_rate=0.001 widths=16-32-64"``)
    accuracies : per variant, its accuracies (every fold and seed), in [0, 1]
    best : index of the variant to mark as the best (drawn in another colour and labelled)
    title : optional title; ``path``: optional PNG file to write.
    """
    names = [str(n) for n in names]
    values = [np.asarray(a, dtype=float).ravel() for a in accuracies]
    if not values or len(values) != len(names) or any(v.size == 0 for v in values):
        raise ValueError(expected("accuracies", f"a non-empty list of values per variant ({len(names)} names)",
                                  f"{len(values)} lists"))
    means = np.array([v.mean() for v in values])
    stds = np.array([v.std() for v in values])
    rows = np.arange(len(names))[::-1]   # the first variant on top
    fig = _figure(7.5, 1.2 + 0.42 * len(names))
    ax = fig.add_subplot()
    colours = [VAL_COLOUR if i == best else TRAIN_COLOUR for i in range(len(names))]
    jitter = np.random.default_rng(0)
    for row, m, s, v, colour in zip(rows, means, stds, values, colours):
        ax.errorbar(m, row, xerr=s, fmt="D", markersize=6, color=colour, ecolor=colour, elinewidth=1.8, capsize=4)
        ax.plot(v, row - 0.25 + jitter.uniform(-0.06, 0.06, v.size), "o", markersize=3, color=colour, alpha=0.55)
    low = max(0.0, min(v.min() for v in values) - 0.05)
    high = min(1.0, max(v.max() for v in values) + 0.02)
    ax.set_xlim(low, high + 0.25 * (high - low) + 1e-3)
    # the right margin holds the labels: no tick there above an accuracy of 1
    ax.set_xticks([tick for tick in ax.get_xticks() if low - 1e-9 <= tick <= high + 1e-9])
    for row, m, s, i in zip(rows, means, stds, range(len(names))):
        ax.text(high + 0.02 * (high - low), row, f"{m:.4f} ± {s:.4f}" + ("  best" if i == best else ""),
                va="center", fontsize=8, fontweight="bold" if i == best else "normal")
    ax.set_yticks(rows, names)
    ax.set_ylim(rows.min() - 0.6, rows.max() + 0.5)
    ax.set_xlabel("held-out accuracy (mean ± std over folds and seeds; dots: each fold and seed)")
    ax.grid(True, axis="x", color="0.92")
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title)
    return fig
