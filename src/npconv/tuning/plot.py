"""The picture of a recipe search (``npconv tune``): each variant's accuracies, the best marked."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..errors import expected
from ..viz.style import TRAIN_COLOUR, VAL_COLOUR, _figure, _styled


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
        raise ValueError(
            expected(
                "accuracies", f"a non-empty list of values per variant ({len(names)} names)", f"{len(values)} lists"
            )
        )
    means = np.array([v.mean() for v in values])
    stds = np.array([v.std() for v in values])
    rows = np.arange(len(names))[::-1]  # the first variant on top
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
        ax.text(
            high + 0.02 * (high - low),
            row,
            f"{m:.4f} ± {s:.4f}" + ("  best" if i == best else ""),
            va="center",
            fontsize=8,
            fontweight="bold" if i == best else "normal",
        )
    ax.set_yticks(rows, names)
    ax.set_ylim(rows.min() - 0.6, rows.max() + 0.5)
    ax.set_xlabel("held-out accuracy (mean ± std over folds and seeds; dots: each fold and seed)")
    ax.grid(True, axis="x", color="0.92")
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title)
    return fig
