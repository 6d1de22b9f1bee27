"""The deeplearning.ai "Convolution model - Step by Step" functions, as readable loops.

This is the tier to read next to the lecture (course 4, week 1): the course's names, signatures,
NHWC layout ``(m, n_H, n_W, n_C)``, hyper-parameter dicts (``"pad"``, ``"stride"``, ``"f"``) and
cache tuples, written with the four nested loops ``i, h, w, c`` the notebook uses. The fast,
vectorised kernels in :mod:`npconv.functional` are tested against these functions.

Window ``(h, w)`` of a layer with window size ``f`` and stride ``s`` covers rows
``h*s : h*s+f`` and columns ``w*s : w*s+f`` of its (padded) input, and the output size is
``n_H = floor((n_H_prev + 2*pad - f) / stride) + 1`` (the same for ``n_W``).

As in the course, the random helpers use NumPy's legacy global generator (``np.random.seed``), so the
notebook's seeds give the notebook's numbers. Nothing else in npconv touches that global state.

Example (the notebook's own check)::

    >>> np.random.seed(1)
    >>> a_slice_prev, W, b = np.random.randn(4, 4, 3), np.random.randn(4, 4, 3), np.random.randn(1, 1, 1)
    >>> print(f"{conv_single_step(a_slice_prev, W, b):.11f}")
    -6.99908945068
"""

from __future__ import annotations

import numpy as np

from .errors import check_choice, check_float_array, check_positive_int, expected
from .functional._shapes import output_size

__all__ = [
    "zero_pad",
    "conv_single_step",
    "conv_forward",
    "conv_backward",
    "pool_forward",
    "pool_backward",
    "create_mask_from_window",
    "distribute_value",
    "random_mini_batches",
    "convert_to_one_hot",
]

POOL_MODES = ("max", "average")


def _hyper(hparameters: dict, needed: tuple[str, ...], function: str) -> tuple[int, ...]:
    """The integer hyper-parameters ``needed`` from the course's dict, with a message naming a missing key."""
    if not isinstance(hparameters, dict):
        raise TypeError(expected("hparameters", f"a dict with keys {list(needed)}", hparameters))
    values = []
    for key in needed:
        if key not in hparameters:
            raise KeyError(
                f"hparameters: {function} needs the key {key!r} (keys needed: "
                f"{', '.join(repr(k) for k in needed)}); got keys {sorted(hparameters)}."
            )
        value = hparameters[key]
        if key == "pad":
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(expected("hparameters['pad']", "an integer >= 0", value))
            values.append(int(value))
        else:
            values.append(check_positive_int(value, f"hparameters[{key!r}]"))
    return tuple(values)


def _check_mode(mode) -> str:
    return check_choice(mode, "mode", set(POOL_MODES))


def zero_pad(X, pad):
    """Pad every image of ``X`` with ``pad`` zeros around its height and width.

    Parameters
    ----------
    X : ndarray, shape (m, n_H, n_W, n_C)
    pad : int, amount of zeros on each of the four sides.

    Returns
    -------
    X_pad : ndarray, shape (m, n_H + 2*pad, n_W + 2*pad, n_C), same dtype as ``X``.
    """
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=0)


def conv_single_step(a_slice_prev, W, b):
    """Apply one filter to one window: ``Z = sum(a_slice_prev * W) + b``.

    Parameters
    ----------
    a_slice_prev : ndarray, shape (f, f, n_C_prev), one window of the (padded) input.
    W : ndarray, shape (f, f, n_C_prev), one filter.
    b : ndarray, shape (1, 1, 1) (or any one-element array), the filter's bias.

    Returns
    -------
    Z : NumPy scalar in the dtype of the inputs (``np.float64`` for the course's data).
    """
    s = np.multiply(a_slice_prev, W)
    # .item() turns the (1, 1, 1) bias into a Python scalar, so Z is a scalar, not a (1, 1, 1) array.
    return np.sum(s) + np.asarray(b).item()


