"""The execution plan of a model's graph: the order nodes run in and which need a backward pass.

A model keeps its graph as built (``_nodes``: summary, saving) and the steps it runs (``_steps``);
the two differ by nine rewrites, exact but for the order of a sum: :func:`fuse_batchnorm_relu`,
:func:`pool_before_relu`, :func:`fuse_conv_maxpool`, :func:`fuse_batchnorm_relu_maxpool`,
:func:`fuse_add_maxpool`, :func:`fuse_add_maxpool_relu`, :func:`fuse_conv_batch_statistics`,
:func:`defer_batchnorm_outputs` and :func:`write_into_padded_inputs` (:func:`execution_steps`
applies them). Inference without caches (``predict``, ``evaluate``) runs ``_inference_steps``
(:func:`inference_steps`): the first two, then each batch norm folded into the convolution before
it (:func:`fold_batchnorm`), equal but for rounding.
:func:`plan_backward` marks the nodes that training's gradients never need to reach;
:func:`plan_gradients` says which nodes a gradient to chosen tensors (``Model.gradients``) passes
through.
"""

from __future__ import annotations

import numpy as np

from ..functional._tier import load_compiled, tier
from ..functional._workspace import Workspace
from ..functional.add_pool import add_maxpool_forward, summed_maxpool_forward
from ..functional.batchnorm import BatchNormCache, ScaleShift, folded_weights, training_backward, training_forward
from ..functional.conv import conv2d_forward, direct_backward, direct_forward
from ..functional.norm_pool import conv_batchnorm_relu_maxpool_weight_backward, pooled_training_forward
from ..functional.pool import pool2d_backward


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


class BatchNormReLU:
    """One step for a ``BatchNormalization`` whose output only a ``ReLU`` reads: ``norm.forward``
    with ``relu=True``, one pass over the data each way instead of three (forward: statistics,
    normalise, ReLU) and four (backward). The ReLU layer itself never runs; ``norm`` keeps its cache
    and its weights' gradients as it would alone."""

    multi_input = False
    passes_gradient = True
    adds_to_dx = False

    def __init__(self, norm, relu):
        self.norm, self.relu = norm, relu
        self.name = f"{norm.name}+{relu.name}"

    @property
    def trainable_weights(self):
        return self.norm.trainable_weights

    @property
    def _cache(self):
        return self.norm._cache

    @_cache.setter
    def _cache(self, value):
        self.norm._cache = value

    def forward(self, x, training=False, moments=None, out=None):
        return self.norm.forward(x, training, relu=True, moments=moments, out=out)

    def backward(self, dout, need_dx=True, out=None):
        return self.norm.backward(dout, need_dx, out=out)


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


class _TwoLayerStep:
    """A step of two layers (or steps), ``second`` alone reading ``first``'s output: its weights are
    both's, and both keep the caches they would alone (the ``_cache`` the model clears and checks is
    the pair)."""

    multi_input = False
    passes_gradient = True
    adds_to_dx = False

    def __init__(self, first, second, name):
        self.first, self.second, self.name = first, second, name

    @property
    def trainable_weights(self):
        return self.first.trainable_weights + self.second.trainable_weights

    @property
    def _cache(self):
        caches = (self.first._cache, self.second._cache)
        return None if caches == (None, None) else caches

    @_cache.setter
    def _cache(self, value):
        self.first._cache, self.second._cache = (None, None) if value is None else value


class _FusedWithPool(_TwoLayerStep):
    """A step of a layer and the max pool that alone reads its output (the pool has no weights)."""

    @property
    def pool(self):
        return self.second


