"""``npconv serve MODEL``: a local web page to try the model on a photo or the webcam."""

from __future__ import annotations

from pathlib import Path

from ._shared import load_model, port

HELP_ORDER = 70


def add_parser(commands, common) -> None:
    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="a web page to try the model on your photos",
        description="Serve a page where you drop a photo (or use the webcam) and see "
        "the prediction, the image as the model sees it and its feature maps. Needs "
        "pip install 'npconv[serve]'.",
    )
    serve.add_argument("model", metavar="MODEL")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    serve.add_argument("--port", type=port, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--kernels",
        metavar="FILE.py",
        help="your course functions (conv_forward, conv_backward, pool_forward, pool_backward): "
        "the /learn page runs them inside the model and shows where they first differ from npconv's",
    )
    serve.set_defaults(func=run)


def run(args) -> int:
    from ..serve import require_extra
    from ..serve import run as serve_model

    require_extra()  # before loading the model: the install hint comes first
    serve_model(load_model(args.model), Path(args.model).name, host=args.host, port=args.port, kernels=args.kernels)
    return 0
