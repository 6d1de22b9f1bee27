"""The pictures of :mod:`npconv.explain_plots`: Grad-CAM over the photo, and the three-panel figure."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from PIL import Image

import npconv as nc
from npconv import explain, explain_plots
from npconv.apps.residual import smallres
from npconv.errors import ShapeError
from npconv.viz import WRONG_COLOUR


def _smile_model():
    nc.utils.set_random_seed(0)
    model = smallres((16, 16, 1), n_classes=2, widths=(4, 6))
    model.metadata["class_names"] = ["not smiling", "smiling"]
    return model


def test_the_overlay_blends_the_heatmap_colours_over_the_photo():
    photo = np.full((4, 6), 200, np.uint8)  # grayscale, shown grey
    cam = np.zeros((4, 6))
    cam[1, 2] = 1.0
    overlay = explain_plots.heatmap_overlay(photo, cam, alpha=0.25)
    assert overlay.shape == (4, 6, 3) and overlay.dtype == np.uint8
    colours = matplotlib.colormaps[explain_plots.HEATMAP_CMAP]([0.0, 1.0])[:, :3]
    np.testing.assert_array_equal(overlay[0, 0], np.rint(255 * (0.75 * 200 / 255 + 0.25 * colours[0])))
    np.testing.assert_array_equal(overlay[1, 2], np.rint(255 * (0.75 * 200 / 255 + 0.25 * colours[1])))
    rgb = np.random.default_rng(0).random((4, 6, 3))  # floats in [0, 1], as a model takes them
    np.testing.assert_array_equal(explain_plots.heatmap_overlay(rgb, cam, alpha=0), np.rint(255 * rgb))


def test_a_map_at_the_layer_resolution_is_resized_to_the_photo():
    model = _smile_model()
    x = np.random.default_rng(1).random((16, 16, 1))
    small = explain.grad_cam(model, x, resize=False)[0]
    assert small.shape == (4, 4)
    np.testing.assert_array_equal(
        explain_plots.heatmap_overlay(x, small), explain_plots.heatmap_overlay(x, explain.grad_cam(model, x)[0])
    )


def test_the_overlay_refuses_what_it_cannot_draw():
    with pytest.raises(ShapeError, match=r"cam: expected one heatmap \(h, w\).*cams\[i\]"):
        explain_plots.heatmap_overlay(np.zeros((4, 4, 3)), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match=r"alpha: expected a weight in \[0, 1\]"):
        explain_plots.heatmap_overlay(np.zeros((4, 4, 3)), np.zeros((4, 4)), alpha=1.5)


def test_the_figure_shows_photo_heatmap_and_saliency_titled_with_the_prediction(tmp_path):
    model = _smile_model()
    x = np.random.default_rng(2).random((3, 16, 16, 1))
    p = model.predict(x).ravel()
    predicted = (p > 0.5).astype(int)
    labels = predicted.copy()
    labels[2] = 1 - labels[2]  # the third one is a mistake
    path = tmp_path / "explain.png"
    fig = explain_plots.plot_explanations(model, x, labels=labels, path=path)
    images = [ax for ax in fig.axes if ax.get_images()]
    assert len(images) == 9 and len(fig.axes) == 9 + 6  # three panels per image, two colour bars
    titles = [ax.get_title() for ax in images]
    names = ["not smiling", "smiling"]
    for i in range(3):
        confidence = p[i] if predicted[i] else 1 - p[i]
        assert titles[3 * i : 3 * i + 3] == [
            f"{names[predicted[i]]} ({confidence:.2f})",
            "Grad-CAM",
            "saliency |dS/dx|",
        ]
        assert images[3 * i].get_xlabel() == f"true: {names[labels[i]]}"
    assert images[6].title.get_color() == WRONG_COLOUR and images[0].title.get_color() == "black"
    assert fig.texts[0].get_text() == "What the model looks at (Grad-CAM at stage2_pool)"
    np.testing.assert_array_equal(
        images[1].get_images()[0].get_array(), explain_plots.heatmap_overlay(x[0], explain.grad_cam(model, x[:1])[0])
    )
    assert Image.open(path).size[0] > 500


def test_explaining_another_class_says_so():
    model = _smile_model()
    x = np.random.default_rng(3).random((16, 16, 1))
    other = 1 - int(model.predict(x[None])[0, 0] > 0.5)
    fig = explain_plots.plot_explanations(model, x, class_index=other, layer="stage1_out")
    titles = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert titles[1] == f"Grad-CAM for {['not smiling', 'smiling'][other]!r}"
    assert fig.texts[0].get_text().endswith("(Grad-CAM at stage1_out)")


def test_right_and_wrong_takes_half_of_each_and_gives_free_places_to_the_other_kind():
    #          class 0: 5 right, 5 wrong | class 1: 10 right | class 2: 1 right, 8 wrong | class 3: 1 and 1
    labels = np.array([0] * 10 + [1] * 10 + [2] * 9 + [3] * 2)
    predicted = np.array([0] * 5 + [1] * 5 + [1] * 10 + [2] + [0] * 8 + [3, 0])
    rows = explain_plots.right_and_wrong(labels, predicted, per_class=6)
    assert [(c, len(right), len(wrong)) for c, right, wrong in rows] == [(0, 3, 3), (1, 6, 0), (2, 1, 5), (3, 1, 1)]
    c, right, wrong = rows[0]
    assert right.tolist() == [0, 2, 4] and wrong.tolist() == [5, 7, 9]  # evenly spaced, ends included
    for c, right, wrong in rows:
        assert (labels[right] == c).all() and (predicted[right] == c).all()
        assert (labels[wrong] == c).all() and (predicted[wrong] != c).all()


def test_right_and_wrong_pictures_are_drawn_by_class_from_one_batched_call(monkeypatch):
    model = _smile_model()
    x = np.random.default_rng(4).random((12, 16, 16, 1))
    probs = model.predict(x)  # a sigmoid's (m, 1), as model.predict gives it
    predicted = (probs[:, 0] > 0.5).astype(int)
    labels = predicted.copy()
    labels[[1, 6]] = 1 - labels[[1, 6]]  # two mistakes
    calls = []
    grad_cam = explain.grad_cam
    monkeypatch.setattr(explain, "grad_cam", lambda *a, **k: calls.append(len(a[1])) or grad_cam(*a, **k))
    fig = explain_plots.plot_right_and_wrong(
        model, x, labels, probs, per_class=4, pictures="the 12 validation pictures"
    )
    rows = explain_plots.right_and_wrong(labels, predicted, per_class=4)
    shown = np.concatenate([np.concatenate([right, wrong]) for _, right, wrong in rows])
    assert calls == [len(shown)]
    cells = [ax for ax in fig.axes if ax.get_images()]
    assert len(cells) == len(shown)
    names = ["not smiling", "smiling"]
    for ax, i in zip(cells, shown):
        p = probs[i, 0] if predicted[i] else 1 - probs[i, 0]
        assert ax.get_title() == f"{names[predicted[i]]} ({p:.2f})"
        assert ax.title.get_color() == (WRONG_COLOUR if predicted[i] != labels[i] else "black")
        cam = grad_cam(model, x[i], class_index=int(predicted[i]))[0]  # the predicted class's map
        np.testing.assert_array_equal(ax.get_images()[0].get_array(), explain_plots.heatmap_overlay(x[i], cam))
    row_labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert row_labels == [f"true: {names[c]}" for c, _, _ in rows]
    assert fig.texts[0].get_text().startswith("Grad-CAM on the 12 validation pictures: right / wrong")
