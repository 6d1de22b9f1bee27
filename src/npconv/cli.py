"""The ``npconv`` command: train, evaluate, predict, summary, export, data, serve.

    npconv train signs --out signs.npz          # NPCONV_DATA=/path/to/datasets
    npconv evaluate signs.npz test_signs.h5 --json
    npconv predict signs.npz photo.jpg
    npconv summary signs.npz
    npconv export signs.npz signs.onnx          # needs pip install 'npconv[onnx]'
    npconv data
    npconv serve signs.npz                      # a web page on http://127.0.0.1:8000

Every failure is one line on stderr, ``npconv: error: ...``, and exit status 1 (2 for usage
errors); ``--debug`` shows the traceback. Output cut short by a closed pipe (``| head``) ends
quietly with status 141, as a command killed by SIGPIPE does.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings
from pathlib import Path

from . import __version__

PROG = "npconv"


# ----------------------------------------------------------------------------- output helpers

def _say(args, text: str = "") -> None:
    if not getattr(args, "quiet", False):
        print(text)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _table(rows, header) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header] + rows]
    return "\n".join([lines[0], "-" * len(lines[0])] + lines[1:])


def _load_model(path):
    from .models import load_model
    if not Path(path).is_file():
        raise FileNotFoundError(f"MODEL: expected a model file saved by npconv, got {path} (no such file). "
                                "Train one first: npconv train DATA --out MODEL.")
    return load_model(path)


# ----------------------------------------------------------------------------- train

def _prepare_training(args):
    from .apps import datasets, recipes, registry
    from .apps.transfer import Pretrained
    if args.arch is not None:
        registry.check_arch(args.arch)  # before any slow loading
    init = None if args.init is None else Pretrained.load(args.init)
    if init is not None and args.arch is not None and registry.check_arch(args.arch) != init.arch:
        raise ValueError(f"--arch {args.arch}: a model started from {args.init} keeps its arch "
                         f"({init.arch}). Leave out --arch, or train from scratch without --init.")
    source = datasets.resolve(args.data, args.data_dir)
    if args.data is None:
        print(f"No DATA given: training on the built-in synthetic faces ({source}). "
              "For real data: NPCONV_DATA=/path/to/datasets npconv train signs")
    name = datasets.dataset_name(source)
    recipe = recipes.recipe_for(recipes.FINE_TUNE if init else name)
    if init is not None:
        if args.image_size is not None:
            raise ValueError(f"--image-size: a model started from {args.init} takes its input size "
                             f"({init.meta['input_shape'][0]} px). Leave out --image-size.")
        recipe = init.adapt(recipe)
    if args.frozen_epochs is not None and init is None:
        raise ValueError("--frozen-epochs: only a model started from another (--init MODEL) has layers to "
                         "keep frozen. Add --init MODEL, or leave out --frozen-epochs.")
    recipe = recipe.replace(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                            frozen_epochs=args.frozen_epochs,
                            image_size=args.image_size, val_split=args.val_split,
                            weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
                            zoom=args.zoom, contrast=args.contrast, tta=args.tta, flip=args.flip,
                            ensemble=args.ensemble)
    if init is not None and init.members > 1 and recipe.ensemble > init.members:
        raise ValueError(f"--ensemble {recipe.ensemble}: {args.init} averages {init.members} models, and each "
                         f"model fine-tuned starts from one of them. Use --ensemble {init.members} or fewer.")
    arch = registry.check_arch(args.arch or recipe.arch)
    _check_augmentation_options(args, arch)
    recipe = recipe.replace(arch=arch)
    data = datasets.load(source, recipe.image_size, recipe.color_mode, args.data_dir)
    test_file = None if args.folds else datasets.paired_test_file(source)
    test = None
    if test_file is not None:
        test = datasets.load(str(test_file), recipe.image_size, recipe.color_mode, args.data_dir)
        datasets.match_classes(test.class_names, data.class_names)  # same classes, or a clear error
    return source, name, recipe, arch, data, test, test_file, init


def _check_augmentation_options(args, arch: str) -> None:
    """Augmentation flags the arch has no layers for would be ignored: refuse them instead."""
    from .apps.registry import arch_options
    given = [flag for flag, value, option in (("--flip/--no-flip", args.flip, "flip"), ("--zoom", args.zoom, "zoom"),
                                              ("--contrast", args.contrast, "contrast"))
             if value is not None and option not in arch_options(arch)]
    if given:
        raise ValueError(f"{', '.join(given)}: arch {arch} has no augmentation layers to set. Use --arch smallres, "
                         "or leave the option out.")


def _report_folder(args) -> Path:
    if args.report:
        return Path(args.report)
    out = Path(args.out)
    return out.with_name((out.stem if out.suffix == ".npz" else out.name) + "_report")


def cmd_train(args) -> int:
    from .apps import training
    from .data import train_val_split
    from .report import write_report

    out = Path(args.out)
    if out.is_dir():
        raise IsADirectoryError(f"--out: expected a model file name, got the folder {out}. "
                                f"Try --out {out / 'model.npz'}.")
    source, name, recipe, arch, data, test, test_file, init = _prepare_training(args)
    out.parent.mkdir(parents=True, exist_ok=True)  # only once the data has loaded
    verbose = 0 if args.quiet else 1
    _say(args, f"data: {source} ({len(data)} images, {len(data.class_names)} classes: "
               f"{', '.join(data.class_names)})")
    _say(args, f"arch {arch}, {recipe.epochs} epochs, batch {recipe.batch_size}, lr {recipe.learning_rate:g} "
               f"(cosine), images {recipe.image_size}x{recipe.image_size} {recipe.color_mode}"
               + (f"; {recipe.ensemble} models averaged" if recipe.ensemble > 1 else ""))
    if init is not None:
        _say(args, f"starting from {init.path} ({init.arch}, trained on {init.meta.get('dataset')}); "
                   f"{recipe.frozen_epochs} epoch(s) with only the output layer training, then all layers")

    if args.folds:
        def on_fold(i, result):
            ev = result.evaluation
            _say(args, f"fold {i + 1}/{args.folds}: accuracy {ev['accuracy']:.3f} "
                       f"({ev['correct']}/{ev['n']}) in {_duration(result.seconds)}")
        result = training.cross_validate(data, args.folds, recipe, arch, seed=args.seed, verbose=verbose,
                                         dataset=name, on_fold=on_fold, init=init)
        cv = result.model.metadata["cross_validation"]
        held_out, detail = result.evaluation, f"fold {cv['saved_fold']} of {args.folds} (the best)"
        summary = (f"{args.folds}-fold cross-validation accuracy {cv['mean_accuracy']:.3f} ± "
                   f"{cv['std_accuracy']:.3f} ({len(cv['folds'])} folds) in {_duration(result.seconds)}")
        train_part = data
    else:
        if test is None:
            train_part, test = train_val_split(data, recipe.val_split, seed=args.seed)
            label, detail = "validation", f"{recipe.val_split:.0%} of the data held out (stratified)"
        else:
            train_part, label, detail = data, "test", str(test_file)
        result = training.train(train_part, recipe, arch, test=test, seed=args.seed, verbose=verbose,
                                dataset=name, init=init)
        held_out = result.evaluation
        views = f" with test-time augmentation ({recipe.tta})" if recipe.tta else ""
        summary = (f"{label} accuracy {held_out['accuracy']:.3f} "
                   f"({held_out['correct']}/{held_out['n']}){views} in {_duration(result.seconds)}")
        alone = result.model.metadata.get("ensemble", {}).get("held_out_accuracy")
        if alone:
            summary += f" (the {len(alone)} models alone: {', '.join(f'{a:.3f}' for a in alone)})"

    result.model.save(out)
    if result.interrupted:
        epochs_done = len(result.history.get("loss", []))
        print(f"{PROG}: interrupted after {epochs_done} of {recipe.epochs} epochs; "
              f"the model trained so far was saved to {out}", file=sys.stderr)
    report = None
    if not args.no_report:
        report = write_report(_report_folder(args), result.model, result.history, train_part,
                              result.held_out, held_out,
                              extra={"summary": summary, "held_out_set": detail, "source": source,
                                     "arch": arch, "recipe": vars(recipe),
                                     "cross_validation": result.model.metadata.get("cross_validation")})
    tail = f", model saved to {out}" + (f", report in {report}" if report else "")
    print(summary + tail)
    return 130 if result.interrupted else 0


# ----------------------------------------------------------------------------- evaluate / predict

def _load_for_model(source: str, meta: dict, data_dir):
    from .apps import datasets
    resolved = datasets.resolve(source, data_dir, prefer_test=True)
    data = datasets.load_for_input(resolved, meta["input_shape"], data_dir)
    data.y = datasets.match_classes(data.class_names, meta["class_names"])[data.y]
    if len(data.class_names) != len(meta["class_names"]):
        warnings.warn(f"{source} has {len(data.class_names)} classes ({', '.join(map(str, data.class_names))}) "
                      f"and the model {len(meta['class_names'])} ({', '.join(map(str, meta['class_names']))}): "
                      "the figures below say how the model does on data it was not made for. Evaluate on "
                      "data with the model's classes.")
    return data


def cmd_evaluate(args) -> int:
    from .apps import training
    from .apps.model_info import metadata
    from .report import jsonable
    model = _load_model(args.model)
    meta = metadata(model)
    data = _load_for_model(args.data, meta, args.data_dir)
    result = jsonable(training.evaluate(model, data.x, data.y, tta=args.tta), meta["class_names"])
    if args.json:
        print(json.dumps(result))
        return 0
    views = f" (test-time augmentation: {args.tta})" if args.tta else ""
    print(f"{args.data}: accuracy {result['accuracy']:.4f} ({result['correct']}/{result['n']}), "
          f"loss {result['loss']:.4f}{views}")
    rows = [(n, f"{v['precision']:.3f}", f"{v['recall']:.3f}", v["support"])
            for n, v in result["per_class"].items()]
    print()
    print(_table(rows, ("class", "precision", "recall", "support")))
    names = meta["class_names"]
    cm = result["confusion_matrix"]
    print("\nconfusion matrix (rows: true, columns: predicted)")
    print(_table([(n, *row) for n, row in zip(names, cm)], ("", *names)))
    return 0


def cmd_predict(args) -> int:
    from .apps import tta
    from .apps.datasets import to_float
    from .apps.heads import probabilities
    from .apps.model_info import is_smile_model, metadata
    from .apps.photos import load_photos
    model = _load_model(args.model)
    meta = metadata(model)
    images = load_photos(args.images, meta["input_shape"])  # resized as training resizes
    probs = probabilities(tta.predict(model, to_float(images, meta["value_scale"]), args.tta))
    names, smile = meta["class_names"], is_smile_model(meta)
    results = []
    for path, p in zip(args.images, probs):
        k = int(p.argmax())
        entry = {"path": path, "class": names[k], "probability": float(p[k]),
                 "probabilities": {n: float(v) for n, v in zip(names, p)}}
        if smile:
            entry["door_opens"] = k == 1
        results.append(entry)
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0]))
        return 0
    for entry in results:
        line = f"{entry['path']}: {entry['class']} ({entry['probability']:.2f})"
        if smile:
            line += ": the door opens" if entry["door_opens"] else ": the door stays shut"
        print(line)
    return 0


# ----------------------------------------------------------------------------- summary / data

def cmd_summary(args) -> int:
    from .apps.model_info import metadata
    model = _load_model(args.model)
    model.summary()
    meta = metadata(model)
    print("\nmetadata:")
    for key, value in meta.items():
        print(f"  {key}: {json.dumps(value)}")
    return 0


def cmd_data(args) -> int:
    from .apps.datasets import NAMED
    from .data import data_dir, find_file, verify
    root = data_dir(args.data_dir)
    print(f"data directory: {root} ({'found' if root.is_dir() else 'missing'}; set NPCONV_DATA or "
          "--data-dir to change it)")
    files = ["train_happy.h5", "test_happy.h5", "train_signs.h5", "test_signs.h5"]
    for name in files:
        try:
            path = find_file(name, args.data_dir)
        except FileNotFoundError:
            print(f"  {name:22s} not found")
            continue
        print(f"  {name:22s} {verify(path)}")
    for name, target in NAMED.items():
        if target.endswith(".h5"):
            continue
        folder = root / target
        if not folder.is_dir():
            print(f"  {target + '/':22s} not found")
            continue
        counts = {c.name: sum(1 for f in c.iterdir() if f.is_file() and not f.name.startswith("."))
                  for c in sorted(folder.iterdir()) if c.is_dir() and not c.name.startswith(".")}
        listing = ", ".join(f"{c} {n}" for c, n in counts.items())
        print(f"  {target + '/':22s} {sum(counts.values())} images in {len(counts)} classes ({listing})")
    print("  builtin:smiles         synthetic cartoon faces, always available")
    return 0


# ----------------------------------------------------------------------------- export

def cmd_export(args) -> int:
    from .apps.model_info import metadata
    from .export import export
    model = _load_model(args.model)
    path = export(model, args.out, format="onnx")
    try:
        from .export.onnx_check import max_difference
        difference = max_difference(model, path)
    except ImportError as exc:
        if exc.name != "onnxruntime":
            raise
        print(f"wrote {path}; not checked: onnxruntime is not installed (pip install 'npconv[onnx]')")
        return 0
    if not difference <= 1e-4:
        raise RuntimeError(f"wrote {path}, but onnxruntime's outputs differ from npconv's by "
                           f"{difference:.3g} on random inputs. This is a bug in npconv's ONNX export: "
                           "please report it.")
    image_shape = model.input_shape[1:]  # without the batch axis
    shape = ", ".join(str(s) for s in image_shape)
    scale = f", pixels divided by {metadata(model)['value_scale']}" if len(image_shape) == 3 else ""
    print(f"wrote {path}: input 'input' float32 (batch, {shape}){scale}; output 'output'. "
          f"onnxruntime matches npconv to {difference:.1e} on 4 random inputs.")
    return 0


# ----------------------------------------------------------------------------- serve

def cmd_serve(args) -> int:
    from .serve import require_extra, run
    require_extra()  # before loading the model: the install hint comes first
    run(_load_model(args.model), Path(args.model).name, host=args.host, port=args.port)
    return 0


# ----------------------------------------------------------------------------- parser and main

def _number(kind, accept, what):
    """An argparse type: ``text`` parsed by ``kind`` and kept if ``accept(value)``."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


