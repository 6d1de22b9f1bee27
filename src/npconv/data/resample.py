"""Sampling an image batch at real-valued positions: the shared step of the geometric augmentations.

A geometric augmentation (rotation, zoom) maps each output pixel ``(r, c)`` of image ``i`` back to a
source position ``(src_y[i, r, c], src_x[i, r, c])`` in the input and reads the input there
(inverse mapping), by ``"nearest"`` pixel or ``"bilinear"`` interpolation of the four neighbours.
A neighbour outside the image is read according to ``fill_mode`` (Keras's names), shown for one
row ``a b c d``:

==============  ===============================  ==========================================
fill_mode       outside the row reads             rule for an index ``k`` on a size ``n`` axis
==============  ===============================  ==========================================
``reflect``     ``d c b a | a b c d | d c b a``   mirror about the edge of the last pixel
``wrap``        ``a b c d | a b c d | a b c d``   ``k mod n``
``nearest``     ``a a a a | a b c d | d d d d``   clip to ``[0, n - 1]``
``constant``    ``v v v v | a b c d | v v v v``   ``fill_value`` ``v``
==============  ===============================  ==========================================
"""

from __future__ import annotations

import numpy as np

from ..errors import check_choice

FILL_MODES = {"reflect", "wrap", "nearest", "constant"}
INTERPOLATIONS = {"bilinear", "nearest"}


def source_index(index: np.ndarray, size: int, fill_mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``(index inside [0, size), inside)``: where ``fill_mode`` reads integer ``index`` from; ``inside``
    marks the indices that were in range (``constant`` mode only; ``None`` for the others)."""
    if fill_mode == "reflect":
        folded = np.mod(index, 2 * size)  # period 2n: a b c d d c b a
        return np.where(folded < size, folded, 2 * size - 1 - folded), None
    if fill_mode == "wrap":
        return np.mod(index, size), None
    clipped = np.clip(index, 0, size - 1)
    if fill_mode == "nearest":
        return clipped, None
    return clipped, (index >= 0) & (index < size)


def sample(
    x: np.ndarray,
    src_y: np.ndarray,
    src_x: np.ndarray,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: float = 0.0,
) -> np.ndarray:
    """Read the batch ``x (m, n_H, n_W, n_C)`` at positions ``src_y, src_x (m, n_H', n_W')``.

    Bilinear: ``out = sum over the 4 neighbours (y0 + a, x0 + b) of w_a(fy) w_b(fx) x[neighbour]``
    with ``y0 = floor(src_y)``, ``fy = src_y - y0``, ``w_0(f) = 1 - f``, ``w_1(f) = f``. Returns
    floats (``x``'s dtype when floating, else float64), shape ``(m, n_H', n_W', n_C)``.
    """
    interpolation = check_choice(interpolation, "interpolation", INTERPOLATIONS)
    fill_mode = check_choice(fill_mode, "fill_mode", FILL_MODES)
    work = x.dtype if x.dtype.kind == "f" else np.float64
    batch = np.arange(x.shape[0])[:, None, None]

    def read(rows, cols):
        r, inside_r = source_index(rows, x.shape[1], fill_mode)
        c, inside_c = source_index(cols, x.shape[2], fill_mode)
        values = x[batch, r, c].astype(work, copy=False)
        if inside_r is None:
            return values
        return np.where((inside_r & inside_c)[..., None], values, np.asarray(fill_value, dtype=work))

    if interpolation == "nearest":
        return read(np.rint(src_y).astype(np.int64), np.rint(src_x).astype(np.int64))
    y0, x0 = np.floor(src_y), np.floor(src_x)
    fy, fx = (src_y - y0).astype(work)[..., None], (src_x - x0).astype(work)[..., None]
    y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
    return (
        read(y0, x0) * ((1 - fy) * (1 - fx))
        + read(y0, x0 + 1) * ((1 - fy) * fx)
        + read(y0 + 1, x0) * (fy * (1 - fx))
        + read(y0 + 1, x0 + 1) * (fy * fx)
    )


def sample_axes(
    x: np.ndarray,
    src_y: np.ndarray,
    src_x: np.ndarray,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: float = 0.0,
) -> np.ndarray:
    """:func:`sample` for a separable map, ``src_y (m, n_H')`` by row and ``src_x (m, n_W')`` by
    column (zoom, any axis-aligned scaling): the same values, computed as one interpolation along
    the rows, then one along the columns.

    The 2-D weights are products ``w_a(fy) w_b(fx)`` and a constant fill enters either pass with
    weights summing to 1, so the two passes equal the four-neighbour sum. Gathers along one axis
    instead of four 3-index gathers of single pixels: a zoom of a batch of 32 images of 64x64x3 takes
    9 ms instead of 21 ms (bilinear, reflect) on one core.
    """
    interpolation = check_choice(interpolation, "interpolation", INTERPOLATIONS)
    fill_mode = check_choice(fill_mode, "fill_mode", FILL_MODES)
    work = x.dtype if x.dtype.kind == "f" else np.float64
    rows = _along(x.astype(work, copy=False), src_y, 1, interpolation, fill_mode, fill_value)
    return _along(rows, src_x, 2, interpolation, fill_mode, fill_value)


def _along(
    x: np.ndarray, src: np.ndarray, axis: int, interpolation: str, fill_mode: str, fill_value: float
) -> np.ndarray:
    """``x`` read at positions ``src (m, n')`` along ``axis`` (1: rows, 2: columns)."""
    shape = (src.shape[0], -1, 1, 1) if axis == 1 else (src.shape[0], 1, -1, 1)

    def read(index):
        fixed, inside = source_index(index, x.shape[axis], fill_mode)
        values = np.take_along_axis(x, fixed.reshape(shape), axis=axis)
        if inside is None:
            return values
        return np.where(inside.reshape(shape), values, np.asarray(fill_value, dtype=x.dtype))

    if interpolation == "nearest":
        return read(np.rint(src).astype(np.int64))
    low = np.floor(src)
    frac = (src - low).astype(x.dtype).reshape(shape)
    low = low.astype(np.int64)
    return read(low) * (1 - frac) + read(low + 1) * frac


def resize_bilinear(x: np.ndarray, size) -> np.ndarray:
    """The batch ``x (m, n_H, n_W, n_C)`` resized to ``size = (n_H', n_W')`` by bilinear interpolation
    with half-pixel centres (``align_corners=False``).

    Output row ``r`` reads the input at ``(r + 0.5) * n_H / n_H' - 0.5`` (pixel centres line up,
    the corners do not), and positions outside ``[0, n_H - 1]`` read the edge pixel; columns alike.
    This is ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` and TensorFlow's
    ``tf.image.resize(method="bilinear")``, and PIL's bilinear resize when enlarging; when shrinking,
    PIL (and torch with ``antialias=True``) also average away detail, which this does not.
    """
    (n_h, n_w), (out_h, out_w) = x.shape[1:3], (int(size[0]), int(size[1]))
    m = x.shape[0]

    def source(n_in, n_out):
        return np.broadcast_to((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, (m, n_out))

    return sample_axes(x, source(n_h, out_h), source(n_w, out_w), "bilinear", fill_mode="nearest")
