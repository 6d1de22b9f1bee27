"""Keras's ``plot_model``: a model's layer graph as a picture, drawn with Matplotlib (no Graphviz).

Layers stand in rows by depth (the longest path from the input), so branches sit side by side and
a merge (``Add``, ``Concatenate``) has an arrow from each of its inputs; an arrow that skips rows
(a residual shortcut) bows out to the side instead of running behind the layers it skips.
"""

from __future__ import annotations

from pathlib import Path

from .errors import check_choice, expected
from .viz.style import _figure, _styled

#: Box colours by the kind of layer (Okabe & Ito's palette, as in :mod:`npconv.viz`).
KIND_COLOURS = {
    "Conv2D": "#56B4E9",
    "Dense": "#E69F00",
    "MaxPooling2D": "#009E73",
    "AveragePooling2D": "#009E73",
    "GlobalAveragePooling2D": "#009E73",
    "GlobalMaxPooling2D": "#009E73",
    "Add": "#CC79A7",
    "Concatenate": "#CC79A7",
    "BatchNormalization": "#F0E442",
    "InputLayer": "#FFFFFF",
}
OTHER_COLOUR = "#DDDDDD"
ROW_INCHES, COLUMN_INCHES = 0.8, 3.4


def _graph(model):
    """``(layers, edges, depth)``: the input layer then every node's layer, the ``(producer,
    consumer)`` index pairs, and each layer's row."""
    layers = [model.inputs[0].layer] + [node.layer for node in model._nodes]
    producer = {0: 0} | {node.output: k + 1 for k, node in enumerate(model._nodes)}
    edges = [(producer[i], k + 1) for k, node in enumerate(model._nodes) for i in node.inputs]
    depth = [0] * len(layers)
    for parent, child in edges:  # nodes are in topological order, so one pass finds the longest path
        depth[child] = max(depth[child], depth[parent] + 1)
    return layers, edges, depth


def _label(layer, show_shapes: bool, show_layer_names: bool) -> str:
    kind = type(layer).__name__
    title = f"{layer.name} ({kind})" if show_layer_names else kind
    if not show_shapes:
        return title
    shape_in = layer.input_shape if kind != "InputLayer" else layer.input_shape[0]
    shape_out = layer.output_shape if kind != "InputLayer" else layer.output_shape[0]
    shapes = f"{shape_out}" if kind == "InputLayer" else f"{shape_in} \u2192 {shape_out}"
    return f"{title}\n{shapes}"


@_styled
def _draw(model, show_shapes: bool, show_layer_names: bool, rankdir: str):
    layers, edges, depth = _graph(model)
    rows: dict[int, list[int]] = {}
    for k, d in enumerate(depth):
        rows.setdefault(d, []).append(k)
    widest = max(len(members) for members in rows.values())
    row = ROW_INCHES * (1.25 if show_shapes else 1)
    fig = (
        _figure(COLUMN_INCHES * widest, row * len(rows))
        if rankdir == "TB"
        else _figure(COLUMN_INCHES * len(rows), row * widest + 0.4)
    )
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(-widest / 2, widest / 2)
    ax.set_ylim(-len(rows) + 0.5, 0.5)
    if rankdir == "LR":
        ax.set_xlim(-0.5, len(rows) - 0.5)
        ax.set_ylim(-widest / 2, widest / 2)
    boxes = []
    for k, layer in enumerate(layers):
        members = rows[depth[k]]
        offset = members.index(k) - (len(members) - 1) / 2
        x, y = (offset, -depth[k]) if rankdir == "TB" else (depth[k], -offset)
        colour = KIND_COLOURS.get(type(layer).__name__, OTHER_COLOUR)
        boxes.append(
            ax.text(
                x,
                y,
                _label(layer, show_shapes, show_layer_names),
                ha="center",
                va="center",
                fontsize=8,
                linespacing=1.4,
                bbox=dict(boxstyle="round,pad=0.45", facecolor=colour, edgecolor="0.25"),
            )
        )
    start, end = ((0.5, 0.0), (0.5, 1.0)) if rankdir == "TB" else ((1.0, 0.5), (0.0, 0.5))
    for parent, child in edges:
        skips = depth[child] - depth[parent] > 1
        anchor_from, anchor_to = ((1.0, 0.5), (1.0, 0.5)) if skips and rankdir == "TB" else (start, end)
        if skips and rankdir == "LR":
            anchor_from, anchor_to = (0.5, 1.0), (0.5, 1.0)
        ax.annotate(
            "",
            xy=anchor_to,
            xycoords=boxes[child],
            xytext=anchor_from,
            textcoords=boxes[parent],
            arrowprops=dict(
                arrowstyle="-|>",
                color="0.25",
                lw=1.0,
                shrinkA=1,
                shrinkB=1,
                connectionstyle="arc3,rad=-0.45" if skips else "arc3",
            ),
        )
    return fig


def plot_model(
    model,
    to_file="model.png",
    show_shapes: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    dpi: int = 96,
):
    """Draw ``model``'s layer graph and save it to ``to_file`` (PNG, SVG or PDF by the extension).

    As Keras's ``plot_model``: one box per layer (name and type; with ``show_shapes`` its input
    and output shapes), arrows from each layer to the layers that read it; ``rankdir`` "TB"
    (top to bottom) or "LR" (left to right). Returns the :class:`matplotlib.figure.Figure`.
    """
    rankdir = check_choice(rankdir, "rankdir", {"tb", "lr"}).upper()
    if not getattr(model, "built", False):
        raise ValueError(
            expected(
                "model",
                "a built model",
                "a model without an input shape",
                "Give the first layer input_shape=(...) or call model.build(shape) first.",
            )
        )
    fig = _draw(model, show_shapes, show_layer_names, rankdir)
    if to_file is not None:
        fig.savefig(Path(to_file), dpi=dpi, bbox_inches="tight")
    return fig
