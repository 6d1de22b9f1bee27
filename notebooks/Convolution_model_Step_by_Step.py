# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Convolutional Neural Networks: Step by Step (exercises)
#
# The deeplearning.ai course's first convolution assignment, checked by npconv. You write the step
# functions of a convolutional network in NumPy — zero padding, one convolution step, the convolution
# and pooling forward passes and, optionally, both backward passes — and after each one a check runs
# the course's own test cases and random ones against npconv's reference. A correct function prints
# the green **All tests passed!**; a wrong one raises `AssertionError` saying which case failed and
# what to look at, for example
#
#     the course's example (A_prev (2, 5, 7, 4), W (3, 3, 4, 8), b (1, 1, 1, 8)): with stride 2 and pad 1
#     Z's shape should be (2, 3, 4, 8); got (2, 5, 7, 8): is the stride used? ...
#
# Every array is laid out `(m, n_H, n_W, n_C)`: examples, height, width, channels. Write your code
# where it says `# YOUR CODE HERE` and replace the `None`s. The solutions are in `npconv.course`
# (try first!).

# %%
import numpy as np

from npconv.testing import *  # the course's `from public_tests import *`

np.random.seed(1)


# %% [markdown]
# ## 1. Zero padding
#
# Padding adds zeros around the height and width of each image, so a convolution can keep the
# image's size and use the pixels at its border as much as those in the middle. Use `np.pad`; pad
# only axes 1 and 2 (height and width), never the examples or the channels.


# %% exercise="zero_pad" tags=["exercise"]
def zero_pad(X, pad):
    """Pad with zeros the height and width of every image of X.

    X -- array of shape (m, n_H, n_W, n_C)
    pad -- integer, the number of zeros on each side

    Returns X_pad, of shape (m, n_H + 2 * pad, n_W + 2 * pad, n_C)
    """
    # YOUR CODE HERE (1 line)
    X_pad = None

    return X_pad


# %%
zero_pad_test(zero_pad)


# %% [markdown]
# ## 2. One step of convolution
#
# One filter `W` applied to one window `a_slice_prev` of the (padded) input: multiply them element by
# element, sum everything, and add the bias. `b` has shape `(1, 1, 1)`: add it as a number, `b.item()`,
# so that `Z` is a NumPy float and not an array.


# %% exercise="conv_single_step" tags=["exercise"]
def conv_single_step(a_slice_prev, W, b):
    """Z = sum(a_slice_prev * W) + b, a NumPy float.

    a_slice_prev -- window of the input, shape (f, f, n_C_prev)
    W -- one filter, shape (f, f, n_C_prev)
    b -- its bias, shape (1, 1, 1)
    """
    # YOUR CODE HERE (2 lines)
    Z = None

    return Z


# %%
conv_single_step_test(conv_single_step)


# %% [markdown]
# ## 3. Convolution forward pass
#
# Slide every filter over every example: output `(i, h, w, c)` is `conv_single_step` of the window
# `A_prev_pad[i, h*stride : h*stride + f, w*stride : w*stride + f, :]` with `W[:, :, :, c]` and
# `b[:, :, :, c]`. The output size is
#
#     n_H = int((n_H_prev - f + 2 * pad) / stride) + 1        (the same for n_W)
#
# and the output has one channel per filter. Return the cache `(A_prev, W, b, hparameters)`: the
# backward pass reads it.


# %% exercise="conv_forward" tags=["exercise"]
def conv_forward(A_prev, W, b, hparameters):
    """Z[i, h, w, c] = sum(A_pad[i, h*s:h*s+f, w*s:w*s+f, :] * W[..., c]) + b[..., c].

    A_prev -- shape (m, n_H_prev, n_W_prev, n_C_prev)
    W -- filters, shape (f, f, n_C_prev, n_C)
    b -- biases, shape (1, 1, 1, n_C)
    hparameters -- dict with "stride" and "pad"

    Returns Z, of shape (m, n_H, n_W, n_C), and cache = (A_prev, W, b, hparameters)
    """
    # YOUR CODE HERE: sizes, Z = np.zeros(...), A_prev_pad, then four loops (i, h, w, c)
    Z = None

    cache = (A_prev, W, b, hparameters)
    return Z, cache


# %%
conv_forward_test(conv_forward)


# %% [markdown]
# ## 4. Pooling forward pass
#
# Pooling shrinks each channel on its own: output `(i, h, w, c)` is the maximum (`mode="max"`) or the
# mean (`mode="average"`) of `A_prev[i, h*stride : h*stride + f, w*stride : w*stride + f, c]`. No
# padding, no weights; `n_H = int(1 + (n_H_prev - f) / stride)`.


# %% exercise="pool_forward" tags=["exercise"]
def pool_forward(A_prev, hparameters, mode="max"):
    """A[i, h, w, c] = max or mean of A_prev[i, h*s:h*s+f, w*s:w*s+f, c].

    A_prev -- shape (m, n_H_prev, n_W_prev, n_C_prev)
    hparameters -- dict with "f" and "stride"
    mode -- "max" or "average"

    Returns A, of shape (m, n_H, n_W, n_C_prev), and cache = (A_prev, hparameters)
    """
    # YOUR CODE HERE: sizes, A = np.zeros(...), then four loops (i, h, w, c)
    A = None

    cache = (A_prev, hparameters)
    return A, cache


