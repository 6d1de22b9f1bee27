"""``npconv summary MODEL``: layers, output shapes, parameter counts and the model's metadata."""

from __future__ import annotations

import json

from ._shared import load_model

HELP_ORDER = 40


def add_parser(commands, common) -> None:
    summary = commands.add_parser("summary", parents=[common], help="layers, parameters and metadata")
    summary.add_argument("model", metavar="MODEL")
    summary.set_defaults(func=run)


def run(args) -> int:
    from ..apps.model_info import metadata

    model = load_model(args.model)
    model.summary()
    meta = metadata(model)
    print("\nmetadata:")
    for key, value in meta.items():
        print(f"  {key}: {json.dumps(value)}")
    return 0
