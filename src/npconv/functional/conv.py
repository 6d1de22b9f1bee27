"""2-D convolution, vectorised: im2col (a strided view, copied once) and one BLAS GEMM.

Forward, for every example ``i``, output position ``(h, w)`` and filter ``k``::

    Z[i, h, w, k] = sum(X_pad[i, h*sh : h*sh+fh, w*sw : w*sw+fw, :] * W[:, :, :, k]) + b[k]

which is the matrix product ``cols @ W2`` with ``cols[(i, h, w), (p, q, c)] = X_pad[i, h*sh+p, w*sw+q, c]``
of shape ``(M, fh * fw * n_C)``, ``M = m * n_H * n_W``, and ``W2 = W.reshape(fh * fw * n_C, K)``. Backward
is two more products: ``dW2 = cols.T @ dZ2`` and ``dcols = dZ2 @ W2.T``, the latter scattered back onto
the input windows (col2im).

The patch matrix is built in one of two memory layouts (same maths, same results):

* rows of patches, ``(M, fh*fw*n_C)``, for inputs with many channels: each copied run is a window row,
  ``fw * n_C`` contiguous values;
* columns of patches, ``(fh*fw*n_C, M)``, for images with few channels (RGB, grayscale): each copied run
  is a whole image row, where the other layout would copy 3-value snippets (several times faster on
  the course models' first layers). The output is still a C-contiguous NHWC
  array (see :func:`_channel_major_product`): the layers after a convolution (batch norm, pooling)
  run slower on a channel-major view.

With the compiled tier (:mod:`npconv.functional._tier`), stride-1 convolutions skip the patch matrix
altogether and run direct over the padded NHWC input (:mod:`npconv.functional.compiled.conv`:
register-blocked tiles for the forward, the weight gradient, and the input gradient as the forward
over the output gradient with the kernel flipped), and col2im runs as one compiled scatter-add, 1 x 1
kernels included. Of those, 3 x 3 "same" convolutions with an even output and channels and filters
in whole vectors run by Winograd's F(2 x 2, 3 x 3) (:mod:`npconv.functional.compiled.winograd`: 16
multiply-adds per channel and filter for a 2 x 2 tile of outputs, where the direct tiles do 36). In
the NumPy tier a ``1 x 1`` convolution is one GEMM on the input itself.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..errors import ShapeError, check_float_array, expected
from ._reduce import column_sum
from ._shapes import Padding2D, check_dout, output_size, window_geometry
from ._threads import matmul
from ._tier import load_compiled, tiered
from ._workspace import Workspace, aligned_empty, scratch
from .batchnorm import batch_moments_of_rows
from .padding import bordered_empty, check_bordered, pad_nhwc

# Below this many input channels the patch matrix is built channel-major (see the module docstring).
FEW_CHANNELS = 8


class ConvCache(NamedTuple):
    cols: np.ndarray  # "rows": patch matrix (M, fh*fw*n_C); "channel_major": (fh*fw*n_C, M);
    # "direct": the zero-padded input (m, H_pad, W_pad, n_C), C-contiguous;
    # "pointwise": the input itself (M, n_C), for a 1 x 1 kernel
    layout: str
    w: np.ndarray  # (fh, fw, n_C, K) in the dtype of x
    b_shape: tuple | None  # the shape of the bias given, so db comes back in it; None: no bias
    x_shape: tuple  # (m, n_H_prev, n_W_prev, n_C)
    stride: tuple[int, int]
    pads: Padding2D


def conv2d_forward(x, w, b, stride=1, padding=0, workspace: Workspace | None = None, x_pad=None):
    """Convolve a batch of NHWC images with ``K`` filters.

    Parameters
    ----------
    x : ndarray, shape (m, n_H_prev, n_W_prev, n_C)
    w : ndarray, shape (fh, fw, n_C, K)
    b : ndarray, shape (K,) or the course's (1, 1, 1, K); ``None`` for a convolution without bias
        (its backward then returns ``db = None`` and skips the sum)
    stride : int or (sh, sw)
    padding : int, (ph, pw), ((top, bottom), (left, right)), ``"valid"`` or ``"same"`` (TensorFlow's rule)
    workspace : optional :class:`~npconv.functional._workspace.Workspace` whose buffers the patch
        matrix reuses (layers pass one; the returned cache is then valid until the next call)
    x_pad : optional, ``x`` already inside its zero padding: the buffer whose interior ``x`` is
        (:func:`~npconv.functional.padding.bordered_empty`, the layer before having written into
        it), read by the direct kernel instead of a padded copy (:func:`direct_input_padding`
        gives the padding; other kernels read ``x``)

    Returns
    -------
    out : ndarray, shape (m, n_H, n_W, K), dtype of ``x``
    cache : ConvCache for :func:`conv2d_backward`
    """
    return _checked_forward(x, w, b, stride, padding, workspace, False, x_pad)[:2]


def conv2d_forward_with_moments(x, w, b, stride=1, padding=0, workspace: Workspace | None = None, x_pad=None):
    """:func:`conv2d_forward`, and the per-filter mean and variance of its output where the compiled
    direct kernel computed them as it wrote it: ``(out, cache, moments)``, ``moments`` a
    :class:`~npconv.functional.batchnorm.BatchMoments` or ``None`` (the NumPy tier, or a shape the
    direct kernel does not take). A batch norm that reads ``out`` takes them instead of a pass of
    its own (:func:`~npconv.functional.batchnorm_forward`'s ``moments``).

    Each output row's tiles sum its outputs less the row's first one, and their squares, from the
    registers they are in (the data's type); the rows are combined in float64 by Chan's rule.
    """
    return _checked_forward(x, w, b, stride, padding, workspace, True, x_pad)


def _checked_forward(x, w, b, stride, padding, workspace, with_moments, x_pad):
    x = check_float_array(x, "x", 4)
    w = check_float_array(w, "w", 4).astype(x.dtype, copy=False)
    if b is None:
        b_shape, b = None, np.zeros(w.shape[3], x.dtype)
    else:
        b = check_float_array(b, "b")
        b_shape = b.shape
    m, n_h_prev, n_w_prev, n_c = x.shape
    fh, fw, w_c, n_k = w.shape
    if w_c != n_c:
        raise ShapeError(
            expected(
                "w",
                f"{n_c} input channels in w.shape[2] to match x of shape {x.shape}",
                w,
                "Kernels are (f_h, f_w, n_C_prev, n_C).",
            )
        )
    if b.size != n_k or b.shape not in ((n_k,), (1, 1, 1, n_k)):
        raise ShapeError(expected("b", f"shape ({n_k},) or (1, 1, 1, {n_k})", b, "One bias per filter."))
    stride, pads, out_size = window_geometry((n_h_prev, n_w_prev), (fh, fw), stride, padding, "conv2d kernel")
    bias = b.reshape(n_k).astype(x.dtype, copy=False)
    if x_pad is not None:
        check_bordered(x_pad, x, pads, "x_pad")
    return _convolve(x, w, bias, b_shape, stride, pads, out_size, workspace, with_moments, x_pad)


def direct_input_padding(x_shape: tuple, w_shape: tuple, stride=1, padding=0) -> Padding2D | None:
    """The zero padding the compiled direct kernel reads around an input of ``x_shape``
    ``(m, n_H_prev, n_W_prev, n_C)`` convolved with filters of ``w_shape``, for a layer to write its
    output into (:func:`~npconv.functional.padding.bordered_empty`) and hand the convolution as
    ``x_pad``; ``None`` where that kernel would not run, or pads nothing."""
    return _direct_input_padding(x_shape, w_shape, stride, padding)


def _no_direct_kernel(*args) -> None:
    """The NumPy tier has no direct kernel to read a padded buffer."""
    return None


@tiered(_no_direct_kernel)
def _direct_input_padding(kernels, x_shape, w_shape, stride, padding):
    """:func:`direct_input_padding` where the compiled tier is on."""
    stride, pads, out_size = window_geometry(x_shape[1:3], w_shape[:2], stride, padding, "conv2d kernel")
    if pads == ((0, 0), (0, 0)) or not _direct_applies(tuple(w_shape[:2]), int(x_shape[2]), stride, pads, out_size):
        return None
    return pads


def direct_input_buffer(x_shape: tuple, dtype, w_shape: tuple, stride=1, padding=0, workspace=None):
    """A :class:`~npconv.functional.padding.Bordered` buffer for an input of ``x_shape`` (the
    workspace's ``"x_pad"``), for a layer to write into and pass on as :func:`conv2d_forward`'s ``x``
    (its interior) and ``x_pad`` (its padded array); ``None`` where :func:`direct_input_padding` is."""
    pads = direct_input_padding(x_shape, w_shape, stride, padding)
    return None if pads is None else bordered_empty(x_shape, pads, dtype, workspace, "x_pad")


def _patch_matrix_forward(x, w, bias, b_shape, stride, pads, out_size, workspace, with_moments, x_pad):
    """:func:`conv2d_forward` as one GEMM of a patch matrix (its layout chosen by the shapes, see
    the module docstring) with the filters; no moments."""
    m, n_c = x.shape[0], x.shape[3]
    fh, fw, _, n_k = w.shape
    w2 = w.reshape(-1, n_k)
    if (fh, fw) == (1, 1) and stride == (1, 1) and pads == ((0, 0), (0, 0)):
        layout = "pointwise"
        cols = np.ascontiguousarray(x).reshape(-1, n_c)
        out = matmul(cols, w2)
    elif n_c < FEW_CHANNELS:
        layout = "channel_major"
        cols = im2col_channel_major(x, pads, (fh, fw), stride, out_size, workspace)
        out = _channel_major_product(cols, w2)
    else:
        layout = "rows"
        cols = im2col(pad_nhwc(x, pads, workspace=workspace), (fh, fw), stride, out_size, workspace)
        out = matmul(cols, w2)
    out += bias
    cache = ConvCache(cols, layout, w, b_shape, x.shape, stride, pads)
    return out.reshape(m, *out_size, n_k), cache, None


def _runs_direct(x, w, bias, b_shape, stride, pads, out_size, workspace, with_moments, x_pad) -> bool:
    """Whether the compiled direct convolution takes this shape: stride 1, padding of at most
    ``f - 1`` on each side (the full correlation that gives the input gradient needs it; none for a
    1 x 1 kernel), and output and input rows at least as wide as the kernel's narrowest tile (the
    input gradient is the same kernel writing rows of the input's width). A 1 x 1 kernel runs here
    too: its taps are the channels, and the tiles beat a one-thread GEMM whose inner dimension is
    the 16-64 channels (``smallres``'s 1 x 1 forwards about 5x faster)."""
    return _direct_applies(w.shape[:2], x.shape[2], stride, pads, out_size)


@functools.lru_cache(maxsize=512)
def _direct_applies(kernel, in_width: int, stride, pads, out_size) -> bool:
    """:func:`_runs_direct` from the shapes alone (tuples of ints: remembered, a layer asks the
    same every batch)."""
    from .compiled.conv import MIN_WIDTH

    (fh, fw), ((top, bottom), (left, right)) = kernel, pads
    return (
        stride == (1, 1) and min(out_size[1], in_width) >= MIN_WIDTH and max(top, bottom) < fh and max(left, right) < fw
    )


@functools.lru_cache(maxsize=256)
def tap_offsets(fh: int, fw: int, n_c: int, row_len: int) -> np.ndarray:
    """Flat offsets of the ``fh * fw * n_C`` taps of a window in an NHWC image whose rows hold
    ``row_len`` pixels: tap ``(p, q, c)`` at ``(p * row_len + q) * n_C + c``, in ``w.reshape(-1, K)``'s
    order, zero-padded to a multiple of the weight-gradient kernel's tap block. Read-only, shared:
    the same for every batch of a layer."""
    from .compiled.conv import TAP_BLOCK

    p, q, c = np.meshgrid(np.arange(fh), np.arange(fw), np.arange(n_c), indexing="ij")
    n_taps = fh * fw * n_c
    offsets = np.zeros(-(-n_taps // TAP_BLOCK) * TAP_BLOCK, np.int64)
    offsets[:n_taps] = ((p * row_len + q) * n_c + c).ravel()
    offsets.flags.writeable = False
    return offsets


@functools.lru_cache(maxsize=256)
def _taps_in_adjacent_pairs(fh: int, fw: int, n_c: int, row_len: int) -> bool:
    """Whether the window's taps pair up, tap ``2i + 1`` right after tap ``2i`` in memory (each kernel
    row's ``fw * n_C`` values an even run: SIGNS's 4 x 4 x 3)."""
    offsets = tap_offsets(fh, fw, n_c, row_len)[: fh * fw * n_c]
    return offsets.size % 2 == 0 and bool(np.all(offsets[1::2] == offsets[::2] + 1))


@functools.lru_cache(maxsize=64)
def _filter_lanes(n_k: int, dtype) -> int:
    """:func:`~npconv.functional.compiled.conv.filter_lanes`, remembered: the compiled module (and Numba)
    load at the first call, not at ``import npconv``, and every layer asks the same every batch."""
    from .compiled.conv import filter_lanes

    return filter_lanes(n_k, dtype)


def _direct_table(w: np.ndarray, taps_pair: bool, flip: bool = False, workspace: Workspace | None = None) -> np.ndarray:
    """The direct kernels' filter table for ``w (fh, fw, C, K)`` (flipped for the input gradient:
    taps ``(p, q, k)``, filters ``C``), built by the compiled ``filter_table``: ``(T, K_pad)``
    filters zero-padded to whole vectors (``w`` itself, reshaped, where it is that already), or where
    the filters fill one vector or less and the taps pair up, each pair's filters interleaved on
    twice the lanes (``table[i, 2j + h]`` is tap ``2i + h``'s filter ``j``): no lane idles with half
    a vector of filters (SIGNS's first layer), and with one, each input broadcast feeds two vectors
    (16 filters). In ``workspace``'s buffer for it when given (rebuilt every call: the weights
    change between batches)."""
    fh, fw, n_c, n_k = w.shape
    n_taps, n_out = fh * fw * (n_k if flip else n_c), n_c if flip else n_k
    k_pad, vector = _filter_lanes(n_out, w.dtype), 2 * _filter_lanes(1, w.dtype)
    paired = taps_pair and k_pad <= vector
    if not (flip or paired) and k_pad == n_k and w.flags.c_contiguous:
        return w.reshape(n_taps, n_k)
    shape = (n_taps // 2, 2 * k_pad) if paired else (n_taps, k_pad)
    table = scratch(workspace, "flipped_table" if flip else "table", shape, w.dtype)
    load_compiled().conv.filter_table(np.ascontiguousarray(w), flip, paired, table)
    return table


def _filter_table(w2: np.ndarray) -> np.ndarray:
    """``w2 (T, K)`` zero-padded to ``(T, K_pad)`` whole vectors of filters for the direct kernels
    (``w2`` itself when it is C-contiguous and ``K`` whole vectors already)."""
    k_pad = _filter_lanes(w2.shape[1], w2.dtype)
    if k_pad == w2.shape[1] and w2.flags.c_contiguous:
        return w2
    table = aligned_empty((w2.shape[0], k_pad), w2.dtype)
    table[:, w2.shape[1] :] = 0
    table[:, : w2.shape[1]] = w2
    return table


def direct_forward(kernels, x, w, bias, b_shape, stride, pads, out_size, workspace, with_moments, x_pad, into=None):
    """:func:`conv2d_forward` by the compiled direct kernel over the zero-padded input (see
    :mod:`npconv.functional.compiled.conv`), with the rows' moments when asked: ``(out, cache,
    moments)``. Unchecked: the arguments as :func:`_checked_forward` leaves them, for a shape that
    :func:`_runs_direct` takes (a training step that checked its first batch calls it directly,
    :class:`~npconv.engine.steps.ConvBatchStatistics`, and passes ``into``, its own C-contiguous
    array of the output's shape and dtype, to write ``out`` into)."""
    fh, fw, n_c, n_k = w.shape
    if x_pad is None:
        x_pad = np.ascontiguousarray(pad_nhwc(x, pads, workspace=workspace))
    winograd = _by_winograd((fh, fw), pads, out_size, n_c, n_k, x.dtype)
    if winograd:
        weights = _winograd_table(kernels, w, False, workspace)
    else:
        weights = _direct_table(w, _taps_in_adjacent_pairs(fh, fw, n_c, x_pad.shape[2]), workspace=workspace)
    # The moments' rows are as wide as the table's: twice the filters where it holds tap pairs.
    width = weights.shape[-1]
    bias_row = (
        _zero_row(_filter_lanes(n_k, x.dtype), x.dtype) if b_shape is None else _filter_table(bias[np.newaxis])[0]
    )
    out = aligned_empty((x.shape[0], *out_size, n_k), x.dtype) if into is None else into
    row_moments = (
        scratch(workspace, "row_moments", (x.shape[0] * out_size[0], 3, width), x.dtype)
        if with_moments
        else _no_moments(width, x.dtype)
    )
    if winograd:
        offsets = tap_offsets(1, 1, n_c, 1)
        kernels.winograd.conv3x3(x_pad, offsets, weights, bias_row, out, row_moments, _no_residual(x.dtype))
    else:
        offsets = tap_offsets(fh, fw, n_c, x_pad.shape[2])
        kernels.conv.conv_nhwc(
            x_pad, offsets, fh * fw * n_c, weights, bias_row, out, row_moments, _no_residual(x.dtype)
        )
    moments = batch_moments_of_rows(kernels, row_moments, out_size[1], n_k) if with_moments else None
    return out, ConvCache(x_pad, "direct", w, b_shape, x.shape, (1, 1), pads), moments


@functools.lru_cache(maxsize=256)
def _by_winograd(kernel, pads, out_size, n_in: int, n_out: int, dtype) -> bool:
    """Whether a direct convolution runs by Winograd's F(2 x 2, 3 x 3) instead
    (:mod:`npconv.functional.compiled.winograd`): a 3 x 3 window padded by 1 on every side (a
    "same" convolution; its input gradient, the full correlation, is padded by 1 too), an even
    output height and width, at least ``MIN_TILES_WIDE`` tiles of two across, and ``n_in`` channels
    and ``n_out`` filters in whole vectors."""
    from .compiled._simd import VECTOR_BYTES
    from .compiled.winograd import MIN_TILES_WIDE

    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    return (
        kernel == (3, 3)
        and pads == ((1, 1), (1, 1))
        and out_size[0] % 2 == 0
        and out_size[1] % 2 == 0
        and out_size[1] >= 2 * MIN_TILES_WIDE
        and n_in % lanes == 0
        and n_out % lanes == 0
    )


def _winograd_table(kernels, w: np.ndarray, flip: bool, workspace: Workspace | None) -> np.ndarray:
    """The Winograd kernel's transformed filters of ``w (3, 3, C, K)``, ``(16, C, K)`` (``(16, K, C)``
    flipped for the input gradient), in ``workspace``'s buffer for them when given (rebuilt every
    call: the weights change between batches); ``kernels`` the compiled modules."""
    n_in, n_out = (w.shape[3], w.shape[2]) if flip else w.shape[2:]
    table = scratch(workspace, "winograd_flipped" if flip else "winograd", (16, n_in, n_out), w.dtype)
    kernels.winograd.filter_transform(w, flip, table)
    return table


_convolve = tiered(_patch_matrix_forward, applies=_runs_direct)(direct_forward)


# The direct kernels' operands that no call writes (a bias of zeros; empty arrays for no moments and
# no residual): made once per shape and dtype, shared by every call.


@functools.lru_cache(maxsize=64)
def _zero_row(k_pad: int, dtype) -> np.ndarray:
    """A ``(K_pad,)`` bias of zeros for a convolution without one, or an input gradient."""
    return np.zeros(k_pad, dtype)


@functools.lru_cache(maxsize=64)
def _no_moments(k_pad: int, dtype) -> np.ndarray:
    """:func:`~npconv.functional.compiled.conv.conv_nhwc`'s ``moments`` when none are asked: no rows."""
    return np.empty((0, 3, k_pad), dtype)


@functools.lru_cache(maxsize=8)
def _no_residual(dtype) -> np.ndarray:
    """:func:`~npconv.functional.compiled.conv.conv_nhwc`'s ``residual`` when there is none."""
    return np.empty((0, 0, 0, 0), dtype)


def _channel_major_product(cols_t: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """``cols_t.T @ w2`` as a C-contiguous ``(M, K)`` array, by the faster of two routes.

    With 16 or more filters BLAS's transposed-operand product wins (Happy's first layer); with fewer,
    the plain ``(K, M)`` product and one transposing copy win (SIGNS's first layer, in the NumPy
    tier), because BLAS handles an 8-column output poorly. ``benchmarks/kernels.py`` times both
    layers per tier.
    """
    if w2.shape[1] >= 16:
        return cols_t.T @ w2
    return np.ascontiguousarray((w2.T @ cols_t).T)


def conv2d_backward(
    dout, cache: ConvCache, need_dx: bool = True, workspace: Workspace | None = None, dx_plus=None, dout_pad=None
):
    """Gradients of :func:`conv2d_forward`.

    ``dout`` has shape (m, n_H, n_W, K). Returns ``(dx, dw, db)``: ``dx`` like ``x`` (``None`` when
    ``need_dx`` is false, which saves a GEMM and the col2im for a network's first layer), ``dw`` like
    ``w``, ``db`` shaped like the ``b`` given to forward (``None`` when that was ``None``).
    ``workspace`` as in forward (the direct kernel's padded output gradient). ``dx_plus``, an array
    like ``x``: returned in ``dx``'s place is ``dx_plus + dx``, the input's gradient when another
    branch reads it too (a residual block's), summed as the compiled kernel writes ``dx``.
    ``dout_pad``: ``dout`` already inside the zero padding the input gradient reads, the buffer whose
    interior ``dout`` is (:func:`direct_output_gradient_padding` gives the padding; the layer before
    wrote into it), read by the direct kernels instead of a padded copy (other kernels read ``dout``).
    """
    cols, layout, w, b_shape, x_shape, stride, pads = cache
    fh, fw, n_c, n_k = w.shape
    m = x_shape[0]
    n_h, n_w = output_size(x_shape[1:3], (fh, fw), stride, pads, "conv2d kernel")
    dout = check_dout(dout, (m, n_h, n_w, n_k))
    dx_plus = _checked_dx_plus(dx_plus, x_shape, w, need_dx)
    full = direct_output_gradient_padding(cache) if dout_pad is not None and need_dx else None
    if full is not None:
        check_bordered(dout_pad, dout, full, "dout_pad")
        return direct_backward(dout, cache, need_dx, workspace, dx_plus, dout_pad)
    dout = np.ascontiguousarray(dout, dtype=w.dtype)
    if layout == "direct":
        return direct_backward(dout, cache, need_dx, workspace, dx_plus, None)
    dx, dw, db = _gemm_backward(dout, cache, need_dx)
    return (dx if dx_plus is None else dx_plus + dx), dw, db


def _checked_dx_plus(dx_plus, x_shape, w, need_dx: bool):
    """``dx_plus`` as a C-contiguous array in ``w``'s dtype, refused unless of the input's shape
    with ``need_dx``."""
    if dx_plus is None:
        return None
    dx_plus = check_float_array(dx_plus, "dx_plus")
    if not need_dx or dx_plus.shape != tuple(x_shape):
        raise ShapeError(
            expected("dx_plus", f"an array of the input's shape {tuple(x_shape)}, with need_dx=True", dx_plus)
        )
    return np.ascontiguousarray(dx_plus, dtype=w.dtype)


def direct_output_gradient_padding(cache: ConvCache) -> Padding2D | None:
    """The zero padding :func:`conv2d_backward` puts around the output gradient for the input
    gradient (the full correlation, ``f - 1 - pad`` a side), where the direct kernels run it and read
    the gradient as it is (whole vectors of filters): for a layer to write the gradient into
    (:func:`~npconv.functional.padding.bordered_empty`) and hand it over as ``dout_pad``; else
    ``None``."""
    geometry = _output_gradient_geometry(cache)
    return None if geometry is None else geometry[1]


def _output_gradient_geometry(cache: ConvCache):
    """``(shape, padding)`` of the output gradient's zero-bordered buffer for the forward that gave
    ``cache`` (:func:`direct_output_gradient_padding`), or ``None``."""
    return _remembered_output_gradient(
        cache.layout, cache.w.shape, cache.w.dtype, tuple(cache.x_shape), cache.stride, cache.pads
    )


@functools.lru_cache(maxsize=256)
def _remembered_output_gradient(layout, w_shape, dtype, x_shape, stride, pads):
    """:func:`_output_gradient_geometry` from the cache's shapes (remembered: a layer asks the same
    every batch)."""
    if layout != "direct" or _filter_lanes(w_shape[3], dtype) != w_shape[3]:
        return None
    out_size = output_size(x_shape[1:3], w_shape[:2], stride, pads, "conv2d kernel")
    return (x_shape[0], *out_size, w_shape[3]), _full_correlation_padding(w_shape[:2], pads)


def _full_correlation_padding(kernel, pads) -> Padding2D:
    """The padding of the output gradient whose correlation with the flipped kernel is the input
    gradient: ``f - 1 - pad`` on each side."""
    (fh, fw), ((top, bottom), (left, right)) = kernel, pads
    return (fh - 1 - top, fh - 1 - bottom), (fw - 1 - left, fw - 1 - right)


def _gemm_backward(dout, cache: ConvCache, need_dx: bool):
    """:func:`conv2d_backward` of a forward by a patch matrix (the ``rows``, ``channel_major`` and
    ``pointwise`` layouts)."""
    cols, layout, w, b_shape, x_shape, stride, pads = cache
    fh, fw, n_c, n_k = w.shape
    m = x_shape[0]
    n_h, n_w = dout.shape[1:3]
    dout2 = dout.reshape(-1, n_k)
    w2 = w.reshape(-1, n_k)
    dw = (cols @ dout2 if layout == "channel_major" else matmul(cols, dout2, reduce_rows=True)).reshape(w.shape)
    db = bias_gradient(dout, b_shape)
    if not need_dx:
        return None, dw, db
    if layout == "pointwise":
        return matmul(dout2, w2.T).reshape(x_shape), dw, db
    padded_hw = (x_shape[1] + sum(pads[0]), x_shape[2] + sum(pads[1]))
    if layout == "channel_major":
        dcols = (w2 @ dout2.T).reshape(fh, fw, n_c, m, n_h, n_w)
        dx_pad = col2im_channel_major(dcols, padded_hw, stride).transpose(1, 2, 3, 0)
    else:
        dcols = matmul(dout2, w2.T).reshape(m, n_h, n_w, fh, fw, n_c)
        dx_pad = col2im(dcols, padded_hw, stride)
    (top, bottom), (left, right) = pads
    return dx_pad[:, top : padded_hw[0] - bottom, left : padded_hw[1] - right, :], dw, db


def bias_gradient(dout, b_shape):
    """``db[k] = sum_{i, h, v} dout[i, h, v, k]`` in the bias's shape ``b_shape``; ``None`` without a
    bias (a pass over the whole output gradient saved: ``smallres``'s convolutions have none)."""
    return None if b_shape is None else column_sum(dout.reshape(-1, dout.shape[-1])).reshape(b_shape)


def direct_output_gradient_buffer(cache: ConvCache, workspace=None):
    """A :class:`~npconv.functional.padding.Bordered` buffer for the output gradient of the forward
    that gave ``cache`` (the workspace's ``"dout_pad"``), for a layer to write the gradient into and
    pass on as :func:`conv2d_backward`'s ``dout`` (its interior) and ``dout_pad`` (its padded
    array); ``None`` where :func:`direct_output_gradient_padding` is."""
    geometry = _output_gradient_geometry(cache)
    return None if geometry is None else bordered_empty(*geometry, cache.w.dtype, workspace, "dout_pad")


def direct_weight_backward(z, cache: ConvCache, route):
    """``(dw, db)`` of a direct (compiled) forward without its input gradient, each output gradient
    computed from ``z`` (the forward's output, ``(m, n_H, n_W, K)``, ``K`` whole vectors of filters)
    and ``route`` as the weight gradient reads it: the compiled ``conv_weight_grads``' routed form
    (a batch norm + ReLU + 2 x 2 max pool's backward,
    :func:`~npconv.functional.conv_batchnorm_relu_maxpool_weight_backward`)."""
    return direct_backward(z, cache, False, None, None, None, route)[1:]


def direct_backward(dout, cache: ConvCache, need_dx: bool, workspace, dx_plus, dout_pad, route=None, into=None):
    """``(dx or None, dw, db or None)`` for a direct (compiled) forward, ``dx_plus`` (or ``None``)
    added to ``dx`` by the kernel that writes it; ``dout_pad`` (or ``None``), ``dout`` inside the
    input gradient's padding already, which both kernels then read; ``into`` (or ``None``), a
    C-contiguous array of the input's shape and dtype to write ``dx`` into.

    The weight gradient pairs the padded input with the output gradient (the bias's comes with it,
    from the same loads). The input gradient is the full correlation of the output gradient, padded
    by ``f - 1 - pad`` on each side, with the flipped kernel:
    ``dx[i, y, x, c] = sum_{p, q, k} dout_pad[i, y + p, x + q, k] * w[fh-1-p, fw-1-q, c, k]``.
    """
    x_pad, _, w, b_shape, x_shape, _, pads = cache
    kernels = load_compiled()
    fh, fw, n_c, n_k = w.shape
    n_taps = fh * fw * n_c
    full = _full_correlation_padding((fh, fw), pads)
    offsets = tap_offsets(fh, fw, n_c, x_pad.shape[2])
    n_h, n_w = dout.shape[1:3]
    if dout_pad is None:
        # The kernel reads whole vectors of filters: dout itself, or a zero-padded copy where K is not.
        grads, top, left = _filter_table(dout.reshape(-1, n_k)).reshape(*dout.shape[:3], -1), 0, 0
    else:
        grads, top, left = dout_pad, full[0][0], full[1][0]
    if route is None and _by_winograd((fh, fw), pads, (n_h, n_w), n_c, n_k, w.dtype):
        dw = np.empty_like(w)
        db = kernels.winograd.conv3x3_weight_grads(
            x_pad, grads, top, left, tap_offsets(1, 1, n_c, 1), b_shape is not None, dw
        )
    else:
        dw, db = kernels.conv.conv_weight_grads(
            x_pad, grads, top, left, n_h, n_w, offsets, n_taps, b_shape is not None, route
        )
        dw = np.ascontiguousarray(dw[:, :n_k]).reshape(w.shape)
    db = None if b_shape is None else db[:n_k].reshape(b_shape)
    if not need_dx:
        return None, dw, db
    if dout_pad is None:
        dout_pad = np.ascontiguousarray(pad_nhwc(dout, full, workspace=workspace, name="dout_pad"))
    dx = aligned_empty(x_shape, dout.dtype) if into is None else into
    no_bias = _zero_row(_filter_lanes(n_c, w.dtype), w.dtype)
    residual = _no_residual(w.dtype) if dx_plus is None else dx_plus
    if _by_winograd((fh, fw), full, x_shape[1:3], n_k, n_c, w.dtype):
        filters = _winograd_table(kernels, w, True, workspace)
        offsets = tap_offsets(1, 1, n_k, 1)
        kernels.winograd.conv3x3(dout_pad, offsets, filters, no_bias, dx, _no_moments(n_c, w.dtype), residual)
        return dx, dw, db
    weights = _direct_table(w, _taps_in_adjacent_pairs(fh, fw, n_k, dout_pad.shape[2]), True, workspace)
    offsets = tap_offsets(fh, fw, n_k, dout_pad.shape[2])
    no_moments = _no_moments(weights.shape[1], w.dtype)
    kernels.conv.conv_nhwc(dout_pad, offsets, fh * fw * n_k, weights, no_bias, dx, no_moments, residual)
    return dx, dw, db


def channel_planes(x: np.ndarray, pads: Padding2D, workspace: Workspace | None = None) -> np.ndarray:
    """``x`` zero-padded and channel-major, ``(n_C, m, H_pad, W_pad)``: every image row contiguous."""
    (top, bottom), (left, right) = pads
    m, n_h_prev, n_w_prev, n_c = x.shape
    planes = scratch(workspace, "planes", (n_c, m, n_h_prev + top + bottom, n_w_prev + left + right), x.dtype)
    if top or bottom or left or right:
        planes.fill(0)
    planes[:, :, top : top + n_h_prev, left : left + n_w_prev] = x.transpose(3, 0, 1, 2)
    return planes


def window_view(x_pad: np.ndarray, kernel, stride, out_size) -> np.ndarray:
    """A read-only view ``v[i, h, w, p, q, c] = x_pad[i, h*sh + p, w*sw + q, c]`` (no copy)."""
    (fh, fw), (sh, sw), (n_h, n_w) = kernel, stride, out_size
    s_m, s_h, s_w, s_c = x_pad.strides
    return as_strided(
        x_pad,
        (x_pad.shape[0], n_h, n_w, fh, fw, x_pad.shape[3]),
        (s_m, s_h * sh, s_w * sw, s_h, s_w, s_c),
        writeable=False,
    )


def im2col(x_pad: np.ndarray, kernel, stride, out_size, workspace: Workspace | None = None) -> np.ndarray:
    """The ``(m * n_H * n_W, fh * fw * n_C)`` patch matrix of a padded NHWC batch, one copy of the view."""
    windows = window_view(x_pad, kernel, stride, out_size)
    cols = scratch(workspace, "cols", windows.shape, x_pad.dtype)
    np.copyto(cols, windows)
    return cols.reshape(-1, kernel[0] * kernel[1] * x_pad.shape[3])


def im2col_channel_major(x, pads, kernel, stride, out_size, workspace: Workspace | None = None):
    """The transposed patch matrix ``(fh * fw * n_C, m * n_H * n_W)``, rows ordered ``(p, q, c)``.

    ``x`` is first copied channel-major and padded, ``(n_C, m, H_pad, W_pad)``, so that every window
    offset ``(p, q, c)`` is a strided view whose rows are whole image rows.
    """
    (fh, fw), (sh, sw), (n_h, n_w) = kernel, stride, out_size
    m, n_c = x.shape[0], x.shape[3]
    planes = channel_planes(x, pads, workspace)
    s_c, s_m, s_h, s_w = planes.strides
    windows = as_strided(planes, (fh, fw, n_c, m, n_h, n_w), (s_h, s_w, s_c, s_m, s_h * sh, s_w * sw), writeable=False)
    cols = scratch(workspace, "cols", windows.shape, x.dtype)
    np.copyto(cols, windows)
    return cols.reshape(fh * fw * n_c, -1)


def col2im(dcols: np.ndarray, padded_hw, stride) -> np.ndarray:
    """Scatter-add patch gradients ``dcols (m, n_H, n_W, fh, fw, n_C)`` back onto the padded input.

    One strided slice per kernel offset ``(p, q)``: ``fh * fw`` vectorised additions, however large the
    batch, and overlapping windows (stride < kernel) accumulate correctly.
    """
    return _scatter_add_patches(dcols, padded_hw, stride)


def _scatter_add_patches_numpy(dcols, padded_hw, stride):
    m, n_h, n_w, fh, fw, n_c = dcols.shape
    sh, sw = stride
    dx_pad = np.zeros((m, *padded_hw, n_c), dtype=dcols.dtype)
    for p in range(fh):
        for q in range(fw):
            dx_pad[:, p : p + sh * n_h : sh, q : q + sw * n_w : sw, :] += dcols[:, :, :, p, q, :]
    return dx_pad


@tiered(_scatter_add_patches_numpy)
def _scatter_add_patches(kernels, dcols, padded_hw, stride):
    m, n_c = dcols.shape[0], dcols.shape[5]
    dx_pad = np.empty((m, *padded_hw, n_c), dtype=dcols.dtype)
    kernels.conv.col2im(np.ascontiguousarray(dcols), *stride, dx_pad)
    return dx_pad


def col2im_channel_major(dcols: np.ndarray, padded_hw, stride) -> np.ndarray:
    """:func:`col2im` for channel-major patch gradients ``(fh, fw, n_C, m, n_H, n_W)``;
    returns ``(n_C, m, H_pad, W_pad)``."""
    fh, fw, n_c, m, n_h, n_w = dcols.shape
    sh, sw = stride
    dx_pad = np.zeros((n_c, m, *padded_hw), dtype=dcols.dtype)
    for p in range(fh):
        for q in range(fw):
            dx_pad[:, :, p : p + sh * n_h : sh, q : q + sw * n_w : sw] += dcols[p, q]
    return dx_pad
