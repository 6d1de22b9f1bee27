"""``npconv explain MODEL IMAGE... [--out DIR]``: where the model looks in each photo.

One picture per photo, ``DIR/<photo name>.png`` (``DIR`` defaults to ``<model>_explain/`` beside the
model file) (:func:`npconv.explain_plots.plot_explanations`):
the photo as the model sees it, titled with the predicted class and its probability, its Grad-CAM
heatmap and its saliency map. Photos are prepared as ``npconv predict`` prepares them, and a folder
stands for its image files, sorted.
"""

from __future__ import annotations

from pathlib import Path

from ._shared import load_model

HELP_ORDER = 35


def add_parser(commands, common) -> None:
    explain = commands.add_parser(
        "explain",
        parents=[common],
        help="where the model looks: Grad-CAM and saliency",
        description="Draw, for each photo, the photo as the model sees it with the "
        "predicted class, the Grad-CAM heatmap over it (where the evidence for the "
        "class lies) and the saliency map (which pixels would change the score most).",
    )
    explain.add_argument("model", metavar="MODEL")
    explain.add_argument("images", nargs="+", metavar="IMAGE", help="a photo, or a folder: every image in it, sorted")
    explain.add_argument(
        "--out",
        metavar="DIR",
        help="the folder for the pictures, DIR/<photo name>.png (default: <model>_explain/ "
        "beside the model file, e.g. runs/signs_explain/)",
    )
    explain.add_argument(
        "--layer",
        metavar="NAME",
        help="the layer whose feature maps Grad-CAM weighs (default: "
        "the last one with feature maps; npconv summary lists the layers)",
    )
    explain.add_argument(
        "--class",
        dest="explained",
        metavar="NAME",
        help="explain this class (a class name or index) instead of each photo's predicted one",
    )
    explain.set_defaults(func=run)


def run(args) -> int:
    from ..apps.datasets import to_float
    from ..apps.heads import probabilities
    from ..apps.model_info import metadata
    from ..apps.photos import load_photos
    from ..explain import cam_layers
    from ..explain_plots import plot_explanations

    model = load_model(args.model)
    meta = metadata(model)
    names = [str(name) for name in meta["class_names"]]
    class_index = None if args.explained is None else class_of(args.explained, names)
    cam_layers(model, args.layer)  # an unknown layer is refused, with the valid ones, before any photo is read
    paths, images = load_photos(args.images, meta["input_shape"])  # resized as training resizes
    x = to_float(images, meta["value_scale"])
    probs = probabilities(model.predict(x))
    out = Path(args.out) if args.out else default_out(args.model)
    out.mkdir(parents=True, exist_ok=True)
    for path, picture, image, p in zip(paths, picture_names(paths), x, probs):
        plot_explanations(
            model, image, layer=args.layer, class_index=class_index, class_names=names, path=out / picture
        )
        k = int(p.argmax())
        print(f"{path}: {names[k]} ({p[k]:.2f}) -> {out / picture}")
    return 0


def default_out(model_path: str) -> Path:
    """``runs/signs.npz`` -> ``runs/signs_explain``: the pictures beside the model they explain."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}_explain")


def class_of(text: str, names: list[str]) -> int:
    """The index of the class ``text`` names (a class name, or its index), else a ``ValueError``
    listing the model's classes."""
    from ..errors import expected

    if text in names:
        return names.index(text)
    if text.isdigit() and int(text) < len(names):
        return int(text)
    listed = ", ".join(f"{k} {name!r}" for k, name in enumerate(names))
    raise ValueError(expected("--class", f"one of the model's classes, by name or index: {listed}", repr(text)))


def picture_names(paths) -> list[str]:
    """``<stem>.png`` for each photo; photos that share a stem (``a.jpg``, ``a.png``, or one name in
    two folders) get their suffix and then a number added, so no picture overwrites another."""
    taken, names = set(), []
    for path in map(Path, paths):
        name = f"{path.stem}.png"
        if name in taken:
            name = f"{path.stem}_{path.suffix.lstrip('.')}.png"
        number = 2
        while name in taken:
            name = f"{path.stem}_{path.suffix.lstrip('.')}_{number}.png"
            number += 1
        taken.add(name)
        names.append(name)
    return names
