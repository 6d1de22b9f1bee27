"""Memory for the compiled kernels: scratch buffers aligned on a cache line, freed memory kept for
the next batch.
"""

import os

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("needs_numba")


def test_scratch_buffers_start_on_a_cache_line():
    """The direct convolution reads whole vectors of filters: in 16-byte aligned NumPy buffers they
    straddle cache lines."""
    from npconv.functional._workspace import ALIGNMENT, Workspace, aligned_empty, scratch

    workspace = Workspace()
    for shape, dtype in [((3,), np.float32), ((5, 7), np.float64), ((2, 3, 4), np.uint8)]:
        for array in (
            aligned_empty(shape, dtype),
            scratch(None, "a", shape, dtype),
            scratch(workspace, "a", shape, dtype),
        ):
            assert array.shape == shape and array.dtype == dtype and array.flags.c_contiguous
            assert array.ctypes.data % ALIGNMENT == 0


def test_freed_memory_is_kept_once_per_process(monkeypatch):
    """glibc's thresholds are set at the first forward pass, once, and never over a user's own."""
    from npconv.functional import _memory

    calls = []

    class FakeLibc:
        def mallopt(self, option, value):
            calls.append((option, value))
            return 1

    monkeypatch.setattr(_memory.ctypes, "CDLL", lambda name: FakeLibc())
    monkeypatch.setattr(_memory.sys, "platform", "linux")
    for name in [n for n in os.environ if n.startswith("MALLOC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(_memory, "_applied", False)
    assert _memory.keep_freed_memory()
    assert calls == [(-3, _memory.MMAP_THRESHOLD), (-1, _memory.TRIM_THRESHOLD)]
    assert not _memory.keep_freed_memory() and len(calls) == 2
    monkeypatch.setattr(_memory, "_applied", False)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert not _memory.keep_freed_memory() and len(calls) == 2
