"""Where npconv looks for data: an explicit folder, then ``NPCONV_DATA``, then a per-user cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Sub-folders of the data directory searched by :func:`find_file` (the shared layout).
SUBFOLDERS = ("happy", "signs")

COURSE_FILES_HINT = (
    "The course files (train_happy.h5, test_happy.h5, train_signs.h5, test_signs.h5) come with the "
    "deeplearning.ai 'Convolution model' assignments (their datasets/ folder)."
)


def user_cache_dir() -> Path:
    """The per-user cache folder: ``%LOCALAPPDATA%\\npconv`` on Windows, else
    ``$XDG_CACHE_HOME/npconv`` or ``~/.cache/npconv``."""
    if sys.platform.startswith("win") and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "npconv"
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "npconv"


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data directory: ``explicit`` (the CLI's ``--data-dir``), else ``$NPCONV_DATA``, else
    :func:`user_cache_dir`. The folder is not created or checked here."""
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    env = os.environ.get("NPCONV_DATA")
    if env:
        return Path(env).expanduser()
    return user_cache_dir()


def candidate_paths(name: str, explicit: str | os.PathLike | None = None) -> list[Path]:
    """Every place :func:`find_file` looks for ``name``, in order."""
    root = data_dir(explicit)
    return [root / name] + [root / sub / name for sub in SUBFOLDERS]


def find_file(name: str, explicit: str | os.PathLike | None = None) -> Path:
    """Find a data file by name in the data directory or its known sub-folders (``happy/``,
    ``signs/``).

    Raises
    ------
    FileNotFoundError
        Naming every place searched and how to point npconv at the file.
    """
    places = candidate_paths(name, explicit)
    for place in places:
        if place.is_file():
            return place
    searched = ", ".join(str(p) for p in places)
    raise FileNotFoundError(
        f"{name}: expected a data file, got nothing at {searched}. Put {name} in one of these "
        f"folders, or point npconv at the folder holding it with NPCONV_DATA=/path/to/folder or "
        f"--data-dir /path/to/folder. {COURSE_FILES_HINT}"
    )
