"""``npconv export MODEL OUT.onnx``: the model as ONNX, checked against npconv in onnxruntime."""

from __future__ import annotations

from ._shared import load_model

HELP_ORDER = 50


def add_parser(commands, common) -> None:
    export = commands.add_parser(
        "export",
        parents=[common],
        help="write a model as ONNX, checked in onnxruntime",
        description="Write MODEL as ONNX (float32 NHWC input in [0, 1], any batch "
        "size) and check it against npconv in onnxruntime when installed.",
    )
    export.add_argument("model", metavar="MODEL")
    export.add_argument("out", metavar="OUT.onnx")
    export.set_defaults(func=run)


def run(args) -> int:
    from ..apps.model_info import metadata
    from ..export import export

    model = load_model(args.model)
    path = export(model, args.out, format="onnx")
    try:
        from ..export.onnx_check import max_difference

        difference = max_difference(model, path)
    except ImportError as exc:
        if exc.name != "onnxruntime":
            raise
        print(f"wrote {path}; not checked: onnxruntime is not installed (pip install 'npconv[onnx]')")
        return 0
    if not difference <= 1e-4:
        raise RuntimeError(
            f"wrote {path}, but onnxruntime's outputs differ from npconv's by "
            f"{difference:.3g} on random inputs. This is a bug in npconv's ONNX export: "
            "please report it."
        )
    image_shape = model.input_shape[1:]  # without the batch axis
    shape = ", ".join(str(s) for s in image_shape)
    scale = f", pixels divided by {metadata(model)['value_scale']}" if len(image_shape) == 3 else ""
    print(
        f"wrote {path}: input 'input' float32 (batch, {shape}){scale}; output 'output'. "
        f"onnxruntime matches npconv to {difference:.1e} on 4 random inputs."
    )
    return 0
