"""``npconv evaluate MODEL DATA``: accuracy, loss, per-class precision and recall, confusion matrix."""

from __future__ import annotations

import json
import warnings

from ._shared import add_tta, load_model, table

HELP_ORDER = 20


def add_parser(commands, common) -> None:
    evaluate = commands.add_parser("evaluate", parents=[common], help="accuracy, loss, per-class table")
    evaluate.add_argument("model", metavar="MODEL")
    evaluate.add_argument("data", metavar="DATA")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    add_tta(evaluate)
    evaluate.set_defaults(func=run)


def _load_for_model(source: str, meta: dict, data_dir):
    """``source`` prepared as the model's input, its labels renumbered to the model's classes."""
    from ..apps import datasets

    resolved = datasets.resolve(source, data_dir, prefer_test=True)
    data = datasets.load_for_input(resolved, meta["input_shape"], data_dir)
    data.y = datasets.match_classes(data.class_names, meta["class_names"])[data.y]
    if len(data.class_names) != len(meta["class_names"]):
        warnings.warn(
            f"{source} has {len(data.class_names)} classes ({', '.join(map(str, data.class_names))}) "
            f"and the model {len(meta['class_names'])} ({', '.join(map(str, meta['class_names']))}): "
            "the figures below say how the model does on data it was not made for. Evaluate on "
            "data with the model's classes.",
            stacklevel=1,
        )
    return data


def run(args) -> int:
    from ..apps import training
    from ..apps.model_info import metadata
    from ..report import jsonable

    model = load_model(args.model)
    meta = metadata(model)
    data = _load_for_model(args.data, meta, args.data_dir)
    result = jsonable(training.evaluate(model, data.x, data.y, tta=args.tta), meta["class_names"])
    cv = meta.get("cross_validation")
    if cv:
        result["cross_validation"] = {k: cv[k] for k in ("k", "mean_accuracy", "std_accuracy", "saved_fold")}
    if args.json:
        print(json.dumps(result))
        return 0
    if cv:  # the figure to quote first: the saved fold was picked by its own score
        print(
            f"model: {cv['k']}-fold cross-validated accuracy {cv['mean_accuracy']:.3f} ± {cv['std_accuracy']:.3f} "
            f"(the saved model is fold {cv['saved_fold']}'s, the best by its own score)"
        )
    views = f" (test-time augmentation: {args.tta})" if args.tta else ""
    print(
        f"{args.data}: accuracy {result['accuracy']:.4f} ({result['correct']}/{result['n']}), "
        f"loss {result['loss']:.4f}{views}"
    )
    rows = [(n, f"{v['precision']:.3f}", f"{v['recall']:.3f}", v["support"]) for n, v in result["per_class"].items()]
    print()
    print(table(rows, ("class", "precision", "recall", "support")))
    names = meta["class_names"]
    cm = result["confusion_matrix"]
    print("\nconfusion matrix (rows: true, columns: predicted)")
    print(table([(n, *row) for n, row in zip(names, cm)], ("", *names)))
    return 0
