"""Shared fixtures. With ``CI`` set, a test that would skip for a missing dependency or data set fails."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import numpy as np
import pytest

IN_CI = bool(os.environ.get("CI"))


def sigint_restored() -> None:
    """``preexec_fn`` of a subprocess that a test stops with SIGINT: Ctrl-C's default disposition
    back. A shell's background job (``bash .ci/run &``) starts with SIGINT ignored, and so does every
    process it starts; a Python started so never installs its KeyboardInterrupt handler, and the
    interrupt is lost whatever the code under test does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def require(condition: bool, reason: str) -> None:
    """Skip when ``condition`` is false, or fail under CI, where everything must run."""
    if not condition:
        if IN_CI:
            pytest.fail(f"required in CI: {reason}")
        pytest.skip(reason)


@contextlib.contextmanager
def same_threads(n: int):
    """Run the block with ``n`` BLAS and Numba threads, as a worker of ``npconv.jobs`` with ``n``
    threads runs. On the NumPy tier OpenBLAS's sgemm results depend on its thread count in their
    last bits, so bit-for-bit comparisons with a worker need a reference computed at the worker's
    count (the compiled tier's results do not depend on it)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    require(threadpool_limits is not None, "threadpoolctl is not installed (pip install -e '.[dev]')")
    import numba

    from npconv.functional._tier import compiled

    compiled()  # npconv chooses Numba's threading layer before the threads start
    before = numba.get_num_threads()
    with threadpool_limits(n):
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        try:
            yield
        finally:
            numba.set_num_threads(before)


def assert_same_bits_on_any_thread_count(run, monkeypatch) -> None:
    """``run()`` (a sequence of arrays) gives the same bits from the compiled tier's serial builds
    (what small calls take), and from its parallel builds on one thread and on two: the kernels split
    their work by the shapes, never by the thread count (``npconv train --jobs`` relies on it)."""
    import numba

    from npconv.functional._tier import use_tier
    from npconv.functional.compiled import _jit

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs NUMBA_NUM_THREADS >= 2")
    with use_tier("compiled"):
        serial = run()
        monkeypatch.setattr(_jit, "PARALLEL_MIN_BYTES", 0)  # every call parallel
        monkeypatch.setattr(_jit, "PARALLEL_MIN_MULTIPLY_ADDS", 0)
        previous = numba.get_num_threads()
        try:
            numba.set_num_threads(1)
            one = run()
            numba.set_num_threads(2)
            two = run()
        finally:
            numba.set_num_threads(previous)
    assert len(one) == len(two) == len(serial)
    for a, b, c in zip(one, two, serial):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


@pytest.fixture(scope="session")
def torch():
    try:
        import torch as torch_module
    except ImportError:
        torch_module = None
    require(torch_module is not None, "PyTorch is not installed (pip install torch==2.13.0)")
    torch_module.set_default_dtype(torch_module.float64)
    return torch_module


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data sets: ``NPCONV_DATA``, else ``../shared/datasets`` beside the checkout."""
    env = os.environ.get("NPCONV_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "datasets"
    require(
        path.is_dir(),
        f"data directory {path} not found: set NPCONV_DATA=/path/to/datasets, the folder "
        "holding happy/, signs/, smiles/ (CONTRIBUTING.md, 'The tests and the data')",
    )
    return path


def phone_photo(face: np.ndarray, path: Path) -> Path:
    """``face`` (uint8 ``(h, w, 3)``) as a phone's photo at ``path``: an 8000 x 6000 JPEG (48 megapixels,
    a current phone's default) of 10-15 MB, the picture enlarged with sensor-like grain over it."""
    from PIL import Image

    picture = Image.fromarray(face).resize((8000, 6000), Image.Resampling.BILINEAR)
    grain = np.random.default_rng(0).integers(-12, 13, (600, 800, 1), dtype=np.int16)
    pixels = np.asarray(picture, dtype=np.int16)
    pixels += np.tile(grain, (10, 10, 1))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=90)
    assert 10 * 1024 * 1024 < path.stat().st_size < 15_000_000, path.stat().st_size
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def notebook_kernel(tmp_path, monkeypatch) -> str:
    """The name of a Jupyter kernel running this interpreter (so it sees this test run's packages)."""
    import json
    import sys

    for module in ("nbformat", "nbclient", "ipykernel"):
        try:
            __import__(module)
        except ImportError:
            require(False, f"{module} is not installed (pip install -e '.[dev]')")
    name = "npconv-test"
    spec = tmp_path / "jupyter" / "kernels" / name
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "npconv test",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    # The kernel runs in the notebook's folder: give it this run's npconv even when PYTHONPATH is relative.
    import npconv

    package_root = str(Path(npconv.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    return name


@pytest.fixture(params=["numpy", "compiled"])
def tier(request, monkeypatch):
    """Run a test once per kernel tier (see npconv.functional._tier); kernel test modules use it for
    every test with ``pytestmark = pytest.mark.usefixtures("tier")``."""
    from npconv.functional._tier import compiled_available, use_tier

    if request.param == "compiled":
        require(compiled_available(), "Numba is not installed (pip install numba)")
    with use_tier(request.param):
        yield request.param
