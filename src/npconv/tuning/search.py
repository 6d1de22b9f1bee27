"""A recipe search: every variant x seed x fold (x ensemble member) one job, cached, then scored.

:func:`plan` checks everything a search needs before any training (the grids, every variant's
recipe, the data), loads the data and makes the jobs; :func:`run` trains those not in the cache
and scores the variants (:mod:`.scores`); :func:`tune` does both. Seeds: the folds are those of
seed 0, the same for every variant and seed, so variants are compared on the same images; seed
``s`` trains fold ``i`` from ``100 * s + i`` (an ensemble of N: its models from ``N * (100 * s + i) + k``,
as :func:`npconv.apps.training.train` does). A variant's recipe trains one model per job, without
test-time augmentation: its ``ensemble`` and ``tta`` are scored from those models' held-out
probabilities (mean log-probability over members, as an averaged model predicts; its TTA view).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..apps import recipes, registry
from ..apps.job_spec import Job, Part
from ..apps.job_work import run_training_jobs
from ..apps.run_backup import RunBackup
from ..data import kfold_indices
from ..errors import check_positive_int, expected
from ..jobs import runner_for
from .cache import JobCache, job_hash
from .data import TrainingData
from .grid import describe, parse_grids, variant_recipes

MAX_FOLDS = 100  # training seeds are 100 * seed + fold


@dataclass
class Variant:
    """One recipe of a search: ``changes`` to the base recipe, named ``name``."""

    name: str
    changes: dict
    recipe: recipes.Recipe


@dataclass
class Plan:
    """A search ready to run: its variants, its jobs and what the cache already holds."""

    variants: list[Variant]
    folds: int
    seeds: int
    out: Path
    data: TrainingData
    base: recipes.Recipe
    datasets: dict  # key -> Dataset, one per image size / colour mode / split
    sources: dict  # key -> DataSource, the same data read from disk by a worker
    described: dict  # key -> what the images are
    splits: dict  # key -> [(train_idx, test_idx), ...]
    jobs: list[Job]  # each distinct job once (keys are hashes)
    members: dict  # (variant, seed, fold) -> job keys of its models
    data_key: list[str]  # per variant, the key of its data
    cache: JobCache
    cached: dict = field(default_factory=dict)  # job key -> JobResult read from the cache

    @property
    def to_train(self) -> list[Job]:
        return [job for job in self.jobs if job.key not in self.cached]


def trained_recipe(recipe: recipes.Recipe) -> recipes.Recipe:
    """What each of a variant's jobs trains: one model, no test-time augmentation (scored apart)."""
    return dataclasses.replace(recipe, ensemble=1, tta=None)


def training_seed(seed: int, fold: int) -> int:
    return 100 * seed + fold


def _data_key(recipe) -> str:
    return f"{recipe.image_size}px-{recipe.color_mode}-split{recipe.val_split:g}"


def plan(
    data,
    out,
    grids=(),
    variants=None,
    folds: int = 5,
    seeds: int = 1,
    base: recipes.Recipe | None = None,
    arch: str | None = None,
    data_dir=None,
    views=(),
    limit: int | None = None,
) -> Plan:
    """Everything :func:`run` needs, checked before any training.

    ``data``: what ``npconv train DATA`` takes (a name, a path, ``builtin:...``; ``None``: the
    built-in faces) or a :class:`~.data.TrainingData`; ``grids``: ``["FIELD=V1,V2", ...]``
    (:mod:`.grid`), or ``variants``: ``[(name, {field: value}), ...]``; ``base``: the recipe they
    change (default: the data set's, with ``arch`` when given); ``views``: test-time augmentation
    modes whose held-out probabilities to keep besides those the variants' ``tta`` needs; ``out``:
    the search's folder (its cache in ``out/jobs``).
    """
    folds = check_positive_int(folds, "folds")
    if not 2 <= folds <= MAX_FOLDS:
        raise ValueError(expected("folds", f"2 to {MAX_FOLDS} folds", folds))
    seeds = check_positive_int(seeds, "seeds")
    data = data if isinstance(data, TrainingData) else TrainingData.named(data, data_dir, limit)
    base = base or recipes.recipe_for(data.name)
    if arch is not None:
        base = base.replace(arch=registry.check_arch(arch))
    if variants is None:
        variants = [(describe(changes), changes) for changes in parse_grids(grids)]
    names = [name for name, _ in variants]
    if len(set(names)) != len(names):
        raise ValueError(expected("variants", "a different name for each", names))
    chosen = [
        Variant(name, changes, recipe)
        for (name, changes), recipe in zip(variants, variant_recipes(base, [c for _, c in variants]))
    ]
    out = Path(out)
    search = Plan(chosen, folds, seeds, out, data, base, {}, {}, {}, {}, [], {}, [], JobCache(out / "jobs"))
    _make_jobs(search, set(views))
    return search


