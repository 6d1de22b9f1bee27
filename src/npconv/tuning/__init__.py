"""Recipe searches (``npconv tune``): k-fold CV of recipe variants over several seeds, every model a job.

>>> from npconv import tuning
>>> result = tuning.tune("signs", "runs/tune-signs", grids=["learning_rate=1e-3,2e-3", "epochs=32,48"],
...                      folds=5, seeds=3, jobs=2)                               # doctest: +SKIP
>>> result.best_variant.name, result.rows[result.best]["mean_accuracy"]        # doctest: +SKIP

:mod:`.grid` reads ``FIELD=V1,V2`` grids; :mod:`.data` picks the training images (never the held-out
ones); :mod:`.search` makes and runs the jobs (:mod:`npconv.jobs`); :mod:`.cache` keeps each finished
job by a hash of what it trains, so a stopped search resumes; :mod:`.scores` scores the variants and
writes ``results.json``, ``results.png`` and ``best_recipe.json``.
"""

from .data import TrainingData
from .grid import parse_grid, parse_grids
from .scores import SearchResult
from .search import Plan, Variant, plan, run, trained_recipe, tune

__all__ = [
    "Plan",
    "SearchResult",
    "TrainingData",
    "Variant",
    "parse_grid",
    "parse_grids",
    "plan",
    "run",
    "trained_recipe",
    "tune",
]
