"""Pictures of what a model looks at: its Grad-CAM heatmap over the photo, and its saliency map.

:func:`plot_explanations` draws one row per image: the photo as the model sees it, titled with the
predicted class and its probability; the Grad-CAM heatmap over it, with a colour bar; and the
saliency map. :func:`heatmap_overlay` is the middle picture alone, as an RGB array (a PNG for a web
page). :func:`plot_right_and_wrong` lays heatmaps out by class: a few right and a few wrong pictures
of each (the training report's gradcam.png). The command line, the training report and ``npconv
serve`` all draw with these, so they show one picture. The maps themselves come from
:mod:`npconv.explain`.
"""

from __future__ import annotations

import textwrap

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from . import explain
from .apps.heads import probabilities
from .data.resample import resize_bilinear
from .errors import ShapeError, expected
from .viz.arrays import _display_image, _name
from .viz.style import WRONG_COLOUR, _bare, _figure, _styled

__all__ = [
    "heatmap_overlay",
    "plot_explanations",
    "plot_right_and_wrong",
    "right_and_wrong",
    "HEATMAP_CMAP",
    "HEATMAP_ALPHA",
]

#: Grad-CAM's colours: perceptually uniform, dark where the class has no evidence, so the photo
#: stays readable there and the bright yellow marks what decided.
HEATMAP_CMAP = "inferno"
#: The heatmap's weight in the blend with the photo.
HEATMAP_ALPHA = 0.5
SALIENCY_CMAP = "gray"
#: :func:`plot_right_and_wrong` draws a row for each of at most this many classes.
MAX_CLASS_ROWS = 10


def heatmap_overlay(image, cam, alpha: float = HEATMAP_ALPHA, cmap: str = HEATMAP_CMAP) -> np.ndarray:
    """The heatmap ``cam`` blended over ``image``: ``(1 - alpha) * photo + alpha * colour(cam)``.

    Parameters
    ----------
    image : (n_H, n_W), (n_H, n_W, 1) or (n_H, n_W, 3); uint8, or floats in [0, 1] or [0, 255]
        (as the model takes it); grayscale is shown grey.
    cam : (h, w) in [0, 1], from :func:`npconv.explain.grad_cam`; resized bilinearly to the
        image's size when it has the layer's resolution (``resize=False``).
    alpha : the heatmap's weight, in [0, 1].
    cmap : a Matplotlib colour map name.

    Returns
    -------
    uint8 ndarray (n_H, n_W, 3)
    """
    photo, _ = _display_image(image)
    photo = photo.astype(np.float32) / (255.0 if photo.dtype == np.uint8 else 1.0)
    if photo.ndim == 2:
        photo = np.repeat(photo[..., None], 3, axis=-1)
    photo = photo[..., :3]
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2:
        raise ShapeError(expected("cam", "one heatmap (h, w)", cam, "Take one image's map: cams[i]."))
    if not 0 <= alpha <= 1:
        raise ValueError(expected("alpha", "a weight in [0, 1]", alpha))
    if cam.shape != photo.shape[:2]:
        cam = resize_bilinear(cam[None, ..., None], photo.shape[:2])[0, ..., 0]
    colour = matplotlib.colormaps[cmap](np.clip(cam, 0, 1))[..., :3]
    return np.rint(255 * ((1 - alpha) * photo + alpha * colour)).astype(np.uint8)


