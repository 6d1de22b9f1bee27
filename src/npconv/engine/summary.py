"""Keras's ``model.summary()`` table: each layer's name, type, output shape and parameter count."""

from __future__ import annotations

from ..layers import InputLayer


def summary(model, print_fn=print) -> None:
    """Print Keras's table: layer (type), output shape, parameter count (and, for a graph with
    branches, what each layer reads), then the totals."""
    model._require_built("summary")
    producer = {0: model._input_layer.name if model._input_layer else "input"}
    producer.update({n.output: n.layer.name for n in model._nodes})
    reads = {n.layer.name: [producer[i] for i in n.inputs] for n in model._nodes}
    branched = any(len(n.inputs) > 1 or n.inputs[0] != n.output - 1 for n in model._nodes)
    header = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if branched else [])
    rows = []
    for layer in model.layers:
        row = [f"{layer.name} ({type(layer).__name__})", str(_display_shape(model, layer)), f"{layer.count_params()}"]
        rows.append(row + [", ".join(reads.get(layer.name, []))] if branched else row)
    widths = [
        max(minimum, max(len(r[k]) for r in rows) + 1) for k, minimum in enumerate([28, 25, 10, 20][: len(header)])
    ]
    rule = sum(widths)

    def line(cells):
        return "".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    trainable = sum(w.value.size for w in model.trainable_weights)
    out = [f'Model: "{model.name}"', "_" * rule, line(header), "=" * rule]
    for k, row in enumerate(rows):
        out += [line(row), "=" * rule if k == len(rows) - 1 else "_" * rule]
    out += [
        f"Total params: {model.count_params():,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {model.count_params() - trainable:,}",
        "_" * rule,
    ]
    for text in out:
        print_fn(text)


def _display_shape(model, layer):
    if isinstance(layer, InputLayer):
        return [model.input_shape]
    return next(model._tensors[n.output].shape for n in model._nodes if n.layer is layer)
