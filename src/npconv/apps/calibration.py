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
  ``d(x) = min_k ||(f(x) - mu_k) / s|| / sqrt(D)`` (``s``: each feature's spread over the training
  pictures, ``D`` features) above ``max_distance`` also makes the verdict ``"unsure"``.

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


def negative_log_likelihood(probs: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean ``-log q[i, y_i]`` of the probabilities ``q`` at temperature ``T``."""
    q = with_temperature(probs, temperature)
    return float(-np.mean(np.log(np.clip(q[np.arange(len(y)), y], 1e-300, None))))


def fit_temperature(probs: np.ndarray, y: np.ndarray, low: float = 0.05, high: float = 20.0) -> float:
    """The ``T`` in ``[low, high]`` minimising :func:`negative_log_likelihood`: a grid of 200 values
    evenly spaced in ``log T``, then a golden-section search around the best (NLL is smooth in T)."""
    y = np.asarray(y, dtype=np.int64)
    grid = np.geomspace(low, high, 200)
    losses = [negative_log_likelihood(probs, y, t) for t in grid]
    k = int(np.argmin(losses))
    a, b = np.log(grid[max(k - 1, 0)]), np.log(grid[min(k + 1, len(grid) - 1)])
    golden = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        c, d = b - golden * (b - a), a + golden * (b - a)
        if negative_log_likelihood(probs, y, np.exp(c)) < negative_log_likelihood(probs, y, np.exp(d)):
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
    parts = [model.intermediate_outputs(x[i:i + batch_size], [layer])[layer]
             for i in range(0, len(x), batch_size)]
    return np.concatenate(parts).reshape(len(x), -1).astype(np.float64)


def feature_distance(f: np.ndarray, stats: dict) -> np.ndarray:
    """``(m,)`` distances of features ``f (m, D)`` to the nearest class mean, in units of ``stats``'s
    per-feature spread (see the module docstring)."""
    means, scale = np.asarray(stats["class_means"]), np.asarray(stats["scale"])
    z = (f[:, None, :] - means[None]) / scale
    return np.sqrt((z ** 2).sum(axis=2).min(axis=1) / f.shape[1])


# ----------------------------------------------------------------------------- fitting and verdicts

def calibrate(model, train_x: np.ndarray, train_y: np.ndarray, held_x: np.ndarray, held_y: np.ndarray,
              held_out: str = "held-out split", unsure_below: float = DEFAULT_UNSURE_BELOW) -> dict:
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
    info = {"temperature": temperature, "unsure_below": float(unsure_below), "fitted_on": held_out,
            "n": int(len(held_y)),
            "held_out_nll": [negative_log_likelihood(probs, held_y), negative_log_likelihood(calibrated, held_y)],
            "held_out_ece": [expected_calibration_error(probs, held_y),
                             expected_calibration_error(calibrated, held_y)]}
    layer = feature_layer(model)
    if layer is not None:
        f_train = features(model, to_float(train_x, scale_by), layer)
        classes = np.unique(train_y)
        stats = {"layer": layer,
                 "class_means": [f_train[train_y == k].mean(axis=0).tolist() for k in classes],
                 "scale": (f_train.std(axis=0) + 1e-6).tolist()}
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
    stats = cal.get("features")
    if stats is not None:
        distance = feature_distance(features(model, x, stats["layer"]), stats)
    verdicts = []
    for i, q in enumerate(calibrated):
        why = None
        if distance is not None and distance[i] > stats["max_distance"]:
            why = "the picture looks unlike the training pictures"
        elif q.max() < cal["unsure_below"]:
            why = f"its best guess has probability {q.max():.2f}, under {cal['unsure_below']:.2f}"
        verdicts.append({"probabilities": q, "unsure": why is not None, "why": why,
                         "distance": None if distance is None else float(distance[i])})
    return verdicts
