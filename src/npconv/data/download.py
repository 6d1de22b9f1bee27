"""Download a data file, verify its sha256, and move it into place atomically.

npconv ships no checksums it has not verified itself: an entry of :data:`REMOTE` without one needs
the caller to supply it (``fetch(url, sha256=...)``), so a download is never trusted blindly.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, NpconvError, expected
from .known import sha256_file
from .paths import data_dir


class DownloadError(NpconvError, OSError):
    """A download failed (network, HTTP status); the message says how to place the file by hand."""


@dataclass(frozen=True)
class Remote:
    url: str
    sha256: str | None  # None: unknown here, the caller must supply one
    filename: str
    description: str


#: Public download addresses npconv knows. The archive of a GitHub branch changes when the branch
#: does, so no checksum is recorded for it: pass the one you trust to :func:`fetch`.
REMOTE: dict[str, Remote] = {
    "sign-language-digits": Remote(
        "https://github.com/ardamavi/Sign-Language-Digits-Dataset/archive/refs/heads/master.zip",
        None,
        "Sign-Language-Digits-Dataset-master.zip",
        "Sign Language Digits Dataset (Mavi, A., 2020, arXiv:2011.08927), Apache-2.0; "
        "its Dataset/0..9 folders load with load_image_folder",
    ),
}

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 16


def _manual_hint(url: str, dest: Path) -> str:
    return (
        f"Download {url} yourself (browser, curl) and place it at {dest}, or point NPCONV_DATA / "
        f"--data-dir at the folder that holds it."
    )


def fetch(
    url: str, sha256: str, dest_dir: str | os.PathLike | None = None, filename: str | None = None, timeout: float = 60.0
) -> Path:
    """Download ``url`` to ``dest_dir/filename`` (default: the data directory and the URL's last
    path component) unless a file with that checksum is already there; return its path.

    The bytes go to a temporary file in ``dest_dir`` while they are hashed; only a file whose
    sha256 matches is renamed into place (``os.replace``, atomic on one file system). A file
    already at the destination is never replaced: a good one is reused, a different one is an error.

    Raises
    ------
    DownloadError
        Network or HTTP failure (names the URL and how to place the file by hand).
    DataError
        The checksum does not match (the downloaded bytes are deleted), or a different file is
        already at the destination.
    """
    if not isinstance(sha256, str) or not _SHA256.match(sha256.lower()):
        raise ValueError(
            expected(
                "sha256",
                "the file's sha256 as 64 hexadecimal digits",
                sha256 if isinstance(sha256, str) else repr(sha256),
                "npconv downloads only files it can verify; get the checksum from the publisher.",
            )
        )
    sha256 = sha256.lower()
    folder = Path(dest_dir).expanduser() if dest_dir is not None else data_dir()
    name = filename or Path(urllib.parse.urlparse(url).path).name
    if not name:
        raise ValueError(expected("filename", "a file name", "None and a URL without one", "Pass filename=..."))
    dest = folder / name
    if dest.exists():
        have = sha256_file(dest)
        if have == sha256:
            return dest
        raise DataError(
            expected(
                str(dest),
                f"a file with sha256 {sha256}",
                f"sha256 {have}",
                "A different file is already there; move it away to download again.",
            )
        )
    folder.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=folder, prefix=f".{name}.", suffix=".part", delete=False)
    try:
        with handle:
            got = _download_into(url, handle, timeout, dest)
        if got != sha256:
            raise DataError(
                expected(
                    f"download of {url}",
                    f"sha256 {sha256}",
                    f"sha256 {got}",
                    "The file is corrupt or has changed upstream; nothing was saved. " + _manual_hint(url, dest),
                )
            )
        os.replace(handle.name, dest)
    finally:
        if os.path.exists(handle.name):
            os.unlink(handle.name)
    return dest


def _download_into(url: str, handle, timeout: float, dest: Path) -> str:
    """Stream ``url`` into ``handle``; return the hex sha256 of the bytes."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            for block in iter(lambda: response.read(_CHUNK), b""):
                digest.update(block)
                handle.write(block)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}. {_manual_hint(url, dest)}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: download failed ({reason}). {_manual_hint(url, dest)}") from exc
    return digest.hexdigest()
