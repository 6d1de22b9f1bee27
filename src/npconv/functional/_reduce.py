"""Column sums of tall ``(N, C)`` arrays: batch norm's statistics and every bias gradient.

``a.sum(axis=0)`` walks the rows one after another, which is slow when ``C`` is small (the SIGNS
model's first-layer bias gradient is ``(262144, 8)`` float32) and loses digits in float32. A BLAS
matrix-vector product with a vector of ones does the same sum many times faster.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=8)
def _ones(n: int, dtype: np.dtype) -> np.ndarray:
    ones = np.ones(n, dtype=dtype)
    ones.flags.writeable = False  # shared between calls
    return ones


_BLOCK = 256


def column_sum(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=0)`` for a C-contiguous ``(N, C)`` array, fast and accurate in float32.

    The rows are viewed as ``(N // 256, 256 * C)``; one gemv sums down that (each partial adds
    N / 256 rows), a second sums the 256 partials per channel. Adding row after row (``a.sum(0)``)
    accumulates rounding error with N; each level here adds at most a few hundred terms, so the
    result stays within a few float32 roundings of a float64 sum
    (``tests/functional/test_batchnorm.py::test_float32_column_sums_are_accurate_at_happy_model_size``).
    """
    n, n_c = a.shape
    blocks = n // _BLOCK
    if blocks < 2:
        return _ones(n, a.dtype) @ a
    head = a[: blocks * _BLOCK].reshape(blocks, _BLOCK * n_c)
    total = _ones(_BLOCK, a.dtype) @ (_ones(blocks, a.dtype) @ head).reshape(_BLOCK, n_c)
    if n > blocks * _BLOCK:
        total += _ones(n - blocks * _BLOCK, a.dtype) @ a[blocks * _BLOCK :]
    return total
