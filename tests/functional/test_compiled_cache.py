"""Numba's disk cache and the helpers a kernel inlines from other files.

Numba keys a cached kernel by the content of the file that defines it, not by the files whose
functions it inlines (``_simd``'s tiles in ``conv``, ``batchnorm``'s and ``pool``'s helpers in
``norm_pool``, ``_jit``'s compile options in all). Each kernel module therefore holds a hash of
those sources, ``INLINED_SOURCES``: an edit there must change it, or the next run (a learner's
``git pull``, an upgrade over an old install) would load machine code built from the old sources.
"""

import ast
import hashlib
import importlib
from pathlib import Path

import pytest

import npconv.functional.compiled as compiled

pytestmark = pytest.mark.usefixtures("needs_numba")

ROOT = Path(compiled.__file__).parent
KERNEL_MODULES = sorted(p.stem for p in ROOT.glob("*.py") if not p.stem.startswith("_"))


def _inlined_sources(name: str) -> list[str]:
    """The sibling modules ``name`` imports (``from .x import ...``)."""
    tree = ast.parse((ROOT / f"{name}.py").read_text())
    return sorted({n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module})


def _digest(names: list[str]) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update((ROOT / f"{name}.py").read_bytes())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("name", KERNEL_MODULES)
def test_each_kernel_module_carries_the_hash_of_the_sources_it_inlines(name):
    inlined = _inlined_sources(name)
    assert "_jit" in inlined
    module = importlib.import_module(f"npconv.functional.compiled.{name}")
    expected = _digest(inlined)
    assert module.INLINED_SOURCES == expected, (
        f"compiled/{name}.py: INLINED_SOURCES = {module.INLINED_SOURCES!r}, but {', '.join(inlined)} hash to "
        f"{expected!r}: write that value, so that Numba compiles this module's kernels again"
    )
