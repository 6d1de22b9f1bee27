"""The conv and pool kernels' gradients against numerical ones on random shapes, strides and paddings
(hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from npconv.functional import conv2d_backward, conv2d_forward, pool2d_backward, pool2d_forward
from npconv.gradcheck import gradcheck


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    m=st.integers(1, 2),
    n_h=st.integers(1, 6),
    n_w=st.integers(1, 6),
    n_c=st.integers(1, 3),
    n_k=st.integers(1, 3),
    f_h=st.integers(1, 3),
    f_w=st.integers(1, 3),
    stride=st.integers(1, 3),
    padding=st.sampled_from(["valid", "same", 0, 1, ((0, 1), (2, 0))]),
    seed=st.integers(0, 2**31),
)
def test_conv2d_gradients_on_random_geometry(m, n_h, n_w, n_c, n_k, f_h, f_w, stride, padding, seed):
    pads = {"valid": ((0, 0), (0, 0)), "same": ((f_h, f_h), (f_w, f_w)), 0: ((0, 0), (0, 0)), 1: ((1, 1), (1, 1))}.get(
        padding, padding
    )
    assume(f_h <= n_h + sum(pads[0]) and f_w <= n_w + sum(pads[1]))  # else a ShapeError, tested above
    rng = np.random.default_rng(seed)
    inputs = {
        "x": rng.standard_normal((m, n_h, n_w, n_c)),
        "w": rng.standard_normal((f_h, f_w, n_c, n_k)),
        "b": rng.standard_normal(n_k),
    }
    gradcheck(lambda x, w, b: conv2d_forward(x, w, b, stride, padding), conv2d_backward, inputs)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    n_h=st.integers(1, 7),
    n_w=st.integers(1, 7),
    n_c=st.integers(1, 3),
    f=st.integers(1, 3),
    stride=st.one_of(st.none(), st.integers(1, 3)),
    padding=st.sampled_from(["valid", "same"]),
    mode=st.sampled_from(["max", "average"]),
    seed=st.integers(0, 2**31),
)
def test_pool2d_gradients_on_random_geometry(n_h, n_w, n_c, f, stride, padding, mode, seed):
    assume(padding != "valid" or f <= min(n_h, n_w))  # else a ShapeError
    x = np.random.default_rng(seed).permutation(2 * n_h * n_w * n_c).reshape(2, n_h, n_w, n_c) / 7.0
    # Distinct values (a permutation) keep every max window free of ties, where max has no derivative.
    gradcheck(lambda x: pool2d_forward(x, f, stride, padding, mode), pool2d_backward, {"x": x})
