"""NumPy's float32 standard normal draws, taken in parallel from a PCG64 generator's raw words.

``standard_normal(kernels, rng, out)`` fills ``out`` with exactly what
``rng.standard_normal(out.shape, dtype=out.dtype)`` gives, and leaves ``rng`` where that call
leaves it: the same bits and the same next draws. For ``np.random.default_rng``'s PCG64 and
float32, the compiled ziggurat of :mod:`npconv.functional.compiled.normal` does it in parallel
over the stream's raw words (0.7 of the time Numba's ``Generator`` takes for a batch of
``smallres``'s photo noise); other generators and float64 go through Numba's ``Generator``, one
value at a time.
"""

from __future__ import annotations

import numpy as np

#: Extra words taken beyond one per two draws: the draws that are not accepted at once (1.5%) take
#: two or three values more each.
_SPARE = 64


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
    words = bit_generator.random_raw(flat.size // 2 + flat.size // 32 + _SPARE)
    while (taken := _draw_from(kernels, words, held, flat)) < 0:  # the stream ended first: more words
        words = np.concatenate([words, bit_generator.random_raw(flat.size // 8 + _SPARE)])
    _leave_after(bit_generator, state, held, words, taken)


def _draw_from(kernels, words: np.ndarray, held: int, flat: np.ndarray) -> int:
    """Fill ``flat`` from the stream of ``held`` (or -1) and ``words``; the stream values it took,
    or -1 where the stream ended first."""
    available = 2 * words.size + (held >= 0)
    draws, accepted = np.empty(available, np.float32), np.empty(-(-available // 8) * 8, np.uint8)
    accepted[available:] = 0  # flags read eight at a time: none past the stream
    kernels.normal.first_draws(words, held, draws, accepted)
    return kernels.normal.accepted_runs(words, held, draws, accepted, flat)


def _leave_after(bit_generator, state: dict, held: int, words: np.ndarray, taken: int) -> None:
    """Set ``bit_generator`` from ``state`` to where taking ``taken`` values of the stream leaves
    it: the words they use taken, and a word's unused high half kept, as NumPy keeps it."""
    from_words = taken - (held >= 0)  # values taken from the words (the held one is taken first)
    bit_generator.state = state
    bit_generator.advance((from_words + 1) // 2)  # advancing forgets a held value
    if from_words % 2:
        high = int(words[from_words // 2] >> np.uint64(32))
        bit_generator.state = {**bit_generator.state, "has_uint32": 1, "uinteger": high}
