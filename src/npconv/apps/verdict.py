"""What the tools answer for a photo: the class, its probability, and whether the model is unsure.

``npconv predict``, ``npconv serve`` and the Python API answer through :func:`classify`, so the
three agree. ``probabilities`` are the model's own outputs (what ``model.predict`` gives);
``calibrated_probabilities`` are those after the model's temperature (see :mod:`.calibration`),
and the verdict is ``"unsure"`` when the calibrated top probability is below the model's
threshold or the photo looks unlike its training pictures (``why`` says which).

>>> answers = classify(model, images)            # images: uint8 (m, n_H, n_W, n_C)
>>> answers[0]["class"], answers[0]["verdict"]
('2', 'unsure')
"""

from __future__ import annotations

import numpy as np

from . import tta as test_time
from .calibration import judge
from .datasets import to_float
from .heads import probabilities
from .model_info import is_smile_model, metadata


def classify(model, images: np.ndarray, tta=None, batch_size: int = 64) -> list[dict]:
    """One answer per uint8 image ``(m, n_H, n_W, n_C)`` of the model's input shape::

        {"class", "probability", "probabilities": {class: p}, "calibrated_probability",
         "calibrated_probabilities": {class: q}, "verdict": "sure" | "unsure", "why": str | None,
         "door_opens" (smile models only)}

    ``tta`` averages the probabilities over views of each image (:mod:`.tta`).
    """
    meta = metadata(model)
    x = to_float(images, meta["value_scale"])
    probs = probabilities(test_time.predict(model, x, tta, batch_size))
    names, smile = [str(n) for n in meta["class_names"]], is_smile_model(meta)
    answers = []
    for p, judged in zip(probs, judge(model, x, probs)):
        k, q = int(np.argmax(p)), judged["probabilities"]
        answer = {
            "class": names[k],
            "probability": float(p[k]),
            "probabilities": {n: float(v) for n, v in zip(names, p)},
            "calibrated_probability": float(q[k]),
            "calibrated_probabilities": {n: float(v) for n, v in zip(names, q)},
            "verdict": "unsure" if judged["unsure"] else "sure",
            "why": judged["why"],
        }
        if smile:
            answer["door_opens"] = k == 1
        answers.append(answer)
    return answers