class ConvMaxPool(_FusedWithPool):
    """One step for a ``Conv2D`` without activation whose output only a ``MaxPooling2D`` reads: the
    two forward passes, then one backward (:meth:`~npconv.layers.Conv2D.backward_through_max_pool`)
    that, where the input gradient is not needed (a network's first layer), sums the weight
    gradient over the pool's winners alone instead of the whole, mostly zero, output gradient. The
    convolution's output is never a tensor of the graph."""

    def __init__(self, conv, pool):
        super().__init__(conv, pool, f"{conv.name}+{pool.name}")

    @property
    def conv(self):
        return self.first

    def forward(self, x, training=False):
        return self.pool.forward(self.conv.forward(x, training), training)

    def backward(self, dout, need_dx=True):
        return self.conv.backward_through_max_pool(dout, self.pool._take_cache(), need_dx)


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


class BatchNormReLUMaxPool(_FusedWithPool):
    """One step for a :class:`BatchNormReLU` step whose output only a ``MaxPooling2D`` reads:
    :meth:`~npconv.layers.BatchNormalization.forward_relu_max_pool`, which normalises, clips and
    pools in one pass where the batch norm trains and the windows tile the input (the full-size
    normalised array never written), else the two forwards; backward,
    :meth:`~npconv.layers.BatchNormalization.backward_through_max_pool`, whose passes read the batch
    norm's gradient at the pool's winners (the pool's full-size gradient never written)."""

    def __init__(self, norm_relu, pool):
        super().__init__(norm_relu.norm, pool, f"{norm_relu.name}+{pool.name}")

    @property
    def norm(self):
        return self.first

    def forward(self, x, training=False, moments=None):
        return self.norm.forward_relu_max_pool(x, self.pool, training, moments=moments)

    def backward(self, dout, need_dx=True):
        return self.norm.backward_through_max_pool(dout, self.pool._take_cache(), need_dx)


class AddMaxPool(_FusedWithPool):
    """One step for an ``Add`` of two tensors whose output only a ``MaxPooling2D`` reads (a residual
    block's end, the ReLU after it moved past the pool): :func:`~npconv.functional.add_maxpool_forward`
    where the pool's windows tile the sum, which sums and pools each window row in cache (the
    full-size sum never written), else the two forwards; backward, the two layers' own."""

    multi_input = True

    def __init__(self, add, pool):
        super().__init__(add, pool, f"{add.name}+{pool.name}")
        # (each branch's (kind, shape, dtype), the pooled size) of the last checked pass: later
        # passes of those branches skip the checks (:meth:`_planned_branches`)
        self._planned = None

    @property
    def add(self):
        return self.first

    def in_one_pass(self, xs) -> bool:
        """Whether :meth:`sum_and_pool` takes ``xs``: two branches, the pool's windows tiling the sum."""
        return len(xs) == 2 and (self._planned_branches(xs) is not None or self.pool.windows_tile(xs[0].shape))

    def sum_and_pool(self, xs, relu=False):
        """The one pass, the output clipped at 0 with ``relu`` (an :class:`AddMaxPoolReLU` step's);
        both layers keep the caches they would alone. Planned once per shape as
        :class:`ConvBatchStatistics` is: after a checked pass, branches of the same kinds, shapes
        and dtype go to the compiled pass unchecked (the same bits)."""
        branches = self._planned_branches(xs)
        if branches is None:
            out, self.pool._cache = add_maxpool_forward(xs[0], xs[1], self.pool.pool_size, relu=relu)
            self._plan(xs, out)
        else:
            args = (*branches, self.pool.pool_size, self._planned[1], relu)
            out, self.pool._cache = summed_maxpool_forward(load_compiled(), *args)
        self.add._cache = len(xs)
        return out

    def _plan(self, xs, out):
        """After a checked pass under the compiled tier: the branches' kinds, shapes and dtype."""
        kinds = tuple(_branch_kind(x) for x in xs)
        planned = tier() == "compiled" and len(xs) == 2 and None not in kinds and kinds[0][1:] == kinds[1][1:]
        self._planned = (kinds, out.shape[1:3]) if planned else None

    def _planned_branches(self, xs):
        """``[(x, scale, offset), ...]`` as the checked pass takes them, where ``xs`` are of the
        planned kinds and the compiled tier is on; else ``None``."""
        if self._planned is None or len(xs) != 2 or tier() != "compiled":
            return None
        if tuple(_branch_kind(x) for x in xs) != self._planned[0]:
            return None
        return [(x.x, x.scale, x.offset) if isinstance(x, ScaleShift) else (x, None, None) for x in xs]

    def forward(self, xs, training=False):
        if not self.in_one_pass(xs):
            xs = [x.value() if isinstance(x, ScaleShift) else x for x in xs]
            return self.pool.forward(self.add.forward(xs, training), training)
        return self.sum_and_pool(xs)

    def backward(self, dout, need_dx=True):
        return self.add.backward(self.pool.backward(dout), need_dx)

    def backward_through_relu(self, dout, relu_out, need_dx=True):
        """The gradient of ``relu(step(xs))`` from the ReLU's output ``relu_out``: ReLU's mask taken
        as the pool routes ``dout`` (:func:`~npconv.functional.pool2d_backward`'s ``relu_out``)."""
        return self.add.backward(pool2d_backward(dout, self.pool._take_cache(), relu_out=relu_out), need_dx)


