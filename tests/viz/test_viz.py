"""npconv.viz: every picture is a Figure, saves a real PNG, and copes with grayscale, RGB and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from npconv import viz
from npconv.errors import ShapeError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def saved(fig, path) -> None:
    """``fig`` is a Figure and ``path`` a non-empty PNG."""
    assert isinstance(fig, Figure)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000


def all_text(fig) -> str:
    """Every string drawn on the figure (titles, texts, tick labels, suptitle)."""
    return " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


@pytest.fixture
def images(rng):
    return {
        "uint8 rgb": rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8),
        "float01 rgb": rng.random((10, 8, 8, 3)).astype(np.float32),
        "float255 gray": (rng.random((10, 8, 8, 1)) * 255).astype(np.float64),
        "uint8 gray 2-D": rng.integers(0, 256, (10, 8, 8), dtype=np.uint8),
    }


# ------------------------------------------------------------------ confusion_matrix


def test_confusion_matrix_counts_true_rows_predicted_columns():
    cm = viz.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert cm.sum() == 6


def test_confusion_matrix_accepts_one_hot_and_probabilities():
    y_true = np.eye(3)[[0, 1, 2, 2]]
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8]])
    assert viz.confusion_matrix(y_true, probs, 3).tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]


def test_confusion_matrix_refuses_out_of_range_labels():
    with pytest.raises(ValueError, match=r"y_pred: expected labels in 0\.\.1"):
        viz.confusion_matrix([0, 1], [0, 2], 2)
    with pytest.raises(ShapeError):
        viz.confusion_matrix([0, 1], [0], 2)


# ------------------------------------------------------------------ plots


def test_plot_zero_pad_shows_both_panels(tmp_path):
    np.random.seed(1)
    x = np.random.randn(4, 3, 3, 2)
    x_pad = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    fig = viz.plot_zero_pad(x, x_pad, path=tmp_path / "pad.png")
    saved(fig, tmp_path / "pad.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:2] == ["x   3×3", "x_pad   7×7"]
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), x[0, :, :, 0])
    single = viz.plot_zero_pad(x[0, :, :, 0], x_pad[0, :, :, 0])  # single 2-D images too
    np.testing.assert_array_equal(single.axes[1].images[0].get_array(), x_pad[0, :, :, 0])


@pytest.mark.parametrize("kind", ["uint8 rgb", "float01 rgb", "float255 gray", "uint8 gray 2-D"])
def test_plot_samples_handles_every_image_kind(images, kind, tmp_path):
    labels = np.arange(10) % 3
    fig = viz.plot_samples(
        images[kind], labels, class_names=["cat", "dog", "bird"], n=6, ncols=4, path=tmp_path / "s.png"
    )
    saved(fig, tmp_path / "s.png")
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 6
    assert [ax.get_title() for ax in shown][:3] == ["cat", "dog", "bird"]
    # The first panel shows the first image itself: uint8 as is, floats in [0, 1], 0-255 floats / 255.
    image = np.squeeze(images[kind][0])
    expected = image / 255.0 if kind == "float255 gray" else image
    shown_image = shown[0].images[0]
    np.testing.assert_allclose(shown_image.get_array(), expected, rtol=1e-6)
    if image.ndim == 2:  # one channel: a gray colour map over the data's full range, not auto-scaled
        assert shown_image.get_cmap().name == "gray"
        assert shown_image.get_clim() == (0, 255 if image.dtype == np.uint8 else 1.0)


def test_plot_samples_one_hot_labels_and_small_batches(images):
    fig = viz.plot_samples(images["uint8 rgb"][:3], np.eye(4)[[3, 0, 1]])
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["3", "0", "1"]
    assert len([ax for ax in fig.axes if ax.images]) == 3
    assert "no images" in all_text(viz.plot_samples(np.zeros((0, 4, 4, 3)), []))
    with pytest.raises(ShapeError, match="images"):
        viz.plot_samples(np.zeros((2, 4, 4, 2)), [0, 1])


def test_plot_history_train_and_validation(tmp_path):
    history = {
        "loss": [1.0, 0.6, 0.4],
        "val_loss": [1.1, 0.7, 0.8],
        "accuracy": [0.5, 0.7, 0.8],
        "val_accuracy": [0.4, 0.65, 0.6],
    }
    fig = viz.plot_history(history, path=tmp_path / "h.png")
    saved(fig, tmp_path / "h.png")
    loss_ax, acc_ax = fig.axes
    assert (loss_ax.get_title(), acc_ax.get_title()) == ("Loss", "Accuracy")
    legend = [t.get_text() for t in loss_ax.get_legend().get_texts()]
    assert legend == ["train", "validation", "best validation 0.7 (epoch 2)"]


def test_plot_history_title_goes_above_both_panels():
    fig = viz.plot_history({"loss": [1.0, 0.5], "accuracy": [0.5, 0.7]}, title="The mean of 3 models")
    assert fig._suptitle.get_text() == "The mean of 3 models"
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Accuracy"]
    assert viz.plot_history({"loss": [1.0]})._suptitle is None


def test_plot_history_without_validation_or_accuracy():
    class History:  # Keras's History object keeps the dict in .history
        history = {"loss": [0.9, 0.5]}

    fig = viz.plot_history(History())
    assert len(fig.axes) == 1
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["train"]
    fig = viz.plot_history({"loss": [0.9], "acc": [0.6]})  # Keras 1 name, one epoch
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="history"):
        viz.plot_history({"val_loss": [1.0]})


@pytest.mark.parametrize("normalize", [False, True])
def test_plot_confusion_matrix_annotates_every_cell(normalize, tmp_path):
    cm = np.array([[50, 2, 0], [5, 40, 5], [0, 0, 0]])  # a class with no examples
    fig = viz.plot_confusion_matrix(cm, ["zero", "one", "two"], normalize=normalize, path=tmp_path / "cm.png")
    saved(fig, tmp_path / "cm.png")
    ax = fig.axes[0]
    texts = {(t.get_position(), t.get_text()): t.get_color() for t in ax.texts}
    assert len(texts) == 9
    cell = {pos: (text, colour) for (pos, text), colour in texts.items()}
    if normalize:
        assert cell[(0, 0)][0] == "0.96" and cell[(0, 2)][0] == "0.00" and cell[(2, 2)][0] == "0.00"
    else:
        assert cell[(0, 0)][0] == "50" and cell[(1, 0)][0] == "2"
    # Readable text: black on the bright (yellow) top cell, white on the dark (purple) empty cells.
    assert cell[(0, 0)][1] == "black" and cell[(2, 2)][1] == "white"
    assert "accuracy 88.2%" in ax.get_title()  # 90 of 102 on the diagonal


def test_plot_confusion_matrix_many_classes_and_bad_input(tmp_path):
    rng = np.random.default_rng(1)
    cm = viz.confusion_matrix(rng.integers(0, 20, 500), rng.integers(0, 20, 500), 20)
    saved(viz.plot_confusion_matrix(cm, path=tmp_path / "cm20.png"), tmp_path / "cm20.png")
    with pytest.raises(ShapeError, match="square"):
        viz.plot_confusion_matrix(np.zeros((2, 3)))


def test_plot_misclassified_captions(images, tmp_path):
    y_true = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0])
    y_pred = np.array([0, 0, 1, 1, 1, 0, 0, 1, 1, 0])
    probs = np.full((10, 2), 0.5)
    probs[1] = [0.93, 0.07]
    probs[3] = [0.2, 0.8]
    fig = viz.plot_misclassified(
        images["float01 rgb"], y_true, y_pred, ["no", "yes"], probs=probs, path=tmp_path / "m.png"
    )
    saved(fig, tmp_path / "m.png")
    text = all_text(fig)
    assert "pred: no (0.93)" in text and "true: yes" in text
    assert "pred: yes (0.80)" in text and "true: no" in text
    assert len([ax for ax in fig.axes if ax.images]) == 2
    assert "Misclassified: 2 of 10" in text


def test_plot_misclassified_sigmoid_probabilities_and_limits(images):
    y_true = np.zeros(10, dtype=int)
    y_pred = np.ones(10, dtype=int)
    p = np.linspace(0.55, 0.99, 10)[:, None]  # a sigmoid output: P(class 1)
    fig = viz.plot_misclassified(images["uint8 gray 2-D"], y_true, y_pred, probs=p, n=4, ncols=2)
    assert len([ax for ax in fig.axes if ax.images]) == 4
    assert "pred: 1 (0.55)" in all_text(fig) and "(4 shown)" in all_text(fig)


def test_plot_misclassified_when_all_are_right(images, tmp_path):
    y = np.arange(10) % 2
    fig = viz.plot_misclassified(images["uint8 rgb"], y, y, ["a", "b"], path=tmp_path / "none.png")
    saved(fig, tmp_path / "none.png")
    assert "no misclassified images" in all_text(fig)


def test_plot_filters_rgb_for_large_kernels_and_channels_for_small_ones(tmp_path, rng):
    w_rgb = rng.standard_normal((5, 5, 3, 10))
    fig = viz.plot_filters(w_rgb, path=tmp_path / "f.png")
    saved(fig, tmp_path / "f.png")
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 10
    first = shown[0].images[0].get_array()
    assert first.shape == (5, 5, 3) and first.min() == 0 and first.max() == 1  # normalised per filter
    w_gray = rng.standard_normal((3, 3, 8, 4))
    w_gray[..., 1] = 2.0  # a constant filter must not divide by zero
    shown = [ax for ax in viz.plot_filters(w_gray).axes if ax.images]
    assert [ax.images[0].get_array().shape for ax in shown] == [(3, 11)] * 4  # channels 0-2, gaps
    assert np.all(shown[1].images[0].get_array().compressed() == 1.0)
    assert (
        len([ax for ax in viz.plot_filters(rng.standard_normal((3, 3, 1, 100)), max_filters=12).axes if ax.images])
        == 12
    )
    with pytest.raises(ShapeError, match="f_h, f_w, C, K"):
        viz.plot_filters(np.zeros((3, 3, 8)))
    with pytest.raises(ValueError, match="'channels'"):
        viz.plot_filters(w_gray, mode="rgb")


def test_small_rgb_filters_show_each_channel_with_sign_not_colour_noise(rng):
    """A 3x3x3 kernel as an RGB image is 9 random colours; each channel on a diverging map shows
    which weights are positive (red) and negative (blue), scaled by the filter's largest |w|."""
    w = rng.standard_normal((3, 3, 3, 8))
    fig = viz.plot_filters(w)
    image = [ax for ax in fig.axes if ax.images][0].images[0]
    data = image.get_array()
    assert data.shape == (3, 11) and data.mask[:, [3, 7]].all()  # R | G | B with gaps
    np.testing.assert_allclose(data[:, 4:7], w[:, :, 1, 0] / np.abs(w[..., 0]).max(), rtol=1e-6)
    assert image.get_clim() == (-1, 1) and image.get_cmap().name.startswith("RdBu")
    assert "R, G, B side by side" in all_text(fig)