def _make_jobs(search: Plan, views: set) -> None:
    """Load each variant's data (once per size), split it, and make the jobs; read the cache."""
    fingerprints, by_key = {}, {}
    for v, variant in enumerate(search.variants):
        key = _data_key(variant.recipe)
        search.data_key.append(key)
        if key not in search.datasets:
            data, source, described = search.data.load(variant.recipe)
            search.datasets[key], search.sources[key], search.described[key] = data, source, described
            search.splits[key] = list(kfold_indices(data.y, search.folds, seed=0))
            fingerprints[key] = source.expected
        trained = trained_recipe(variant.recipe)
        job_views = tuple(sorted({"plain", *views, *([variant.recipe.tta] if variant.recipe.tta else [])}))
        for s in range(search.seeds):
            for i, (train_idx, test_idx) in enumerate(search.splits[key]):
                n = variant.recipe.ensemble
                members = [n * training_seed(s, i) + k for k in range(n)]
                keys = []
                for k, seed in enumerate(members):
                    job_key = job_hash(trained, trained.arch, fingerprints[key], train_idx, test_idx, seed)
                    keys.append(job_key)
                    label = f"{variant.name} seed {s} fold {i + 1}" + (f" model {k + 1}/{n}" if n > 1 else "")
                    job = by_key.get(job_key)
                    if job is None or not set(job_views) <= set(job.views):
                        views_needed = tuple(sorted(set(job_views) | set(job.views if job else ())))
                        by_key[job_key] = Job(
                            job_key,
                            trained,
                            trained.arch,
                            seed,
                            Part(key, train_idx),
                            Part(key, test_idx),
                            views=views_needed,
                            keep_model=False,
                            label=job.label if job else label,
                            dataset=search.data.name,
                            backup=RunBackup(search.cache.backup_folder(job_key)),
                        )
                search.members[(v, s, i)] = keys
    search.jobs = list(by_key.values())
    for job in search.jobs:
        result = search.cache.get(job.key, job.views)
        if result is not None:
            search.cached[job.key] = result


def run(search: Plan, runner=None, progress=None, share: str = "send"):
    """Train the jobs of ``search`` not in its cache (each result cached as it comes in), score every
    variant and write ``results.json``, ``results.png`` and ``best_recipe.json`` into ``search.out``
    (:mod:`.scores`); returns the :class:`~.scores.SearchResult`.

    ``share``: ``"send"`` the data to the workers, or ``"path"``: each worker reads it from the
    disk they share. Ctrl-C raises :class:`~npconv.jobs.JobsInterrupted` once the workers have
    stopped; the jobs finished so far stay cached, and the same search run again starts from them;
    a job stopped half-way (Ctrl-C, a kill) goes on from its last epoch's backup
    (:mod:`npconv.apps.run_backup`; its key covers everything it trains), to the same bits.
    """
    from .scores import score, write_results

    if share not in ("send", "path"):
        raise ValueError(expected("share", "'send' or 'path'", repr(share)))
    datasets = search.datasets if share == "send" else search.sources
    results = dict(search.cached)

    def keep(job, result):
        search.cache.put(result)
        results[job.key] = result
        if not result.interrupted:
            job.backup.remove()

    search.cache.backups.mkdir(parents=True, exist_ok=True)  # each job's own folder: when it backs up
    run_training_jobs(search.to_train, datasets, runner, progress, on_result=keep)
    if not any(search.cache.backups.iterdir()):  # every job cached (an interrupted one keeps its backup)
        search.cache.backups.rmdir()
    outcome = score(search, results)
    write_results(outcome)
    return outcome


def tune(
    data,
    out,
    grids=(),
    folds: int = 5,
    seeds: int = 1,
    jobs: int = 1,
    cluster=None,
    progress=None,
    threads: int | None = None,
    **options,
):
    """:func:`plan` then :func:`run` on ``jobs`` worker processes (``threads`` each) or a Dask
    ``cluster`` (:func:`npconv.jobs.runner_for`); ``options`` go to :func:`plan` (``base``, ``arch``,
    ``data_dir``, ``variants``, ``views``, ``limit``) and ``share`` to :func:`run`."""
    share = options.pop("share", "send")
    runner = runner_for(jobs, cluster, threads)  # a wrong --jobs/--cluster before any loading
    return run(plan(data, out, grids, folds=folds, seeds=seeds, **options), runner, progress, share)