def conv_forward(A_prev, W, b, hparameters):
    """Convolution forward pass, one output value at a time.

    ``Z[i, h, w, c] = sum(A_pad[i, h*s:h*s+f, w*s:w*s+f, :] * W[..., c]) + b[..., c]``
    where ``A_pad = zero_pad(A_prev, pad)`` and ``s = stride``.

    Parameters
    ----------
    A_prev : ndarray, shape (m, n_H_prev, n_W_prev, n_C_prev), float32 or float64.
    W : ndarray, shape (f, f, n_C_prev, n_C), one filter per output channel.
    b : ndarray, shape (1, 1, 1, n_C), one bias per filter.
    hparameters : dict with ``"stride"`` and ``"pad"``.

    Returns
    -------
    Z : ndarray, shape (m, n_H, n_W, n_C), dtype of ``A_prev``.
    cache : tuple ``(A_prev, W, b, hparameters)`` for :func:`conv_backward`.
    """
    A_prev = check_float_array(A_prev, "A_prev", ndim=4)
    W = check_float_array(W, "W", ndim=4)
    stride, pad = _hyper(hparameters, ("stride", "pad"), "conv_forward")
    (m, n_H_prev, n_W_prev, n_C_prev) = A_prev.shape
    (f, f_w, n_C_prev_w, n_C) = W.shape
    if f != f_w or n_C_prev_w != n_C_prev or np.size(b) != n_C:
        raise ValueError(
            expected(
                "W, b",
                f"W of shape (f, f, {n_C_prev}, n_C) and b of shape (1, 1, 1, n_C)",
                f"W {W.shape} and b {np.shape(b)}",
                "The course uses square filters whose depth is A_prev's channels.",
            )
        )
    n_H, n_W = output_size((n_H_prev, n_W_prev), (f, f), (stride, stride), ((pad, pad), (pad, pad)), "W")

    Z = np.zeros((m, n_H, n_W, n_C), dtype=A_prev.dtype)
    A_prev_pad = zero_pad(A_prev, pad)
    for i in range(m):  # loop over the batch of examples
        a_prev_pad = A_prev_pad[i]
        for h in range(n_H):  # loop over the output's rows
            vert_start = h * stride
            vert_end = vert_start + f
            for w in range(n_W):  # loop over the output's columns
                horiz_start = w * stride
                horiz_end = horiz_start + f
                a_slice_prev = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
                for c in range(n_C):  # loop over the filters (output channels)
                    Z[i, h, w, c] = conv_single_step(a_slice_prev, W[:, :, :, c], b[..., c])

    cache = (A_prev, W, b, hparameters)
    return Z, cache


def conv_backward(dZ, cache):
    """Convolution backward pass: gradients of the cost with respect to the input, filters and biases.

    For every output position ``(i, h, w, c)`` with window ``win = [h*s:h*s+f, w*s:w*s+f]``::

        dA_pad[i, win, :] += W[..., c] * dZ[i, h, w, c]
        dW[..., c]        += A_pad[i, win, :] * dZ[i, h, w, c]
        db[..., c]        += dZ[i, h, w, c]

    and ``dA_prev`` is ``dA_pad`` with the padding cut off.

    Parameters
    ----------
    dZ : ndarray, shape (m, n_H, n_W, n_C), gradient with respect to the output ``Z``.
    cache : tuple ``(A_prev, W, b, hparameters)`` from :func:`conv_forward`.

    Returns
    -------
    dA_prev : ndarray, shape (m, n_H_prev, n_W_prev, n_C_prev)
    dW : ndarray, shape (f, f, n_C_prev, n_C)
    db : ndarray, shape of ``b`` (the course's (1, 1, 1, n_C))
    """
    (A_prev, W, b, hparameters) = cache
    stride, pad = _hyper(hparameters, ("stride", "pad"), "conv_backward")
    (m, n_H_prev, n_W_prev, n_C_prev) = A_prev.shape
    (f, _, _, n_C) = W.shape
    (m, n_H, n_W, n_C) = dZ.shape

    dA_prev = np.zeros_like(A_prev)
    dW = np.zeros_like(W)
    db = np.zeros(np.shape(b), dtype=A_prev.dtype)
    A_prev_pad = zero_pad(A_prev, pad)
    dA_prev_pad = zero_pad(dA_prev, pad)
    for i in range(m):
        a_prev_pad = A_prev_pad[i]
        da_prev_pad = dA_prev_pad[i]
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    vert_start = h * stride
                    vert_end = vert_start + f
                    horiz_start = w * stride
                    horiz_end = horiz_start + f
                    a_slice = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
                    da_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :] += W[:, :, :, c] * dZ[i, h, w, c]
                    dW[:, :, :, c] += a_slice * dZ[i, h, w, c]
                    db[..., c] += dZ[i, h, w, c]
        # The course writes da_prev_pad[pad:-pad, pad:-pad]; explicit ends also work for pad = 0.
        dA_prev[i] = da_prev_pad[pad : pad + n_H_prev, pad : pad + n_W_prev, :]
    return dA_prev, dW, db