def test_plot_samples_shows_every_class_of_data_sorted_by_class(images):
    labels = np.repeat([0, 1, 2], [5, 3, 2])  # as an image folder loads: class by class
    fig = viz.plot_samples(images["uint8 rgb"], labels, ["cat", "dog", "bird"], n=6)
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == ["cat", "dog", "bird", "cat", "dog", "bird"]
    np.testing.assert_array_equal(viz.spread_over_classes(labels, 8), [0, 5, 8, 2, 6, 9, 4, 7])


def test_plot_misclassified_shows_both_directions_and_an_unclipped_title(images):
    y_true = np.repeat([0, 1], 5)
    y_pred = y_true.copy()
    y_pred[[0, 1, 2, 7]] = 1 - y_pred[[0, 1, 2, 7]]  # three false positives first, one false negative
    fig = viz.plot_misclassified(images["uint8 rgb"], y_true, y_pred, ["no", "yes"], n=2)
    assert [ax.get_xlabel() for ax in fig.axes if ax.images] == ["true: no", "true: yes"]
    one = y_true.copy()
    one[4] = 1
    fig = viz.plot_misclassified(images["uint8 rgb"], y_true, one, ["not smiling", "smiling"])
    fig.canvas.draw()
    title = fig._suptitle.get_window_extent()
    assert 0 <= title.x0 and title.x1 <= fig.bbox.x1  # one error: the title still fits


