"""Run an exported model in onnxruntime and compare it with ``model.predict``."""

from __future__ import annotations

import numpy as np


def run_onnxruntime(onnx_model, x) -> np.ndarray:
    """The ONNX model (a file path or serialized bytes) applied to the batch ``x`` (as float32).

    One CPU thread: this is a check, not a benchmark, and leaves the other cores alone.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    source = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: np.asarray(x, np.float32)})[0]


def max_difference(model, onnx_model, x=None, seed: int = 0) -> float:
    """``max |onnxruntime(x) - model.predict(x)|``; ``x`` defaults to 4 random inputs in [0, 1)."""
    if x is None:
        x = np.random.default_rng(seed).random((4,) + tuple(model.input_shape[1:]), dtype=np.float32)
    return float(np.max(np.abs(run_onnxruntime(onnx_model, x) - model.predict(x))))
