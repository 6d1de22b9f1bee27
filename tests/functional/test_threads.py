"""The compiled kernels' threads: safe from many threads at once, results independent of the thread
count, OpenMP threads that spin briefly then sleep.
"""

import os

import numpy as np
import pytest
from conftest import assert_same_bits_on_any_thread_count

from npconv import functional as F
from npconv.functional._tier import use_tier

pytestmark = pytest.mark.usefixtures("needs_numba")


def test_kernels_called_from_many_threads_at_once(rng):
    """Numba's workqueue threads (its pool where libgomp is missing) abort the process on concurrent
    launches; _tier serialises them (a web server predicting in several threads must not crash)."""
    from concurrent.futures import ThreadPoolExecutor

    x = rng.standard_normal((8, 16, 16, 8)).astype(np.float32)
    with use_tier("compiled"):
        expected, _ = F.pool2d_forward(x, 2)

        def pool(_):
            return F.pool2d_forward(x, 2)[0]

        with ThreadPoolExecutor(8) as pool_of_threads:
            results = list(pool_of_threads.map(pool, range(64)))
    for out in results:
        np.testing.assert_array_equal(out, expected)


def test_results_do_not_depend_on_the_number_of_threads(rng, monkeypatch):
    """The compiled kernels split their work by the shapes, never by the thread count, so their
    parallel builds on one thread and on two, and their serial builds (which small calls use), give
    the same bits (npconv train --jobs relies on it)."""
    x = rng.standard_normal((3, 48, 48, 3)).astype(np.float32)  # weight gradient: two bands per image
    w = rng.standard_normal((3, 3, 3, 16)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    w_pairs = rng.standard_normal((4, 4, 3, 8)).astype(np.float32)  # 8 filters: the tap-pair tiles

    def run():
        out, cache = F.conv2d_forward(x, w, b, 1, "same")
        dx, dw, db = F.conv2d_backward(out, cache)
        paired, _ = F.conv2d_forward(x, w_pairs, None, 1, "same")
        normed, bn_cache = F.batchnorm_forward(out, np.ones(16, np.float32), np.zeros(16, np.float32))
        activated, relu_cache = F.batchnorm_forward(out, np.ones(16, np.float32), b, relu=True)
        pooled, pool_cache = F.pool2d_forward(normed, 2)
        return (
            out,
            paired,
            dx,
            dw,
            db,
            normed,
            *F.batchnorm_backward(out, bn_cache),
            activated,
            *F.batchnorm_backward(out, relu_cache),
            pooled,
            F.pool2d_backward(pooled, pool_cache),
        )

    assert_same_bits_on_any_thread_count(run, monkeypatch)


def test_openmp_threads_spin_briefly_then_sleep(monkeypatch):
    """libgomp reads GOMP_SPINCOUNT once, when Numba's OpenMP layer loads it: _tier sets it for that
    moment only (other libraries' OpenMP keeps its default), and keeps a user's own setting."""
    from npconv.functional import _tier

    seen = []

    def load(name):
        seen.append((name, os.environ.get("GOMP_SPINCOUNT")))

    monkeypatch.setattr(_tier.importlib, "import_module", load)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert _tier._load_openmp()
    assert seen == [("numba.np.ufunc.omppool", str(_tier.OPENMP_SPIN_COUNT))]
    assert "GOMP_SPINCOUNT" not in os.environ
    monkeypatch.setenv("GOMP_SPINCOUNT", "5")
    assert _tier._load_openmp() and seen[-1][1] == "5" and os.environ["GOMP_SPINCOUNT"] == "5"

    def missing(name):
        raise ImportError("libgomp.so.1: cannot open shared object file")

    monkeypatch.setattr(_tier.importlib, "import_module", missing)
    assert not _tier._load_openmp()  # then Numba's workqueue pool


def blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.mark.parametrize("outside", [1, 2])
def test_blas_keeps_to_one_thread_within_a_model_run_and_gets_its_count_back(outside):
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from npconv.functional._threads import blas_scope

    with threadpool_limits(outside, user_api="blas"):
        with use_tier("compiled"):
            with blas_scope():
                assert set(blas_threads()) == {1}
                with blas_scope() as nested:  # nested: does nothing; the outer scope's count after
                    assert isinstance(nested, type(None))
                with ThreadPoolExecutor(1) as other:  # another thread's scope is its own
                    assert other.submit(lambda: type(blas_scope()).__name__).result() == "_GeneratorContextManager"
                assert set(blas_threads()) == {1}
            assert set(blas_threads()) == {outside}
            with pytest.raises(ZeroDivisionError), blas_scope():
                1 / 0  # noqa: B018 (an error inside gives the count back too)
            assert set(blas_threads()) == {outside}
        with use_tier("numpy"), blas_scope():  # BLAS is the NumPy tier's only parallelism: left alone
            assert set(blas_threads()) == {outside}
