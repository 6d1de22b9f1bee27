"""Checksums of the course's data files, so a loader can say which file it was given."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KnownFile:
    name: str
    sha256: str
    description: str


#: sha256 -> what the file is. Unknown files still load; this only informs.
KNOWN_FILES: dict[str, KnownFile] = {
    k.sha256: k
    for k in (
        KnownFile(
            "train_happy.h5",
            "65cbc8a1b83b0b8fa76026f37ba6421a8a29f90a223c31799a1d808bc7d19566",
            "Happy House train set (deeplearning.ai), 600 images",
        ),
        KnownFile(
            "test_happy.h5",
            "5e23db2f28769de83214dce1411e651489d713f9e1ec5d1ca6a61b6222115add",
            "Happy House test set (deeplearning.ai), 150 images",
        ),
        KnownFile(
            "train_signs.h5",
            "47480709d99f2ea6ae428ecc491fc6f65ff1d05336736dd859d5565e0ad3cf74",
            "SIGNS train set (deeplearning.ai), 1080 images",
        ),
        KnownFile(
            "train_signs.h5",
            "0d9ab180022991fd1285d7744e9a99e21c7147608dd648fba376442b5af5b478",
            "SIGNS train set rebuilt from the CS230 64x64 JPEG export, 1080 images",
        ),
        KnownFile(
            "test_signs.h5",
            "539fb746ed9e947eb244cfca73f4d1b03f9bf5524d609eeed2cd76ddb1b179be",
            "SIGNS test set (deeplearning.ai), 120 images",
        ),
    )
}


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Verification:
    path: Path
    sha256: str
    known: KnownFile | None

    @property
    def is_known(self) -> bool:
        return self.known is not None

    def __str__(self) -> str:
        if self.known is None:
            return f"{self.path}: not a known course file (sha256 {self.sha256[:12]}...); it still loads"
        return f"{self.path}: {self.known.description} (sha256 {self.sha256[:12]}... matches)"


def verify(path: str | os.PathLike) -> Verification:
    """Hash ``path`` and look it up in :data:`KNOWN_FILES` (informative: unknown files still load)."""
    digest = sha256_file(path)
    return Verification(Path(path), digest, KNOWN_FILES.get(digest))
