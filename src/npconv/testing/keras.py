"""The course's ``test_utils``: ``summary(model)`` lists each layer's descriptors, ``comparator``
holds them against the instructor's list (the Happy House and SIGNS model checks)::

    comparator(summary(happy_model), output)

``summary`` reads the Keras attributes the course reads (``output_shape``, ``count_params()``,
``padding``, ``activation.__name__``, ``kernel_initializer.__class__.__name__``, ...). Unlike the
course's, it does not compile the model: nothing it reads needs that, and compiling would replace the
learner's optimizer.
"""

from __future__ import annotations

from ._case import PASSED

__all__ = ["summary", "comparator"]

# What the course lists after (type, output shape, parameters), by layer class name.
EXTRA_DESCRIPTORS = {
    "Conv2D": (
        ("padding", lambda layer: layer.padding),
        ("activation", lambda layer: layer.activation.__name__),
        ("kernel initializer", lambda layer: layer.kernel_initializer.__class__.__name__),
    ),
    "MaxPooling2D": (
        ("pool size", lambda layer: layer.pool_size),
        ("strides", lambda layer: layer.strides),
        ("padding", lambda layer: layer.padding),
    ),
    "Dropout": (("rate", lambda layer: layer.rate),),
    "ZeroPadding2D": (("padding", lambda layer: layer.padding),),
    "Dense": (("activation", lambda layer: layer.activation.__name__),),
}
COMMON = ("layer type", "output shape", "number of parameters")


def summary(model) -> list[list]:
    """One list per layer: ``[class name, output_shape, count_params(), *extras]``, the extras of
    :data:`EXTRA_DESCRIPTORS` (``['Conv2D', (None, 64, 64, 32), 4736, 'valid', 'linear', 'GlorotUniform']``)."""
    result = []
    for layer in model.layers:
        kind = type(layer).__name__
        descriptors = [kind, layer.output_shape, layer.count_params()]
        descriptors += [read(layer) for _, read in EXTRA_DESCRIPTORS.get(kind, ())]
        result.append(descriptors)
    return result


def comparator(learner, instructor) -> None:
    """Raise ``AssertionError`` naming the first layer and descriptor where ``learner`` (a
    :func:`summary`) differs from ``instructor``; print the course's green line when they agree."""
    for index, (got, expected) in enumerate(zip(learner, instructor)):
        got, expected = _plain(got), _plain(expected)
        if got == expected:
            continue
        fields = COMMON + tuple(name for name, _ in EXTRA_DESCRIPTORS.get(expected[0], ()))
        where = f"layer {index} ({expected[0]})"
        for k, (a, b) in enumerate(zip(got, expected)):
            if a != b:
                field = fields[k] if k < len(fields) else f"descriptor {k}"
                hint = _hint(field, index, instructor)
                raise AssertionError(
                    f"{where}: the {field} should be {b!r}; got {a!r}"
                    + (f": {hint}" if hint else "")
                    + f"\n expected {list(expected)}\n got      {list(got)}"
                )
        raise AssertionError(
            f"{where}: expected {len(expected)} descriptors {list(expected)}; got {len(got)}: {list(got)}"
        )
    if len(learner) != len(instructor):
        names = [d[0] for d in instructor]
        raise AssertionError(
            f"the model should have {len(instructor)} layers; got {len(learner)}: "
            f"the layers should be {names}, got {[d[0] for d in learner]}"
        )
    print(PASSED)


def _plain(descriptors) -> tuple:
    """Keras 2 lists an InputLayer's output shape as ``[(None, 64, 64, 3)]``: unwrap that one-shape list."""
    return tuple(d[0] if isinstance(d, list) and len(d) == 1 and isinstance(d[0], tuple) else d for d in descriptors)


def _hint(field: str, index: int, instructor) -> str:
    if field == "layer type":
        return "the layers are in the wrong order, or one is missing or extra"
    if field == "output shape":
        return "check the previous layers' filters, kernel size, strides and padding ('same' or 'valid')"
    if field == "number of parameters" and instructor[index][0] == "Conv2D":
        return "a Conv2D has f * f * n_C_prev * n_C weights plus n_C biases: check the filters and kernel size"
    return ""