@_styled
def plot_explanations(model, x, layer=None, class_index=None, class_names=None, labels=None) -> Figure:
    """For each image: the photo, Grad-CAM over it, and the saliency map (one row per image).

    Parameters
    ----------
    model : a built image classifier
    x : one image or a batch, as ``model.predict`` takes it (also what is shown)
    layer, class_index : as in :func:`npconv.explain.grad_cam` (default: the last feature maps, and
        the predicted class)
    class_names : names indexed by class (default: ``model.metadata["class_names"]``, else numbers)
    labels : optional true classes (m,): each photo says ``true: ...``, in colour when it differs
        from the prediction
    path : optional PNG file to write

    Each title gives the predicted class and its probability; the heatmap's title says which class
    it explains when that is not the predicted one. The saliency map (``max_c |dS/dx|``) is scaled
    to each image's own maximum (its colour bar gives the values).
    """
    batch = explain._image_batch(model, x)
    where = _where(model, layer)  # checks the layer before any work
    cams = explain.grad_cam(model, batch, layer=layer, class_index=class_index)
    saliency = explain.saliency(model, batch, class_index=class_index)
    probs = probabilities(model.predict(batch))
    predicted = probs.argmax(axis=1)
    explained = predicted if class_index is None else np.broadcast_to(np.asarray(class_index), predicted.shape)
    if class_names is None:
        class_names = (getattr(model, "metadata", None) or {}).get("class_names")
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(batch):
            raise ValueError(expected("labels", f"{len(batch)} classes, one per image", labels))

    fig = _figure(7.2, 2.35 * len(batch) + 0.45)
    axes = fig.subplots(len(batch), 3, squeeze=False)
    heat = ScalarMappable(Normalize(0, 1), HEATMAP_CMAP)
    for i, (photo_ax, cam_ax, saliency_ax) in enumerate(axes):
        for ax in (photo_ax, cam_ax, saliency_ax):
            _bare(ax)
        image, grey = _display_image(batch[i])
        photo_ax.imshow(image, cmap=grey, vmin=0, vmax=255 if image.dtype == np.uint8 else 1)
        name = _name(int(predicted[i]), class_names)
        wrong = labels is not None and int(labels[i]) != int(predicted[i])
        photo_ax.set_title(
            f"{name} ({probs[i, predicted[i]]:.2f})", fontsize=9, color=WRONG_COLOUR if wrong else "black"
        )
        if labels is not None:
            photo_ax.set_xlabel(
                f"true: {_name(int(labels[i]), class_names)}", fontsize=8, color=WRONG_COLOUR if wrong else "0.2"
            )
        cam_ax.imshow(heatmap_overlay(batch[i], cams[i]))
        fig.colorbar(heat, ax=cam_ax, fraction=0.046, pad=0.03, ticks=[0, 0.5, 1])
        cam_title = (
            "Grad-CAM" if explained[i] == predicted[i] else f"Grad-CAM for {_name(int(explained[i]), class_names)!r}"
        )
        cam_ax.set_title(cam_title, fontsize=9)
        peak = float(saliency[i].max())
        shown = saliency_ax.imshow(saliency[i], cmap=SALIENCY_CMAP, vmin=0, vmax=peak or 1.0)
        fig.colorbar(shown, ax=saliency_ax, fraction=0.046, pad=0.03, format="%.2g")
        saliency_ax.set_title("saliency |dS/dx|", fontsize=9)
    fig.suptitle(f"What the model looks at (Grad-CAM at {where})", fontsize=10)
    return fig


