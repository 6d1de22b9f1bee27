"""The models of one training, fitted here: build, compile, fit one model by its recipe, evaluate,
and turn the trained models into a :class:`TrainResult` (an ensemble's members averaged).

:mod:`.training` runs these for a training, its folds and its members; a worker runs
:func:`fit_one` and :func:`evaluate` for a job (:mod:`.job_work`), and the client finishes the
jobs' models as it finishes its own (:mod:`.training_jobs`, :func:`finish_training`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import __version__, losses, metrics, optimizers, utils
from ..data import Dataset
from . import calibration
from . import tta as test_time
from .datasets import to_float
from .ensemble import average_models
from .heads import probabilities
from .recipes import Recipe
from .registry import arch_options, get_arch
from .transfer import Pretrained

VALUE_SCALE = 255


@dataclass
class TrainResult:
    """What :func:`~.training.train` returns."""

    model: object
    history: dict
    seconds: float
    interrupted: bool = False
    #: Held-out results (see :func:`evaluate`), when there was held-out data.
    evaluation: dict | None = None
    #: The held-out data ``evaluation`` was computed on.
    held_out: Dataset | None = None
    folds: list[dict] = field(default_factory=list)


def loss_for_model(model) -> str:
    """``binary_crossentropy`` for a one-unit (sigmoid) output, else sparse categorical."""
    return "binary_crossentropy" if model.output_shape[-1] == 1 else "sparse_categorical_crossentropy"


def build(
    arch: str, input_shape, class_names, recipe: Recipe, dataset=None, init: Pretrained | None = None, member: int = 0
):
    """The model ``arch`` for ``class_names``, with its metadata (compiled by :func:`~.training.train`).

    With ``init``, the layers the pretrained model shares with the new one start from its weights
    (see :mod:`npconv.apps.transfer`; from its ``member``-th model when it averages several).
    """
    options = {k: v for k, v in recipe.arch_options().items() if k in arch_options(arch)}
    model = get_arch(arch, input_shape, len(class_names), **options)
    model.metadata = {
        "app": arch,
        "input_shape": [int(s) for s in input_shape],
        "class_names": list(class_names),
        "value_scale": VALUE_SCALE,
        "dataset": dataset,
        "recipe": vars(recipe).copy(),
        "trained_with_flips": bool(options.get("flip")),
        "npconv_version": __version__,
    }
    if init is not None:
        init.initialise(model, member)
    return model


def compile_for(
    model, learning_rate: float, steps: int, weight_decay: float = 0.0, label_smoothing: float = 0.0
) -> None:
    """Adam with a cosine decay of ``learning_rate`` to 0 over ``steps`` (AdamW when ``weight_decay``),
    and the model's loss (with ``label_smoothing`` when set)."""
    schedule = optimizers.schedules.CosineDecay(learning_rate, max(1, steps))
    optimizer = optimizers.AdamW(schedule, weight_decay=weight_decay) if weight_decay else optimizers.Adam(schedule)
    loss = losses.get(loss_for_model(model))
    if label_smoothing:
        loss = type(loss)(label_smoothing=label_smoothing)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])


def phases(recipe: Recipe, fine_tuning: bool) -> list[tuple[int, bool]]:
    """The training phases as ``(epochs, head_only)``: when fine-tuning with ``recipe.frozen_epochs``,
    first the output layer alone (the pretrained features stay as they are while a fresh head settles),
    then every layer; otherwise one phase of ``recipe.epochs``."""
    frozen = min(recipe.frozen_epochs, recipe.epochs) if fine_tuning else 0
    return [p for p in ((frozen, True), (recipe.epochs - frozen, False)) if p[0] > 0]


def freeze_all_but_head(model, frozen: bool) -> None:
    """``trainable = not frozen`` on every layer but the last (the output layer)."""
    for layer in model.layers[:-1]:
        layer.trainable = not frozen


def evaluate(model, x_uint8: np.ndarray, y: np.ndarray, batch_size: int = 64, tta=None) -> dict:
    """Accuracy, loss, predictions and per-class precision/recall of ``model`` on uint8 images.

    ``tta`` (``"flip"``, ``"shift"``, ``"flip+shift"``; see :mod:`.tta`) averages the predictions
    over those views of each image; the loss is then the model's loss of the averaged probabilities.
    """
    x = to_float(x_uint8, model.metadata.get("value_scale", VALUE_SCALE))
    mode = test_time.check_tta(tta, model.metadata or {})
    if mode is None:
        loss = float(model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)["loss"])
        outputs = model.predict(x, batch_size=batch_size)
    else:
        outputs = test_time.predict(model, x, mode, batch_size)
        loss = float(model.loss(y, outputs))
    probs = probabilities(outputs)
    pred = probs.argmax(axis=1)
    n_classes = probs.shape[1]
    cm = metrics.confusion_matrix(y, pred, n_classes)
    precision, recall = metrics.precision_recall(cm)
    return {
        "accuracy": float(np.mean(pred == y)),
        "loss": loss,
        "n": int(len(y)),
        "correct": int(np.sum(pred == y)),
        "confusion_matrix": cm,
        "precision": precision,
        "recall": recall,
        "probs": probs,
        "pred": pred,
        "tta": mode,
    }


def member_seeds(recipe: Recipe, seed: int) -> list[int]:
    """The seeds of the models ``train`` makes for ``seed``: ``N * seed + k`` for each of the recipe's
    ``N = ensemble`` models."""
    return [recipe.ensemble * seed + k for k in range(recipe.ensemble)]


