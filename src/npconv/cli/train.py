"""``npconv train [DATA] --out MODEL``: train on a data set, save the model and a report folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._shared import (
    PROG,
    add_job_options,
    add_tta,
    count,
    duration,
    folds,
    fraction,
    job_runner,
    non_negative,
    positive,
    positive_float,
    say,
    unit,
)
from ._training_setup import check_kernels_options, prepare_training, subset

HELP_ORDER = 10


def add_parser(commands, common) -> None:
    from ..apps.registry import list_archs

    train = commands.add_parser(
        "train",
        parents=[common],
        help="train a model on a data set",
        description="Train a model. DATA: a course .h5 file, an image folder (one "
        "sub-folder per class), a name in the data directory (signs, happy, smiles, "
        "sign-language-digits) or builtin:smiles (the default).",
    )
    train.add_argument("data", nargs="?", metavar="DATA")
    train.add_argument("--out", default="model.npz", metavar="MODEL", help="model file (default model.npz)")
    train.add_argument("--arch", help=f"network: {', '.join(list_archs())} (default from the recipe)")
    train.add_argument("--epochs", type=positive)
    train.add_argument("--batch-size", type=positive)
    train.add_argument("--lr", type=positive_float, help="initial learning rate (Adam, cosine decay)")
    train.add_argument("--image-size", type=positive, help="train on N x N images")
    train.add_argument("--val-split", type=fraction, help="held-out fraction when there is no test file")
    train.add_argument("--folds", type=folds, help="K-fold cross-validation (K >= 2)")
    train.add_argument("--weight-decay", type=non_negative, help="decoupled weight decay (AdamW)")
    train.add_argument("--label-smoothing", type=unit, help="label smoothing of the loss's targets")
    train.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        help="random left-right flips while training, or not (default from the recipe: off for SIGNS; smallres)",
    )
    train.add_argument("--zoom", type=unit, help="random zoom in/out up to this fraction (smallres)")
    train.add_argument("--contrast", type=unit, help="random contrast factor in [1-C, 1+C] (smallres)")
    # train takes an optional DATA positional, which a bare --tta would swallow: it needs the MODE.
    add_tta(train, optional_mode=False)
    train.add_argument(
        "--ensemble",
        type=positive,
        metavar="N",
        help="train N models (seeds N*SEED .. N*SEED+N-1) and average them into one model "
        "file: N times the training time (default from the recipe)",
    )
    train.add_argument(
        "--init",
        metavar="MODEL",
        help="start from a trained model (transfer learning): "
        "its arch, input size and weights, with the fine-tuning recipe",
    )
    train.add_argument(
        "--frozen-epochs", type=count, metavar="N", help="with --init: first N epochs train only the output layer"
    )
    train.add_argument(
        "--recipe",
        metavar="FILE",
        help="train with the recipe in FILE (npconv tune writes "
        "DIR/best_recipe.json); flags given beside it override its fields",
    )
    add_job_options(train)
    train.add_argument(
        "--kernels",
        metavar="FILE",
        help="train through your own conv_forward, conv_backward, "
        "pool_forward and pool_backward (a .py file, or a module such as npconv.course): slowly, "
        "on --examples images",
    )
    train.add_argument(
        "--examples",
        type=positive,
        metavar="N",
        help="train on N images of the data (a stratified subset; default 64 with --kernels)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--report", metavar="DIR", help="report folder (default: MODEL_report/)")
    train.add_argument("--no-report", action="store_true", help="write no report folder")
    train.add_argument(
        "--restart",
        action="store_true",
        help="throw away the backup of an unfinished run "
        "(MODEL.backup/) and start afresh; without it, the same command goes on from its backup",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=run)


def _bars(args, runner):
    """Progress bars for jobs on workers (one line per running job under the overall count), or
    ``None`` when the trainings run here with their own epoch bars, or quietly."""
    from ..jobs import InProcess

    if args.quiet or isinstance(runner, InProcess):
        return None
    from ..jobs import Bars

    return Bars()


def _report_folder(args) -> Path:
    if args.report:
        return Path(args.report)
    out = Path(args.out)
    return out.with_name((out.stem if out.suffix == ".npz" else out.name) + "_report")


def run(args) -> int:
    from ..apps import training
    from ..data import train_val_split
    from ..report import write_report

    out = Path(args.out)
    if out.is_dir():
        raise IsADirectoryError(
            f"--out: expected a model file name, got the folder {out}. Try --out {out / 'model.npz'}."
        )
    runner = job_runner(args)  # a wrong --jobs/--cluster/--threads before any slow loading
    check_kernels_options(args)
    source, name, recipe, arch, data, test, test_file, init = prepare_training(args)
    examples = args.examples or (64 if args.kernels else None)
    if examples is not None:
        data = subset(data, examples, args.seed)
        test = None if test is None else subset(test, examples, args.seed)
    out.parent.mkdir(parents=True, exist_ok=True)  # only once the data has loaded
    backup = _open_backup(args, out, data, test, recipe, arch, init)
    verbose = 0 if args.quiet else 1
    say(args, f"data: {source} ({len(data)} images, {len(data.class_names)} classes: {', '.join(data.class_names)})")
    say(
        args,
        f"arch {arch}, {recipe.epochs} epochs, batch {recipe.batch_size}, lr {recipe.learning_rate:g} "
        f"(cosine), images {recipe.image_size}x{recipe.image_size} {recipe.color_mode}"
        + (f"; {recipe.ensemble} models averaged" if recipe.ensemble > 1 else ""),
    )
    if init is not None:
        say(
            args,
            f"starting from {init.path} ({init.arch}, trained on {init.meta.get('dataset')}); "
            f"{recipe.frozen_epochs} epoch(s) with only the output layer training, then all layers",
        )

    bars = _bars(args, runner)
    jobs = {"jobs": args.jobs, "cluster": args.cluster, "threads": args.threads, "progress": bars, "backup": backup}
    if args.folds:

        def on_fold(i, result):
            ev = result.evaluation
            line = (
                f"fold {i + 1}/{args.folds}: accuracy {ev['accuracy']:.3f} "
                f"({ev['correct']}/{ev['n']}) in {duration(result.seconds)}"
            )
            bars.write(line) if bars is not None else say(args, line)

        result = training.cross_validate(
            data,
            args.folds,
            recipe,
            arch,
            seed=args.seed,
            verbose=verbose,
            dataset=name,
            on_fold=on_fold,
            init=init,
            **jobs,
        )
        cv = result.model.metadata["cross_validation"]
        held_out, detail = result.evaluation, f"fold {cv['saved_fold']} of {args.folds} (the best)"
        label = f"held-out (fold {cv['saved_fold']})"
        summary = (
            f"{args.folds}-fold cross-validation accuracy {cv['mean_accuracy']:.3f} ± "
            f"{cv['std_accuracy']:.3f} ({len(cv['folds'])} folds) in {duration(result.seconds)}"
        )
        train_part = data
    else:
        if test is None:
            train_part, test = train_val_split(data, recipe.val_split, seed=args.seed)
            label, detail = "validation", f"{recipe.val_split:.0%} of the data held out (stratified)"
        else:
            train_part, label, detail = data, "test", str(test_file)
        result = training.train(
            train_part,
            recipe,
            arch,
            test=test,
            seed=args.seed,
            verbose=verbose,
            dataset=name,
            init=init,
            kernels=args.kernels,
            **jobs,
        )
        held_out = result.evaluation
        views = f" with test-time augmentation ({recipe.tta})" if recipe.tta else ""
        summary = (
            f"{label} accuracy {held_out['accuracy']:.3f} "
            f"({held_out['correct']}/{held_out['n']}){views} in {duration(result.seconds)}"
        )
        alone = result.model.metadata.get("ensemble", {}).get("held_out_accuracy")
        if alone:
            summary += f" (the {len(alone)} models alone: {', '.join(f'{a:.3f}' for a in alone)})"

    result.model.save(out)
    if result.interrupted and args.folds and len(result.folds) < args.folds:
        print(
            f"{PROG}: interrupted: {len(result.folds)} of {args.folds} folds finished; the best of them "
            f"was saved to {out}",
            file=sys.stderr,
        )
    elif result.interrupted:
        epochs_done = len(result.history.get("loss", []))
        print(
            f"{PROG}: interrupted after {epochs_done} of {recipe.epochs} epochs; "
            f"the model trained so far was saved to {out}",
            file=sys.stderr,
        )
    report = None
    if not args.no_report:
        report = write_report(
            _report_folder(args),
            result.model,
            result.history,
            train_part,
            result.held_out,
            held_out,
            extra={
                "summary": summary,
                "held_out_set": detail,
                "source": source,
                "arch": arch,
                "recipe": vars(recipe),
                "cross_validation": result.model.metadata.get("cross_validation"),
            },
            test_name=label,
        )
    tail = f", model saved to {out}" + (f", report in {report}" if report else "")
    print(summary + tail)
    if args.kernels:
        from ..trace.speed import slowdown

        batch = slice(0, recipe.batch_size)
        print(slowdown(result.model, training.to_float(train_part.x[batch]), train_part.y[batch], args.kernels))
    if result.interrupted:
        print(
            f"{PROG}: the backup in {backup.folder} keeps every finished epoch: run the same command "
            "again to go on from it",
            file=sys.stderr,
        )
        return 130
    backup.remove()
    return 0


def _open_backup(args, out: Path, data, test, recipe, arch: str, init):
    """The run's backup folder (:mod:`npconv.apps.run_backup`), saying when the run goes on from it."""
    from ..apps.fitting import member_seeds
    from ..apps.run_backup import RunBackup, backup_folder, run_identity

    identity = run_identity(data, test, recipe, arch, args.seed, args.folds, init)
    backup = RunBackup.open(backup_folder(out), identity, restart=args.restart)
    seeds = [s for i in range(args.folds or 1) for s in member_seeds(recipe, args.seed + i)]
    done = backup.epochs_done(seeds)
    if sum(done):
        models = f" ({sum(d == recipe.epochs for d in done)} of {len(seeds)} models finished)" if len(seeds) > 1 else ""
        print(
            f"resuming from epoch {sum(done)} of {recipe.epochs * len(seeds)}{models}, backup in "
            f"{backup.folder} (--restart to start afresh)"
        )
    return backup
