"""Saying when a model is unsure: calibrated probabilities, and a check that a photo looks like the
training pictures.

A network trained to 99% on its test set answers a grey wall or a photo of noise with 0.99 just as
readily. Two checks, fitted after training and stored in ``model.metadata["calibration"]``:

* **Temperature scaling** (Guo et al., 2017): the probabilities ``p`` become
  ``softmax(log p / T)`` (for a sigmoid unit, ``sigmoid(z / T)``), with the one number ``T > 0``
  that minimises the negative log-likelihood of the held-out pictures. It never changes the
  predicted class, only how sure the model says it is. The verdict is ``"unsure"`` when the
  calibrated top probability is below ``unsure_below``.
* **Unlike the training pictures**: the features the output layer reads (its input, a vector per
  picture) are compared with the training pictures' class means. The distance
  ``d(x) = min_k ||(f(x) - mu_k) / s|| / sqrt(D)`` (``s``: each feature's spread about its class
  mean over the training pictures, ``D`` features) above ``max_distance`` also makes the verdict ``"unsure"``.

* **Blank or noise**: a picture whose contrast (each channel's spread over the picture, averaged)
  is under :data:`BLANK_FRACTION` of the training pictures' 1st percentile is "almost blank" (a
  wall); one whose detail (the mean difference between neighbouring pixels, per unit of contrast)
  is over :data:`NOISE_FACTOR` times the training pictures' 99th percentile is "noise". Both are
  checks of the picture alone, so they hold for any network, however its features behave.

A model saved without calibration (before this module, or trained with no held-out data) keeps
``T = 1``, no distance check and the :data:`DEFAULT_UNSURE_BELOW` threshold.
"""

from __future__ import annotations

import numpy as np

from .datasets import to_float
from .heads import probabilities

#: Calibrated top probabilities below this are "unsure": the model expects to be wrong at least
#: three times in ten.
DEFAULT_UNSURE_BELOW = 0.7
#: ``max_distance`` is this many times the largest held-out picture's feature distance.
DISTANCE_MARGIN = 1.5
#: "almost blank" below this fraction of the training pictures' 1st percentile of contrast.
BLANK_FRACTION = 0.25
#: "noise" above this many times the training pictures' 99th percentile of detail.
NOISE_FACTOR = 4.0
_TINY = np.finfo(np.float32).tiny


def log_probabilities(probs: np.ndarray) -> np.ndarray:
    """``log p`` in float64 for ``(m, K)`` probabilities (0 clipped to float32's smallest normal)."""
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), _TINY, None))


def with_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)`` row by row: ``(m, K)`` probabilities, float64."""
    z = log_probabilities(probs) / float(temperature)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(
    probs: np.ndarray, y: np.ndarray, temperature: float = 1.0, smoothing: float = 0.0
) -> float:
    """Mean cross-entropy ``-sum_k t[i, k] log q[i, k]`` of the probabilities ``q`` at temperature
    ``T`` against targets ``t = (1 - smoothing) * onehot(y) + smoothing / K``."""
    log_q = np.log(np.clip(with_temperature(probs, temperature), 1e-300, None))
    picked = log_q[np.arange(len(y)), y]
    return float(-np.mean((1 - smoothing) * picked + smoothing * log_q.mean(axis=1)))


def fit_temperature(probs: np.ndarray, y: np.ndarray, low: float = 0.05, high: float = 20.0) -> float:
    """The ``T`` in ``[low, high]`` minimising :func:`negative_log_likelihood` of the targets smoothed
    by ``1 / (m + 1)``: a grid of 200 values evenly spaced in ``log T``, then a golden-section
    search around the best (the loss is smooth in T).

    The smoothing says what ``m`` held-out pictures can show: with no mistake among them, not a
    certainty above about ``m / (m + 1)``. Without it a perfect held-out set drives ``T`` to ``low``
    (every answer sharpened towards 1), where a learner's photo most needs doubt.
    """
    y = np.asarray(y, dtype=np.int64)
    smoothing = 1.0 / (len(y) + 1)
    grid = np.geomspace(low, high, 200)
    losses = [negative_log_likelihood(probs, y, t, smoothing) for t in grid]
    k = int(np.argmin(losses))
    a, b = np.log(grid[max(k - 1, 0)]), np.log(grid[min(k + 1, len(grid) - 1)])
    golden = (np.sqrt(5) - 1) / 2

    def loss(log_t):
        return negative_log_likelihood(probs, y, np.exp(log_t), smoothing)

    for _ in range(40):
        c, d = b - golden * (b - a), a + golden * (b - a)
        if loss(c) < loss(d):
            b = d
        else:
            a = c
    return float(np.exp((a + b) / 2))


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """ECE: ``sum_b |B_b| / m * |accuracy(B_b) - mean top probability(B_b)|`` over ``bins`` equal
    bins of the top probability in (0, 1] (Guo et al., 2017)."""
    probs = np.asarray(probs, dtype=np.float64)
    top, correct = probs.max(axis=1), probs.argmax(axis=1) == np.asarray(y)
    which = np.clip(np.ceil(top * bins).astype(int) - 1, 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            gap += inside.sum() * abs(correct[inside].mean() - top[inside].mean())
    return float(gap / len(top))


# ----------------------------------------------------------------------------- features


def feature_layer(model) -> str | None:
    """The name of the layer whose output the output layer reads, when the output layer has weights
    (a ``Dense``); ``None`` otherwise (an averaged ensemble ends in an activation)."""
    last = model._nodes[-1]
    if not last.layer.weights or last.layer.multi_input:
        return None
    source = next((node for node in model._nodes if node.output == last.inputs[0]), None)
    return None if source is None else source.layer.name


def features(model, x: np.ndarray, layer: str, batch_size: int = 256) -> np.ndarray:
    """``(m, D)`` float64 outputs of ``layer`` for float inputs ``x``, batch by batch."""
    parts = [model.intermediate_outputs(x[i : i + batch_size], [layer])[layer] for i in range(0, len(x), batch_size)]
    return np.concatenate(parts).reshape(len(x), -1).astype(np.float64)


def feature_distance(f: np.ndarray, stats: dict) -> np.ndarray:
    """``(m,)`` distances of features ``f (m, D)`` to the nearest class mean, in units of ``stats``'s
    per-feature spread (see the module docstring)."""
    means, scale = np.asarray(stats["class_means"]), np.asarray(stats["scale"])
    z = (f[:, None, :] - means[None]) / scale
    return np.sqrt((z**2).sum(axis=2).min(axis=1) / f.shape[1])


def contrast_and_detail(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(m,)`` contrasts and details of pictures ``x (m, n_H, n_W, n_C)``: the contrast is each
    channel's standard deviation over the picture, averaged over channels; the detail is the mean
    absolute difference of neighbouring pixels (down and across) divided by the contrast (0 for
    a blank picture). Detail is blind to exposure and contrast: ~0.1 for a photo, ~1.15 for noise."""
    x = np.asarray(x, dtype=np.float64)
    contrast = x.std(axis=(1, 2)).mean(axis=1)
    steps = (np.abs(np.diff(x, axis=1)).mean(axis=(1, 2, 3)) + np.abs(np.diff(x, axis=2)).mean(axis=(1, 2, 3))) / 2
    return contrast, np.where(contrast > 0, steps / np.maximum(contrast, 1e-12), 0.0)