def _branch_kind(x):
    """``(kind, shape, dtype)`` of an Add + pool branch: an array, or a :class:`ScaleShift` whose
    scale and offset are ``(C,)`` arrays of its input's dtype; ``None`` for anything else."""
    if isinstance(x, ScaleShift):
        inner, scale, offset = x
        n_c = inner.shape[-1] if isinstance(inner, np.ndarray) and inner.ndim == 4 else None
        ok = all(isinstance(v, np.ndarray) and v.shape == (n_c,) and v.dtype == inner.dtype for v in (scale, offset))
        return ("mapped", inner.shape, inner.dtype) if n_c is not None and ok else None
    if isinstance(x, np.ndarray) and x.ndim == 4 and x.dtype.kind == "f":
        return ("array", x.shape, x.dtype)
    return None


def fuse_add_maxpool(steps: list[Node]) -> list[Node]:
    """``MaxPooling2D(Add([a, b]))`` as one :class:`AddMaxPool` step where the pool alone reads the
    sum and is not the last node."""
    from ..layers import Add, MaxPooling2D

    return _fuse_with_reader(
        steps,
        lambda layer: type(layer) is Add,
        lambda add, reader: AddMaxPool(add, reader) if type(reader) is MaxPooling2D else None,
    )


class AddMaxPoolReLU(_TwoLayerStep):
    """One step for an :class:`AddMaxPool` step whose output only a ``ReLU`` reads (a residual
    block's end, the ReLU moved past the pool): the sum's pass clips as it writes the pooled output
    (:func:`~npconv.functional.add_maxpool_forward` with ``relu=True``), and the ReLU keeps the
    cache it would alone; backward, ReLU's mask is taken as the pool routes the gradient
    (:meth:`AddMaxPool.backward_through_relu`), then the ``Add``'s own."""

    multi_input = True

    def __init__(self, add_pool, relu):
        super().__init__(add_pool, relu, f"{add_pool.name}+{relu.name}")

    @property
    def relu(self):
        return self.second

    def forward(self, xs, training=False):
        add_pool = self.first
        if not add_pool.in_one_pass(xs):
            return self.relu.forward(add_pool.forward(xs, training), training)
        out = add_pool.sum_and_pool(xs, relu=True)
        self.relu._cache = out  # what ReLU's forward keeps: its output
        return out

    def backward(self, dout, need_dx=True):
        return self.first.backward_through_relu(dout, self.relu._take_cache(), need_dx)


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


