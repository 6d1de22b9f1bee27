"""Compiled float32 standard normal draws from a PCG64 generator's raw words, NumPy's bits.

NumPy's ``Generator.standard_normal(n, dtype=np.float32)`` runs the ziggurat on the generator's
stream of 32-bit values (each 64-bit word gives its low half, then its high half): a value ``r``
picks a layer ``r & 0xff``, a sign and a magnitude; 98.5% of draws are accepted at once, the others
take more values from the stream (the wedges and the tail). It is sequential, and each value costs
a call through the bit generator's function pointer (Numba's ``Generator`` makes the same calls).

Here the words are generated in the kernel, PCG64 jumped to the start of each chunk of
:data:`CHUNK_WORDS` words (fixed, so the bits do not depend on the thread count), then:

1. per chunk (parallel): its words, its exceptions (the positions whose draw is not accepted at
   once, 1.5%) and the draw each starts (the wedge and tail tests, as NumPy computes them), with the
   position after it;
2. :func:`_walk` (serial): NumPy's loop over the exceptions alone, skipping those that the draw
   before took, which gives the runs of accepted draws, where each lands in ``out``, and where the
   stream stops;
3. per run (parallel): its draws, from the words.

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

__all__ = ["AVAILABLE", "CHUNK_WORDS", "EXCEPTION_ROOM", "TOO_MANY_EXCEPTIONS", "standard_normal"]

_LOW_HALF = np.uint64(0xFFFFFFFF)
_HALF_BITS = np.uint64(32)


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


#: PCG64's multiplier (NumPy's ``PCG_DEFAULT_MULTIPLIER_128``), high and low halves.
_MULTIPLIER = (np.uint64(0x2360ED051FC65DA4), np.uint64(0x4385DF649FCCF645))
_ZERO, _ONE = np.uint64(0), np.uint64(1)
#: PCG64 streams stepped side by side in a chunk, word ``i`` from lane ``i % _LANES``: one vector
#: of uint64 with AVX-512, four steps in flight with AVX2.
_LANES = 16


@njit(cache=True, inline="always")
def _high_product(a, b):
    """The high 64 bits of ``a * b``'s 128, for uint64 ``a`` and ``b``, from 32-bit halves: the
    products LLVM can vectorise (``vpmuludq``), where a 128-bit one is a scalar ``mul``."""
    a0, a1, b0, b1 = a & _LOW_HALF, a >> _HALF_BITS, b & _LOW_HALF, b >> _HALF_BITS
    p00, p01, p10 = a0 * b0, a0 * b1, a1 * b0
    middle = (p00 >> _HALF_BITS) + (p01 & _LOW_HALF) + (p10 & _LOW_HALF)
    return a1 * b1 + (p01 >> _HALF_BITS) + (p10 >> _HALF_BITS) + (middle >> _HALF_BITS)


@njit(cache=True, inline="always")
def _multiply(a_hi, a_lo, b_hi, b_lo):
    """``a * b mod 2^128`` on (high, low) uint64 halves."""
    return _high_product(a_lo, b_lo) + a_lo * b_hi + a_hi * b_lo, a_lo * b_lo


@njit(cache=True, inline="always")
def _add(a_hi, a_lo, b_hi, b_lo):
    """``a + b mod 2^128`` on (high, low) uint64 halves."""
    lo = a_lo + b_lo
    return a_hi + b_hi + np.uint64(lo < a_lo), lo


@njit(cache=True, inline="always")
def _affine(jump, hi, lo):
    """``jump`` ``(m_hi, m_lo, c_hi, c_lo)`` applied to state ``(hi, lo)``: ``m * s + c mod 2^128``."""
    hi, lo = _multiply(jump[0], jump[1], hi, lo)
    return _add(hi, lo, jump[2], jump[3])


@njit(cache=True)
def _jump(steps, inc_hi, inc_lo):
    """PCG64's step ``s -> a * s + inc`` taken ``steps`` times, as one affine map ``(m_hi, m_lo, c_hi,
    c_lo)``: ``m = a^steps``, ``c = inc * (a^(steps-1) + ... + 1)``, by squaring (``pcg_advance_lcg_128``)."""
    m_hi, m_lo, c_hi, c_lo = _ZERO, _ONE, _ZERO, _ZERO
    a_hi, a_lo, b_hi, b_lo = _MULTIPLIER[0], _MULTIPLIER[1], inc_hi, inc_lo
    while steps > 0:
        if steps & 1:
            m_hi, m_lo = _multiply(m_hi, m_lo, a_hi, a_lo)
            c_hi, c_lo = _affine((a_hi, a_lo, b_hi, b_lo), c_hi, c_lo)
        a1_hi, a1_lo = _add(a_hi, a_lo, _ZERO, _ONE)
        b_hi, b_lo = _multiply(a1_hi, a1_lo, b_hi, b_lo)
        a_hi, a_lo = _multiply(a_hi, a_lo, a_hi, a_lo)
        steps >>= 1
    return m_hi, m_lo, c_hi, c_lo


@njit(cache=True, inline="always")
def _output(hi, lo):
    """PCG64's word from state ``(hi, lo)`` (XSL-RR): ``hi ^ lo`` rotated right by ``hi >> 58``."""
    x = hi ^ lo
    rotation = hi >> np.uint64(58)
    return (x >> rotation) | (x << ((np.uint64(64) - rotation) & np.uint64(63)))


