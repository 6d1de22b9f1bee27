"""What every ``npconv`` command shares: the one-line argument parser, argument types, output
helpers, and the model loading that names the fix when the file is missing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "npconv"


class Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error (argparse prints its usage block first)."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def number(kind, accept, what):
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


positive = number(int, lambda v: v > 0, "a positive integer")
count = number(int, lambda v: v >= 0, "an integer >= 0")
folds = number(int, lambda v: v >= 2, "at least 2 folds")
fraction = number(float, lambda v: 0.0 < v < 1.0, "a fraction between 0 and 1")
positive_float = number(float, lambda v: v > 0, "a positive number")
port = number(int, lambda v: 0 < v < 65536, "a port number from 1 to 65535")
non_negative = number(float, lambda v: v >= 0, "a number >= 0")
unit = number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def add_tta(parser, optional_mode: bool = True) -> None:
    """``--tta [MODE]``; ``optional_mode=False`` where a bare ``--tta`` would swallow a positional."""
    from ..apps.tta import TTA_MODES

    mode = {"nargs": "?", "const": "flip"} if optional_mode else {}
    parser.add_argument(
        "--tta",
        choices=TTA_MODES,
        metavar="MODE",
        **mode,
        help="test-time augmentation, averaging over views of each image: flip"
        + (" (the default MODE)" if optional_mode else "")
        + " (only for models trained with flips), shift or flip+shift",
    )


def add_job_options(parser) -> None:
    """``--jobs N``, ``--cluster ADDRESS`` and ``--threads T``: where independent trainings run."""
    parser.add_argument(
        "--jobs",
        type=positive,
        default=1,
        metavar="N",
        help="train N models at once in worker processes here, the cores divided between "
        "them (folds, ensemble members, search jobs; results as with --jobs 1)",
    )
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="train them on a Dask cluster instead, e.g. tcp://host:8786 (pip install 'npconv[distributed]')",
    )
    parser.add_argument(
        "--threads", type=positive, metavar="T", help="threads per worker process (default: cores // N)"
    )


def job_runner(args):
    """The runner ``--jobs``/``--cluster``/``--threads`` ask for, checked before any data loads."""
    from ..jobs import runner_for

    if args.threads is not None and args.jobs == 1 and args.cluster is None:
        raise ValueError(
            "--threads: only worker processes (--jobs N, N > 1) take a thread count. "
            "Add --jobs N, or leave out --threads."
        )
    return runner_for(args.jobs, args.cluster, args.threads)


def say(args, text: str = "") -> None:
    """Print unless the command was given ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(text)


def duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def table(rows, header) -> str:
    """Rows under a header, the first column left-aligned and the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = [
        "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in [header] + rows
    ]
    return "\n".join([lines[0], "-" * len(lines[0])] + lines[1:])


def load_model(path):
    from ..models import load_model as load

    if not Path(path).is_file():
        raise FileNotFoundError(
            f"MODEL: expected a model file saved by npconv, got {path} (no such file). "
            "Train one first: npconv train DATA --out MODEL."
        )
    return load(path)


def one_line(exc: BaseException) -> str:
    """An exception as the one line the CLI prints, with the file name an OSError concerns."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text += f": {exc.filename}"
    return text


def show_warning(message, category, filename, lineno, file=None, line=None):
    """``warnings.showwarning`` for the CLI: one line, no source location."""
    print(f"{PROG}: warning: {message}", file=sys.stderr)
