"""``npconv.utils.plot_model``: the layer graph as a picture, one box per layer, one arrow per edge."""

from __future__ import annotations

import matplotlib.text
import pytest

import npconv as nc
from npconv import layers as L
from npconv.apps import convolutional_model, happyModel


def boxes_and_arrows(fig):
    ax = fig.axes[0]
    arrows = [t for t in ax.texts if isinstance(t, matplotlib.text.Annotation)]
    boxes = [t for t in ax.texts if not isinstance(t, matplotlib.text.Annotation)]
    return boxes, arrows


def branched_model():
    x = nc.Input(shape=(8, 8, 3))
    a = L.ReLU()(L.Conv2D(4, 3, padding="same")(x))
    merged = L.Concatenate()([a, L.Conv2D(4, 1)(x)])
    return nc.Model(x, L.Dense(2, activation="softmax")(L.Flatten()(merged)))


def test_the_course_call_writes_a_png_with_a_box_per_layer_and_its_shapes(tmp_path):
    path = tmp_path / "happy_model.png"
    fig = nc.utils.plot_model(happyModel(), to_file=path, show_shapes=True, show_layer_names=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    boxes, arrows = boxes_and_arrows(fig)
    assert len(boxes) == 8 and len(arrows) == 7  # the hidden input layer, then the 7 layers in a chain
    labels = [b.get_text() for b in boxes]
    assert labels[0] == "zero_padding2d_input (InputLayer)\n(None, 64, 64, 3)"
    assert labels[2] == "conv0 (Conv2D)\n(None, 70, 70, 3) \u2192 (None, 64, 64, 32)"


def test_branches_sit_side_by_side_and_a_merge_gets_an_arrow_from_each_input(tmp_path):
    fig = nc.utils.plot_model(branched_model(), to_file=tmp_path / "branch.png")
    boxes, arrows = boxes_and_arrows(fig)
    by_name = {b.get_text().split(" ")[0]: b for b in boxes}
    assert by_name["conv2d"].get_position()[1] == by_name["conv2d_1"].get_position()[1]  # one row
    assert by_name["conv2d"].get_position()[0] != by_name["conv2d_1"].get_position()[0]
    into_merge = [a for a in arrows if a.xycoords is by_name["concatenate"]]
    assert len(into_merge) == 2
    skipping = [a for a in into_merge if a.anncoords is by_name["conv2d_1"]]
    assert skipping[0].arrow_patch.get_connectionstyle().rad == -0.45  # bows around the ReLU it skips


def test_left_to_right_layout_and_plain_labels(tmp_path):
    fig = nc.utils.plot_model(convolutional_model(), to_file=tmp_path / "m.svg", rankdir="LR")
    boxes, _ = boxes_and_arrows(fig)
    assert (tmp_path / "m.svg").read_text().lstrip().startswith("<?xml")
    assert [b.get_position()[1] for b in boxes] == [0] * len(boxes)
    assert boxes[1].get_text() == "conv2d (Conv2D)"


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="rankdir"):
        nc.utils.plot_model(happyModel(), to_file=None, rankdir="BT")
    with pytest.raises(ValueError, match="input_shape"):
        nc.utils.plot_model(nc.Sequential([L.Dense(2)]), to_file=None)
