"""The execution plan of a model's graph: the order nodes run in and which need a backward pass.

A model keeps its graph as built (``_nodes``: summary, saving) and the steps it runs (``_steps``);
the two differ by nine rewrites, exact but for the order of a sum: :func:`fuse_batchnorm_relu`,
:func:`pool_before_relu`, :func:`fuse_conv_maxpool`, :func:`fuse_batchnorm_relu_maxpool`,
:func:`fuse_add_maxpool`, :func:`fuse_add_maxpool_relu`, :func:`fuse_conv_batch_statistics`,
:func:`defer_batchnorm_outputs` and :func:`write_into_padded_inputs` (:func:`execution_steps`
applies them). Inference without caches (``predict``, ``evaluate``) runs ``_inference_steps``
(:func:`inference_steps`): the first two, then each batch norm folded into the convolution before
it (:func:`fold_batchnorm`), equal but for rounding. The steps themselves, and how each runs its
layers (planned once per shape where it trains), are :mod:`npconv.engine.steps`'s.
:func:`plan_backward` marks the nodes that training's gradients never need to reach;
:func:`plan_gradients` says which nodes a gradient to chosen tensors (``Model.gradients``) passes
through.
"""

from __future__ import annotations

from .steps import (
    AddMaxPool,
    AddMaxPoolReLU,
    BatchNormReLU,
    BatchNormReLUMaxPool,
    ConvBatchNorm,
    ConvBatchStatistics,
    ConvMaxPool,
)

__all__ = [
    "Node",
    "execution_steps",
    "inference_steps",
    "plan_backward",
    "plan_gradients",
    # the steps the rewrites make (npconv.engine.steps), by their old address too
    "AddMaxPool",
    "AddMaxPoolReLU",
    "BatchNormReLU",
    "BatchNormReLUMaxPool",
    "ConvBatchNorm",
    "ConvBatchStatistics",
    "ConvMaxPool",
]


class Node:
    __slots__ = ("layer", "inputs", "output", "need_dx", "skip", "frees")

    def __init__(self, layer, inputs, output):
        self.layer, self.inputs, self.output = layer, tuple(inputs), output
        self.need_dx, self.skip = True, False  # set by Model._plan_backward
        self.frees = ()


def execution_steps(nodes: list[Node], pools: bool = True, batch_statistics: bool = True) -> list[Node]:
    """The steps a model runs for its graph ``nodes``: batch norm and its ReLU fused, then each
    remaining ReLU that feeds a max pool moved after it, then (``pools``) each max pool fused with
    the convolution, the batch norm + ReLU or the ``Add`` before it (and an ``Add`` + pool with the
    ReLU after it), and (``batch_statistics``) each
    convolution that a batch norm reads giving it the batch's statistics, each such step whose
    output an Add + pool step alone reads leaving it for that pass to write, and each whose output a
    convolution alone reads writing it into that convolution's padded input. Without ``pools`` every
    convolution, batch norm and pool runs its own ``forward`` and ``backward``, as a learner's
    functions put in their place need, and as inference folds batch norms into convolutions
    (:func:`inference_steps`). ``batch_statistics=False`` keeps every step's bits those of the
    layers alone (the statistics from the convolution are equal but for rounding)."""
    steps = pool_before_relu(fuse_batchnorm_relu(nodes))
    if not pools:
        return steps
    steps = fuse_add_maxpool_relu(fuse_add_maxpool(fuse_batchnorm_relu_maxpool(fuse_conv_maxpool(steps))))
    if not batch_statistics:
        return steps
    return write_into_padded_inputs(defer_batchnorm_outputs(fuse_conv_batch_statistics(steps)))


def inference_steps(nodes: list[Node]) -> list[Node]:
    """The steps of inference without caches: :func:`execution_steps` without its pool fusions
    (they speed up training's passes), each batch norm folded into its convolution."""
    return fold_batchnorm(execution_steps(nodes, pools=False))


def _only_reader(nodes: list[Node], k: int) -> int | None:
    """The index of the one node that reads node ``k``'s output, if exactly one does (once)."""
    readers = [j for j, other in enumerate(nodes) for i in other.inputs if i == nodes[k].output]
    return readers[0] if len(readers) == 1 else None


def _fuse_with_reader(nodes: list[Node], starts, fuse) -> list[Node]:
    """Each node whose layer ``starts(layer)`` selects and whose output one node alone reads, that
    reader not the last node (the output layer's activation belongs to the loss), replaced together
    with its reader by one step of layer ``fuse(layer, reader_layer)``; where that gives ``None``,
    both stay as they are."""
    steps, fused = [], set()
    for k, node in enumerate(nodes):
        if k in fused:
            continue
        j = _only_reader(nodes, k) if starts(node.layer) else None
        layer = None if j is None or j == len(nodes) - 1 else fuse(node.layer, nodes[j].layer)
        if layer is None:
            steps.append(node)
            continue
        step = Node(layer, node.inputs, nodes[j].output)
        step.frees = node.frees
        steps.append(step)
        fused.add(j)
    return steps


