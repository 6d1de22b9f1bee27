"""The report folder ``npconv train`` writes beside a model: pictures and ``metrics.json``.

samples.png, history.png, confusion_matrix.png, misclassified.png, filters.png (the first
convolution's kernels, with a colour scale), feature_maps.png (one held-out picture, shown beside
them, through every convolution) and gradcam.png (where the model looked in a few right and a few
wrong held-out pictures of each class). The confusion matrix, the misclassified pictures and the
Grad-CAM say which pictures they count.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import explain, explain_plots, viz
from .apps.datasets import to_float
from .apps.ensemble import members_of
from .layers import Conv2D


def conv_layers(model) -> list:
    return [layer for layer in model.layers if isinstance(layer, Conv2D)]


def feature_maps(model, image_uint8: np.ndarray) -> tuple[list[np.ndarray], list[str]]:
    """The output of every ``Conv2D`` for one uint8 image ``(n_H, n_W, n_C)``, and the layer names."""
    x = to_float(image_uint8[None], model.metadata.get("value_scale", 255))
    maps = model.intermediate_outputs(x, [layer.name for layer in conv_layers(model)])
    return [m[0] for m in maps.values()], list(maps)


def jsonable(evaluation: dict, class_names) -> dict:
    """Held-out results as plain JSON: accuracy, loss, n, per-class precision/recall, confusion matrix,
    and the test-time augmentation used (``None``: none)."""
    per_class = {
        name: {"precision": float(p), "recall": float(r), "support": int(s)}
        for name, p, r, s in zip(
            class_names,
            evaluation["precision"],
            evaluation["recall"],
            np.asarray(evaluation["confusion_matrix"]).sum(axis=1),
        )
    }
    return {
        "accuracy": evaluation["accuracy"],
        "loss": evaluation["loss"],
        "n": evaluation["n"],
        "correct": evaluation["correct"],
        "per_class": per_class,
        "confusion_matrix": np.asarray(evaluation["confusion_matrix"]).tolist(),
        "tta": evaluation.get("tta"),
    }


def write_report(
    folder, model, history: dict, train, test=None, evaluation=None, extra=None, test_name: str = "held-out"
) -> Path:
    """Write the pictures and ``metrics.json`` into ``folder`` (created); returns the folder.

    ``train``/``test`` are :class:`~npconv.data.Dataset` (uint8 images); ``evaluation`` is
    :func:`npconv.apps.fitting.evaluate`'s result on ``test``; ``extra`` goes into metrics.json.
    ``test_name`` says what ``test`` is (``"validation"``, ``"test"``): the confusion matrix and the
    misclassified pictures are titled with it ("the 90 validation pictures").
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = model.metadata.get("class_names")
    viz.plot_samples(train.x, train.y, names, n=16, path=folder / "samples.png")
    if history.get("loss"):
        members = members_of(model)
        title = f"The mean of the {members} averaged models' curves" if members > 1 else None
        viz.plot_history(history, title=title, path=folder / "history.png")
    convs = conv_layers(model)
    if convs:
        viz.plot_filters(convs[0].kernel.value, path=folder / "filters.png")
        source, which = (test, test_name) if test is not None else (train, "training")
        image = source.x[0]
        maps, layer_names = feature_maps(model, image)
        caption = f"{which} picture 0\ntrue: {source.class_names[int(source.y[0])]}"
        viz.plot_feature_maps(maps, layer_names, image=image, image_title=caption, path=folder / "feature_maps.png")
    metrics = {"history": history, **(extra or {})}
    if evaluation is not None and test is not None:
        pictures = f"the {len(test)} {test_name} pictures"
        viz.plot_confusion_matrix(
            evaluation["confusion_matrix"], names, pictures=pictures, path=folder / "confusion_matrix.png"
        )
        viz.plot_misclassified(
            test.x,
            test.y,
            evaluation["pred"],
            names,
            probs=evaluation["probs"],
            pictures=pictures,
            path=folder / "misclassified.png",
        )
        if explain.spatial_layers(model):  # Grad-CAM needs feature maps
            x = to_float(test.x, model.metadata.get("value_scale", 255))
            explain_plots.plot_right_and_wrong(
                model, x, test.y, evaluation["probs"], names, pictures=pictures, path=folder / "gradcam.png"
            )
        metrics["held_out"] = jsonable(evaluation, names)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")
    return folder
