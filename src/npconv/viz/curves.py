"""Training curves: loss and accuracy per epoch, training solid and validation dashed."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..errors import expected
from .style import TRAIN_COLOUR, VAL_COLOUR, _figure, _styled


def _curve(ax, values, label, colour, linestyle, marker):
    epochs = np.arange(1, len(values) + 1)
    ax.plot(
        epochs, values, color=colour, linestyle=linestyle, marker=marker, markersize=3.5, linewidth=1.8, label=label
    )


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
        raise ValueError(
            expected(
                "history",
                "a dict with a non-empty 'loss' list (Keras History.history)",
                history if not isinstance(history, dict) else f"keys {sorted(history)}",
            )
        )
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
            ax.plot(
                best + 1,
                val[best],
                "o",
                markersize=10,
                markerfacecolor="none",
                markeredgecolor="0.2",
                markeredgewidth=1.3,
                label=f"best validation {val[best]:.4g} (epoch {best + 1})",
            )
        ax.set_title("Loss" if metric == "loss" else "Accuracy")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(True, axis="y", color="0.92")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.margins(x=0.04, y=0.12)
        # Below the panel, not on it: inside, a legend sits on the curves wherever they run.
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, fontsize=8, handlelength=2.2, columnspacing=1.2
        )
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