class ConvBatchStatistics(_TwoLayerStep):
    """Training: a ``Conv2D`` without activation whose output only a batch norm reads (the layer
    itself, or a :class:`BatchNormReLU` or :class:`BatchNormReLUMaxPool` step), as one step in which
    the convolution's kernel sums its output's moments as it writes it
    (:meth:`~npconv.layers.Conv2D.forward_with_moments`) and the batch norm takes them instead of
    a pass of its own over the output. Backward, the two steps' own. Where the batch norm does not
    train (inference, frozen), or the convolution runs no compiled kernel, the two run as they are.

    Planned once per shape: the first training batch of a shape runs the layers' checked calls;
    where they took the compiled kernels, later batches of that shape call the same unchecked
    functions directly (:func:`~npconv.functional.conv.direct_forward`,
    :func:`~npconv.functional.batchnorm.training_forward`, their backwards) and keep the layers'
    caches and gradients as the layers would: the same bits, without the checks and the calls of
    four layers' wrappers (about 80 us a step outside the kernels, of a ``smallres`` batch's 14 ms)."""

    def __init__(self, conv, norm_step):
        super().__init__(conv, norm_step, f"{conv.name}+{norm_step.name}")
        self.norm = getattr(norm_step, "norm", norm_step)
        # The planned batches' convolution output and input gradient, written into the same arrays
        # every batch: the engine consumes both within the batch (a new array each took 5 us).
        self._arrays = Workspace()
        # (input shape, dtype, padding, output size, the batch norm's plan: True, a pooled size or
        # False): see _plan
        self._planned = None

    @property
    def conv(self):
        return self.first

    @property
    def norm_step(self):
        return self.second

    #: Set by :func:`defer_batchnorm_outputs`: the training output is a
    #: :class:`~npconv.functional.ScaleShift` for the Add + pool step that alone reads it.
    defers_output = False
    #: Set by :func:`write_into_padded_inputs`: the convolution that alone reads the training
    #: output, into whose padded input buffer the batch norm writes it.
    output_reader = None

    def forward(self, x, training=False):
        if not (training and self.norm.trainable):
            return self.norm_step.forward(self.conv.forward(x, training), training)
        z, moments = self.convolve(x)
        return self.normalise(z, moments)

    def convolve(self, x):
        """The convolution's training forward with its output's moments, ``(z, moments)``."""
        conv, planned = self.conv, self._planned
        if planned is None or not self._takes(x, planned):
            z, moments = conv.forward_with_moments(x, True)
            self._plan(x, z, moments)
            return z, moments
        _, _, pads, out_size, _ = planned
        bias, b_shape = (conv.bias.value, conv.bias.value.shape) if conv.use_bias else (None, None)
        x_pad = conv._taken_back("x_pad", x)
        args = (x, conv.kernel.value, bias, b_shape, (1, 1), pads, out_size, conv._workspace, True, x_pad)
        z = self._arrays.get("z", (x.shape[0], *out_size, conv.kernel.value.shape[3]), x.dtype)
        z, cache, moments = direct_forward(load_compiled(), *args, into=z)
        conv._cache = (cache, None, False)
        return z, moments

    def _plan(self, x, z, moments):
        """After a checked forward: plan later batches of ``x``'s shape where it took the direct
        kernel with moments (stride 1), and their batch norm too where its weights are ``(C,)`` of
        the output's dtype: a batch norm (+ ReLU), or one + ReLU + a max pool whose windows tile
        the output (the pool's output size kept)."""
        from ..layers import BatchNormalization

        cache, norm = self.conv._cache[0], self.norm
        if moments is None or cache.layout != "direct":
            self._planned = None
            return
        weights = (
            norm.gamma.value.dtype == z.dtype == norm.beta.value.dtype
            and norm.gamma.value.shape == (z.shape[-1],) == norm.beta.value.shape
        )
        normalises = weights and type(self.norm_step) in (BatchNormalization, BatchNormReLU)
        if weights and type(self.norm_step) is BatchNormReLUMaxPool and self.norm_step.pool.windows_tile(z.shape):
            (ph, pw) = self.norm_step.pool.pool_size
            normalises = (z.shape[1] // ph, z.shape[2] // pw)  # the pooled size
        self._planned = (x.shape, x.dtype, cache.pads, z.shape[1:3], normalises)

    def _takes(self, x, planned) -> bool:
        """Whether ``x`` is of the planned shape and dtype (the weights too), the compiled tier on."""
        return (
            isinstance(x, np.ndarray)
            and x.shape == planned[0]
            and x.dtype == planned[1]
            and self.conv.kernel.value.dtype == x.dtype
            and tier() == "compiled"
        )

    def normalise(self, z, moments):
        """The batch norm step's training forward of ``z`` with its ``moments``."""
        target = None
        if not self.defers_output and self.output_reader is not None:
            target = self.output_reader.bordered_input(z.shape, z.dtype)
        if self._planned is None or not self._planned[4] or moments is None:
            if self.defers_output:
                return self.norm.forward(z, True, moments=moments, deferred=True)
            if target is None:
                return self.norm_step.forward(z, True, moments=moments)
            return self.norm_step.forward(z, True, moments=moments, out=target)
        norm, pooled = self.norm, self._planned[4]
        rows = z.reshape(-1, z.shape[-1])
        if pooled is True:
            relu = type(self.norm_step) is BatchNormReLU
            args = (rows, norm.gamma.value, norm.beta.value, norm.epsilon, z.shape, relu, moments)
            out, cache = training_forward(load_compiled(), *args, self.defers_output, target)
        else:  # batch norm + ReLU + max pool, the pooled size planned
            pool = self.norm_step.pool
            args = (rows, norm.gamma.value, norm.beta.value, norm.epsilon, z.shape, pool.pool_size, pooled, moments)
            out, (cache, pool._cache) = pooled_training_forward(load_compiled(), *args)
        norm._update_moving_statistics(cache)
        norm._cache = (True, cache)
        return out

    @property
    def adds_to_dx(self):
        return self.conv.adds_to_dx

    def backward(self, dout, need_dx=True, dx_plus=None):
        if not need_dx and type(self.norm_step) is BatchNormReLUMaxPool and self.norm._cache[0]:
            return self._weight_backward_through_norm_pool(dout)
        return self.convolve_backward(self.normalise_backward(dout, need_dx), need_dx, dx_plus)

    def normalise_backward(self, dout, need_dx):
        """The batch norm step's backward: ``dz``, where the convolution's input gradient reads
        one, written into the convolution's padded output gradient (:meth:`~npconv.layers.Conv2D.
        bordered_output_gradient`)."""
        conv, norm = self.conv, self.norm
        padded = need_dx and type(self.norm_step) is not BatchNormReLUMaxPool
        target = conv.bordered_output_gradient() if padded else None
        planned = self._planned is not None and self._planned[4] is True and norm._cache is not None
        cache = norm._cache[1] if planned else None
        if type(cache) is not BatchNormCache or not _rows_of(dout, cache) or tier() != "compiled":
            return self.norm_step.backward(dout, True, **({"out": target} if padded else {}))
        norm._cache = None
        dz, norm.gamma.grad, norm.beta.grad = training_backward(
            load_compiled(), dout.reshape(cache.rows.shape), cache, target
        )
        return dz

    def convolve_backward(self, dz, need_dx, dx_plus):
        """The convolution's backward from its output gradient ``dz`` (``dx_plus`` added to ``dx``)."""
        conv = self.conv
        cache = conv._cache[0] if self._planned is not None and conv._cache is not None else None
        if cache is None or cache.layout != "direct" or not _takes_dx_plus(dx_plus, cache) or tier() != "compiled":
            return conv.backward(dz, need_dx, dx_plus=dx_plus)
        conv._cache = None
        dout_pad = conv._taken_back("dout_pad", dz)
        into = self._arrays.get("dx", cache.x_shape, cache.w.dtype) if need_dx else None
        dx, conv.kernel.grad, db = direct_backward(dz, cache, need_dx, conv._workspace, dx_plus, dout_pad, into=into)
        if conv.use_bias:
            conv.bias.grad = db
        return dx

    def _weight_backward_through_norm_pool(self, dout):
        """A first layer (no input gradient) whose batch norm trained, + ReLU + max pool: the
        weight gradient takes the batch norm's input gradient as it reads it
        (:func:`~npconv.functional.conv_batchnorm_relu_maxpool_weight_backward`); the layers'
        weights get their gradients as the two steps' backwards give them."""
        conv, norm = self.conv, self.norm
        conv_cache = conv._take_cache()[0]
        norm_cache = norm._take_cache()[1]
        pool_cache = self.norm_step.pool._take_cache()
        conv.kernel.grad, db, norm.gamma.grad, norm.beta.grad = conv_batchnorm_relu_maxpool_weight_backward(
            dout, conv_cache, norm_cache, pool_cache
        )
        if conv.use_bias:
            conv.bias.grad = db


def _rows_of(dout, cache) -> bool:
    """Whether ``dout`` is the C-contiguous gradient of the batch norm forward that left ``cache``
    (its shape and dtype): the planned backward reads it as rows, unchecked."""
    return (
        isinstance(dout, np.ndarray)
        and dout.shape == cache.shape
        and dout.dtype == cache.rows.dtype
        and dout.flags.c_contiguous
    )


def _takes_dx_plus(dx_plus, cache) -> bool:
    """Whether the planned backward takes ``dx_plus`` unchecked: none, or a C-contiguous array of the
    input's shape and the weights' dtype."""
    return dx_plus is None or (
        isinstance(dx_plus, np.ndarray)
        and dx_plus.shape == cache.x_shape
        and dx_plus.dtype == cache.w.dtype
        and dx_plus.flags.c_contiguous
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
    from ..layers import BatchNormalization, Conv2D

    def conv_of(layer):
        return layer.conv if type(layer) is ConvBatchStatistics else layer if type(layer) is Conv2D else None

    convs = [conv_of(node.layer) for node in steps]
    for k, node in enumerate(steps):
        step = node.layer
        if type(step) is not ConvBatchStatistics or type(step.norm_step) not in (BatchNormalization, BatchNormReLU):
            continue
        j = _only_reader(steps, k)
        reader = None if j is None else convs[j]
        if reader is not None and sum(conv is reader for conv in convs) == 1:
            step.output_reader = reader
    return steps


class ConvBatchNorm:
    """Inference only: a ``Conv2D`` without activation whose output only a ``BatchNormalization``
    reads (or a :class:`BatchNormReLU` step), as one convolution whose filters and bias have the
    batch norm's moving statistics folded in (:func:`~npconv.functional.fold_batchnorm`, refolded
    on every call: the weights may have changed since). It saves the batch norm's pass over the
    output and, for one image, most of a layer's fixed cost. It keeps no cache and has no backward:
    gradients (training, ``Model.gradients``) run the layers as they are."""

    multi_input = False
    passes_gradient = False
    adds_to_dx = False
    trainable_weights = ()

    def __init__(self, conv, norm, relu):
        self.conv, self.norm, self.relu = conv, norm, relu
        self.name = f"{conv.name}+{norm.name}"
        self._cache = None
        self._no_bias = np.zeros(conv.filters)

    def forward(self, x, training=False):
        if training:
            raise RuntimeError(f"{self.name}: a batch norm folded into a convolution is for inference only")
        conv, norm = self.conv, self.norm
        w, b = folded_weights(
            conv.kernel.value,
            conv.bias.value if conv.use_bias else self._no_bias,
            norm.gamma.value,
            norm.beta.value,
            norm.moving_mean.value,
            norm.moving_variance.value,
            norm.epsilon,
        )
        out, _ = conv2d_forward(x, w, b, stride=conv.strides, padding=conv.padding, workspace=conv._workspace)
        return np.maximum(out, 0, out=out) if self.relu else out


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
