"""``npconv tune [DATA] --grid FIELD=V1,V2 ... --out DIR``: choose a recipe by cross-validation.

Every variant (the product of the grids) x seed x fold is one training job, on the training data
only; finished jobs are cached in ``DIR/jobs`` and a job stopped half-way keeps a backup of its last
epoch in ``DIR/backups``, so the same command resumes a stopped search. Writes
``DIR/results.json``, ``DIR/results.png`` and ``DIR/best_recipe.json`` (``npconv train --recipe``).
"""

from __future__ import annotations

import sys

from ._shared import PROG, add_job_options, folds, job_runner, positive, say, table

HELP_ORDER = 15


def add_parser(commands, common) -> None:
    from ..apps.recipe_fields import describe_fields
    from ..apps.registry import list_archs

    tune = commands.add_parser(
        "tune",
        parents=[common],
        help="choose recipe fields by cross-validation on the training data",
        description="Train every variant of a recipe (the product of the --grid values) with K-fold "
        "cross-validation of the training data, for each seed, and write the scores and the best recipe. "
        f"FIELD is any recipe field: {describe_fields()}.",
    )
    tune.add_argument(
        "data", nargs="?", metavar="DATA", help="as for npconv train (default: the built-in synthetic faces)"
    )
    tune.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="values to try for a recipe field (repeat for more fields); widths as 16-32-64",
    )
    tune.add_argument("--folds", type=folds, default=5, help="K-fold cross-validation (default 5)")
    tune.add_argument("--seeds", type=positive, default=1, help="training seeds per variant and fold (default 1)")
    tune.add_argument("--arch", help=f"network for every variant: {', '.join(list_archs())} (default: the recipe's)")
    tune.add_argument(
        "--share",
        choices=("send", "path"),
        default="send",
        help="send the data to the workers (default), or let them read it from a shared disk",
    )
    tune.add_argument("--out", required=True, metavar="DIR", help="the search's folder (results and cache)")
    add_job_options(tune)
    tune.add_argument("--quiet", action="store_true", help="no progress bars")
    tune.set_defaults(func=run)


def run(args) -> int:
    from .. import tuning
    from ..jobs import Bars, JobsInterrupted

    if not args.grid:
        raise ValueError(
            "--grid: expected at least one FIELD=V1,V2 (e.g. --grid epochs=24,36), got none. "
            "The fields: see npconv tune --help."
        )
    runner = job_runner(args)  # before any loading
    search = tuning.plan(
        args.data, args.out, args.grid, folds=args.folds, seeds=args.seeds, arch=args.arch, data_dir=args.data_dir
    )
    say(
        args,
        f"{len(search.variants)} variants x {args.seeds} seed(s) x {args.folds} folds: {len(search.jobs)} "
        f"jobs, {len(search.cached)} already in {search.cache.folder}",
    )
    try:
        result = tuning.run(search, runner, None if args.quiet else Bars(), share=args.share)
    except JobsInterrupted as stop:
        print(
            f"{PROG}: interrupted: {len(search.cached) + len(stop.results)} of {len(search.jobs)} jobs kept "
            f"in {search.cache.folder}; run the same command to resume",
            file=sys.stderr,
        )
        return 130
    rows = [
        [
            row["variant"],
            f"{row['mean_accuracy']:.4f}",
            f"{row['std_accuracy']:.4f}",
            ", ".join(str(s["errors"]) for s in row["seeds"]),
        ]
        for row in result.rows
    ]
    print(table(rows, ["variant", "mean fold accuracy", "std", "errors per seed"]))
    best = result.rows[result.best]["variant"]
    train = " ".join(filter(None, ["npconv train", args.data, f"--recipe {args.out}/best_recipe.json"]))
    print(f"best: {best}; wrote {args.out}/results.json, results.png and best_recipe.json ({train})")
    return 0