def right_and_wrong(labels, predicted, per_class: int = 6) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """For each true class (in order): ``(class, right, wrong)``, the indices of up to ``per_class``
    pictures of it, evenly spaced among those it has: half of them classified right, half wrong (the
    odd one right). A class with too few of one kind gives the free places to the other, so a class
    with no mistakes shows ``per_class`` right ones."""
    labels, predicted = np.asarray(labels).reshape(-1), np.asarray(predicted).reshape(-1)
    rows = []
    for c in np.unique(labels):
        right = np.flatnonzero((labels == c) & (predicted == c))
        wrong = np.flatnonzero((labels == c) & (predicted != c))
        n_wrong = min(len(wrong), max(per_class // 2, per_class - len(right)))
        n_right = min(len(right), per_class - n_wrong)
        rows.append((int(c), _evenly(right, n_right), _evenly(wrong, n_wrong)))
    return rows


def _evenly(indices: np.ndarray, n: int) -> np.ndarray:
    """``n`` of ``indices``, evenly spaced, the first and last included."""
    return indices[np.linspace(0, len(indices) - 1, n).round().astype(int)] if n else indices[:0]


@_styled
def plot_right_and_wrong(
    model, x, labels, probs, class_names=None, per_class: int = 6, pictures=None, layer=None
) -> Figure:
    """Grad-CAM over a few right and a few wrong pictures of each class (:func:`right_and_wrong`):
    a row per true class, its right ones first, then its wrong ones, titled in colour.

    Parameters
    ----------
    model : a built image classifier
    x : the pictures (m, n_H, n_W, n_C), as ``model.predict`` takes them
    labels : their true classes (m,)
    probs : the probabilities the verdicts come from, (m, n_classes) or a sigmoid's (m, 1); each
        heatmap explains its picture's predicted class, each title gives it and its probability
    class_names : names indexed by class (default: ``model.metadata["class_names"]``, else numbers)
    per_class : pictures per row
    pictures : what ``x`` is, for the title (e.g. ``"the 90 validation pictures"``)
    layer : as in :func:`npconv.explain.grad_cam`
    path : optional PNG file to write

    All the heatmaps come from one batched :func:`npconv.explain.grad_cam` call. Classes past the
    first :data:`MAX_CLASS_ROWS` are left out, and the title says so.
    """
    x, labels = np.asarray(x), np.asarray(labels).reshape(-1)
    probs = probabilities(probs)
    predicted = probs.argmax(axis=1)
    if not len(x) == len(labels) == len(probs):
        raise ValueError(
            expected("labels, probs", f"{len(x)} each, one per picture", f"{len(labels)} and {len(probs)}")
        )
    if class_names is None:
        class_names = (getattr(model, "metadata", None) or {}).get("class_names")
    where = _where(model, layer)
    rows = right_and_wrong(labels, predicted, per_class)
    shown_rows = [(c, np.concatenate([right, wrong])) for c, right, wrong in rows[:MAX_CLASS_ROWS]]
    chosen = np.concatenate([shown for _, shown in shown_rows])
    cams = iter(explain.grad_cam(model, x[chosen], layer=layer, class_index=predicted[chosen]))  # in chosen's order

    width = max(1.35 * per_class + 0.5, 5.0)
    fig = _figure(width, 1.55 * len(shown_rows) + 0.6)
    axes = fig.subplots(len(shown_rows), per_class, squeeze=False)
    for row_axes, (c, shown) in zip(axes, shown_rows):
        for ax in row_axes[len(shown) :]:
            ax.set_axis_off()
        for ax, i in zip(row_axes, shown):
            _bare(ax)
            ax.imshow(heatmap_overlay(x[i], next(cams)))
            ax.set_title(
                f"{_name(int(predicted[i]), class_names)} ({probs[i, predicted[i]]:.2f})",
                fontsize=7.5,
                color=WRONG_COLOUR if predicted[i] != c else "black",
                pad=3,
            )
        row_axes[0].set_ylabel(f"true: {_name(c, class_names)}", fontsize=8)
    left_out = f"; the first {len(shown_rows)} of {len(rows)} classes" if len(rows) > len(shown_rows) else ""
    title = (
        f"Grad-CAM on {pictures or f'{len(labels)} pictures'}: right / wrong (titled in colour), a row per "
        f"true class{left_out}. Bright where the evidence for the predicted class lies (at {where})."
    )
    fig.suptitle(textwrap.fill(title, int(11 * width)), fontsize=9.5)  # about 11 characters an inch
    return fig


def _where(model, layer) -> str:
    """The layer(s) Grad-CAM looks at for ``layer``, for a title: a name, or "N layers"."""
    names = explain.cam_layers(model, layer)
    return names[0] if len(names) == 1 else f"{len(names)} layers"