# %%
pool_forward_test(pool_forward)


# %% [markdown]
# ## 5. Backward pass (optional, ungraded in the course)
#
# ### 5.1 Convolution backward
#
# For every output position, with `win = [h*stride : h*stride + f, w*stride : w*stride + f]`:
#
#     dA_prev_pad[i, win, :] += W[:, :, :, c] * dZ[i, h, w, c]
#     dW[:, :, :, c]         += A_prev_pad[i, win, :] * dZ[i, h, w, c]
#     db[:, :, :, c]         += dZ[i, h, w, c]
#
# then cut the padding off `dA_prev_pad` (careful: with `pad = 0`, `x[pad:-pad]` is empty). Each
# gradient has the shape of what it is the gradient of.


# %% exercise="conv_backward" tags=["exercise"]
def conv_backward(dZ, cache):
    """Gradients of the cost with respect to A_prev, W and b.

    dZ -- gradient with respect to Z, shape (m, n_H, n_W, n_C)
    cache -- (A_prev, W, b, hparameters) from conv_forward

    Returns dA_prev (m, n_H_prev, n_W_prev, n_C_prev), dW (f, f, n_C_prev, n_C), db (1, 1, 1, n_C)
    """
    (A_prev, W, b, hparameters) = cache
    # YOUR CODE HERE: zeros of the right shapes, pad A_prev and dA_prev, four loops, cut the padding
    dA_prev, dW, db = None, None, None

    return dA_prev, dW, db


# %%
conv_backward_test(conv_backward)


# %% [markdown]
# ### 5.2 Max pooling backward: the mask
#
# Only the window's maximum reached the output, so only it receives the gradient. The mask is
# `True` at the maximum of the window `x` and `False` everywhere else.


# %% exercise="create_mask_from_window" tags=["exercise"]
def create_mask_from_window(x):
    """mask = (x == max(x)), a boolean array of x's shape (f, f)."""
    # YOUR CODE HERE (1 line)
    mask = None

    return mask


# %%
create_mask_from_window_test(create_mask_from_window)


# %% [markdown]
# ### 5.3 Average pooling backward: spreading the gradient
#
# Every entry of the window counted equally in the mean, so each receives an equal share of the
# gradient `dz`: `dz / (n_H * n_W)`.


# %% exercise="distribute_value" tags=["exercise"]
def distribute_value(dz, shape):
    """An array of shape (n_H, n_W) whose every entry is dz / (n_H * n_W)."""
    # YOUR CODE HERE (2 lines)
    a = None

    return a


# %%
distribute_value_test(distribute_value)


# %% [markdown]
# ### 5.4 Pooling backward
#
# Put the two together: for every output position, the window of `dA_prev` receives
# `create_mask_from_window(window) * dA[i, h, w, c]` (max) or `distribute_value(dA[i, h, w, c], (f, f))`
# (average). Where windows overlap (stride < f) the contributions add up.


# %% exercise="pool_backward" tags=["exercise"]
def pool_backward(dA, cache, mode="max"):
    """Gradient with respect to the pooling layer's input.

    dA -- gradient with respect to A, shape (m, n_H, n_W, n_C)
    cache -- (A_prev, hparameters) from pool_forward
    mode -- "max" or "average"

    Returns dA_prev, of A_prev's shape
    """
    (A_prev, hparameters) = cache
    # YOUR CODE HERE: dA_prev = np.zeros(...), four loops, += the mask or the distributed value
    dA_prev = None

    return dA_prev


# %%
pool_backward_test(pool_backward)

# %% [markdown]
# ## 6. Your functions inside a network
#
# The checks above run each function on its own, on random arrays. `npconv.trace` runs them where they
# belong: inside a network, in one real training step. `trace.step(model, x, y, kernels=...)` runs the
# forward pass and the backward pass of the loss for a batch, with every `Conv2D` and pooling layer
# going through *your* `conv_forward`, `conv_backward`, `pool_forward` and `pool_backward` (here, the
# ones defined in this notebook: `kernels=globals()`), and records every layer's output and gradients.
# The model is left exactly as it was.
#
# The course's SIGNS model does not quite fit: its 4x4 convolutions with `padding='same'` are padded as
# TensorFlow does, one row above and two below, and the course's `conv_forward` pads every side by the
# same `pad`. `npconv.trace` says so:

# %%
import os
from pathlib import Path

import npconv
from npconv import data, trace
from npconv import layers as L
from npconv.apps.signs import convolutional_model

signs_file = Path(os.environ.get("NPCONV_DATA", "../data")) / "signs" / "test_signs.h5"
if signs_file.exists():
    signs = data.load_h5(signs_file)
    x, label = signs.x[:1] / 255.0, int(signs.y[0])  # one photo of a hand sign
else:
    x, label = np.random.default_rng(0).random((1, 64, 64, 3)), 2  # (no SIGNS data here: random pixels)
