"""Models leaving npconv: ``export(model, "model.onnx", format="onnx")`` (``Model.export`` calls it).

The ONNX modules import the ``onnx`` package, an optional dependency (``pip install 'npconv[onnx]'``,
which brings ``onnxruntime`` too, to run and check the result).
"""

from __future__ import annotations

from ..errors import check_choice

FORMATS = {"onnx"}


def export(model, filepath, format: str = "onnx"):
    """Write ``model`` to ``filepath`` in ``format`` (only ``"onnx"``); returns the path written."""
    check_choice(format, "format", FORMATS)
    try:
        from .onnx_model import export_onnx
    except ImportError as exc:
        if exc.name != "onnx":
            raise
        raise ImportError("ONNX export needs the onnx package: pip install 'npconv[onnx]'") from exc
    return export_onnx(model, filepath)


__all__ = ["FORMATS", "export"]
