"""npconv.data.normal_draws against NumPy's own ``standard_normal``: the same draws, bit for bit,
and the generator left where NumPy leaves it (a 32-bit value held from a word included)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_same_bits_on_any_thread_count, require

from npconv.data import normal_draws
from npconv.functional._tier import compiled_available, load_compiled


@pytest.fixture(autouse=True)
def needs_numba():
    require(compiled_available(), "Numba is not installed (pip install numba)")


def generators(seed, held, bit_generator=np.random.PCG64):
    """Two generators in the same state; ``held``: one float32 drawn first, which leaves the second
    half of a word held for the next 32-bit draw."""
    pair = [np.random.Generator(bit_generator(seed)) for _ in range(2)]
    for rng in pair:
        rng.random()
        if held:
            rng.random(dtype=np.float32)
    return pair


def next_draws(rng):
    return rng.random(dtype=np.float32), rng.random(), rng.standard_normal(3, dtype=np.float32).tolist()


@pytest.mark.parametrize("held", [False, True])
@pytest.mark.parametrize("size", [1, 2, 3, 1000, 65_536])  # 65,536 draws reach the tail (layer 0)
@pytest.mark.parametrize("seed", [0, 7])
def test_the_draws_and_the_generator_after_them_are_numpys(seed, size, held):
    reference, rng = generators(seed, held)
    expected = reference.standard_normal(size, dtype=np.float32)
    out = np.empty(size, np.float32)
    normal_draws.standard_normal(load_compiled(), rng, out)
    np.testing.assert_array_equal(out, expected)
    assert next_draws(rng) == next_draws(reference)


def test_a_short_first_take_of_words_takes_more(monkeypatch):
    monkeypatch.setattr(normal_draws, "_SPARE", -20)  # fewer words than the draws need
    reference, rng = generators(3, True)
    out = np.empty((4, 5, 6, 3), np.float32)
    normal_draws.standard_normal(load_compiled(), rng, out)
    np.testing.assert_array_equal(out, reference.standard_normal(out.shape, dtype=np.float32))
    assert next_draws(rng) == next_draws(reference)


@pytest.mark.parametrize("bit_generator, dtype", [(np.random.Philox, np.float32), (np.random.PCG64, np.float64)])
def test_other_generators_and_float64_take_numbas_generator(bit_generator, dtype):
    reference, rng = generators(5, True, bit_generator)
    out = np.empty(999, dtype)
    normal_draws.standard_normal(load_compiled(), rng, out)
    np.testing.assert_array_equal(out, reference.standard_normal(999, dtype=dtype))
    assert next_draws(rng) == next_draws(reference)


def test_the_same_bits_on_any_thread_count(monkeypatch):
    def draw():
        out = np.empty(100_000, np.float32)
        normal_draws.standard_normal(load_compiled(), np.random.default_rng(11), out)
        return [out]

    assert_same_bits_on_any_thread_count(draw, monkeypatch)


def _exception_seed(position, held):
    """A seed whose stream (after ``generators``' first draws) has a draw not accepted at once at
    ``position``: the value's magnitude at or above its layer's ``ki``."""
    from numba.np.random._constants import ki_float

    for seed in range(10_000):
        rng = generators(seed, held)[0]
        state = rng.bit_generator.state
        values = list(rng.bit_generator.random_raw(position // 2 + 2).view(np.uint32))
        if state["has_uint32"]:
            values.insert(0, state["uinteger"])
        r = int(values[position])
        if (r >> 9) & 0x7FFFFF >= ki_float[r & 0xFF]:
            return seed
    raise AssertionError("no such seed")


@pytest.mark.parametrize("held", [False, True])
@pytest.mark.parametrize("offset", [-2, -1, 0])  # the chunk's last two values, the next one's first
def test_a_draw_at_a_chunk_boundary_is_numpys(held, offset):
    from npconv.functional.compiled.normal import CHUNK_WORDS

    position = 2 * CHUNK_WORDS + offset + held  # a draw not accepted at once there reads on past it
    reference, rng = generators(_exception_seed(position, held), held)
    out = np.empty(3 * CHUNK_WORDS, np.float32)
    normal_draws.standard_normal(load_compiled(), rng, out)
    np.testing.assert_array_equal(out, reference.standard_normal(out.size, dtype=np.float32))
    assert next_draws(rng) == next_draws(reference)


def test_a_held_value_not_accepted_at_once_is_numpys():
    reference, rng = generators(_exception_seed(0, True), True)
    out = np.empty(10, np.float32)
    normal_draws.standard_normal(load_compiled(), rng, out)
    np.testing.assert_array_equal(out, reference.standard_normal(10, dtype=np.float32))
    assert next_draws(rng) == next_draws(reference)


@pytest.mark.parametrize("size", [2040, 2047, 4090])  # a whole chunk of words or two: a few values short
def test_draws_that_need_more_chunks_of_words_are_numpys(monkeypatch, size):
    monkeypatch.setattr(normal_draws, "_SPARE", -(size // 32) - 64)  # one word per two draws at first
    reference, rng = generators(9, False)
    out = np.empty(size, np.float32)
    normal_draws.standard_normal(load_compiled(), rng, out)
    np.testing.assert_array_equal(out, reference.standard_normal(size, dtype=np.float32))
    assert next_draws(rng) == next_draws(reference)


@pytest.mark.parametrize("room", [0, 30])  # none; fewer than most chunks' 31 +- 5.5 exceptions
def test_chunks_with_more_exceptions_than_slots_are_drawn_again_with_a_slot_per_value(monkeypatch, room):
    kernels = load_compiled()
    answers = []
    draw = kernels.normal.standard_normal

    def recorded(*args):
        answers.append(draw(*args))
        return answers[-1]

    monkeypatch.setattr(kernels.normal, "EXCEPTION_ROOM", room)
    monkeypatch.setattr(kernels.normal, "standard_normal", recorded)
    reference, rng = generators(3, True)
    out = np.empty(20_000, np.float32)
    normal_draws.standard_normal(kernels, rng, out)
    np.testing.assert_array_equal(out, reference.standard_normal(out.size, dtype=np.float32))
    assert next_draws(rng) == next_draws(reference)
    assert answers[0] == kernels.normal.TOO_MANY_EXCEPTIONS and answers[-1] > 0
