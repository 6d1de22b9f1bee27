"""The model card: what a saved model is, read from its metadata (``npconv.apps.fitting.build``)."""

from __future__ import annotations

from ..apps.ensemble import members_of
from ..apps.photos import color_mode


def model_card(predictor, file_name: str) -> dict:
    """What the page shows about the model: classes, input, training data and held-out accuracy
    (the cross-validated mean +- std instead for a model chosen by cross-validation).

    Fields the metadata lacks (a model saved by hand, without ``npconv train``) are ``None``.
    """
    meta = predictor.metadata
    n_H, n_W, n_C = predictor.input_shape
    trained = meta.get("trained") or {}
    cv = meta.get("cross_validation") or {}
    # A cross-validated model is its best fold, chosen by that fold's score: the folds' mean is the
    # figure that says how it does on pictures it never saw, so the card gives that alone.
    held_out = None if cv else trained.get("held_out_accuracy")
    origin = meta.get("initialised_from") or {}
    return {
        "file": file_name,
        "arch": meta.get("app"),
        "members": members_of(predictor.model),  # npconv train --ensemble N
        "classes": predictor.class_names,
        "input": {"height": n_H, "width": n_W, "channels": n_C, "color_mode": color_mode(predictor.input_shape)},
        "dataset": meta.get("dataset"),
        # npconv train --init: the model it was fine-tuned from (its data set and file name)
        "initialised_from": (
            {"dataset": origin.get("dataset"), "file": origin.get("path", "").split("/")[-1]} if origin else None
        ),
        "epochs": trained.get("epochs"),
        "training_examples": trained.get("examples"),
        "held_out_accuracy": held_out,
        "cross_validation": (
            {"k": cv["k"], "mean_accuracy": cv["mean_accuracy"], "std_accuracy": cv["std_accuracy"]} if cv else None
        ),
        "parameters": int(predictor.model.count_params()),
        "conv_layers": predictor.conv_layers,
        "smile_model": predictor.is_smile_model,
        "npconv_version": meta.get("npconv_version"),
    }
