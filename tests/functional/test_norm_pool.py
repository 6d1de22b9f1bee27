"""batchnorm_relu_maxpool_forward: batch norm (training mode), ReLU and the max pool that reads them
in one forward pass give the two forward passes' outputs and caches bit for bit, so the two backward
passes run on them unchanged."""

import numpy as np
import pytest
from conftest import assert_same_bits_on_any_thread_count

from npconv.errors import ShapeError
from npconv.functional import (
    batchnorm_backward,
    batchnorm_forward,
    batchnorm_relu_maxpool_forward,
    pool2d_backward,
    pool2d_forward,
)

pytestmark = pytest.mark.usefixtures("tier")

# (x shape, pool): Happy's and smallres's stems small, leftover rows and columns, a 3 x 2 window,
# few and many channels (the pool's two-stage and per-offset paths)
CASES = [
    ((3, 8, 8, 32), 2),
    ((4, 9, 10, 16), 2),
    ((2, 12, 11, 3), (3, 2)),
    ((2, 6, 6, 40), 3),
]


def two_passes(x, gamma, beta, pool):
    normalised, norm_cache = batchnorm_forward(x, gamma, beta, relu=True)
    out, pool_cache = pool2d_forward(normalised, pool, mode="max")
    return out, (norm_cache, pool_cache)


def random_case(rng, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    x[:, :3, :3, :] = 0.25  # a constant patch: tied windows, and all-zero ones after ReLU
    return x, 1 + 0.5 * rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])


def assert_caches_equal(fused, plain):
    for a, b in zip(fused, plain):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        elif isinstance(a, tuple):
            assert_caches_equal(a, b)
        else:
            assert a == b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, pool", CASES)
def test_equals_the_two_forward_passes(rng, dtype, shape, pool):
    x, gamma, beta = random_case(rng, shape, dtype)
    out, caches = batchnorm_relu_maxpool_forward(x, gamma, beta, pool)
    out_plain, caches_plain = two_passes(x, gamma, beta, pool)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, out_plain)
    assert_caches_equal(caches, caches_plain)
    dout = rng.standard_normal(out.shape).astype(dtype)
    for fused, plain in zip(
        batchnorm_backward(pool2d_backward(dout, caches[1]), caches[0]),
        batchnorm_backward(pool2d_backward(dout, caches_plain[1]), caches_plain[0]),
    ):
        np.testing.assert_array_equal(fused, plain)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # a NaN channel's statistics
def test_nan_and_infinities_follow_the_pools_rules(rng):
    x, gamma, beta = random_case(rng, (2, 4, 4, 16), np.float32)
    x[0, 0, 1, 3] = np.nan  # the window's last NaN wins; the whole channel's statistics are NaN
    x[1, 2, 2, 5] = np.inf
    out, (_, pool_cache) = batchnorm_relu_maxpool_forward(x, gamma, beta, 2)
    out_plain, (_, plain_cache) = two_passes(x, gamma, beta, 2)
    np.testing.assert_array_equal(out, out_plain)
    np.testing.assert_array_equal(pool_cache.winner, plain_cache.winner)


def test_same_bits_on_any_thread_count(rng, monkeypatch, needs_numba):
    x, gamma, beta = random_case(rng, (4, 16, 16, 16), np.float32)

    def run():
        out, (norm_cache, pool_cache) = batchnorm_relu_maxpool_forward(x, gamma, beta, 2)
        return out, pool_cache.winner, norm_cache.scale

    assert_same_bits_on_any_thread_count(run, monkeypatch)


def test_refuses_a_batch_that_is_not_of_images(rng):
    with pytest.raises(ShapeError, match="x: expected a 4-D array"):
        batchnorm_relu_maxpool_forward(rng.standard_normal((4, 8, 3)), np.ones(3), np.zeros(3), 2)
    with pytest.raises(ShapeError, match="pool window height"):
        batchnorm_relu_maxpool_forward(rng.standard_normal((1, 2, 8, 3)), np.ones(3), np.zeros(3), 3)