def fuse_batchnorm_relu(nodes: list[Node]) -> list[Node]:
    """``ReLU(BatchNormalization(x))`` as one :class:`BatchNormReLU` step, where the batch norm's
    output feeds only that ReLU and the ReLU is not the last node."""
    from ..layers import BatchNormalization, ReLU

    return _fuse_with_reader(
        nodes,
        lambda layer: type(layer) is BatchNormalization,
        lambda norm, reader: BatchNormReLU(norm, reader) if type(reader) is ReLU else None,
    )


def pool_before_relu(nodes: list[Node]) -> list[Node]:
    """The execution order: ``MaxPool(ReLU(x))`` runs as ``ReLU(MaxPool(x))``.

    The two are equal, and so are their gradients (max commutes with ``max(., 0)``; a window whose
    maximum is not positive sends no gradient either way), but the second applies ReLU, forward and
    backward, to the pooled array: 4x smaller after a 2x2 pool, 64x after the SIGNS model's 8x8 one.
    Each layer still sees a valid input and keeps its own cache, so the swap is two nodes trading
    layers. It applies when the ReLU's output feeds only that pool and the pool is not the last node.
    """
    from ..layers import MaxPooling2D, ReLU

    producer = {node.output: k for k, node in enumerate(nodes)}
    steps = list(nodes)
    for k, node in enumerate(nodes[:-1]):
        if not isinstance(node.layer, MaxPooling2D) or len(node.inputs) != 1:
            continue
        j = producer.get(node.inputs[0])
        if j is None or type(nodes[j].layer) is not ReLU:
            continue
        relu, pool = nodes[j], node
        if [i for i, other in enumerate(nodes) if relu.output in other.inputs] != [k]:
            continue  # the ReLU's output is read elsewhere too
        steps[j] = Node(pool.layer, relu.inputs, relu.output)
        steps[j].frees = relu.frees
        steps[k] = Node(relu.layer, pool.inputs, pool.output)
        steps[k].frees = pool.frees
    return steps


#: The smallest max-pool window :func:`fuse_conv_maxpool` fuses: the winners' weight gradient does
#: ``ph * pw`` times less arithmetic than the whole one, but gathers a patch per window and filter.
MIN_FUSED_POOL_AREA = 16


def _linear_conv(layer) -> bool:
    """Whether ``layer`` is a ``Conv2D`` without activation (its output is ``z`` itself)."""
    from ..layers import Conv2D

    return type(layer) is Conv2D and layer.activation.name == "linear"


def fuse_conv_maxpool(nodes: list[Node]) -> list[Node]:
    """``MaxPooling2D(Conv2D(x))`` as one :class:`ConvMaxPool` step, where the convolution has no
    activation, its output feeds only that pool, the pool's window holds at least
    :data:`MIN_FUSED_POOL_AREA` elements and the pool is not the last node."""
    from ..layers import MaxPooling2D

    def fuse(conv, reader):
        large = type(reader) is MaxPooling2D and reader.pool_size[0] * reader.pool_size[1] >= MIN_FUSED_POOL_AREA
        return ConvMaxPool(conv, reader) if large else None

    return _fuse_with_reader(nodes, _linear_conv, fuse)


def fuse_add_maxpool(steps: list[Node]) -> list[Node]:
    """``MaxPooling2D(Add([a, b]))`` as one :class:`AddMaxPool` step where the pool alone reads the
    sum and is not the last node."""
    from ..layers import Add, MaxPooling2D

    return _fuse_with_reader(
        steps,
        lambda layer: type(layer) is Add,
        lambda add, reader: AddMaxPool(add, reader) if type(reader) is MaxPooling2D else None,
    )


def fuse_add_maxpool_relu(steps: list[Node]) -> list[Node]:
    """An :class:`AddMaxPool` step and the ``ReLU`` that alone reads it, not the last node, as one
    :class:`AddMaxPoolReLU` step."""
    from ..layers import ReLU

    return _fuse_with_reader(
        steps,
        lambda layer: type(layer) is AddMaxPool,
        lambda add_pool, reader: AddMaxPoolReLU(add_pool, reader) if type(reader) is ReLU else None,
    )


def fuse_batchnorm_relu_maxpool(steps: list[Node]) -> list[Node]:
    """``MaxPooling2D(ReLU(BatchNormalization(x)))``, already a :class:`BatchNormReLU` step, as one
    :class:`BatchNormReLUMaxPool` step where the pool alone reads it and is not the last node."""
    from ..layers import MaxPooling2D

    return _fuse_with_reader(
        steps,
        lambda layer: type(layer) is BatchNormReLU,
        lambda norm_relu, reader: BatchNormReLUMaxPool(norm_relu, reader) if type(reader) is MaxPooling2D else None,
    )


def fuse_conv_batch_statistics(steps: list[Node]) -> list[Node]:
    """Each ``Conv2D`` without activation whose output only a batch norm step reads, that step not
    the last, as one :class:`ConvBatchStatistics` step with it."""
    from ..layers import BatchNormalization

    norm_steps = (BatchNormalization, BatchNormReLU, BatchNormReLUMaxPool)
    return _fuse_with_reader(
        steps,
        _linear_conv,
        lambda conv, reader: ConvBatchStatistics(conv, reader) if type(reader) in norm_steps else None,
    )


