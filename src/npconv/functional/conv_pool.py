"""Backward through a convolution and the max pool that reads its output, in one step.

Max pooling sends each window's gradient to one element, its winner, and nothing to the rest: after
the SIGNS model's 8x8 pool, 63 of every 64 elements of the convolution's output gradient ``dZ`` are
zero. Run one after the other, the two backward passes build that mostly-zero ``dZ`` and then sum
over every output position. Without the input gradient, the weight gradient needs only the winners'
patches::

    dW[p, q, c, k] = sum_{i, h, v} dout[i, h, v, k] * X_pad[i, y*s_h + p, x*s_w + q, c]
    db[k]          = sum_{i, h, v} dout[i, h, v, k]

where ``(y, x) = (h*t_h + wp - top, v*t_w + wq - left)`` is the convolution-output position of the
winner of pool window ``(i, h, v, k)``: ``(wp, wq) = divmod(winner, pw)``, the pool's stride
``(t_h, t_w)`` and its padding ``(top, left)``. These are the sums of the two passes (a winner
shared by overlapping windows receives each window's share) in another order, so equal to rounding,
for ``ph * pw`` times fewer multiply-adds. With the input gradient, ``dZ`` is needed whole and the
step is the two passes.
"""

from __future__ import annotations

import numpy as np

from ._shapes import check_dout, output_size
from ._tier import tiered
from .conv import ConvCache, bias_gradient, conv2d_backward, window_view
from .pool import PoolCache, pool2d_backward


def conv2d_maxpool_backward(dout, conv_cache: ConvCache, pool_cache: PoolCache, need_dx=True, workspace=None):
    """Gradients of ``pool2d_forward(conv2d_forward(x, w, b, ...)[0], ..., mode="max")``.

    ``dout`` (m, n_H, n_W, K) is the gradient of the pool's output; the caches are the two forward
    passes'. Returns ``(dx, dw, db)`` as :func:`~npconv.functional.conv2d_backward` does: ``dx`` is
    ``None`` when ``need_dx`` is false, and then ``dw`` and ``db`` come from the winners alone.
    ``workspace`` as in :func:`~npconv.functional.conv2d_forward`.
    """
    if pool_cache.mode != "max":
        raise ValueError(f"conv2d_maxpool_backward needs a max pool's cache, not an {pool_cache.mode} pool's")
    if need_dx:
        return conv2d_backward(pool2d_backward(dout, pool_cache), conv_cache, True, workspace)
    w = conv_cache.w
    dout = check_dout(dout, pool_cache.winner.shape).astype(w.dtype, copy=False)
    dw = _weight_grads_at_winners(np.ascontiguousarray(dout), conv_cache, pool_cache)
    return None, dw.reshape(w.shape), bias_gradient(dout, conv_cache.b_shape)


def _winner_positions(pool_cache: PoolCache, z_size):
    """Each pool window's winner as a convolution-output position: ``(y, x, inside)``, each shaped
    like ``winner``; ``inside`` is false for a window whose winner is padding (a window of padding
    only), which sends no gradient."""
    _, (ph, pw), (sh, sw), ((top, _), (left, _)), _, winner, _ = pool_cache
    wp, wq = np.divmod(winner, pw)
    n_h, n_w = winner.shape[1:3]
    y = np.arange(n_h)[:, None, None] * sh + wp - top
    x = np.arange(n_w)[None, :, None] * sw + wq - left
    inside = (y >= 0) & (y < z_size[0]) & (x >= 0) & (x < z_size[1])
    return np.clip(y, 0, z_size[0] - 1), np.clip(x, 0, z_size[1] - 1), inside


def _weight_grads_at_winners_numpy(dout, conv_cache: ConvCache, pool_cache: PoolCache):
    """``dW`` as ``(fh * fw * n_C, K)``: per filter, the winners' patches gathered from the cache
    (whatever its layout) and one product with their gradients."""
    cols, layout, w, _, x_shape, stride, pads = conv_cache
    fh, fw, n_c, n_k = w.shape
    z_size = output_size(x_shape[1:3], (fh, fw), stride, pads, "conv2d kernel")
    y, x, inside = _winner_positions(pool_cache, z_size)
    grads = np.where(inside, dout, 0).astype(dout.dtype, copy=False)
    image = np.arange(dout.shape[0])[:, None, None]
    dw = np.empty((fh * fw * n_c, n_k), dout.dtype)
    for k in range(n_k):  # one filter's patches at a time: all K at once would be K times the patch matrix
        yk, xk = y[..., k], x[..., k]
        if layout == "direct":  # a compiled forward's cache: the padded input
            patches = window_view(cols, (fh, fw), stride, z_size)[image, yk, xk]
        else:
            rows = (image * z_size[0] + yk) * z_size[1] + xk
            patches = cols.T[rows] if layout == "channel_major" else cols[rows]
        dw[:, k] = grads[..., k].reshape(-1) @ patches.reshape(grads[..., k].size, -1)
    return dw


@tiered(_weight_grads_at_winners_numpy, applies=lambda dout, conv_cache, pool_cache: conv_cache.layout == "direct")
def _weight_grads_at_winners(kernels, dout, conv_cache: ConvCache, pool_cache: PoolCache):
    """:func:`_weight_grads_at_winners_numpy` for a direct (stride 1) forward's cache: one compiled
    pass over the winners, reading each one's patch from the padded input."""
    x_pad, _, w, _, x_shape, _, pads = conv_cache
    fh, fw, n_c, n_k = w.shape
    z_size = output_size(x_shape[1:3], (fh, fw), (1, 1), pads, "conv2d kernel")
    _, (_, pw), (sh, sw), ((top, _), (left, _)), _, winner, _ = pool_cache
    dw = np.empty((fh * fw * n_c, n_k), dout.dtype)
    kernels.conv_pool.weight_grads_at_winners(x_pad, dout, winner, fh, fw, pw, sh, sw, top, left, *z_size, dw)
    return dw
