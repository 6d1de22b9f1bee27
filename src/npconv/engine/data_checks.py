"""What ``fit``, ``evaluate``, ``predict`` and calls accept: checks of ``x`` and ``y`` against a model.

Each check names the argument, what was expected and the fix (the course's row-layout labels, a
missing batch or channel axis, grayscale data for an RGB model), and converts to the model's dtype
at most once.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ShapeError, check_finite, expected


def as_input_batch(model, x, name, build=False) -> np.ndarray:
    """``x`` as an array of the model's dtype (one cast at most), checked against the input shape."""
    if x is None:
        raise ValueError(expected(name, "an array of inputs", "None"))
    try:
        x = np.asarray(x)
    except ValueError:  # nested lists of different lengths
        if _batch_pairs(x):
            raise TypeError(
                expected(
                    name,
                    "an array of inputs, a Dataset of batches or a generator of (x, y) batches",
                    f"a list of {len(x)} (x, y) pairs",
                    "A list is read as the inputs of a model with several "
                    "inputs, as in Keras. For batches use nc.data.Dataset.from_tensor_slices((x, y)).batch(n), "
                    "or a generator yielding (x, y) batches with steps_per_epoch=N.",
                )
            ) from None
        raise ValueError(
            expected(
                name,
                "a numeric array with one shape for every example",
                "a ragged nested list",
                "Resize the images to one size and stack them: np.stack(images).",
            )
        ) from None
    if x.dtype.kind not in "biuf":
        raise TypeError(expected(name, "a numeric array", x, "Pass images as a NumPy array."))
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(expected(name, "at least one example", x, "Check the data loading step."))
    if not model.built and build:
        model._build_from_data(x.shape[1:])
    model._require_built(name)
    want = model.input_shape
    shape = model._input_shape
    if x.shape[1:] != shape:
        if x.shape == shape:
            fix = "For a single example add the batch axis: x[None]."
        elif x.ndim == len(want) and x.shape[1:-1] == shape[:-1]:
            fix = (
                f"The model takes {shape[-1]} channel(s), the data has {x.shape[-1]}: "
                "convert the images (e.g. grayscale to RGB with np.repeat(x, 3, axis=-1)) or build "
                f"the model with input_shape={x.shape[1:]}."
            )
        elif x.ndim == len(want) + 1 and x.shape[-1] == 1:
            fix = "Drop the extra axis: x[..., 0]."
        elif x.ndim + 1 == len(want) and len(want) == 4:
            fix = "A grayscale batch needs a channel axis: x[..., None]."
        else:
            fix = "Resize or reshape the data to the model's input, or build the model for this shape."
        raise ShapeError(expected(name, f"a batch of shape {want}".replace("None,)", "None)"), f"shape {x.shape}", fix))
    if x.dtype != model.dtype:
        x = x.astype(model.dtype)
    if x.dtype.kind == "f":
        check_finite(x, name)
    return x


def _batch_pairs(x) -> bool:
    """Whether ``x`` is a list of ``(x_batch, y_batch)`` pairs: the batches of a hand-made loader."""
    if not (
        isinstance(x, (list, tuple)) and x and all(isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in x)
    ):
        return False
    try:
        return all(np.ndim(pair[0]) >= 2 for pair in x)
    except ValueError:  # a ragged x_batch: not a batch of examples
        return False


def as_labels(model, y, m, name) -> np.ndarray:
    if y is None:
        raise ValueError(expected(name, "labels", "None", "fit/evaluate need both x and y."))
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(expected(name, "numeric labels", y))
    if y.ndim == 2 and y.shape[0] == 1 and y.shape[1] == m and m > 1:
        warnings.warn(
            f"{name}: labels have shape {y.shape}, the course's row layout; using {name}.T "
            f"of shape {(m, 1)}. Pass {name}.T to silence this.",
            stacklevel=3,
        )
        y = y.T
    if y.ndim == 0 or len(y) != m:
        raise ValueError(
            expected(name, f"{m} labels, one per example of x", y, "x and y must have the same number of examples.")
        )
    if y.dtype.kind == "f":
        check_finite(y, name)
        if y.dtype != model.dtype:
            y = y.astype(model.dtype)
    elif y.dtype.kind == "b" or model.loss.name != "sparse_categorical_crossentropy":
        y = y.astype(model.dtype)
    return y
