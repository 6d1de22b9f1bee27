"""Pictures: padded inputs, sample grids, training curves, confusion matrices, filters, feature maps.

Every function takes plain arrays, returns a :class:`matplotlib.figure.Figure` and, given ``path=``,
also writes it as a PNG (120 dpi). Figures are drawn on matplotlib's Agg canvas and are never
registered with ``pyplot``: nothing pops up, nothing needs closing, and library code never calls
``show``. In a notebook, the returned figure displays itself.

One look for all of them (:func:`style`, :mod:`.style`). The modules: :mod:`.data` (the data's
pictures), :mod:`.curves` (training curves), :mod:`.confusion` (confusion matrix, misclassified
pictures), :mod:`.filters`, :mod:`.feature_maps`; :mod:`.arrays` reads images and labels for them.
A recipe search's picture is :func:`npconv.tuning.plot.plot_variant_scores`.
"""

from .arrays import confusion_matrix, spread_over_classes
from .confusion import plot_confusion_matrix, plot_misclassified
from .curves import plot_history
from .data import plot_sample_rows, plot_samples, plot_zero_pad
from .feature_maps import plot_feature_maps
from .filters import MAX_FILTER_CHANNELS, RGB_FILTER_MIN_SIZE, plot_filters
from .style import CMAP, DPI, MAX_ANNOTATED_CLASSES, OKABE_ITO, STYLE, TRAIN_COLOUR, VAL_COLOUR, WRONG_COLOUR, style

__all__ = [
    "CMAP",
    "DPI",
    "MAX_ANNOTATED_CLASSES",
    "MAX_FILTER_CHANNELS",
    "OKABE_ITO",
    "RGB_FILTER_MIN_SIZE",
    "STYLE",
    "TRAIN_COLOUR",
    "VAL_COLOUR",
    "WRONG_COLOUR",
    "style",
    "confusion_matrix",
    "spread_over_classes",
    "plot_zero_pad",
    "plot_samples",
    "plot_sample_rows",
    "plot_history",
    "plot_confusion_matrix",
    "plot_misclassified",
    "plot_filters",
    "plot_feature_maps",
]
