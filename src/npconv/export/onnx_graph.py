"""An ONNX graph under construction, in npconv's terms: values that remember their NHWC shape.

Inside the exported graph every image batch is NCHW (ONNX's ``Conv`` and pooling layout); the
graph's input and output stay NHWC like npconv's, so the layout changes happen only at its edges
and at ``Flatten`` (which flattens in NHWC order, so ``Dense`` weights line up). A :class:`Value`
keeps the npconv shape ``(n_H, n_W, n_C)`` or ``(n_features,)`` (no batch axis) next to the ONNX name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto, helper, numpy_helper

#: NHWC axis -> NCHW axis, for tensors of rank 4 (batch axis included).
NHWC_TO_NCHW_AXIS = (0, 2, 3, 1)
#: The ``Transpose`` permutation from NCHW back to NHWC.
NCHW_TO_NHWC = [0, 2, 3, 1]


@dataclass(frozen=True)
class Value:
    """A tensor of the graph: its ONNX ``name`` and npconv ``shape`` (without the batch axis)."""

    name: str
    shape: tuple[int, ...]

    @property
    def is_image(self) -> bool:
        """A batch of feature maps ``(m, n_H, n_W, n_C)``, held as NCHW in the graph."""
        return len(self.shape) == 3

    def onnx_axis(self, axis: int) -> int:
        """npconv's (NHWC, batch-counted, non-negative) ``axis`` as an axis of this ONNX tensor."""
        return NHWC_TO_NCHW_AXIS[axis] if self.is_image else axis


class GraphBuilder:
    """Collects nodes and initializers (weights) with unique names; :meth:`graph` assembles them."""

    def __init__(self, reserved=()):
        self.nodes = []
        self.initializers = []
        self._taken: set[str] = set(reserved)  # the graph's input and output names

    def fresh(self, name: str) -> str:
        """``name``, or ``name_1``, ``name_2``, ... if taken (ONNX names must be unique)."""
        candidate, k = name, 0
        while candidate in self._taken:
            k += 1
            candidate = f"{name}_{k}"
        self._taken.add(candidate)
        return candidate

    def constant(self, name: str, array) -> str:
        """An initializer holding ``array`` (floats stored as float32, integers as int64)."""
        array = np.asarray(array)
        array = array.astype(np.float32 if array.dtype.kind == "f" else np.int64)
        name = self.fresh(name)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs, name: str, **attributes) -> str:
        """Append one node computing ``op_type(*inputs)``; returns its output's (fresh) name."""
        return self.op_into(self.fresh(name), op_type, inputs, **attributes)

    def op_into(self, output: str, op_type: str, inputs, **attributes) -> str:
        """Append one node writing ``output`` exactly (a reserved name, such as the graph's output)."""
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=output, **attributes))
        return output

    def to_nchw(self, name: str, out_name: str) -> str:
        return self.op("Transpose", [name], out_name, perm=[0, 3, 1, 2])

    def to_nhwc(self, name: str, out_name: str) -> str:
        return self.op("Transpose", [name], out_name, perm=NCHW_TO_NHWC)

    def graph(self, name: str, inputs, outputs):
        """The ``GraphProto``; ``inputs``/``outputs`` are ``(name, shape without batch)`` pairs."""

        def info(value_name, shape):
            return helper.make_tensor_value_info(value_name, TensorProto.FLOAT, ["batch", *shape])

        return helper.make_graph(
            self.nodes, name, [info(*i) for i in inputs], [info(*o) for o in outputs], initializer=self.initializers
        )
