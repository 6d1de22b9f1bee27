"""``StepTrace``: what :func:`npconv.trace.step` recorded, looked up by layer name and gradient.

Every answer is a NumPy array or plain Python data, so a page can send it as JSON as it is
(``layers()`` lists names, kinds and shapes; ``terms(...).to_dict()``).
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError, expected

#: What ``grad(name, which)`` answers, in the order a backward pass computes them.
GRADIENTS = ("dout", "dZ", "dW", "db", "dx")


class StepTrace:
    """One recorded training step (see :func:`npconv.trace.step`).

    Attributes
    ----------
    loss : float, the compiled loss of the batch (None when the step stopped in the forward pass)
    stopped : None, or why the step stopped early (a learner's function returned a wrong shape)
    model : the model's name; kernels : the learner's kernels' name, or None
    dtype : the precision the step ran in
    """

    def __init__(self, records: dict, loss, stopped, model: str = "", kernels=None, names=None, dtype=np.float64):
        self._records = records
        self.dtype = np.dtype(dtype)
        self._names = list(records) if names is None else list(names)
        self.loss = loss
        self.stopped = stopped
        self.model = model
        self.kernels = kernels

    # ---------------------------------------------------------------- lookups
    @property
    def names(self) -> list[str]:
        """The layers' names in the order the forward pass runs them."""
        return list(self._names)

    def ran(self, name: str) -> bool:
        """Whether layer ``name`` ran (a step stopped by a learner's wrong shape ends early)."""
        return name in self._records

    def record(self, name: str):
        """The :class:`~npconv.trace.step.LayerRecord` of layer ``name``; unknown names list the valid ones."""
        if name not in self._names:
            raise ValueError(expected("layer name", "one of " + ", ".join(map(repr, self._names)), repr(name)))
        if name not in self._records:
            raise ValueError(f"layer {name!r}: the step stopped before it ran ({self.stopped})")
        return self._records[name]

    def whiches(self, name: str) -> list[str]:
        """The gradients this step has for layer ``name`` (``"dout"``, ``"dx"``, ``"dW"``, ...)."""
        grads = self.record(name).grads
        known = [w for w in GRADIENTS if w in grads]
        return known + [w for w in grads if w not in known]

    def output(self, name: str) -> np.ndarray:
        """Layer ``name``'s forward output (after its own activation), ``(m, ...)``."""
        record = self.record(name)
        if record.output is None:
            raise ValueError(f"layer {name!r}: the step stopped before it ran ({self.stopped})")
        return record.output

    def grad(self, name: str, which: str):
        """The loss's gradient for layer ``name``: ``which`` = ``"dout"`` (its output), ``"dx"`` (its
        input; a list for merge layers), ``"dW"``/``"db"`` (kernel, bias, in the layer's shapes: a
        Conv2D's dW is ``(f, f, n_C_prev, n_C)``), ``"dZ"`` (before its own activation), or
        ``"dgamma"``/``"dbeta"`` for batch norm."""
        record = self.record(name)
        if which not in record.grads:
            kind = type(record.layer).__name__
            if record.output is not None and not record.grads and self.stopped:
                raise ValueError(f"layer {name!r}: the step stopped before its backward pass ({self.stopped})")
            have = self.whiches(name)
            raise ValueError(
                expected(
                    "which",
                    f"one of {', '.join(map(repr, have))} for layer {name!r} ({kind})"
                    if have
                    else f"nothing: layer {name!r} ({kind}) has no backward pass",
                    repr(which),
                )
            )
        return record.grads[which]

    def terms(self, name: str, which: str, index):
        """The terms whose products add up to ``grad(name, which)[index]`` (see :mod:`npconv.trace.terms`)."""
        from .terms import terms

        record = self.record(name)
        grad = self.grad(name, which)
        index = check_index(grad, index, f"index into {which} of layer {name!r}")
        return terms(record, which, index)

    def first_difference(self, reference: StepTrace, rtol: float = 1e-6, atol: float = 1e-9):
        """The first value that differs from ``reference`` in computation order, or None; see
        :func:`npconv.trace.compare.first_difference`."""
        from .compare import first_difference

        return first_difference(self, reference, rtol=rtol, atol=atol)

    # ---------------------------------------------------------------- for a page
    def layers(self) -> list[dict]:
        """One JSON-able dict per layer: ``name``, ``type``, ``input_shapes``, ``output_shape``,
        ``grads`` (the ``which``es it has, with their shapes), ``terms`` (those ``terms`` opens), and
        for windowed layers ``window`` (``(f_h, f_w)``), ``strides`` and ``pads`` (``((top, bottom),
        (left, right))``, as applied), to draw a term's window on the input."""
        from .terms import TERMS

        rows = []
        for name, record in self._records.items():
            kind = type(record.layer).__name__
            grads = {
                w: (list(np.shape(g)) if not isinstance(g, list) else [list(d.shape) for d in g])
                for w, g in record.grads.items()
            }
            rows.append(
                {
                    "name": name,
                    "type": kind,
                    "input_shapes": [list(a.shape) for a in record.inputs],
                    "output_shape": None if record.output is None else list(record.output.shape),
                    "grads": grads,
                    "terms": [w for w in TERMS.get(kind, ()) if w in record.grads],
                    **_window(record),
                }
            )
        return rows

    def __repr__(self) -> str:
        loss = "None" if self.loss is None else f"{self.loss:.6g}"
        return f"<StepTrace of {self.model!r}: {len(self._records)} layers, loss {loss}>"


def _window(record) -> dict:
    layer = record.layer
    size = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    if size is None or not record.inputs:
        return {}
    from ..functional._shapes import resolve_padding

    pads = resolve_padding(layer.padding, record.inputs[0].shape[1:3], size, layer.strides)
    return {"window": list(size), "strides": list(layer.strides), "pads": [list(p) for p in pads]}


def check_index(array, index, what: str) -> tuple[int, ...]:
    """``index`` as a tuple of ints into ``array``; out of range names the shape."""
    if isinstance(array, list):
        raise ValueError(f"{what}: this layer has several inputs; terms are for single-input layers")
    shape = np.shape(array)
    idx = (index,) if isinstance(index, (int, np.integer)) else tuple(index)
    if len(idx) != len(shape) or not all(isinstance(i, (int, np.integer)) for i in idx):
        raise ShapeError(expected(what, f"{len(shape)} integers for an array of shape {shape}", repr(index)))
    if not all(-n <= i < n for i, n in zip(idx, shape)):
        raise IndexError(expected(what, f"an index within the shape {shape}", repr(index)))
    return tuple(int(i) % n for i, n in zip(idx, shape))