@njit(cache=True, inline="always")
def _log1p(x):
    """``log1p`` of a float32, as NumPy's ``npy_log1pf`` (and Numba's Generator) take it."""
    return np.log1p(np.float32(x))


@njit(cache=True, inline="always")
def _uniform(words, first, p):
    """NumPy's ``next_float``: the value's top 24 bits over 2^24."""
    return np.float32(np.float32(_value(words, first, p) >> 8) * np.float32(1.0) / np.float32(16777216.0))


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


#: Words per chunk of the stream: each chunk's words come from their own start state, and its
#: exceptions (the draws not accepted at once) are found and drawn by one thread.
CHUNK_WORDS = 1024
#: Slots for a chunk's exceptions: an eighth of its 2,048 values, where 31 +- 5.5 are expected (1.5%).
#: A chunk with more makes the call return :data:`TOO_MANY_EXCEPTIONS`, and the caller gives every
#: value a slot (2 ``CHUNK_WORDS``): the scratch is a megabyte a batch of photos, not eight.
EXCEPTION_ROOM = 256
TOO_MANY_EXCEPTIONS = -2


@njit(cache=True, inline="always")
def _raw_words(state, words, w0):
    """``words[w0 : w0 + CHUNK_WORDS]``: PCG64's words from ``w0`` on, ``state`` ``[hi, lo, inc_hi,
    inc_lo]`` the generator's before word 0. ``_LANES`` streams, lane ``i`` at the words ``i, i +
    _LANES, ...``, each stepped ``_LANES`` steps at a time: a loop over the lanes that LLVM
    vectorises, where one stream waits on each step's multiply."""
    inc_hi, inc_lo = state[2], state[3]
    step = (_MULTIPLIER[0], _MULTIPLIER[1], inc_hi, inc_lo)
    hi, lo = np.empty(_LANES, np.uint64), np.empty(_LANES, np.uint64)
    h, l = _affine(_jump(w0, inc_hi, inc_lo), state[0], state[1])
    for i in range(_LANES):  # word w0 + i comes from the state after w0 + i + 1 steps
        h, l = _affine(step, h, l)
        hi[i], lo[i] = h, l
    to_next = _jump(_LANES, inc_hi, inc_lo)
    for t in range(w0, w0 + CHUNK_WORDS, _LANES):
        for i in range(_LANES):
            words[t + i] = _output(hi[i], lo[i])
            hi[i], lo[i] = _affine(to_next, hi[i], lo[i])


