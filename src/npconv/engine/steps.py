"""The steps a model's plan runs in place of its layers (:mod:`npconv.engine.plan` makes the plan).

Each step stands for two or three layers, each reading the one before it alone; it runs them in
fewer passes (fused kernels, a batch norm's statistics from the convolution before it, an output
left for the next pass to apply, buffers written in place) and leaves every layer's cache, weight
gradients and moving statistics as the layer alone would: the layers' own backward passes, saving
and ``Model.gradients`` see no difference. Equal to the layers one by one but for the order of a
sum (bit for bit where the docstrings say so).

A training step of :class:`ConvBatchStatistics` or :class:`AddMaxPool` is planned once per shape:
its first batch of a shape runs the layers' checked calls, and where they took the compiled
kernels, later batches of that shape call the functions those calls end in directly, with the same
bits and without the checks and the layer calls around them.
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
        # each branch's (kind, shape, dtype) -> the pooled size, for the branches of checked passes
        # (an epoch's batches, and its last, smaller one): later passes of those skip the checks
        self._plans = {}

    @property
    def add(self):
        return self.first

    def in_one_pass(self, xs) -> bool:
        """Whether :meth:`sum_and_pool` takes ``xs``: two branches, the pool's windows tiling the sum
        (known for the planned shape: a checked pass took it)."""
        if len(xs) != 2:
            return False
        return any(kinds[0][1] == xs[0].shape for kinds in self._plans) or self.pool.windows_tile(xs[0].shape)

    def sum_and_pool(self, xs, relu=False):
        """The one pass, the output clipped at 0 with ``relu`` (an :class:`AddMaxPoolReLU` step's);
        both layers keep the caches they would alone. Planned once per shape as
        :class:`ConvBatchStatistics` is: after a checked pass, branches of the same kinds, shapes
        and dtype go to the compiled pass unchecked (the same bits)."""
        kinds = tuple(_branch_kind(x) for x in xs)
        pooled = self._plans.get(kinds) if len(xs) == 2 and tier() == "compiled" else None
        if pooled is None:
            out, self.pool._cache = add_maxpool_forward(xs[0], xs[1], self.pool.pool_size, relu=relu)
            self._plan(kinds, out)
        else:
            branches = [(x.x, x.scale, x.offset) if isinstance(x, ScaleShift) else (x, None, None) for x in xs]
            args = (*branches, self.pool.pool_size, pooled, relu)
            out, self.pool._cache = summed_maxpool_forward(load_compiled(), *args)
        self.add._cache = len(xs)
        return out

    def _plan(self, kinds, out):
        """After a checked pass under the compiled tier: its pooled size for branches of ``kinds``
        (two of one shape and dtype, each an array or a mapped one)."""
        if tier() == "compiled" and len(kinds) == 2 and None not in kinds and kinds[0][1:] == kinds[1][1:]:
            _remember(self._plans, kinds, out.shape[1:3])

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
        # (input shape, dtype) -> (padding, output size, the batch norm's plan: True, a pooled size
        # or False), for the shapes of checked batches (an epoch's, and its last, smaller one); the
        # plan of the batch in hand, or None while it runs the checked calls: see _plan
        self._plans = {}
        self._planned = None

    @property
    def conv(self):
        return self.first

    @property
    def norm_step(self):
        return self.second

    #: Set by :func:`~npconv.engine.plan.defer_batchnorm_outputs`: the training output is a
    #: :class:`~npconv.functional.ScaleShift` for the Add + pool step that alone reads it.
    defers_output = False
    #: Set by :func:`~npconv.engine.plan.write_into_padded_inputs`: the convolution that alone reads the training
    #: output, into whose padded input buffer the batch norm writes it.
    output_reader = None

    def forward(self, x, training=False):
        if not (training and self.norm.trainable):
            return self.norm_step.forward(self.conv.forward(x, training), training)
        z, moments = self.convolve(x)
        return self.normalise(z, moments)

    def convolve(self, x):
        """The convolution's training forward with its output's moments, ``(z, moments)``."""
        conv = self.conv
        planned = self._plans.get((x.shape, x.dtype)) if isinstance(x, np.ndarray) else None
        if planned is None or not self._takes(x):
            self._planned = None
            z, moments = conv.forward_with_moments(x, True)
            self._plan(x, z, moments)
            return z, moments
        self._planned = planned
        pads, out_size, _ = planned
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
            return
        weights = (
            norm.gamma.value.dtype == z.dtype == norm.beta.value.dtype
            and norm.gamma.value.shape == (z.shape[-1],) == norm.beta.value.shape
        )
        normalises = weights and type(self.norm_step) in (BatchNormalization, BatchNormReLU)
        if weights and type(self.norm_step) is BatchNormReLUMaxPool and self.norm_step.pool.windows_tile(z.shape):
            (ph, pw) = self.norm_step.pool.pool_size
            normalises = (z.shape[1] // ph, z.shape[2] // pw)  # the pooled size
        self._planned = (cache.pads, z.shape[1:3], normalises)
        _remember(self._plans, (x.shape, x.dtype), self._planned)

    def _takes(self, x) -> bool:
        """Whether a planned ``x`` goes to the planned calls: the weights of its dtype, the compiled
        tier on."""
        return self.conv.kernel.value.dtype == x.dtype and tier() == "compiled"

    def normalise(self, z, moments):
        """The batch norm step's training forward of ``z`` with its ``moments``."""
        target = None
        if not self.defers_output and self.output_reader is not None:
            target = self.output_reader.bordered_input(z.shape, z.dtype)
        if self._planned is None or not self._planned[2] or moments is None:
            if self.defers_output:
                return self.norm.forward(z, True, moments=moments, deferred=True)
            if target is None:
                return self.norm_step.forward(z, True, moments=moments)
            return self.norm_step.forward(z, True, moments=moments, out=target)
        norm, pooled = self.norm, self._planned[2]
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
        planned = self._planned is not None and self._planned[2] is True and norm._cache is not None
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


def _remember(plans: dict, key, plan) -> None:
    """``plans[key] = plan``, forgetting the others past a few shapes (a model fed many)."""
    if len(plans) >= _PLANNED_SHAPES:
        plans.clear()
    plans[key] = plan


#: Shapes a step keeps plans for: a training's batches come in two (the last one smaller).
_PLANNED_SHAPES = 4


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
