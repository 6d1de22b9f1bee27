"""Train an app on a :class:`~npconv.data.Dataset`: build, compile, fit, evaluate (the one-model
steps are :mod:`.fitting`'s); its ensemble members and k-fold CV, here or as jobs (:mod:`.training_jobs`).

The model remembers how to feed it (``model.metadata``): ``input_shape``, ``class_names``,
``value_scale`` (inputs are ``uint8 / 255``), the arch and the recipe it was trained with, and
``trained_with_flips`` (whether flip test-time augmentation suits it, see :mod:`.tta`), and with
held-out data its ``calibration`` (when to say "unsure", see :mod:`.calibration`).
"""

from __future__ import annotations

import time

import numpy as np

from ..data import Dataset, kfold_indices
from ..jobs import runner_for, runs_here
from .datasets import to_float
from .fitting import (
    VALUE_SCALE,
    TrainResult,
    build,
    compile_for,
    evaluate,
    finish_training,
    member_seeds,
    phases,
    train_members,
)
from .recipes import Recipe
from .training_jobs import cross_validate_as_jobs, train_members_as_jobs
from .transfer import Pretrained

# The one-model pieces live in .fitting; these are importable from here too, as they always were.
__all__ = [
    "VALUE_SCALE",
    "TrainResult",
    "best_fold",
    "build",
    "compile_for",
    "cross_validate",
    "evaluate",
    "phases",
    "to_float",
    "train",
]


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
    :class:`~.run_backup.RunBackup`): each model keeps a backup there and goes on from it (:func:`~.fitting.fit_one`).

    ``kernels``: the learner's course functions (``Model.fit(kernels=...)``), for training here only.
    """
    start = time.perf_counter()
    seeds = member_seeds(recipe, seed)
    if runs_here(jobs, cluster) or (len(seeds) == 1 and cluster is None):
        members, histories, interrupted = train_members(
            data, recipe, arch, test, seeds, verbose, dataset, callbacks, init, backup, kernels
        )
    elif kernels is not None:
        raise ValueError("kernels: the learner's functions train in this process only; use jobs=1 and no cluster")
    else:
        runner = runner_for(jobs, cluster, threads)
        members, histories, interrupted, seeds = train_members_as_jobs(
            data, recipe, arch, test, seeds, dataset, callbacks, init, runner, progress, verbose, backup
        )
    return finish_training(
        members, histories, seeds, interrupted, recipe, data, test, seed, time.perf_counter() - start
    )


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
