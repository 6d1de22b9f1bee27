"""A whole npconv model as an ONNX ``ModelProto``: walk its layer graph, check, write.

The exported graph takes what ``model.predict`` takes, a float32 NHWC batch ``(batch, n_H, n_W, n_C)``
(or ``(batch, n_features)``) with a free batch size, named ``input``, and returns ``output``, equal
to ``model.predict`` (probabilities after a final sigmoid/softmax). ``model.metadata`` (class names,
value scale) travels as the ``npconv_metadata`` JSON entry of the model's metadata properties.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from onnx import helper

from .. import __version__
from ..errors import ShapeError, expected
from .onnx_graph import NCHW_TO_NHWC, GraphBuilder, Value
from .onnx_layers import converter_for

#: The ONNX operator set written: supported by onnxruntime (>= 1.12) and onnxruntime-web.
OPSET = 17
INPUT, OUTPUT = "input", "output"


def _graph_input(g: GraphBuilder, shape) -> Value:
    if len(shape) not in (1, 3):
        raise ShapeError(
            expected(
                "model input",
                "images (n_H, n_W, n_C) or vectors (n_features,)",
                f"shape {tuple(shape)}",
                "ONNX export supports these two kinds of input.",
            )
        )
    x = Value(INPUT, tuple(shape))
    return Value(g.to_nchw(INPUT, f"{INPUT}/nchw"), x.shape) if x.is_image else x


def to_onnx(model, opset: int = OPSET) -> onnx.ModelProto:
    """``model`` (built; any layers npconv has) as a checked ONNX model of operator set ``opset``."""
    model._require_built("export")
    for node in model._nodes:  # refuse an unknown layer before building anything
        converter_for(node.layer)
    g = GraphBuilder(reserved=(INPUT, OUTPUT))
    input_shape = tuple(model.input_shape[1:])  # Keras shapes lead with the batch axis (None)
    values = {0: _graph_input(g, input_shape)}
    for node in model._nodes:  # the graph as built: the MaxPool/ReLU swap of training is not needed
        values[node.output] = converter_for(node.layer)(g, node.layer, [values[i] for i in node.inputs])
    out = values[model._nodes[-1].output]
    if out.is_image:
        g.op_into(OUTPUT, "Transpose", [out.name], perm=NCHW_TO_NHWC)
    else:
        g.op_into(OUTPUT, "Identity", [out.name])
    graph = g.graph(model.name, [(INPUT, input_shape)], [(OUTPUT, out.shape)])
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="npconv",
        producer_version=__version__,
        doc_string=f"npconv model {model.name!r}: NHWC float32 input, as model.predict",
    )
    proto.ir_version = helper.find_min_ir_version_for(opsets)  # readable by older runtimes too
    helper.set_model_props(proto, {"npconv_metadata": json.dumps(model.metadata)})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, filepath, opset: int = OPSET) -> Path:
    """Write ``model`` to ``filepath`` as ONNX (see :func:`to_onnx`); returns the path."""
    path = Path(filepath)
    if not path.parent.is_dir():
        raise FileNotFoundError(
            expected(
                "filepath", "a file in an existing folder", str(path), f"Create the folder {str(path.parent)!r} first."
            )
        )
    path.write_bytes(to_onnx(model, opset).SerializeToString())
    return path
