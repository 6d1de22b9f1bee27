"""``npconv predict MODEL IMAGE...``: the class and probability of each photo, one line each; a
folder stands for its image files (sorted; files that are not images are left out with a note).
A photo the model is unsure of says so first (:mod:`npconv.apps.verdict`)."""

from __future__ import annotations

import json

from ._shared import add_tta, load_model

HELP_ORDER = 30


def add_parser(commands, common) -> None:
    predict = commands.add_parser("predict", parents=[common], help="class and probability of photos")
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="a photo, or a folder: every image in it, sorted")
    predict.add_argument("--json", action="store_true", help="print JSON")
    add_tta(predict)
    predict.set_defaults(func=run)


def run(args) -> int:
    from ..apps.model_info import metadata
    from ..apps.photos import load_photos
    from ..apps.verdict import classify

    model = load_model(args.model)
    meta = metadata(model)
    paths, images = load_photos(args.images, meta["input_shape"])  # resized as training resizes
    results = [{"path": path, **answer} for path, answer in zip(paths, classify(model, images, args.tta))]
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0]))
        return 0
    for entry in results:
        guess = f"{entry['class']} ({entry['calibrated_probability']:.2f})"
        line = f"{entry['path']}: " + (
            f"unsure ({entry['why']}), best guess {guess}" if entry["verdict"] == "unsure" else guess
        )
        if "door_opens" in entry:
            line += ": the door opens" if entry["door_opens"] else ": the door stays shut"
        print(line)
    return 0