def pool_forward(A_prev, hparameters, mode="max"):
    """Pooling forward pass (no padding): ``A[i, h, w, c] = max or mean of A_prev[i, win, c]``.

    The window is ``win = [h*s:h*s+f, w*s:w*s+f]``; pooling works on each channel on its own,
    so ``n_C = n_C_prev``.

    Parameters
    ----------
    A_prev : ndarray, shape (m, n_H_prev, n_W_prev, n_C_prev), float32 or float64.
    hparameters : dict with ``"f"`` (window size) and ``"stride"``.
    mode : ``"max"`` or ``"average"``.

    Returns
    -------
    A : ndarray, shape (m, n_H, n_W, n_C_prev), dtype of ``A_prev``.
    cache : tuple ``(A_prev, hparameters)`` for :func:`pool_backward`.
    """
    A_prev = check_float_array(A_prev, "A_prev", ndim=4)
    mode = _check_mode(mode)
    f, stride = _hyper(hparameters, ("f", "stride"), "pool_forward")
    (m, n_H_prev, n_W_prev, n_C) = A_prev.shape
    n_H, n_W = output_size((n_H_prev, n_W_prev), (f, f), (stride, stride), ((0, 0), (0, 0)), "hparameters['f']")

    A = np.zeros((m, n_H, n_W, n_C), dtype=A_prev.dtype)
    for i in range(m):
        for h in range(n_H):
            vert_start = h * stride
            vert_end = vert_start + f
            for w in range(n_W):
                horiz_start = w * stride
                horiz_end = horiz_start + f
                for c in range(n_C):
                    a_prev_slice = A_prev[i, vert_start:vert_end, horiz_start:horiz_end, c]
                    if mode == "max":
                        A[i, h, w, c] = np.max(a_prev_slice)
                    else:
                        A[i, h, w, c] = np.mean(a_prev_slice)

    cache = (A_prev, hparameters)
    return A, cache


def create_mask_from_window(x):
    """Where the maximum of ``x`` is: ``mask = (x == max(x))``.

    Parameters
    ----------
    x : ndarray, shape (f, f), one pooling window.

    Returns
    -------
    mask : bool ndarray, shape of ``x``; True at the maximum. As in the course, a window with tied
        maxima marks every one of them (random real-valued data has no ties).
    """
    x = np.asarray(x)
    return x == np.max(x)


def distribute_value(dz, shape):
    """Spread ``dz`` evenly over a window: every entry is ``dz / (n_H * n_W)``.

    Parameters
    ----------
    dz : scalar, the gradient of one average-pooled output.
    shape : tuple (n_H, n_W), the window's shape.

    Returns
    -------
    a : ndarray, shape (n_H, n_W), whose entries sum to ``dz``.
    """
    (n_H, n_W) = shape
    average = dz / (n_H * n_W)
    # np.asarray: a Python number counts as float64 (NumPy 2 would let it take float32 and round it).
    return np.ones(shape, dtype=np.result_type(np.asarray(dz), np.float32)) * average


