"""One gradient entry opened up into the terms that make it: ``grad[index] = sum(a * b)``.

========================  =========================================  ==========================================
layer, gradient           ``a`` (``a_index``)                        ``b`` (``b_index``)
========================  =========================================  ==========================================
Conv2D ``dW[i, j, c, f]``  ``A_prev_pad[n, h*s + i, w*s + j, c]``      ``dZ[n, h, w, f]``, every sample and
                                                                     output position
Conv2D ``dx[n, h, w, c]``  ``W[i, j, c, f]``                           ``dZ[n, h', w', f]`` of every window
                                                                     that covers the position
Conv2D ``db[f]``           ``1``                                       ``dZ[n, h, w, f]``
pooling ``dx[n, h, w, c]`` ``mask[i, j]`` (1 at the window's first     ``dout[n, h', w', c]`` of every window
                          maximum, else 0) or ``1/(f*f)`` (average:  that covers the position
                          1 over the window's unpadded size)
Dense ``dW[i, j]``         ``A_prev[n, i]``                            ``dZ[n, j]``
Dense ``dx[n, i]``         ``W[i, j]``                                 ``dZ[n, j]``
Dense ``db[j]``            ``1``                                       ``dZ[n, j]``
========================  =========================================  ==========================================

``dZ`` is the gradient before the layer's own activation (its ``dout`` when it has none); ``s`` the
stride; the padded input's indices count the padding (``A_prev_pad = zero_pad(A_prev, pad)``).
``(i, j)`` in a pooling term is the position's offset in that window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..functional._shapes import resolve_padding

#: The gradients each layer kind opens into terms.
TERMS = {
    "Conv2D": ("dW", "dx", "db"),
    "Dense": ("dW", "dx", "db"),
    "MaxPooling2D": ("dx",),
    "AveragePooling2D": ("dx",),
}


@dataclass
class Terms:
    """The terms of ``grad(layer, which)[index]``: ``a`` and ``b`` (k,), ``a_index`` (k, ...) and
    ``b_index`` (k, ...) integer arrays, and what ``a`` and ``b`` are (``a_label``, ``b_label``)."""

    layer: str
    which: str
    index: tuple
    a: np.ndarray
    b: np.ndarray
    a_index: np.ndarray
    b_index: np.ndarray
    a_label: str
    b_label: str
    value: float  # the gradient entry itself, for comparison with ``sum``

    @property
    def products(self) -> np.ndarray:
        return self.a * self.b

    @property
    def sum(self) -> float:
        """``sum(a * b)``: equals ``value`` when the backward pass is right."""
        return float(np.sum(self.products))

    def __len__(self) -> int:
        return len(self.a)

    def to_dict(self, limit: int | None = None) -> dict:
        """JSON-able: the first ``limit`` terms (all by default; ``count`` says how many there are)."""
        k = slice(None) if limit is None else slice(0, limit)
        return {
            "layer": self.layer,
            "which": self.which,
            "index": list(self.index),
            "a_label": self.a_label,
            "b_label": self.b_label,
            "count": len(self),
            "a": self.a[k].tolist(),
            "b": self.b[k].tolist(),
            "a_index": self.a_index[k].tolist(),
            "b_index": self.b_index[k].tolist(),
            "sum": self.sum,
            "value": self.value,
        }


def terms(record, which: str, index: tuple) -> Terms:
    """The terms of ``record.grads[which][index]`` for one layer's record (see the module's table)."""
    kind = type(record.layer).__name__
    build = _BUILDERS.get((kind, which))
    if build is None:
        supported = "; ".join(f"{k}: {', '.join(ws)}" for k, ws in TERMS.items())
        raise ValueError(f"terms: layer {record.name!r} ({kind}) has no terms for {which!r}; terms open {supported}")
    a, b, a_index, b_index, a_label, b_label = build(record, index)
    value = float(record.grads[which][index])
    return Terms(
        record.name,
        which,
        index,
        np.asarray(a, float),
        np.asarray(b, float),
        _as_index(a_index, len(a)),
        _as_index(b_index, len(b)),
        a_label,
        b_label,
        value,
    )


def _as_index(columns, k) -> np.ndarray:
    if not columns:
        return np.zeros((k, 0), dtype=np.int64)
    return np.stack([np.broadcast_to(np.asarray(c, dtype=np.int64), (k,)) for c in columns], axis=1)


def _pads(record):
    layer, x = record.layer, record.inputs[0]
    size = layer.kernel_size if hasattr(layer, "kernel_size") else layer.pool_size
    return resolve_padding(layer.padding, x.shape[1:3], size, layer.strides)


def _covering(position: int, before: int, size: int, stride: int, n_out: int) -> list[tuple[int, int]]:
    """``(window, offset)`` of every window along one axis that covers ``position`` of the unpadded
    input (``before`` pixels of padding): ``window * stride + offset = position + before``."""
    p = position + before
    return [(w, p - w * stride) for w in range(n_out) if 0 <= p - w * stride < size]


# ---------------------------------------------------------------- Conv2D


def _conv_dW(record, index):
    i, j, c, f = index
    (top, bottom), (left, right) = _pads(record)
    a_pad = np.pad(record.inputs[0], ((0, 0), (top, bottom), (left, right), (0, 0)))
    dZ = record.grads["dZ"]
    sh, sw = record.layer.strides
    n, h, w = (g.ravel() for g in np.indices(dZ.shape[:3]))
    rows, cols = h * sh + i, w * sw + j
    return (a_pad[n, rows, cols, c], dZ[n, h, w, f], (n, rows, cols, c), (n, h, w, f), "A_prev_pad", "dZ")


def _conv_dx(record, index):
    n, h, w, c = index
    (top, _), (left, _) = _pads(record)
    W, dZ = record.weights["W"], record.grads["dZ"]
    (fh, fw), (sh, sw) = record.layer.kernel_size, record.layer.strides
    rows, cols = _covering(h, top, fh, sh, dZ.shape[1]), _covering(w, left, fw, sw, dZ.shape[2])
    combos = [(oh, i, ow, j, f) for oh, i in rows for ow, j in cols for f in range(W.shape[3])]
    oh, i, ow, j, f = (np.array(v, dtype=np.int64) for v in zip(*combos)) if combos else [np.zeros(0, int)] * 5
    return W[i, j, c, f], dZ[n, oh, ow, f], (i, j, c, f), (n, oh, ow, f), "W", "dZ"


def _bias(record, index):
    (f,) = index
    dZ = record.grads["dZ"]
    positions = np.indices(dZ.shape[:-1]).reshape(dZ.ndim - 1, -1)
    b = dZ[tuple(positions) + (f,)]
    return np.ones(len(b)), b, (), tuple(positions) + (f,), "1", "dZ"


# ---------------------------------------------------------------- Dense


def _dense_dW(record, index):
    i, j = index
    x, dZ = record.inputs[0], record.grads["dZ"]
    n = np.arange(len(x))
    return x[n, i], dZ[n, j], (n, i), (n, j), "A_prev", "dZ"


def _dense_dx(record, index):
    n, i = index
    W, dZ = record.weights["W"], record.grads["dZ"]
    j = np.arange(W.shape[1])
    return W[i, j], dZ[n, j], (i, j), (n, j), "W", "dZ"


# ---------------------------------------------------------------- pooling


def _pool_dx(record, index):
    n, h, w, c = index
    layer, x, dout = record.layer, record.inputs[0], record.grads["dout"]
    (top, bottom), (left, right) = _pads(record)
    (fh, fw), (sh, sw) = layer.pool_size, layer.strides
    rows, cols = _covering(h, top, fh, sh, dout.shape[1]), _covering(w, left, fw, sw, dout.shape[2])
    fill = -np.inf if layer.mode == "max" else np.nan
    padded = np.pad(x[n, :, :, c].astype(float), ((top, bottom), (left, right)), constant_values=fill)
    a, b, a_index, b_index = [], [], [], []
    for oh, i in rows:
        for ow, j in cols:
            window = padded[oh * sh : oh * sh + fh, ow * sw : ow * sw + fw]
            if layer.mode == "max":
                a.append(1.0 if np.unravel_index(np.argmax(window), window.shape) == (i, j) else 0.0)
            else:
                a.append(1.0 / np.count_nonzero(~np.isnan(window)))
            b.append(dout[n, oh, ow, c])
            a_index.append((i, j))
            b_index.append((n, oh, ow, c))
    label = "mask" if layer.mode == "max" else "1/(f*f)"
    a_cols = tuple(np.array(a_index, dtype=np.int64).reshape(-1, 2).T)
    b_cols = tuple(np.array(b_index, dtype=np.int64).reshape(-1, 4).T)
    return np.array(a), np.array(b), a_cols, b_cols, label, "dout"


_BUILDERS = {
    ("Conv2D", "dW"): _conv_dW,
    ("Conv2D", "dx"): _conv_dx,
    ("Conv2D", "db"): _bias,
    ("Dense", "dW"): _dense_dW,
    ("Dense", "dx"): _dense_dx,
    ("Dense", "db"): _bias,
    ("MaxPooling2D", "dx"): _pool_dx,
    ("AveragePooling2D", "dx"): _pool_dx,
}
