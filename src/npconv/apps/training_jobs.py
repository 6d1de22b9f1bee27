"""Folds and ensemble members as jobs (:mod:`npconv.jobs`): what :func:`~.training.train` and
:func:`~.training.cross_validate` run when given ``jobs`` > 1 or a ``cluster``.

Each model is one job: :func:`~.fitting.fit_one` with the seed it would have here (fold ``i``:
``seed + i``; member ``k`` of ``N``: ``N * seed + k``), on the examples it would see here. The
client then does what it does after training here: loads the models from their bytes, averages an
ensemble's members (:func:`~.fitting.finish_training`) and picks the best fold
(:func:`~.training.best_fold`), so the result and the saved model are those of the one-process run.
"""

from __future__ import annotations

from ..jobs import Bars, JobsInterrupted
from ..models import load_model
from .fitting import finish_training, member_seeds
from .job_spec import Job, Part
from .job_work import run_training_jobs


def _progress(progress, verbose: int):
    return progress if progress is not None else (Bars() if verbose else None)


def member_jobs(
    key: str,
    label: str,
    recipe,
    arch: str,
    seeds,
    train: Part,
    test: Part | None,
    dataset,
    init,
    callbacks,
    backup=None,
) -> list[Job]:
    """One job per model of ``seeds`` (member ``k`` has ``seeds[k]``), keyed ``key-model{k+1}`` when
    there are several; only a lone model is evaluated in its worker (an ensemble's average is
    evaluated by the client)."""
    several = len(seeds) > 1
    return [
        Job(
            key=f"{key}-model{k + 1}" if several else key,
            recipe=recipe,
            arch=arch,
            seed=s,
            train=train,
            test=test,
            member=k,
            dataset=dataset,
            init=init,
            callbacks=tuple(callbacks or ()),
            evaluate=not several,
            backup=backup,
            label=f"{label} model {k + 1}/{len(seeds)} (seed {s})".strip()
            if several
            else f"{label} (seed {s})".strip(),
        )
        for k, s in enumerate(seeds)
    ]


def _members(jobs, results) -> tuple[list, list, list, list]:
    """``(models, histories, seeds, results)`` of the jobs that finished, in member order."""
    done = [(job, results[job.key]) for job in jobs if job.key in results]
    return (
        [load_model(r.model) for _, r in done],
        [r.history for _, r in done],
        [job.seed for job, _ in done],
        [r for _, r in done],
    )


def train_members_as_jobs(
    data, recipe, arch, test, seeds, dataset, callbacks, init, runner, progress, verbose, backup=None
) -> tuple[list, list, bool, list]:
    """The models of ``seeds`` trained as jobs: ``(members, histories, interrupted, their seeds)``."""
    work = member_jobs(
        "train",
        "",
        recipe,
        arch,
        seeds,
        Part("train"),
        None if test is None else Part("test"),
        dataset,
        init,
        callbacks,
        backup,
    )
    datasets = {"train": data} if test is None else {"train": data, "test": test}
    interrupted = False
    try:
        results = run_training_jobs(work, datasets, runner, _progress(progress, verbose))
    except JobsInterrupted as stopped:
        if not stopped.results:
            raise
        results, interrupted = stopped.results, True
    members, histories, member_seeds, _ = _members(work, results)
    return members, histories, interrupted, member_seeds


def cross_validate_as_jobs(
    data, splits, recipe, arch, seed, dataset, on_fold, init, callbacks, runner, progress, verbose, backup=None
) -> tuple[list, bool]:
    """Every fold's models as jobs: ``([(i, TrainResult of fold i), ...], interrupted)``; a fold's
    result is made (and ``on_fold`` called) as soon as its last model is in."""
    k = len(splits)
    folds = {}
    for i, (train_idx, test_idx) in enumerate(splits):
        folds[i] = member_jobs(
            f"fold{i + 1}",
            f"fold {i + 1}/{k}",
            recipe,
            arch,
            member_seeds(recipe, seed + i),
            Part("data", train_idx),
            Part("data", test_idx),
            dataset,
            init,
            callbacks,
            backup,
        )
    fold_of = {job.key: i for i, work in folds.items() for job in work}
    results, finished = {}, []

    def fold_done(job, result):
        results[job.key] = result
        i = fold_of[job.key]
        if all(j.key in results for j in folds[i]):
            train_idx, test_idx = splits[i]
            members, histories, seeds, done = _members(folds[i], results)
            fold = finish_training(
                members,
                histories,
                seeds,
                any(r.interrupted for r in done),
                recipe,
                data.subset(train_idx),
                data.subset(test_idx),
                seed + i,
                sum(r.seconds for r in done),
                evaluation=done[0].evaluation,
            )
            finished.append((i, fold))
            if on_fold is not None:
                on_fold(i, fold)

    work = [job for i in sorted(folds) for job in folds[i]]
    try:
        run_training_jobs(work, {"data": data}, runner, _progress(progress, verbose), on_result=fold_done)
    except JobsInterrupted:
        if not finished:
            raise
        return finished, True
    return finished, False
