"""How much slower the learner's loops are than npconv's kernels, on one batch of a model."""

from __future__ import annotations

import time

from .step import step


def step_seconds(model, x, y, kernels=None, repeat: int = 1) -> float:
    """The best of ``repeat`` timed :func:`~npconv.trace.step` calls (forward and backward of one
    batch), with npconv's kernels or the learner's (``kernels``)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        step(model, x, y, kernels=kernels)
        best = min(best, time.perf_counter() - start)
    return best


def slowdown(model, x, y, kernels) -> str:
    """``"your kernels: 2.1 s per step of a batch of 32, npconv's: 0.012 s (175x slower)"``."""
    step(model, x, y)  # compiles npconv's kernels, so their time is the running time
    mine = step_seconds(model, x, y, kernels)
    npconvs = step_seconds(model, x, y, repeat=3)
    return (
        f"your kernels: {mine:.3g} s per forward and backward pass of a batch of {len(x)}, npconv's: "
        f"{npconvs:.3g} s ({mine / npconvs:.0f}x slower)"
    )