def pool_backward(dA, cache, mode="max"):
    """Pooling backward pass: route each output gradient back to its window.

    ``"max"``: ``dA_prev[i, win, c] += create_mask_from_window(A_prev[i, win, c]) * dA[i, h, w, c]``;
    ``"average"``: ``dA_prev[i, win, c] += distribute_value(dA[i, h, w, c], (f, f))``.
    Overlapping windows (stride < f) add up.

    Parameters
    ----------
    dA : ndarray, shape (m, n_H, n_W, n_C), gradient with respect to the pooled output ``A``.
    cache : tuple ``(A_prev, hparameters)`` from :func:`pool_forward`.
    mode : ``"max"`` or ``"average"``, as in the forward pass.

    Returns
    -------
    dA_prev : ndarray, shape of ``A_prev`` (m, n_H_prev, n_W_prev, n_C).
    """
    mode = _check_mode(mode)
    (A_prev, hparameters) = cache
    f, stride = _hyper(hparameters, ("f", "stride"), "pool_backward")
    (m, n_H, n_W, n_C) = dA.shape

    dA_prev = np.zeros_like(A_prev)
    for i in range(m):
        a_prev = A_prev[i]
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    vert_start = h * stride
                    vert_end = vert_start + f
                    horiz_start = w * stride
                    horiz_end = horiz_start + f
                    if mode == "max":
                        a_prev_slice = a_prev[vert_start:vert_end, horiz_start:horiz_end, c]
                        mask = create_mask_from_window(a_prev_slice)
                        dA_prev[i, vert_start:vert_end, horiz_start:horiz_end, c] += mask * dA[i, h, w, c]
                    else:
                        dA_prev[i, vert_start:vert_end, horiz_start:horiz_end, c] += distribute_value(
                            dA[i, h, w, c], (f, f)
                        )
    return dA_prev


def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    """Shuffle ``(X, Y)`` together and cut them into mini-batches (the course's ``cnn_utils`` helper).

    The shuffle is ``np.random.permutation(m)`` after ``np.random.seed(seed)``, so a seed gives the
    course's batches. Every batch has ``mini_batch_size`` examples except possibly the last, which
    holds the remaining ``m % mini_batch_size``.

    Parameters
    ----------
    X : ndarray, shape (m, n_H, n_W, n_C)
    Y : ndarray, shape (m, n_y)
    mini_batch_size : int
    seed : int

    Returns
    -------
    mini_batches : list of ``(mini_batch_X, mini_batch_Y)`` tuples.
    """
    mini_batch_size = check_positive_int(mini_batch_size, "mini_batch_size")
    m = X.shape[0]
    if Y.shape[0] != m:
        raise ValueError(
            expected(
                "Y", f"{m} rows, one per example of X (Y of shape (m, n_y))", Y, "Transpose it if it is (n_y, m): Y.T."
            )
        )
    np.random.seed(seed)
    permutation = np.random.permutation(m)
    shuffled_X = X[permutation]
    shuffled_Y = Y[permutation]
    return [
        (shuffled_X[k : k + mini_batch_size], shuffled_Y[k : k + mini_batch_size]) for k in range(0, m, mini_batch_size)
    ]


def convert_to_one_hot(Y, C):
    """One-hot encode integer labels the course's way: ``np.eye(C)[Y.reshape(-1)].T``.

    Parameters
    ----------
    Y : int ndarray of any shape (the course's labels are (1, m)), values in ``0 .. C-1``.
    C : int, number of classes.

    Returns
    -------
    ndarray, shape (C, m), float64; the course then transposes it to (m, C).
    """
    C = check_positive_int(C, "C")
    labels = np.asarray(Y).reshape(-1)
    if labels.dtype.kind not in "iu" or (labels.size and (labels.min() < 0 or labels.max() >= C)):
        raise ValueError(
            expected(
                "Y",
                f"integer labels in 0..{C - 1}",
                np.asarray(Y),
                "Pass class indices (e.g. Y.astype(int)) and the right number of classes C.",
            )
        )
    return np.eye(C)[labels].T
