"""``npconv predict MODEL IMAGE...``: the class and probability of each photo, one line each; a
folder stands for its image files (sorted; files that are not images are left out with a note)."""
from __future__ import annotations

import json

from ._shared import add_tta, load_model

HELP_ORDER = 30


def add_parser(commands, common) -> None:
    predict = commands.add_parser("predict", parents=[common], help="class and probability of photos")
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument("images", nargs="+", metavar="IMAGE",
                         help="a photo, or a folder: every image in it, sorted")
    predict.add_argument("--json", action="store_true", help="print JSON")
    add_tta(predict)
    predict.set_defaults(func=run)


def run(args) -> int:
    from ..apps import tta
    from ..apps.datasets import to_float
    from ..apps.heads import probabilities
    from ..apps.model_info import is_smile_model, metadata
    from ..apps.photos import load_photos
    model = load_model(args.model)
    meta = metadata(model)
    paths, images = load_photos(args.images, meta["input_shape"])  # resized as training resizes
    probs = probabilities(tta.predict(model, to_float(images, meta["value_scale"]), args.tta))
    names, smile = meta["class_names"], is_smile_model(meta)
    results = []
    for path, p in zip(paths, probs):
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
