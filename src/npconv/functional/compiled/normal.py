"""Compiled float32 standard normal draws from a PCG64 generator's raw words, NumPy's bits.

NumPy's ``Generator.standard_normal(n, dtype=np.float32)`` runs the ziggurat on the generator's
stream of 32-bit values (each 64-bit word gives its low half, then its high half): a value ``r``
picks a layer ``r & 0xff``, a sign and a magnitude; 98.5% of draws are accepted at once, the others
take more values from the stream (the wedges and the tail). It is sequential, and each value costs
a call through the bit generator's function pointer (Numba's ``Generator`` makes the same calls).

Here the stream is taken whole as raw words (``random_raw``), then:

1. :func:`first_draws` (parallel): at every position of the stream, the draw that would start
   there, and whether it is accepted at once;
2. :func:`accepted_runs` (serial): the walk through the stream that NumPy's loop makes, copying
   each run of accepted draws and computing the rest (the wedge and tail tests, as NumPy computes
   them), which tells where the stream stops.

The caller then sets the generator where NumPy's loop would have left it
(:func:`npconv.data.normal_draws.standard_normal`). The same bits as NumPy's draws whatever the
thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import kernel

try:  # NumPy's ziggurat tables, as Numba's Generator support holds them (not a public module)
    from numba.np.random._constants import fi_float, ki_float, wi_float, ziggurat_nor_inv_r_f, ziggurat_nor_r_f

    AVAILABLE = True
except ImportError:  # another Numba: npconv.data.normal_draws draws through Numba's Generator
    AVAILABLE = False

#: The sources these kernels inline, hashed: Numba caches them by this file alone (see ``_jit``).
INLINED_SOURCES = "97bb75677132e40a"

__all__ = ["AVAILABLE", "first_draws", "accepted_runs"]

_LOW_HALF = np.uint64(0xFFFFFFFF)
_HALF_BITS = np.uint64(32)
#: Eight accepted flags (uint8 ones) read as one uint64.
_ALL_ACCEPTED = np.uint64(0x0101010101010101)


@njit(cache=True, inline="always")
def _value(words, first, p):
    """The stream's 32-bit value number ``p``: ``first`` (a value the generator holds from its last
    word, when ``first >= 0``), then each word's low half and high half."""
    if first >= 0 and p == 0:
        return np.uint32(first)
    k = np.int64(p) - np.int64(first >= 0)
    word = words[k >> 1]
    return np.uint32(word & _LOW_HALF) if (k & 1) == 0 else np.uint32(word >> _HALF_BITS)


@njit(cache=True, inline="always")
def _layer_draw(r):
    """The ziggurat's first step on value ``r``: ``(x, accepted)``, NumPy's arithmetic."""
    layer = r & 0xFF
    magnitude = (r >> 9) & 0x007FFFFF
    x = np.float32(np.float32(magnitude) * wi_float[layer])
    if (r >> 8) & 0x1:
        x = -x
    return x, magnitude < ki_float[layer]


@njit(cache=True, inline="always")
def _log1p(x):
    """``log1p`` of a float32, as NumPy's ``npy_log1pf`` (and Numba's Generator) take it."""
    return np.log1p(np.float32(x))


@njit(cache=True, inline="always")
def _uniform(words, first, p):
    """NumPy's ``next_float``: the value's top 24 bits over 2^24."""
    return np.float32(np.float32(_value(words, first, p) >> 8) * np.float32(1.0) / np.float32(16777216.0))


@kernel()
def first_draws(words, first, draws, accepted):
    """For each stream position ``p``: ``draws[p]``, the draw's value if it is accepted at once, and
    ``accepted[p]`` (uint8) whether it is; ``draws`` and ``accepted`` hold the whole stream, ``2 *
    words.size`` values after the held one (``first >= 0``). Word by word: no branch per value."""
    start = 1 if first >= 0 else 0
    if start:
        draws[0], accepted[0] = _layer_draw(np.uint32(first))
    for w in prange(words.size):
        word = words[w]
        p = start + 2 * w
        draws[p], accepted[p] = _layer_draw(np.uint32(word & _LOW_HALF))
        draws[p + 1], accepted[p + 1] = _layer_draw(np.uint32(word >> _HALF_BITS))


@njit(cache=True)
def _slow_draw(words, first, p, available):
    """NumPy's ziggurat from position ``p`` on, a draw not accepted at once: ``(x, next position)``,
    or position -1 when the stream ends first."""
    while True:
        if p >= available:
            return np.float32(0.0), -1
        r = _value(words, first, p)
        p += 1
        x, ok = _layer_draw(r)
        if ok:
            return x, p
        layer = r & 0xFF
        if layer == 0:  # the tail
            while True:
                if p + 2 > available:
                    return np.float32(0.0), -1
                xx = np.float32(-ziggurat_nor_inv_r_f * _log1p(-_uniform(words, first, p)))
                yy = np.float32(-_log1p(-_uniform(words, first, p + 1)))
                p += 2
                if np.float32(yy + yy) > np.float32(xx * xx):
                    tail = np.float32(ziggurat_nor_r_f + xx)
                    return (-tail if ((r >> 9) & 0x007FFFFF) >> 8 & 0x1 else tail), p
        else:  # a wedge
            if p >= available:
                return np.float32(0.0), -1
            u = _uniform(words, first, p)
            p += 1
            if (fi_float[layer - 1] - fi_float[layer]) * u + fi_float[layer] < np.float32(
                np.exp(-np.float32(0.5) * x * x)
            ):
                return x, p


@njit(cache=True)
def accepted_runs(words, first, draws, accepted, out):
    """Fill ``out`` (float32, flat) as NumPy's loop draws it from the stream, ``draws`` and
    ``accepted`` from :func:`first_draws` (``accepted`` of a multiple of 8 values, whose flags past
    the stream are 0); returns the number of stream values it took, or -1 where the stream ended
    first (the caller takes more words)."""
    available = draws.size
    eights = accepted.view(np.uint64)
    n = out.size
    p = 0
    j = 0
    while j < n:
        q = p
        stop = min(available, p + n - j)
        while q < stop and accepted[q]:
            q += 1
            if (q & 7) == 0:  # a whole word of flags from here: eight accepted draws at a time
                while q + 8 <= stop and eights[q >> 3] == _ALL_ACCEPTED:
                    q += 8
        out[j : j + q - p] = draws[p:q]
        j += q - p
        p = q
        if j == n:
            break
        x, p = _slow_draw(words, first, p, available)
        if p < 0:
            return -1
        out[j] = x
        j += 1
    return p