@njit(cache=True, inline="always")
def _chunk(state, first, words, c, room, exceptions, slow_values, slow_next):
    """Chunk ``c``: its words, and its exceptions' positions, with the draw each starts and the
    position after it (-1 where it reads past the chunk), in its ``room`` slots; the number of
    exceptions (more than ``room``: the slots did not hold them, and no draw was computed)."""
    w0 = c * CHUNK_WORDS
    _raw_words(state, words, w0)
    start = 1 if first >= 0 else 0
    base = c * room
    count = 0
    for w in range(w0, w0 + CHUNK_WORDS):
        word = words[w]
        low, high = _layer_draw(np.uint32(word & _LOW_HALF))[1], _layer_draw(np.uint32(word >> _HALF_BITS))[1]
        if not (low and high):
            if not low:
                if count < room:
                    exceptions[base + count] = start + 2 * w
                count += 1
            if not high:
                if count < room:
                    exceptions[base + count] = start + 2 * w + 1
                count += 1
    if count > room:
        return count
    end = start + 2 * (w0 + CHUNK_WORDS)
    for i in range(base, base + count):
        slow_values[i], slow_next[i] = _slow_draw(words, first, exceptions[i], end)
    return count


@njit(cache=True, inline="always")
def _copy_run(values, first, out, src, dst, length):
    """``out[dst : dst + length]``: the draws at positions ``src...``, all accepted at once;
    ``values``, the words as uint32 (the stream after ``first``, little-endian: low half first)."""
    k = np.uint64(src - (first >= 0))
    to = np.uint64(dst)
    for t in range(np.uint64(length)):  # unsigned indices: no wrap-around test, so LLVM vectorises
        out[to + t] = _layer_draw(values[k + t])[0]


@njit(cache=True)
def _walk(words, first, counts, room, exceptions, slow_values, slow_next, runs, out):
    """NumPy's loop over the exceptions alone: each one not consumed by the draw before it ends a run
    of accepted draws; writes the runs ``(position, output index, length)`` to ``runs`` and the
    exceptions' draws to ``out``; ``(runs, values taken)``, values taken -1 where the stream ended
    first."""
    available = 2 * words.size + (first >= 0)
    n = out.size
    n_runs = 0
    p = 0
    j = 0
    if first >= 0:
        x, ok = _layer_draw(np.uint32(first))
        p = 1
        if not ok:
            x, p = _slow_draw(words, first, 0, available)
            if p < 0:
                return 0, -1
        out[0] = x
        j = 1
    for c in range(counts.size):
        for i in range(c * room, c * room + counts[c]):
            if j == n:
                return n_runs, p
            e = exceptions[i]
            if e < p:  # taken by the draw before
                continue
            length = min(e - p, n - j)
            runs[n_runs, 0], runs[n_runs, 1], runs[n_runs, 2] = p, j, length
            n_runs += 1
            j += length
            p += length
            if j == n:
                return n_runs, p
            x, p = slow_values[i], slow_next[i]
            if p < 0:  # it reads past its chunk
                x, p = _slow_draw(words, first, e, available)
                if p < 0:
                    return n_runs, -1
            out[j] = x
            j += 1
    length = min(available - p, n - j)
    runs[n_runs, 0], runs[n_runs, 1], runs[n_runs, 2] = p, j, length
    return n_runs + 1, (p + length if j + length == n else -1)


@kernel()
def standard_normal(state, first, words, room, out):
    """Fill ``out`` (float32, flat) with NumPy's ziggurat draws from PCG64 at ``state`` (``[hi, lo,
    inc_hi, inc_lo]``, uint64) after the value ``first`` it holds (or -1), writing the stream's
    ``words`` (a multiple of ``CHUNK_WORDS``), with ``room`` slots for each chunk's exceptions;
    returns the number of stream values taken, -1 where the stream ended first, or
    :data:`TOO_MANY_EXCEPTIONS` where a chunk had more than ``room``."""
    chunks = words.size // CHUNK_WORDS
    exceptions = np.empty(chunks * room, np.int64)
    slow_values = np.empty(chunks * room, np.float32)
    slow_next = np.empty(chunks * room, np.int64)
    counts = np.empty(chunks, np.int64)
    for c in prange(chunks):
        counts[c] = _chunk(state, first, words, c, room, exceptions, slow_values, slow_next)
    if counts.max() > room:
        return TOO_MANY_EXCEPTIONS
    runs = np.empty((counts.sum() + 2, 3), np.int64)
    values = words.view(np.uint32)
    n_runs, taken = _walk(words, first, counts, room, exceptions, slow_values, slow_next, runs, out)
    for i in prange(n_runs):
        _copy_run(values, first, out, runs[i, 0], runs[i, 1], runs[i, 2])
    return taken
