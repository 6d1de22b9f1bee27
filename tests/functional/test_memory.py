"""Memory for the compiled kernels: scratch buffers aligned on a cache line, freed memory kept for
the next batch.
"""

import os

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("needs_numba")


def test_scratch_buffers_start_on_a_cache_line():
    """The direct convolution reads whole vectors of filters: in 16-byte aligned NumPy buffers they
    straddle cache lines."""
    from npconv.functional._workspace import ALIGNMENT, Workspace, aligned_empty, scratch

    workspace = Workspace()
    for shape, dtype in [((3,), np.float32), ((5, 7), np.float64), ((2, 3, 4), np.uint8)]:
        for array in (
            aligned_empty(shape, dtype),
            scratch(None, "a", shape, dtype),
            scratch(workspace, "a", shape, dtype),
        ):
            assert array.shape == shape and array.dtype == dtype and array.flags.c_contiguous
            assert array.ctypes.data % ALIGNMENT == 0


def test_a_bordered_buffer_keeps_its_zero_border_until_something_else_may_have_written_it():
    """Workspace.bordered writes the border once and hands the same view back while only the
    inside is written; after a get of the name, or for another shape, padding or dtype, it writes
    the border again."""
    from npconv.functional._workspace import Workspace

    def border(a, pads):
        (top, bottom), (left, right) = pads
        inside = np.zeros(a.shape, bool)
        inside[:, top : a.shape[1] - bottom, left : a.shape[2] - right] = True
        return a[~inside]

    workspace, shape, pads = Workspace(), (2, 5, 6, 3), ((1, 1), (2, 0))
    first = workspace.bordered("x_pad", shape, pads, np.float32)
    assert not border(first, pads).any()
    first[:, 1:4, 2:] = 7  # a layer writes the inside only
    again = workspace.bordered("x_pad", shape, pads, np.float32)
    assert again is first and not border(again, pads).any()
    workspace.get("x_pad", (np.prod(shape),), np.float32)[:] = 5  # anything, border included
    assert not border(workspace.bordered("x_pad", shape, pads, np.float32), pads).any()
    for other_shape, other_pads, dtype in [
        ((2, 6, 6, 3), pads, np.float32),
        (shape, ((0, 2), (1, 1)), np.float32),
        (shape, pads, np.float64),
    ]:
        workspace.bordered("x_pad", shape, pads, np.float32)[:] = 3  # the inside and, here, the border
        buffer = workspace.bordered("x_pad", other_shape, other_pads, dtype)
        assert buffer.shape == other_shape and buffer.dtype == dtype
        assert not border(buffer, other_pads).any()


def test_a_bordered_buffer_serves_fewer_images_without_writing_its_border_again():
    """An epoch's last, smaller batch gets the first images of the same memory, whose borders stand
    (no write: a value put inside the first image stays); a batch of more images than were bordered
    has every border written."""
    from npconv.functional._workspace import Workspace

    workspace, pads = Workspace(), ((1, 1), (1, 1))
    workspace.get("x_pad", (4 * 6 * 6 * 2,), np.float32)[:] = 9  # room for 4 images, all of it junk
    three = workspace.bordered("x_pad", (3, 6, 6, 2), pads, np.float32)
    three[:, 1:5, 1:5] = 7
    two = workspace.bordered("x_pad", (2, 6, 6, 2), pads, np.float32)
    assert two.shape == (2, 6, 6, 2) and two.ctypes.data == three.ctypes.data
    assert not two[:, 0].any() and not two[:, :, 0].any() and (two[:, 1:5, 1:5] == 7).all()
    again = workspace.bordered("x_pad", (3, 6, 6, 2), pads, np.float32)
    assert again.shape == three.shape and again.ctypes.data == three.ctypes.data and (again[:, 1:5, 1:5] == 7).all()
    four = workspace.bordered("x_pad", (4, 6, 6, 2), pads, np.float32)
    assert not four[:, 0].any() and not four[:, 5].any() and not four[:, :, 0].any() and not four[:, :, 5].any()


def test_freed_memory_is_kept_once_per_process(monkeypatch):
    """glibc's thresholds are set at the first forward pass, once, and never over a user's own."""
    from npconv.functional import _memory

    calls = []

    class FakeLibc:
        def mallopt(self, option, value):
            calls.append((option, value))
            return 1

    monkeypatch.setattr(_memory.ctypes, "CDLL", lambda name: FakeLibc())
    monkeypatch.setattr(_memory.sys, "platform", "linux")
    for name in [n for n in os.environ if n.startswith("MALLOC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(_memory, "_applied", False)
    assert _memory.keep_freed_memory()
    assert calls == [(-3, _memory.MMAP_THRESHOLD), (-1, _memory.TRIM_THRESHOLD)]
    assert not _memory.keep_freed_memory() and len(calls) == 2
    monkeypatch.setattr(_memory, "_applied", False)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert not _memory.keep_freed_memory() and len(calls) == 2


def test_compiled_kernels_write_their_outputs_from_a_cache_line():
    """A vector store that straddles two cache lines costs two: Happy's batch norm + ReLU + pool
    forward into NumPy's 16-byte aligned arrays took 0.8 ms in a training step against 0.35 ms
    into aligned ones. Every full-size array a compiled kernel writes starts on a cache line."""
    from npconv.functional._tier import use_tier
    from npconv.functional._workspace import ALIGNMENT

    with use_tier("compiled"):
        outputs = _compiled_outputs()
    misaligned = {name: out.ctypes.data % ALIGNMENT for name, out in outputs.items() if out.ctypes.data % ALIGNMENT}
    assert not misaligned


def _compiled_outputs() -> dict:
    """The full-size outputs of the compiled kernels that are not convolutions (the convolution's
    are :func:`~npconv.functional._workspace.scratch` buffers), by the function that returns them."""
    import npconv.functional as F
    from npconv.functional.standardize import standardize_backward, standardize_forward

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 16, 16, 16), dtype=np.float32)
    gamma, beta = np.ones(16, np.float32), np.zeros(16, np.float32)
    mean, var = np.zeros(16, np.float32), np.ones(16, np.float32)
    normalised, norm_cache = F.batchnorm_forward(x, gamma, beta, relu=True)
    pooled, (fused_norm_cache, pool_cache) = F.batchnorm_relu_maxpool_forward(x, gamma, beta, 2)
    summed, add_pool_cache = F.add_maxpool_forward(x, x, 2)
    standardised, standardize_cache = standardize_forward(x)
    return {
        "batchnorm_forward": normalised,
        "batchnorm_backward": F.batchnorm_backward(x, norm_cache)[0],
        "batchnorm_inference_forward": F.batchnorm_inference_forward(x, gamma, beta, mean, var)[0],
        "batchnorm_relu_maxpool_forward": pooled,
        "batchnorm_relu_maxpool_forward's winners": pool_cache.winner,
        "batchnorm_relu_maxpool_backward": F.batchnorm_relu_maxpool_backward(pooled, fused_norm_cache, pool_cache)[0],
        "add_maxpool_forward": summed,
        "add_maxpool_forward's winners": add_pool_cache.winner,
        "pool2d_forward": F.pool2d_forward(x, 2)[0],
        "relu_backward": F.relu_backward(x, normalised),
        "standardize_forward": standardised,
        "standardize_backward": standardize_backward(x, standardize_cache),
    }
