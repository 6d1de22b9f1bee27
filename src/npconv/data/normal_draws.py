"""NumPy's float32 standard normal draws, taken in parallel from a PCG64 generator's raw words.

``standard_normal(kernels, rng, out)`` fills ``out`` with exactly what
``rng.standard_normal(out.shape, dtype=out.dtype)`` gives, and leaves ``rng`` where that call
leaves it: the same bits and the same next draws. For ``np.random.default_rng``'s PCG64 and
float32, the compiled ziggurat of :mod:`npconv.functional.compiled.normal` generates the
stream's raw words and draws from them in parallel; other generators and float64 go through Numba's
``Generator``, one value at a time.
"""

from __future__ import annotations

import numpy as np

#: Extra words taken beyond one per two draws: the draws that are not accepted at once (1.5%) take
#: two or three values more each.
_SPARE = 64
#: A mask for the low 64 bits of a Python int (PCG64 state halves).
_WORD = (1 << 64) - 1


def standard_normal(kernels, rng: np.random.Generator, out: np.ndarray) -> None:
    """``out[...] = rng.standard_normal(out.shape, dtype=out.dtype)``, ``out`` contiguous float32 or
    float64, ``kernels`` the compiled modules."""
    bit_generator = rng.bit_generator
    fast = out.dtype == np.float32 and type(bit_generator) is np.random.PCG64 and kernels.normal.AVAILABLE
    if not fast or out.size == 0:
        kernels.augment.standard_normal(rng, out)
        return
    flat = out.reshape(-1)
    state = bit_generator.state
    held = state["uinteger"] if state["has_uint32"] else -1  # a value kept from the last word
    pcg = state["state"]
    # PCG64's 128-bit state and increment as uint64 halves, high first: what the kernel steps
    halves = np.array([x >> s & _WORD for x in (pcg["state"], pcg["inc"]) for s in (64, 0)], np.uint64)
    chunk, room = kernels.normal.CHUNK_WORDS, kernels.normal.EXCEPTION_ROOM
    count = flat.size // 2 + flat.size // 32 + _SPARE
    while True:
        words = np.empty(-(-count // chunk) * chunk, np.uint64)
        taken = kernels.normal.standard_normal(halves, held, words, room, flat)
        if taken >= 0:
            break
        if taken == kernels.normal.TOO_MANY_EXCEPTIONS:  # a chunk beyond its slots: a slot per value
            room = 2 * chunk
        else:  # the stream ended first: more words
            count += flat.size // 8 + _SPARE
    _leave_after(bit_generator, state, held, words, taken)


def _leave_after(bit_generator, state: dict, held: int, words: np.ndarray, taken: int) -> None:
    """Set ``bit_generator`` from ``state`` to where taking ``taken`` values of the stream leaves
    it: the words they use taken, and a word's unused high half kept, as NumPy keeps it."""
    from_words = taken - (held >= 0)  # values taken from the words (the held one is taken first)
    bit_generator.state = state
    bit_generator.advance((from_words + 1) // 2)  # advancing forgets a held value
    if from_words % 2:
        high = int(words[from_words // 2] >> np.uint64(32))
        bit_generator.state = {**bit_generator.state, "has_uint32": 1, "uinteger": high}
