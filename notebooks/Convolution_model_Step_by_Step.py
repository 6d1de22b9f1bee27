# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
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

from npconv.testing import *   # the course's `from public_tests import *`

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
# ## What next
#
# `npconv.course` has these functions as the course writes them; `npconv.functional` has the same
# maths vectorised (one matrix product per convolution), fast enough to train networks on. The
# notebook `Convolution_model_Application.ipynb` uses them to build the course's Happy House and SIGNS
# models.