def train_members(
    data: Dataset, recipe: Recipe, arch: str, test, seeds, verbose, dataset, callbacks, init, backup=None, kernels=None
) -> tuple[list, list, bool]:
    """The models of ``seeds`` trained one after another here: ``(members, histories, interrupted)``."""
    validation = None if test is None else (to_float(test.x), test.y)
    members, histories, interrupted = [], [], False
    for k, member_seed in enumerate(seeds):
        if recipe.ensemble > 1 and verbose:
            print(f"model {k + 1} of {recipe.ensemble} (seed {member_seed})")
        model, history, interrupted = fit_one(
            data,
            recipe,
            arch,
            validation,
            member_seed,
            verbose,
            dataset,
            callbacks,
            init,
            member=k,
            backup=backup,
            kernels=kernels,
        )
        if interrupted and members:
            break
        members.append(model)
        histories.append(history)
        if interrupted:
            break
    return members, histories, interrupted


def finish_training(
    members,
    histories,
    seeds,
    interrupted: bool,
    recipe: Recipe,
    data: Dataset,
    test,
    seed: int,
    seconds: float,
    evaluation: dict | None = None,
) -> TrainResult:
    """The :class:`TrainResult` of trained ``members`` (of ``seeds``, averaged when several), evaluated
    on ``test`` (or with the given ``evaluation`` of the single member), with ``metadata["trained"]``."""
    model, history = members[0], histories[0]
    if len(members) > 1:
        model, history = average_members(members, histories, recipe, data, seeds[: len(members)], test)
    result = TrainResult(model, history, seconds, interrupted, held_out=test)
    if test is not None:
        result.evaluation = (
            evaluation
            if evaluation is not None and len(members) == 1
            else evaluate(model, test.x, test.y, tta=recipe.tta)
        )
    model.metadata["trained"] = {
        "epochs": len(history.get("loss", [])),
        "seed": seed,
        "examples": len(data),
        "seconds": round(seconds, 1),
        "interrupted": interrupted,
    }
    if result.evaluation is not None:
        model.metadata["trained"]["held_out_accuracy"] = result.evaluation["accuracy"]
        # When to say "unsure": the temperature from the held-out pictures, features from the training ones.
        calibration.calibrate(model, data.x, data.y, test.x, test.y, f"held-out data ({len(test)} pictures)")
    return result


def fit_one(
    data: Dataset,
    recipe: Recipe,
    arch: str,
    validation,
    seed: int,
    verbose: int,
    dataset,
    callbacks,
    init,
    member: int = 0,
    backup=None,
    kernels=None,
) -> tuple[object, dict, bool]:
    """One model trained by ``recipe`` from ``seed`` (member ``member`` of an ensemble):
    ``(model, history, interrupted)``.

    With ``backup`` (a :class:`~.run_backup.RunBackup`), the model's backup is written after each
    epoch, and one found at the start is gone on from: the result is the uninterrupted run's, and a
    model whose backup has all its epochs is not trained again."""
    utils.set_random_seed(seed)
    steps = -(-len(data) // recipe.batch_size)
    model = build(arch, data.x.shape[1:], data.class_names, recipe, dataset, init, member)
    test_time.check_tta(recipe.tta, model.metadata)  # before training, not after it
    x = to_float(data.x)
    kept = None if backup is None else backup.member(seed)
    saved = None if kept is None else kept.read()
    done, history = 0, {}
    for index, (epochs, head_only) in enumerate(phases(recipe, init is not None)):
        if saved is not None and kept.phase_of(saved) > index:
            done += epochs  # finished before the backup was taken
            continue
        freeze_all_but_head(model, head_only)
        compile_for(model, recipe.learning_rate, epochs * steps, recipe.weight_decay, recipe.label_smoothing)
        start = done
        if saved is not None:
            history, start, saved = kept.restore(model, saved), saved.epoch, None
        phase_callbacks = list(callbacks or []) + ([] if kept is None else [kept.callback(index, history)])
        with warnings.catch_warnings():
            # fit warns on Ctrl-C; the caller reports the interruption in its own words.
            warnings.filterwarnings("ignore", message="fit interrupted")
            phase = model.fit(
                x,
                data.y,
                batch_size=recipe.batch_size,
                epochs=done + epochs,
                initial_epoch=start,
                verbose=verbose,
                validation_data=validation,
                callbacks=phase_callbacks,
                kernels=kernels,
            )
        for key, values in phase.history.items():
            history.setdefault(key, []).extend(values)
        done += epochs
        if model.stop_training:
            break
    interrupted = bool(model.stop_training) and len(history.get("loss", [])) < recipe.epochs
    return model, history, interrupted


def average_members(members, histories, recipe: Recipe, data: Dataset, seeds, test) -> tuple[object, dict]:
    """The members (of ``seeds``, one each) averaged into one compiled model with their metadata, and
    their mean history."""
    model = average_models(members, name=f"{members[0].name}_x{len(members)}")
    model.metadata = {
        **members[0].metadata,
        "ensemble": {
            "members": len(members),
            "seeds": list(seeds),
            "held_out_accuracy": None
            if test is None
            else [evaluate(m, test.x, test.y, tta=recipe.tta)["accuracy"] for m in members],
        },
    }
    compile_for(
        model,
        recipe.learning_rate,
        -(-len(data) // recipe.batch_size) * recipe.epochs,
        recipe.weight_decay,
        recipe.label_smoothing,
    )
    epochs = min(len(h.get("loss", [])) for h in histories)
    history = {
        key: [float(np.mean([h[key][e] for h in histories])) for e in range(epochs)]
        for key in histories[0]
        if all(key in h for h in histories)
    }
    return model, history
