"""add_maxpool_forward: the sum of two branches and the max pool that reads it in one pass give
``pool2d_forward(a + b)``'s output and cache bit for bit, so the pool's backward runs on them
unchanged (its gradients are checked in test_pool.py)."""

import numpy as np
import pytest
from conftest import assert_same_bits_on_any_thread_count

from npconv.errors import ShapeError
from npconv.functional import ScaleShift, add_maxpool_forward, batchnorm_forward, pool2d_forward

pytestmark = pytest.mark.usefixtures("tier")

# (shape, pool): smallres's stages small, leftover rows and columns, a 3 x 2 window, 3 to 40 channels
CASES = [
    ((3, 8, 8, 16), 2),
    ((2, 9, 11, 32), 2),
    ((2, 12, 11, 3), (3, 2)),
    ((2, 6, 6, 40), 3),
]


def random_pair(rng, shape, dtype):
    a, b = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    a[:, :3, :3, :], b[:, :3, :3, :] = 0.5, 0.25  # a constant patch: tied windows
    return a, b


def assert_same_as_two_passes(a, b, pool, relu=False):
    out, cache = add_maxpool_forward(a, b, pool, relu=relu)
    out_plain, cache_plain = pool2d_forward(a + b, pool, mode="max")
    if relu:  # the ReLU layer's own pass, moved past the pool
        out_plain = np.maximum(out_plain, 0)
    assert out.dtype == a.dtype
    np.testing.assert_array_equal(out, out_plain)
    assert np.array_equal(np.signbit(out), np.signbit(out_plain))  # -0.0 as NumPy's maximum gives it
    for got, want in zip(cache, cache_plain):
        if isinstance(want, np.ndarray):
            np.testing.assert_array_equal(got, want)
        else:
            assert got == want


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, pool", CASES)
def test_equals_the_sum_then_the_pool(rng, dtype, shape, pool, relu):
    assert_same_as_two_passes(*random_pair(rng, shape, dtype), pool, relu)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf + -inf
def test_nan_and_infinities_follow_the_pools_rules(rng, relu):
    a, b = random_pair(rng, (2, 4, 4, 16), np.float32)
    a[0, 0, 1, 3] = np.nan  # the window's last NaN wins
    a[1, 2, 2, 5], b[1, 2, 2, 5] = np.inf, -np.inf  # a NaN sum
    a[1, 0, 0, 6] = np.inf
    a[0, 2:, 2:, 7], b[0, 2:, 2:, 7] = -0.0, -0.0  # a window of -0.0: ReLU gives 0.0
    a[1, 2:, :2, 8], b[1, 2:, :2, 8] = -1.0, 0.0  # a window of negatives
    assert_same_as_two_passes(a, b, 2, relu)


def test_takes_views(rng):
    a, b = random_pair(rng, (3, 8, 8, 32), np.float64)
    assert_same_as_two_passes(a[:, :, :, ::2], b[::1, :, :, 16:], 2)


def test_same_bits_on_any_thread_count(rng, monkeypatch, needs_numba):
    a, b = random_pair(rng, (4, 16, 17, 16), np.float32)

    def run():
        out, cache = add_maxpool_forward(a, b, 2)
        return out, cache.winner

    assert_same_bits_on_any_thread_count(run, monkeypatch)


def test_refuses_branches_that_do_not_match(rng):
    a, b = random_pair(rng, (2, 8, 8, 4), np.float32)
    with pytest.raises(ShapeError, match="b: expected an array of a's shape"):
        add_maxpool_forward(a, b[:, :6], 2)
    with pytest.raises(ShapeError, match="dtype float32"):
        add_maxpool_forward(a, b.astype(np.float64), 2)
    with pytest.raises(ShapeError, match="a: expected a 4-D array"):
        add_maxpool_forward(a[0], b[0], 2)
    with pytest.raises(ShapeError, match="pool window height"):
        add_maxpool_forward(a[:, :1], b[:, :1], 2)


# ----- a branch given as a batch norm's output not yet written (ScaleShift) -----


def batchnorm_branch(rng, shape, dtype):
    """A training batch norm's output on ``shape``, unwritten, and as the forward writes it."""
    z = (3 * rng.standard_normal(shape) + 1).astype(dtype)
    gamma, beta = rng.uniform(0.5, 2, shape[3]).astype(dtype), rng.standard_normal(shape[3]).astype(dtype)
    pending, _ = batchnorm_forward(z, gamma, beta, deferred=True)
    written, _ = batchnorm_forward(z, gamma, beta)
    return pending, written


@pytest.mark.parametrize("mapped", ["a", "b", "both"])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, pool", CASES[:3])
def test_a_batch_norms_unwritten_output_gives_the_bits_of_the_written_one(rng, dtype, shape, pool, relu, mapped):
    """The pass applies the batch norm's map as it reads its input: the output and cache of the
    batch norm's written output summed and pooled, bit for bit."""
    a, b = random_pair(rng, shape, dtype)
    pending_a, a_written = batchnorm_branch(rng, shape, dtype) if mapped != "b" else (a, a)
    pending_b, b_written = batchnorm_branch(rng, shape, dtype) if mapped != "a" else (b, b)
    for pending, written in ((pending_a, a_written), (pending_b, b_written)):
        if isinstance(pending, ScaleShift):
            np.testing.assert_array_equal(pending.value(), written)
    out, cache = add_maxpool_forward(pending_a, pending_b, pool, relu=relu)
    out_written, cache_written = add_maxpool_forward(a_written, b_written, pool, relu=relu)
    np.testing.assert_array_equal(out, out_written)
    np.testing.assert_array_equal(cache.winner, cache_written.winner)
    assert_same_as_two_passes(a_written, b_written, pool, relu)


def test_a_deferred_batch_norm_has_no_relu_and_a_map_must_fit_its_branch(rng):
    z = rng.standard_normal((2, 4, 4, 3))
    with pytest.raises(ValueError, match="deferred=True writes no output"):
        batchnorm_forward(z, np.ones(3), np.zeros(3), relu=True, deferred=True)
    pending, _ = batchnorm_forward(z, np.ones(3), np.zeros(3), deferred=True)
    with pytest.raises(ShapeError, match=r"a.scale and a.offset: expected shape \(3,\) each"):
        add_maxpool_forward(pending._replace(scale=np.ones(4)), z, 2)