_positive = _number(int, lambda v: v > 0, "a positive integer")
_count = _number(int, lambda v: v >= 0, "an integer >= 0")
_folds = _number(int, lambda v: v >= 2, "at least 2 folds")
_fraction = _number(float, lambda v: 0.0 < v < 1.0, "a fraction between 0 and 1")
_positive_float = _number(float, lambda v: v > 0, "a positive number")
_port = _number(int, lambda v: 0 < v < 65536, "a port number from 1 to 65535")
_non_negative = _number(float, lambda v: v >= 0, "a number >= 0")
_unit = _number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error (argparse prints its usage block first)."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def _add_tta(parser, optional_mode: bool = True) -> None:
    from .apps.tta import TTA_MODES
    # train takes an optional DATA positional, which a bare --tta would swallow: it needs the MODE.
    mode = {"nargs": "?", "const": "flip"} if optional_mode else {}
    parser.add_argument("--tta", choices=TTA_MODES, metavar="MODE", **mode,
                        help="test-time augmentation, averaging over views of each image: flip"
                        + (" (the default MODE)" if optional_mode else "")
                        + " (only for models trained with flips), shift or flip+shift")


def build_parser() -> argparse.ArgumentParser:
    from .apps.registry import list_archs
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")
    common.add_argument("--data-dir", metavar="DIR", help="data directory (default: $NPCONV_DATA, "
                        "else the user cache folder)")

    parser = _Parser(prog=PROG, description="Convolutional networks from scratch in NumPy.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = sub.add_parser("train", parents=[common], help="train a model on a data set",
                           description="Train a model. DATA: a course .h5 file, an image folder (one "
                           "sub-folder per class), a name in the data directory (signs, happy, smiles, "
                           "sign-language-digits) or builtin:smiles (the default).")
    train.add_argument("data", nargs="?", metavar="DATA")
    train.add_argument("--out", default="model.npz", metavar="MODEL", help="model file (default model.npz)")
    train.add_argument("--arch", help=f"network: {', '.join(list_archs())} (default from the recipe)")
    train.add_argument("--epochs", type=_positive)
    train.add_argument("--batch-size", type=_positive)
    train.add_argument("--lr", type=_positive_float, help="initial learning rate (Adam, cosine decay)")
    train.add_argument("--image-size", type=_positive, help="train on N x N images")
    train.add_argument("--val-split", type=_fraction, help="held-out fraction when there is no test file")
    train.add_argument("--folds", type=_folds, help="K-fold cross-validation (K >= 2)")
    train.add_argument("--weight-decay", type=_non_negative, help="decoupled weight decay (AdamW)")
    train.add_argument("--label-smoothing", type=_unit, help="label smoothing of the loss's targets")
    train.add_argument("--flip", action=argparse.BooleanOptionalAction,
                       help="random left-right flips while training, or not (default from the recipe: "
                       "off for SIGNS; smallres)")
    train.add_argument("--zoom", type=_unit, help="random zoom in/out up to this fraction (smallres)")
    train.add_argument("--contrast", type=_unit, help="random contrast factor in [1-C, 1+C] (smallres)")
    _add_tta(train, optional_mode=False)
    train.add_argument("--ensemble", type=_positive, metavar="N",
                       help="train N models (seeds N*SEED .. N*SEED+N-1) and average them into one model "
                       "file: N times the training time (default from the recipe)")
    train.add_argument("--init", metavar="MODEL", help="start from a trained model (transfer learning): "
                       "its arch, input size and weights, with the fine-tuning recipe")
    train.add_argument("--frozen-epochs", type=_count, metavar="N",
                       help="with --init: first N epochs train only the output layer")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--report", metavar="DIR", help="report folder (default: MODEL_report/)")
    train.add_argument("--no-report", action="store_true", help="write no report folder")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", parents=[common], help="accuracy, loss, per-class table")
    evaluate.add_argument("model", metavar="MODEL")
    evaluate.add_argument("data", metavar="DATA")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    _add_tta(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    predict = sub.add_parser("predict", parents=[common], help="class and probability of photos")
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    predict.add_argument("--json", action="store_true", help="print JSON")
    _add_tta(predict)
    predict.set_defaults(func=cmd_predict)

    summary = sub.add_parser("summary", parents=[common], help="layers, parameters and metadata")
    summary.add_argument("model", metavar="MODEL")
    summary.set_defaults(func=cmd_summary)

    export = sub.add_parser("export", parents=[common], help="write a model as ONNX, checked in onnxruntime",
                            description="Write MODEL as ONNX (float32 NHWC input in [0, 1], any batch "
                            "size) and check it against npconv in onnxruntime when installed.")
    export.add_argument("model", metavar="MODEL")
    export.add_argument("out", metavar="OUT.onnx")
    export.set_defaults(func=cmd_export)

    data = sub.add_parser("data", parents=[common], aliases=["datasets"],
                          help="the data directory and the data sets found there")
    data.set_defaults(func=cmd_data)

    serve = sub.add_parser("serve", parents=[common], help="a web page to try the model on your photos",
                           description="Serve a page where you drop a photo (or use the webcam) and see "
                           "the prediction, the image as the model sees it and its feature maps. Needs "
                           "pip install 'npconv[serve]'.")
    serve.add_argument("model", metavar="MODEL")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    serve.set_defaults(func=cmd_serve)
    return parser


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text += f": {exc.filename}"
    return text


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return int(exc.code or 0)
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader stopped (| head): nothing more to say, and nowhere to say it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except Exception as exc:  # every failure is one line unless --debug
        if args.debug:
            traceback.print_exc()
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = previous


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