def defer_batchnorm_outputs(steps: list[Node]) -> list[Node]:
    """Each :class:`ConvBatchStatistics` step ending in a plain batch norm whose output an
    :class:`AddMaxPool` or :class:`AddMaxPoolReLU` step alone reads (a residual branch's last batch
    norm, or its projection's) returns that output unwritten, as a
    :class:`~npconv.functional.ScaleShift`: the Add + pool pass applies the batch norm's map as it
    reads the convolution's output, the same bits, one pass over the full-size array fewer. In place;
    returns ``steps``."""
    from ..layers import BatchNormalization

    producer = {node.output: k for k, node in enumerate(steps)}
    for k, node in enumerate(steps):
        if type(node.layer) not in (AddMaxPool, AddMaxPoolReLU):
            continue
        for tensor in node.inputs:
            j = producer.get(tensor)
            step = None if j is None else steps[j].layer
            if (
                type(step) is ConvBatchStatistics
                and type(step.norm_step) is BatchNormalization
                and _only_reader(steps, j) == k
            ):
                step.defers_output = True
    return steps


def write_into_padded_inputs(steps: list[Node]) -> list[Node]:
    """Each :class:`ConvBatchStatistics` step ending in a batch norm (or batch norm + ReLU) whose
    training output a convolution alone reads (another such step's, or a ``Conv2D`` step's, that
    layer in no other step) has the batch norm write it into that convolution's padded input buffer
    (:meth:`~npconv.layers.Conv2D.bordered_input`): the convolution's padding pass is gone, the
    same bits. In place; returns ``steps``."""
    from ..layers import BatchNormalization

    convs = [_conv_of(node.layer) for node in steps]
    for k, node in enumerate(steps):
        step = node.layer
        if type(step) is not ConvBatchStatistics or type(step.norm_step) not in (BatchNormalization, BatchNormReLU):
            continue
        j = _only_reader(steps, k)
        reader = None if j is None else convs[j]
        if reader is not None and sum(conv is reader for conv in convs) == 1:
            step.output_reader = reader
    return steps


def input_reader(steps: list[Node]):
    """The ``Conv2D`` that alone reads the model's input (a step of its own, or a
    :class:`ConvBatchStatistics` step's, that layer in no other step), into whose padded input
    buffer ``fit`` gathers each batch (:meth:`~npconv.layers.Conv2D.bordered_input`); else ``None``."""
    readers = [node for node in steps if 0 in node.inputs]
    if len(readers) != 1 or tuple(readers[0].inputs) != (0,):
        return None
    reader = _conv_of(readers[0].layer)
    return reader if reader is not None and sum(_conv_of(node.layer) is reader for node in steps) == 1 else None


def _conv_of(layer):
    """The ``Conv2D`` of a ``Conv2D`` or :class:`ConvBatchStatistics` step, else ``None``."""
    from ..layers import Conv2D

    return layer.conv if type(layer) is ConvBatchStatistics else layer if type(layer) is Conv2D else None


def fold_batchnorm(steps: list[Node]) -> list[Node]:
    """The inference steps: each ``BatchNormalization`` (or :class:`BatchNormReLU` step) that alone
    reads a ``Conv2D`` without activation folded into it as one :class:`ConvBatchNorm` step."""
    from ..layers import BatchNormalization

    def fuse(conv, reader):
        if type(reader) is BatchNormalization:
            return ConvBatchNorm(conv, reader, relu=False)
        if type(reader) is BatchNormReLU:
            return ConvBatchNorm(conv, reader.norm, relu=True)
        return None

    return _fuse_with_reader(steps, _linear_conv, fuse)


def plan_backward(steps: list[Node]) -> None:
    """Send gradients only where they reach a trainable weight: the layers before the first
    trainable one (input, padding, augmentation) skip backward, and the first trainable layer
    skips its input gradient (``need_dx=False``), the costliest part of a conv backward."""
    requires = {0: False}
    for node in steps:
        node.need_dx = any(requires[i] for i in node.inputs)
        has_weights = bool(node.layer.trainable_weights)
        node.skip = not (node.need_dx or has_weights)
        requires[node.output] = node.need_dx or has_weights


def plan_gradients(nodes: list[Node], sources) -> list[tuple[bool, bool]]:
    """``(skip, need_dx)`` for each node, for gradients of the output with respect to the tensors
    ``sources`` (ids; 0 is the model's input).

    Only the nodes that read a source, directly or through other nodes, lie on a path from it to the
    output: they run backward with their input gradient; every other node is skipped. Unlike
    :func:`plan_backward` it marks nothing on the nodes, so training's plan stays as it was.
    """
    reached = set(sources)
    plan = []
    for node in nodes:
        on_path = any(i in reached for i in node.inputs)
        if on_path:
            reached.add(node.output)
        plan.append((not on_path, on_path))
    return plan
