"""npconv's one look for every picture, and the helpers that draw on a bare Agg figure.

Plain axes without top/right spines, readable fonts, constrained layout, ``viridis`` for values
(perceptually uniform and colour-blind safe) and the Okabe-Ito palette for lines. Figures are drawn
on matplotlib's Agg canvas and are never registered with ``pyplot``: nothing pops up, nothing needs
closing, and library code never calls ``show``.
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