def test_plot_feature_maps_one_row_per_layer(tmp_path, rng):
    maps = [rng.random((1, 16, 16, 4)), rng.random((8, 8, 32)), np.zeros((4, 4, 2))]
    fig = viz.plot_feature_maps(maps, names=["conv1", "conv2", "dead"], max_channels=6, path=tmp_path / "fm.png")
    saved(fig, tmp_path / "fm.png")
    assert len(fig.axes) == 3 * 6
    assert [len([ax for ax in fig.axes[r * 6 : (r + 1) * 6] if ax.images]) for r in range(3)] == [4, 6, 2]
    assert fig.axes[0].get_ylabel() == "conv1\n16×16×4"
    with pytest.raises(ValueError, match="names"):
        viz.plot_feature_maps(maps, names=["only one"])
    with pytest.raises(ShapeError, match="feature_maps"):
        viz.plot_feature_maps([np.zeros((2, 8, 8, 3))])


def test_style_is_local_and_nothing_is_registered_with_pyplot(tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    before = matplotlib.rcParams["axes.spines.top"], plt.get_fignums()
    viz.plot_history({"loss": [1.0, 0.5]}, path=tmp_path / "h.png")
    assert (matplotlib.rcParams["axes.spines.top"], plt.get_fignums()) == before
    with viz.style():
        assert matplotlib.rcParams["image.cmap"] == "viridis"


# ------------------------------------------------------------------ every slot filled, every picture labelled


def _empty_cells(fig) -> int:
    """Grid cells drawn without an image (visible axes with nothing in them)."""
    return len([ax for ax in fig.axes if ax.get_visible() and not ax.images and not ax.get_label() == "<colorbar>"])


def test_unbalanced_classes_fill_every_slot(images):
    """Equal shares per class left holes: 13 errors of 50 drew 11 images and 5 empty slots."""
    labels = np.repeat([0, 1], [17, 3])
    picks = viz.spread_over_classes(labels, 16)
    assert len(picks) == 16 and len(set(picks)) == 16 and set(np.flatnonzero(labels == 1)) <= set(picks)
    assert list(labels[picks[:6]]) == [0, 1, 0, 1, 0, 1]  # classes in turn while both last
    twenty = np.concatenate([images["uint8 rgb"], images["uint8 rgb"]])
    fig = viz.plot_samples(twenty, labels, ["a", "b"], n=16)
    assert len([ax for ax in fig.axes if ax.images]) == 16 and _empty_cells(fig) == 0

    y_true = np.repeat([0, 1], [40, 10])
    y_pred = y_true.copy()
    y_pred[:10] = 1  # ten false positives
    y_pred[[40, 41, 42]] = 0  # three false negatives
    many = np.repeat(images["uint8 rgb"], 5, axis=0)
    fig = viz.plot_misclassified(many, y_true, y_pred, ["no", "yes"])
    assert len([ax for ax in fig.axes if ax.images]) == 13  # all 13, both directions
    assert "Misclassified: 13 of 50" in all_text(fig) and "shown" not in all_text(fig)
    assert _empty_cells(fig) <= 1  # two rows of 7, not 8 + 5


def test_sample_rows_keep_each_set_in_its_row(images):
    """'top: training faces; bottom: Happy House' must be what the picture shows, with unbalanced
    classes too."""
    train, test = images["uint8 rgb"], images["float01 rgb"]
    fig = viz.plot_sample_rows(
        {"training faces": (train, np.zeros(10, int)), "Happy House": (test, np.repeat([0, 1], [9, 1]))},
        ["no", "yes"],
        ncols=4,
    )
    rows = np.array(fig.axes).reshape(2, 4)
    assert rows[0, 0].get_ylabel() == "training faces" and rows[1, 0].get_ylabel() == "Happy House"
    for ax in rows[0]:
        assert any(np.array_equal(ax.images[0].get_array(), image) for image in train)
    for ax in rows[1]:
        assert any(np.allclose(ax.images[0].get_array(), image) for image in test)
    assert "yes" in [ax.get_title() for ax in rows[1]]


def test_history_legends_stay_clear_of_the_curves():
    history = {
        "loss": [1.0, 0.6, 0.4, 0.3],
        "val_loss": [1.1, 0.8, 0.7, 0.75],
        "accuracy": [0.5, 0.7, 0.8, 0.9],
        "val_accuracy": [0.5, 0.6, 0.7, 0.68],
    }
    fig = viz.plot_history(history)
    fig.canvas.draw()
    for ax in fig.axes:
        legend, panel = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert legend.y1 <= panel.y0, "the legend overlaps the panel"
        assert 0 <= legend.y0 and 0 <= legend.x0 and legend.x1 <= fig.bbox.x1  # and is not cut off


def test_confusion_matrix_says_which_pictures_it_counts():
    cm = np.array([[40, 5], [3, 42]])
    fig = viz.plot_confusion_matrix(cm, ["no", "yes"], pictures="the 90 validation pictures")
    assert "Confusion matrix of the 90 validation pictures" in all_text(fig)
    assert "82 of 90 right" in all_text(fig)
    assert "Confusion matrix of 90 pictures" in all_text(viz.plot_confusion_matrix(cm))


def test_filters_have_a_colour_scale_and_filters_stand_further_apart_than_channels(rng):
    w = rng.standard_normal((4, 4, 3, 8))
    fig = viz.plot_filters(w)
    fig.canvas.draw()
    colourbars = [ax for ax in fig.axes if "largest |weight|" in ax.get_ylabel()]
    assert len(colourbars) == 1
    tiles = [ax for ax in fig.axes if ax.images]
    first, second = tiles[0].get_window_extent(), tiles[1].get_window_extent()
    channel_gap = first.width / (3 * 4 + 2)  # one blank column of the 14 in a tile
    assert second.x0 - first.x1 > 3 * channel_gap
    bottom = [ax.get_xticklabels() for ax in tiles[-2:]]
    assert [[t.get_text() for t in labels] for labels in bottom] == [["R", "G", "B"]] * 2


def test_feature_maps_show_the_picture_they_come_from(rng):
    picture = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    fig = viz.plot_feature_maps(
        [rng.random((16, 16, 4)), rng.random((8, 8, 8))],
        ["conv1", "conv2"],
        max_channels=4,
        image=picture,
        image_title="held-out picture 0\ntrue: 3",
    )
    shown = fig.axes[0]
    np.testing.assert_array_equal(shown.images[0].get_array(), picture)
    assert shown.get_title() == "held-out picture 0\ntrue: 3"
    assert len(fig.axes) == 1 + 2 * 4
