"""Test-time augmentation (TTA): average a model's outputs over a few fixed views of each image.

==============  ==============================================================================
mode            views of each image ``(n_H, n_W, n_C)``
==============  ==============================================================================
``"flip"``      the image and its left-right mirror
``"shift"``     the image and four copies shifted by ``s = max(1, round(SHIFT * size))`` pixels
                up, down, left and right (zero fill, as ``RandomTranslation`` while training)
``"flip+shift"``  both: the image, its mirror and the four shifts
==============  ==============================================================================

``outputs = mean over views v of model(v(x))``: the average of the probabilities (a sigmoid unit's
P(class 1), or a softmax row). A mirror is a valid view only for a model trained on mirrored images
as well (faces: a mirrored smile is a smile); a SIGNS photo mirrored shows the other hand, which such
a model never saw. So flips need the model's metadata to say ``"trained_with_flips": true``
(:func:`npconv.apps.fitting.build` records it).
"""

from __future__ import annotations

import numpy as np

from ..errors import expected

TTA_MODES = ("flip", "shift", "flip+shift")
#: Shift of the "shift" views, a fraction of the image size (3 pixels at 64 px, 2 at 32 px).
SHIFT = 0.05


def trained_with_flips(meta: dict) -> bool:
    """Whether the model was trained with random left-right flips (its metadata says so).

    Models saved before the ``trained_with_flips`` entry existed answer from their recipe's ``flip``
    and whether their arch has a flip layer (``smallres``)."""
    if "trained_with_flips" in meta:
        return bool(meta["trained_with_flips"])
    from .registry import ARCHS, arch_options

    app = meta.get("app")
    return app in ARCHS and "flip" in arch_options(app) and bool(meta.get("recipe", {}).get("flip"))


def allowed_modes(meta: dict) -> tuple[str, ...]:
    """The modes of :data:`TTA_MODES` that suit the model: the flip modes only if it was trained with flips."""
    return tuple(mode for mode in TTA_MODES if "flip" not in mode or trained_with_flips(meta))


def check_tta(tta, meta: dict) -> str | None:
    """``tta`` as a mode of :data:`TTA_MODES`, or ``None`` for none (``None``, ``""``, ``"none"``);
    a flip mode on a model not trained with flips is a ``ValueError`` that says what to use."""
    if tta is None or tta is False or (isinstance(tta, str) and tta.lower() in ("", "none")):
        return None
    if not isinstance(tta, str) or tta.lower() not in TTA_MODES:
        raise ValueError(expected("tta", "one of " + ", ".join(repr(m) for m in TTA_MODES) + " or None", repr(tta)))
    mode = tta.lower()
    if "flip" in mode and not trained_with_flips(meta):
        raise ValueError(
            expected(
                f"tta {mode!r}",
                "a model trained with random flips",
                "a model trained without them (its metadata says trained_with_flips: false)",
                "Mirror images are not its data (SIGNS photos show one hand); use tta='shift'.",
            )
        )
    return mode


def shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``x (m, n_H, n_W, n_C)`` moved ``dy`` pixels down and ``dx`` right, zeros where nothing moved in:
    ``out[:, r, c] = x[:, r - dy, c - dx]`` inside the image, else 0."""
    out = np.zeros_like(x)
    n_h, n_w = x.shape[1:3]
    out[:, max(dy, 0) : n_h + min(dy, 0), max(dx, 0) : n_w + min(dx, 0)] = x[
        :, max(-dy, 0) : n_h - max(dy, 0), max(-dx, 0) : n_w - max(dx, 0)
    ]
    return out


def views(x: np.ndarray, mode: str) -> list[np.ndarray]:
    """The views of batch ``x`` that ``mode`` averages over, the image itself first."""
    result = [x]
    if "flip" in mode:
        result.append(x[:, :, ::-1])
    if "shift" in mode:
        s_h, s_w = (max(1, round(SHIFT * n)) for n in x.shape[1:3])
        result += [shifted(x, -s_h, 0), shifted(x, s_h, 0), shifted(x, 0, -s_w), shifted(x, 0, s_w)]
    return result


def predict(model, x: np.ndarray, tta=None, batch_size: int = 64) -> np.ndarray:
    """``model.predict(x)``, averaged over the views of ``tta`` (checked by :func:`check_tta`)."""
    mode = check_tta(tta, model.metadata or {})
    if mode is None:
        return model.predict(x, batch_size=batch_size)
    outputs = [model.predict(view, batch_size=batch_size) for view in views(x, mode)]
    return np.mean(outputs, axis=0, dtype=np.float64).astype(outputs[0].dtype)
