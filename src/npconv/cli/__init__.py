"""The ``npconv`` command: train, tune, evaluate, predict, explain, summary, export, data, serve.

    npconv train signs --out signs.npz          # NPCONV_DATA=/path/to/datasets
    npconv evaluate signs.npz test_signs.h5 --json
    npconv predict signs.npz photo.jpg
    npconv explain signs.npz hand.jpg --out why # where the model looks: why/hand.png
    npconv summary signs.npz
    npconv export signs.npz signs.onnx          # needs pip install 'npconv[onnx]'
    npconv data
    npconv serve signs.npz                      # a web page on http://127.0.0.1:8000

Every failure is one line on stderr, ``npconv: error: ...``, and exit status 1 (2 for usage
errors); ``--debug`` shows the traceback. Output cut short by a closed pipe (``| head``) ends
quietly with status 141, as a command killed by SIGPIPE does.

One module per command. A module here whose name does not start with ``_`` is a command: it has
``HELP_ORDER`` (its place in ``npconv --help``) and ``add_parser(commands, common)``, which adds its
sub-parser to ``commands`` (with ``parents=[common]`` for ``--debug`` and ``--data-dir``) and sets
``func`` to the function that runs it and returns the exit status. Adding a command is adding a module.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback
import warnings

from .. import __version__
from ._shared import PROG, Parser, one_line, show_warning


def command_modules() -> list:
    """The command modules of this package, in their ``HELP_ORDER``."""
    names = [info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    modules = [importlib.import_module(f"{__name__}.{name}") for name in names]
    return sorted(modules, key=lambda module: (module.HELP_ORDER, module.__name__))


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback on errors"
    )
    common.add_argument(
        "--data-dir", metavar="DIR", help="data directory (default: $NPCONV_DATA, else the user cache folder)"
    )

    parser = Parser(prog=PROG, description="Convolutional networks from scratch in NumPy.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in command_modules():
        module.add_parser(commands, common)
    return parser


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return int(exc.code or 0)
    previous = warnings.showwarning
    warnings.showwarning = show_warning
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
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = previous


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
