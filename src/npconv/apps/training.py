"""Train an app on a :class:`~npconv.data.Dataset`: build, compile, fit, evaluate; and k-fold CV.

The model remembers how to feed it (``model.metadata``): ``input_shape``, ``class_names``,
``value_scale`` (inputs are ``uint8 / 255``), the arch and the recipe it was trained with, and
``trained_with_flips`` (whether flip test-time augmentation suits it, see :mod:`.tta`), and with
held-out data its ``calibration`` (when to say "unsure", see :mod:`.calibration`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import __version__, losses, metrics, optimizers, utils
from ..data import Dataset, kfold_indices
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
    """What :func:`train` returns."""

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
    """The model ``arch`` for ``class_names``, with its metadata (compiled by :func:`train`).

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


def train(
    data: Dataset,
    recipe: Recipe,
    arch: str,
    test: Dataset | None = None,
    seed: int = 0,
    verbose: int = 1,
    dataset: str | None = None,
    callbacks=None,
    init: Pretrained | None = None,
    jobs: int = 1,
    cluster=None,
    progress=None,
    threads: int | None = None,
    backup=None,
    kernels=None,
) -> TrainResult:
    """Train ``arch`` on ``data`` with ``recipe``; evaluate on ``test`` when given; start from the
    pretrained model ``init`` when given.

    With ``recipe.ensemble = N > 1``, N models are trained with seeds ``N * seed, ..., N * seed + N - 1``
    (so runs of different ``seed`` share no model) and averaged into one
    (:func:`npconv.apps.ensemble.average_models`); the result's ``history`` is then the members' mean
    per epoch, and ``model.metadata["ensemble"]`` has each member's seed and held-out accuracy.
    With ``jobs`` > 1 or a ``cluster`` (see :func:`npconv.jobs.runner_for`; ``threads`` per worker,
    default ``cores // jobs``), the N models train at once in worker processes, each as it would
    here (``progress``: a :class:`npconv.jobs.Progress`, default tqdm bars when ``verbose``;
    ``callbacks`` must then be picklable, and run in the workers).

    Ctrl-C stops after the current batch: the result then has ``interrupted=True`` and the model as
    trained so far (for an ensemble, the members trained to the end, or the first one if none was).
    In worker processes, Ctrl-C stops them at once: the members that had finished are kept, and
    with none finished it raises ``KeyboardInterrupt``. ``backup`` (a
    :class:`~.run_backup.RunBackup`): each model keeps a backup there and goes on from it (:func:`fit_one`).

    ``kernels``: the learner's course functions (``Model.fit(kernels=...)``), for training here only.
    """
    from ..jobs import runner_for, runs_here

    start = time.perf_counter()
    seeds = member_seeds(recipe, seed)
    if runs_here(jobs, cluster) or (len(seeds) == 1 and cluster is None):
        members, histories, interrupted = train_members(
            data, recipe, arch, test, seeds, verbose, dataset, callbacks, init, backup, kernels
        )
    elif kernels is not None:
        raise ValueError("kernels: the learner's functions train in this process only; use jobs=1 and no cluster")
    else:
        from .training_jobs import train_members_as_jobs

        runner = runner_for(jobs, cluster, threads)
        members, histories, interrupted, seeds = train_members_as_jobs(
            data, recipe, arch, test, seeds, dataset, callbacks, init, runner, progress, verbose, backup
        )
    return finish_training(
        members, histories, seeds, interrupted, recipe, data, test, seed, time.perf_counter() - start
    )


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


def cross_validate(
    data: Dataset,
    k: int,
    recipe: Recipe,
    arch: str,
    seed: int = 0,
    verbose: int = 1,
    dataset: str | None = None,
    on_fold=None,
    init: Pretrained | None = None,
    callbacks=None,
    jobs: int = 1,
    cluster=None,
    progress=None,
    threads: int | None = None,
    backup=None,
) -> TrainResult:
    """Stratified ``k``-fold cross-validation, a fresh model per fold (trained by :func:`train` with
    seed ``seed + i`` for fold ``i``).

    Returns the best fold's result with ``folds`` holding every fold's ``accuracy``/``loss``/``n``;
    ``on_fold(i, result)`` is called after each fold. Stops early if a fold is interrupted.
    With ``jobs`` > 1 or a ``cluster`` (:func:`npconv.jobs.runner_for`; ``threads`` per worker),
    every fold (and every model of an ensemble recipe) trains at once in worker processes, each as
    it would here; ``on_fold`` is then called as folds finish, in any order. Ctrl-C stops the
    workers at once and keeps the folds that had finished (``KeyboardInterrupt`` when none had).
    """
    from ..jobs import runner_for, runs_here

    start = time.perf_counter()
    splits = list(kfold_indices(data.y, k, seed=seed))
    if runs_here(jobs, cluster):
        results, interrupted = [], False
        for i, (train_idx, test_idx) in enumerate(splits):
            result = train(
                data.subset(train_idx),
                recipe,
                arch,
                test=data.subset(test_idx),
                seed=seed + i,
                verbose=verbose,
                dataset=dataset,
                callbacks=callbacks,
                init=init,
                backup=backup,
            )
            results.append((i, result))
            if on_fold is not None:
                on_fold(i, result)
            if result.interrupted:
                interrupted = True
                break
    else:
        from .training_jobs import cross_validate_as_jobs

        results, interrupted = cross_validate_as_jobs(
            data,
            splits,
            recipe,
            arch,
            seed,
            dataset,
            on_fold,
            init,
            callbacks,
            runner_for(jobs, cluster, threads),
            progress,
            verbose,
            backup,
        )
    return best_fold(results, k, interrupted, time.perf_counter() - start)


def best_fold(results, k: int, interrupted: bool, seconds: float) -> TrainResult:
    """The result of the best of the folds ``results`` (pairs ``(i, result)`` of fold ``i``; the first
    in fold order among equals), with every fold's figures in ``folds`` and its model's metadata
    ``cross_validation``."""
    results = sorted(results, key=lambda pair: pair[0])
    folds, best = [], None
    for i, result in results:
        ev = result.evaluation
        folds.append(
            {
                "fold": i + 1,
                "accuracy": ev["accuracy"],
                "loss": ev["loss"],
                "n": ev["n"],
                "correct": ev["correct"],
                "seconds": round(result.seconds, 1),
            }
        )
        if best is None or ev["accuracy"] > best[1].evaluation["accuracy"]:
            best = (i, result)
    saved_fold, best = best
    best.interrupted = best.interrupted or interrupted
    best.folds = folds
    best.seconds = seconds
    accuracies = [f["accuracy"] for f in folds]
    best.model.metadata["cross_validation"] = {
        "k": k,
        "folds": folds,
        "mean_accuracy": float(np.mean(accuracies)),
        "std_accuracy": float(np.std(accuracies)),
        "saved_fold": saved_fold + 1,
    }
    return best