y = np.eye(6)[[label]]

course_model = convolutional_model()
course_model.compile(optimizer="adam", loss="categorical_crossentropy")
try:
    trace.step(course_model, x, y, kernels=globals())
except trace.LearnerCodeError as error:
    print(error)

# %% [markdown]
# So take the same network with odd kernels, 5x5 and 3x3, which "same" pads evenly (2 and 1). Run one
# step with npconv's kernels and one with yours, both in float64, and compare them:
# `first_difference` walks through the step in the order it is computed (every layer's output, then
# the gradients from the loss back to the input) and returns the first value that differs, or `None`.

# %%
npconv.utils.set_random_seed(1)
model = npconv.Sequential(
    [
        L.Conv2D(8, 5, padding="same", input_shape=(64, 64, 3), name="conv1"),
        L.ReLU(name="relu1"),
        L.MaxPooling2D(8, strides=8, padding="same", name="pool1"),
        L.Conv2D(16, 3, padding="same", name="conv2"),
        L.ReLU(name="relu2"),
        L.MaxPooling2D(4, strides=4, padding="same", name="pool2"),
        L.Flatten(name="flatten"),
        L.Dense(6, activation="softmax", name="fc"),
    ]
)
model.compile(optimizer="adam", loss="categorical_crossentropy")

reference = trace.step(model, x, y, dtype="float64")
mine = trace.step(model, x, y, kernels=globals(), dtype="float64")
print(f"loss {mine.loss:.10f} with your functions, {reference.loss:.10f} with npconv's")
print("first difference:", mine.first_difference(reference))

# %% [markdown]
# Every number of the step is there: `mine.output("conv1")`, `mine.grad("conv2", "dW")`, `"dout"`,
# `"dx"`, `"db"`. And each entry of a gradient opens into the terms that make it. `dW[i, j, c, f]` of
# a convolution adds up, over every example and output position `(h, w)`, the padded input at
# `(h * stride + i, w * stride + j, c)` times `dZ[h, w, f]` — the line
# `dW[:, :, :, c] += a_slice * dZ[i, h, w, c]` of your `conv_backward`, one term per pass through it:

# %%
dW = mine.grad("conv2", "dW")
index = tuple(int(k) for k in np.unravel_index(np.argmax(np.abs(dW)), dW.shape))  # its largest entry
terms = mine.terms("conv2", "dW", index)
print(f"dW{list(index)} of conv2 = the sum of {len(terms)} terms {terms.a_label} * {terms.b_label}; the largest:")
for k in np.argsort(-np.abs(terms.products))[:5]:
    print(
        f"  {terms.a_label}{terms.a_index[k].tolist()} * {terms.b_label}{terms.b_index[k].tolist()}"
        f" = {terms.a[k]:+.6f} * {terms.b[k]:+.6f}"
    )
print(f"sum of the terms {terms.sum:.12f}, dW{list(index)} = {dW[index]:.12f}")

# %% [markdown]
# Now a classic slip: `=` where `+=` should add up the gradients of overlapping windows in
# `dA_prev_pad`. This `conv_backward` is right but for that one line; `first_difference` finds the
# layer and the gradient where it first shows, and says what kind of mistake gives that pattern.


# %%
def conv_backward_with_a_slip(dZ, cache):
    """conv_backward with `=` for `+=` in dA_prev_pad (only the last window's gradient is kept)."""
    (A_prev, W, b, hparameters) = cache
    stride, pad = hparameters["stride"], hparameters["pad"]
    f, n_C = W.shape[0], W.shape[3]
    (m, n_H, n_W, _) = dZ.shape
    A_prev_pad = np.pad(A_prev, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dA_prev_pad, dW, db = np.zeros(A_prev_pad.shape), np.zeros(W.shape), np.zeros(b.shape)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                vs, hs = h * stride, w * stride
                for c in range(n_C):
                    dA_prev_pad[i, vs : vs + f, hs : hs + f, :] = W[:, :, :, c] * dZ[i, h, w, c]  # the slip
                    dW[:, :, :, c] += A_prev_pad[i, vs : vs + f, hs : hs + f, :] * dZ[i, h, w, c]
                    db[:, :, :, c] += dZ[i, h, w, c]
    return dA_prev_pad[:, pad : pad + A_prev.shape[1], pad : pad + A_prev.shape[2], :], dW, db


slipped = trace.step(model, x, y, kernels={**globals(), "conv_backward": conv_backward_with_a_slip}, dtype="float64")
print(slipped.first_difference(reference))

# %% [markdown]
# ## What next
#
# `npconv.course` has these functions as the course writes them; `npconv.functional` has the same
# maths vectorised (one matrix product per convolution), fast enough to train networks on. The
# notebook `Convolution_model_Application.ipynb` uses them to build the course's Happy House and SIGNS
# models. Your own functions can train a network too, slowly but truly: `model.fit(x, y,
# kernels=globals())`, or `npconv train DATA --arch happy --kernels my_functions.py`, which also says
# how many times slower than npconv's kernels they are.