# ----------------------------------------------------------------------------- fitting and verdicts


def calibrate(
    model,
    train_x: np.ndarray,
    train_y: np.ndarray,
    held_x: np.ndarray,
    held_y: np.ndarray,
    held_out: str = "held-out split",
    unsure_below: float = DEFAULT_UNSURE_BELOW,
) -> dict:
    """Fit ``T`` on the held-out uint8 pictures and the feature statistics on the training ones;
    store them in ``model.metadata["calibration"]`` and return that dict.

    ``max_distance`` is :data:`DISTANCE_MARGIN` times the largest held-out distance: held-out
    pictures are real photos the model never trained on, so none of them would be called unlike.
    """
    scale_by = (model.metadata or {}).get("value_scale", 255)
    held = to_float(held_x, scale_by)
    probs = probabilities(model.predict(held, batch_size=256))
    temperature = fit_temperature(probs, held_y)
    calibrated = with_temperature(probs, temperature)
    info = {
        "temperature": temperature,
        "unsure_below": float(unsure_below),
        "fitted_on": held_out,
        "n": int(len(held_y)),
        "held_out_nll": [negative_log_likelihood(probs, held_y), negative_log_likelihood(calibrated, held_y)],
        "held_out_ece": [expected_calibration_error(probs, held_y), expected_calibration_error(calibrated, held_y)],
    }
    train = to_float(train_x, scale_by)
    contrast, detail = contrast_and_detail(train)
    info["pictures"] = {
        "min_contrast": float(BLANK_FRACTION * np.quantile(contrast, 0.01)),
        "max_detail": float(NOISE_FACTOR * np.quantile(detail, 0.99)),
    }
    layer = feature_layer(model)
    if layer is not None:
        f_train = features(model, train, layer)
        classes = np.unique(train_y)
        means = np.stack([f_train[train_y == k].mean(axis=0) for k in classes])
        within = f_train - means[np.searchsorted(classes, train_y)]
        stats = {"layer": layer, "class_means": means.tolist(), "scale": (within.std(axis=0) + 1e-6).tolist()}
        held_distance = feature_distance(features(model, held, layer), stats)
        stats["max_distance"] = float(DISTANCE_MARGIN * held_distance.max())
        info["features"] = stats
    model.metadata = {**(model.metadata or {}), "calibration": info}
    return info


def calibration_of(meta: dict) -> dict:
    """The model's calibration, with the defaults of an uncalibrated model (``T = 1``, no features)."""
    stored = meta.get("calibration") or {}
    return {"temperature": 1.0, "unsure_below": DEFAULT_UNSURE_BELOW, **stored}


def judge(model, x: np.ndarray, probs: np.ndarray) -> list[dict]:
    """The verdict for each of the float inputs ``x`` given the model's probabilities ``probs``
    for them (after any test-time augmentation): ``{"probabilities": calibrated (K,) array,
    "unsure": bool, "why": reason or None}``."""
    cal = calibration_of(model.metadata or {})
    calibrated = with_temperature(probs, cal["temperature"])
    distance = None
    stats, pictures = cal.get("features"), cal.get("pictures")
    if stats is not None and stats["layer"] not in {layer.name for layer in model.layers}:
        stats = None  # metadata copied from another model (a member of this average, say)
    if stats is not None:
        distance = feature_distance(features(model, x, stats["layer"]), stats)
    contrast, detail = contrast_and_detail(x)
    verdicts = []
    for i, q in enumerate(calibrated):
        why = None
        if pictures is not None and contrast[i] < pictures["min_contrast"]:
            why = "the picture is almost blank"
        elif pictures is not None and detail[i] > pictures["max_detail"]:
            why = "the picture looks like noise"
        elif distance is not None and distance[i] > stats["max_distance"]:
            why = "it looks unlike the training pictures"
        elif q.max() < cal["unsure_below"]:
            why = f"probability under {cal['unsure_below']:.2f}"
        verdicts.append(
            {
                "probabilities": q,
                "unsure": why is not None,
                "why": why,
                "distance": None if distance is None else float(distance[i]),
            }
        )
    return verdicts
