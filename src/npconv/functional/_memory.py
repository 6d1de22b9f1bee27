"""Keeping freed memory for the next batch instead of handing it back to the operating system.

A training step allocates and frees the same few-megabyte arrays every batch. glibc's ``malloc``
serves large requests with fresh ``mmap`` pages and returns the top of its heap to the system once
128 KB lie free there, so the next batch page-faults the same memory back in (keeping freed blocks,
``mallopt`` below, makes a ``smallres`` epoch about 1.25x faster). The cost is that a process keeps up to
:data:`TRIM_THRESHOLD` of freed memory resident until it exits or needs it again.

Linux with glibc only; elsewhere, or where the user set ``MALLOC_*`` variables of their own, nothing
changes.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: Requests up to this size come from the heap, not from fresh ``mmap`` pages (glibc's ceiling).
#: At 8 MB the 8.4 MB activations of Happy (batch 16) and SIGNS (batch 64) kept their page faults.
#: Peak memory grows by about 2% (``benchmarks/train_speed.py``'s memory row).
MMAP_THRESHOLD = 32 << 20
#: Free memory kept at the top of the heap before any is returned to the system.
TRIM_THRESHOLD = 256 << 20

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
_applied = False


def keep_freed_memory() -> bool:
    """Set glibc's thresholds once per process (later calls do nothing); whether they were set."""
    global _applied
    if _applied:
        return False
    _applied = True
    if not sys.platform.startswith("linux") or any(name.startswith("MALLOC_") for name in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt to speak of)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
