"""What ``npconv train`` checks and loads before it trains: the recipe from the data set, ``--init``,
``--recipe`` and the flags; the data and its paired test file; options that cannot go together."""

from __future__ import annotations


def prepare_training(args):
    from ..apps import datasets, recipes, registry
    from ..apps.transfer import Pretrained

    if args.arch is not None:
        registry.check_arch(args.arch)  # before any slow loading
    init = None if args.init is None else Pretrained.load(args.init)
    if init is not None and args.arch is not None and registry.check_arch(args.arch) != init.arch:
        raise ValueError(
            f"--arch {args.arch}: a model started from {args.init} keeps its arch "
            f"({init.arch}). Leave out --arch, or train from scratch without --init."
        )
    source = datasets.resolve(args.data, args.data_dir)
    if args.data is None:
        print(
            f"No DATA given: training on the built-in synthetic faces ({source}). "
            "For real data: NPCONV_DATA=/path/to/datasets npconv train signs"
        )
    name = datasets.dataset_name(source)
    recipe = recipes.recipe_for(recipes.FINE_TUNE if init else name)
    if init is not None:
        if args.image_size is not None:
            raise ValueError(
                f"--image-size: a model started from {args.init} takes its input size "
                f"({init.meta['input_shape'][0]} px). Leave out --image-size."
            )
        recipe = init.adapt(recipe)
    if args.recipe is not None:
        recipe = recipe_file(args, recipe, init)
    if args.frozen_epochs is not None and init is None:
        raise ValueError(
            "--frozen-epochs: only a model started from another (--init MODEL) has layers to "
            "keep frozen. Add --init MODEL, or leave out --frozen-epochs."
        )
    recipe = recipe.replace(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        frozen_epochs=args.frozen_epochs,
        image_size=args.image_size,
        val_split=args.val_split,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        zoom=args.zoom,
        contrast=args.contrast,
        tta=args.tta,
        flip=args.flip,
        ensemble=args.ensemble,
    )
    if init is not None and init.members > 1 and recipe.ensemble > init.members:
        raise ValueError(
            f"--ensemble {recipe.ensemble}: {args.init} averages {init.members} models, and each "
            f"model fine-tuned starts from one of them. Use --ensemble {init.members} or fewer."
        )
    arch = registry.check_arch(args.arch or recipe.arch)
    check_augmentation_options(args, arch)
    recipe = recipe.replace(arch=arch)
    data = datasets.load(source, recipe.image_size, recipe.color_mode, args.data_dir)
    test_file = None if args.folds else datasets.paired_test_file(source)
    test = None
    if test_file is not None:
        test = datasets.load(str(test_file), recipe.image_size, recipe.color_mode, args.data_dir)
        datasets.match_classes(test.class_names, data.class_names)  # same classes, or a clear error
    return source, name, recipe, arch, data, test, test_file, init


def recipe_file(args, recipe, init):
    """``recipe`` with the fields of ``--recipe FILE``; with ``--init``, the file may not change
    what the pretrained model fixes (its arch, input and members)."""
    from ..apps.recipe_files import read_recipe

    chosen = read_recipe(args.recipe, base=recipe)
    if init is not None:  # (more ensemble members than it has are refused below, as for --ensemble)
        fixed = [
            name
            for name in ("arch", "image_size", "color_mode", "widths")
            if getattr(chosen, name) != getattr(recipe, name)
        ]
        if fixed:
            raise ValueError(
                f"--recipe {args.recipe}: a model started from {args.init} keeps its "
                f"{', '.join(fixed)}; the file sets "
                + ", ".join(f"{n}={getattr(chosen, n)!r}" for n in fixed)
                + ". Remove those fields from the file, or train without --init."
            )
    return chosen


def check_augmentation_options(args, arch: str) -> None:
    """Augmentation flags the arch has no layers for would be ignored: refuse them instead."""
    from ..apps.registry import arch_options

    given = [
        flag
        for flag, value, option in (
            ("--flip/--no-flip", args.flip, "flip"),
            ("--zoom", args.zoom, "zoom"),
            ("--contrast", args.contrast, "contrast"),
        )
        if value is not None and option not in arch_options(arch)
    ]
    if given:
        raise ValueError(
            f"{', '.join(given)}: arch {arch} has no augmentation layers to set. Use --arch smallres, "
            "or leave the option out."
        )


def check_kernels_options(args) -> None:
    """``--kernels`` trains one model here: refuse what would train several or elsewhere."""
    if args.kernels is None:
        return
    others = [
        flag
        for flag, given in (
            ("--folds", args.folds),
            ("--ensemble", args.ensemble and args.ensemble > 1),
            ("--jobs", args.jobs > 1),
            ("--cluster", args.cluster),
        )
        if given
    ]
    if others:
        raise ValueError(f"--kernels: your functions train one model in this process; leave out {', '.join(others)}.")
    from ..learner_kernels import load_kernels  # a file that fails, before any data loads

    load_kernels(args.kernels, None)


def subset(data, n: int, seed: int):
    """A stratified subset of ``n`` examples of ``data`` (all of it when it has no more)."""
    from ..data import train_val_split

    if n >= len(data):
        return data
    return train_val_split(data, n / len(data), seed=seed)[1]
