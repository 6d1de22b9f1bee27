"""How a model runs its graph: ``MaxPool(ReLU(x))`` executes as ``ReLU(MaxPool(x))``, a batch
norm followed by ReLU as one step, and so does a convolution followed by a large max pool; at
inference, each batch norm folded into the convolution before it.

The swap is exact, outputs and gradients alike, including the awkward cases: windows whose values
are all negative or tie (constant image regions make a convolution's outputs equal).
"""

import numpy as np
import pytest

import npconv as nc
from npconv import layers as L


def build(seed=0):
    nc.utils.set_random_seed(seed)
    model = nc.Sequential(
        [
            L.Conv2D(4, 3, padding="same", input_shape=(8, 8, 2)),
            L.ReLU(),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(3, activation="softmax"),
        ],
        dtype="float64",
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def forward_and_gradients(model, x, y):
    fused = model._training_plan()
    out = model._forward(x, True, logits=fused)
    loss, dout = model.loss.from_logits_and_grad(y, out)
    model._backward(dout)
    return out, [w.grad.copy() for w in model.trainable_weights]


def test_relu_then_pool_runs_as_pool_then_relu():
    model = build()
    assert [type(n.layer).__name__ for n in model._steps][:3] == ["Conv2D", "MaxPooling2D", "ReLU"]
    assert [type(layer).__name__ for layer in model.layers][:3] == ["Conv2D", "ReLU", "MaxPooling2D"]


def test_the_swap_changes_neither_outputs_nor_gradients():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 8, 8, 2))
    x[:, :4, :4, :] = 0.7  # constant regions: tied conv outputs, positive and negative
    x[:, 4:, 4:, :] = -2.0
    y = np.array([0, 1, 2, 1, 0])
    swapped = build()
    plain = build()
    plain._steps = plain._inference_steps = plain._nodes  # the graph as written, no swap
    out_swapped, grads_swapped = forward_and_gradients(swapped, x, y)
    out_plain, grads_plain = forward_and_gradients(plain, x, y)
    np.testing.assert_array_equal(out_swapped, out_plain)
    for g_swapped, g_plain in zip(grads_swapped, grads_plain):
        np.testing.assert_allclose(g_swapped, g_plain, rtol=1e-13, atol=1e-15)


def test_no_swap_when_the_relu_output_is_read_elsewhere():
    inputs = nc.Input(shape=(8, 8, 2))
    a = L.ReLU()(L.Conv2D(4, 3, padding="same")(inputs))
    pooled = L.MaxPooling2D(2)(a)
    merged = L.Add()([L.GlobalAveragePooling2D()(a), L.GlobalAveragePooling2D()(pooled)])
    model = nc.Model(inputs, L.Dense(2, activation="softmax")(merged))
    assert [n.layer for n in model._steps] == [n.layer for n in model._nodes]


def test_intermediate_outputs_follow_the_graph_as_built():
    model = build()
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 2))
    outputs = model.intermediate_outputs(x)
    names = [layer.name for layer in model.layers]
    assert list(outputs) == names
    conv, relu, pooled = (outputs[name] for name in names[:3])
    # Each layer's own output, as written (conv, ReLU, pool), not the pool-then-ReLU order that runs.
    np.testing.assert_array_equal(conv, model.layers[0](x))
    assert relu.shape == (2, 8, 8, 4)
    np.testing.assert_array_equal(relu, np.maximum(conv, 0))
    np.testing.assert_array_equal(pooled, relu.reshape(2, 4, 2, 4, 2, 4).max(axis=(2, 4)))
    np.testing.assert_allclose(outputs[names[-1]], model.predict(x))
    only = model.intermediate_outputs(x, [names[0]])
    assert list(only) == [names[0]]


def test_intermediate_outputs_name_unknown_layers():
    import pytest

    with pytest.raises(ValueError, match=r"layer_names: expected names of this model's layers .*'nope'"):
        build().intermediate_outputs(np.zeros((1, 8, 8, 2)), ["nope"])


# ----- BatchNormalization followed by ReLU runs as one step -----


def build_bn_relu(seed=0, frozen=False):
    nc.utils.set_random_seed(seed)
    inputs = nc.Input(shape=(8, 8, 2))
    x = L.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = L.ReLU()(L.BatchNormalization(trainable=not frozen)(x))
    x = L.MaxPooling2D(2)(x)
    y = L.BatchNormalization()(L.Conv2D(4, 3, padding="same")(x))
    x = L.ReLU()(L.Add()([x, y]))  # a ReLU after Add stays a layer of its own
    model = nc.Model(inputs, L.Dense(3, activation="softmax")(L.Flatten()(x)), dtype="float64")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def test_batchnorm_then_relu_runs_as_one_step():
    from npconv.engine.plan import BatchNormReLU, execution_steps

    model = build_bn_relu()
    steps = execution_steps(model._nodes, pools=False)  # the pool's own fusion apart (below)
    assert [type(n.layer).__name__ for n in steps] == [
        "Conv2D",
        "BatchNormReLU",
        "MaxPooling2D",
        "Conv2D",
        "BatchNormalization",
        "Add",
        "ReLU",
        "Flatten",
        "Dense",
    ]
    fused = steps[1].layer
    assert isinstance(fused, BatchNormReLU) and fused.trainable_weights == model.layers[2].trainable_weights


def test_batchnorm_relu_and_the_max_pool_reading_them_run_as_one_step():
    from npconv.engine.plan import BatchNormReLUMaxPool, execution_steps

    model = build_bn_relu()
    steps = execution_steps(model._nodes, batch_statistics=False)  # the convolutions' fusion apart (below)
    assert [type(n.layer).__name__ for n in steps][:3] == ["Conv2D", "BatchNormReLUMaxPool", "Conv2D"]
    fused = steps[1].layer
    assert isinstance(fused, BatchNormReLUMaxPool) and (fused.norm, fused.pool) == tuple(model.layers[2:5:2])


@pytest.mark.usefixtures("tier")
@pytest.mark.parametrize("frozen", [False, True])
def test_the_fusion_changes_neither_outputs_nor_gradients(frozen):
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((5, 8, 8, 2)), np.array([0, 1, 2, 1, 0])
    fused, plain = build_bn_relu(frozen=frozen), build_bn_relu(frozen=frozen)
    plain._steps = plain._inference_steps = plain._nodes
    out_fused, grads_fused = forward_and_gradients(fused, x, y)
    out_plain, grads_plain = forward_and_gradients(plain, x, y)
    np.testing.assert_allclose(out_fused, out_plain, rtol=1e-13, atol=1e-15)
    for g_fused, g_plain in zip(grads_fused, grads_plain):
        np.testing.assert_allclose(g_fused, g_plain, rtol=1e-12, atol=1e-14)
    bn = fused.layers[2]
    np.testing.assert_allclose(bn.moving_mean.value, plain.layers[2].moving_mean.value, rtol=1e-13)
    np.testing.assert_allclose(fused.predict(x), plain.predict(x), rtol=1e-13, atol=1e-15)


def build_conv_pool(seed=0, first_activation=None):
    nc.utils.set_random_seed(seed)
    model = nc.Sequential(
        [
            L.Conv2D(4, 3, padding="same", activation=first_activation, input_shape=(16, 16, 3)),
            L.ReLU(),
            L.MaxPooling2D(4, padding="same"),
            L.Conv2D(5, 2, padding="same"),
            L.MaxPooling2D(4, padding="same"),
            L.Flatten(),
            L.Dense(3, activation="softmax"),
        ],
        dtype="float64",
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def test_a_convolution_and_a_large_max_pool_run_as_one_step():
    from npconv.engine.plan import ConvMaxPool

    model = build_conv_pool()
    assert [type(n.layer).__name__ for n in model._steps] == [
        "ConvMaxPool",
        "ReLU",
        "ConvMaxPool",
        "Flatten",
        "Dense",
    ]
    fused = model._steps[0].layer
    assert isinstance(fused, ConvMaxPool) and fused.trainable_weights == model.layers[0].trainable_weights
    # an activation inside the convolution comes before the pool: no fusion
    assert type(build_conv_pool(first_activation="relu")._steps[0].layer).__name__ == "Conv2D"


@pytest.mark.usefixtures("tier")
def test_the_conv_pool_fusion_changes_neither_outputs_nor_gradients():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((6, 16, 16, 3)), np.array([0, 1, 2, 1, 0, 2])
    x[:, :5, :5, :] = 0.3  # tied convolution outputs
    fused, plain = build_conv_pool(), build_conv_pool()
    plain._steps = plain._inference_steps = plain._nodes
    out_fused, grads_fused = forward_and_gradients(fused, x, y)
    out_plain, grads_plain = forward_and_gradients(plain, x, y)
    np.testing.assert_array_equal(out_fused, out_plain)
    # the first convolution's kernel and bias gradients from its winners (another order of the same
    # sums); every other gradient, the second convolution's included (it needs dx), bit for bit
    for g_fused, g_plain in zip(grads_fused[:2], grads_plain[:2]):
        np.testing.assert_allclose(g_fused, g_plain, rtol=1e-12, atol=1e-14)
    for g_fused, g_plain in zip(grads_fused[2:], grads_plain[2:]):
        np.testing.assert_array_equal(g_fused, g_plain)
    assert all(node.layer._cache is None for node in fused._steps)  # backward used every cache
    for model in (fused, plain):
        nc.utils.set_random_seed(1)  # the same batches
        model.fit(x, y, epochs=3, batch_size=3, verbose=0)
    for w_fused, w_plain in zip(fused.trainable_weights, plain.trainable_weights):
        np.testing.assert_allclose(w_fused.value, w_plain.value, rtol=1e-10, atol=1e-12)


def build_residual(seed=0, branches=2, pool_strides=None, dtype="float64"):
    """A residual block's end: Add, ReLU, max pool (the ReLU moves after the pool, then the Add and
    the pool fuse)."""
    nc.utils.set_random_seed(seed)
    inputs = nc.Input(shape=(9, 8, 3))
    x = L.Conv2D(4, 3, padding="same")(inputs)
    ys = [L.BatchNormalization()(L.Conv2D(4, 3, padding="same", use_bias=False)(x)) for _ in range(branches - 1)]
    x = L.MaxPooling2D(2, strides=pool_strides)(L.ReLU()(L.Add()([x, *ys])))
    model = nc.Model(inputs, L.Dense(3, activation="softmax")(L.Flatten()(x)), dtype=dtype)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_an_add_the_max_pool_and_the_relu_reading_it_run_as_one_step():
    from npconv.engine.plan import AddMaxPool, AddMaxPoolReLU

    model = build_residual()
    names = [type(n.layer).__name__ for n in model._steps]
    assert names == ["Conv2D", "ConvBatchStatistics", "AddMaxPoolReLU", "Flatten", "Dense"]
    fused = model._steps[2].layer
    assert isinstance(fused, AddMaxPoolReLU) and fused.multi_input and not fused.trainable_weights
    assert isinstance(fused.first, AddMaxPool) and fused.relu is model.layers[5]
    assert (fused.first.add, fused.first.pool) == (model.layers[4], model.layers[6])


@pytest.mark.usefixtures("tier")
@pytest.mark.parametrize("branches, pool_strides", [(2, None), (3, None), (2, 1)])
def test_the_add_pool_fusion_changes_neither_outputs_nor_gradients(branches, pool_strides):
    """Bit for bit: one pass (sum, pool, ReLU) where the pool's windows tile the sum of two
    branches; three branches or overlapping windows run the layers' forwards inside the step."""
    from npconv.engine.plan import execution_steps, plan_backward

    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((5, 9, 8, 3)), np.array([0, 1, 2, 1, 0])
    fused, plain = (
        build_residual(branches=branches, pool_strides=pool_strides),
        build_residual(branches=branches, pool_strides=pool_strides),
    )
    plain._steps = plain._inference_steps = plain._nodes
    fused._steps = execution_steps(fused._nodes, batch_statistics=False)  # the statistics' rounding apart
    plan_backward(fused._steps)
    out_fused, grads_fused = forward_and_gradients(fused, x, y)
    out_plain, grads_plain = forward_and_gradients(plain, x, y)
    np.testing.assert_array_equal(out_fused, out_plain)
    for g_fused, g_plain in zip(grads_fused, grads_plain):
        np.testing.assert_array_equal(g_fused, g_plain)
    assert all(node.layer._cache is None for node in fused._steps)  # backward used every cache


@pytest.mark.usefixtures("tier")
def test_a_branch_gradient_summed_by_the_convolution_equals_the_sum_after_it(monkeypatch):
    """A convolution's input read by another branch too: the engine hands the convolution that
    branch's gradient to add as it writes its own (``adds_to_dx``), with the bits of the sum the
    engine otherwise takes after it."""
    from npconv.engine.plan import ConvBatchStatistics
    from npconv.layers import Conv2D

    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((5, 9, 8, 3)), np.array([0, 1, 2, 1, 0])
    summed, plain = build_residual(branches=3), build_residual(branches=3)
    added = []  # the dx_plus of each convolution's backward, as the layer or the planned step takes it
    backward, planned = Conv2D.backward, ConvBatchStatistics.convolve_backward
    monkeypatch.setattr(
        Conv2D, "backward", lambda self, *a, **k: added.append(k.get("dx_plus")) or backward(self, *a, **k)
    )
    monkeypatch.setattr(
        ConvBatchStatistics, "convolve_backward", lambda self, *a: added.append(a[2]) or planned(self, *a)
    )
    out_summed, grads_summed = forward_and_gradients(summed, x, y)
    assert any(dx_plus is not None for dx_plus in added)
    monkeypatch.setattr(Conv2D, "adds_to_dx", False)
    out_plain, grads_plain = forward_and_gradients(plain, x, y)
    np.testing.assert_array_equal(out_summed, out_plain)
    for g_summed, g_plain in zip(grads_summed, grads_plain):
        np.testing.assert_array_equal(g_summed, g_plain)


# ----- in training, a convolution gives the batch norm after it the batch's statistics -----


def build_conv_norms(seed=0, dtype="float64", frozen=False):
    """A stem (convolution, batch norm, ReLU, pool), a convolution + batch norm + ReLU, a convolution
    + batch norm, and a convolution with an activation before a batch norm (not fused)."""
    nc.utils.set_random_seed(seed)
    inputs = nc.Input(shape=(16, 26, 3))  # rows of 13 after the pool: wide enough for the direct kernel
    x = L.Conv2D(8, 3, padding="same")(inputs)
    x = L.MaxPooling2D(2)(L.ReLU()(L.BatchNormalization(trainable=not frozen)(x)))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, padding="same", use_bias=False)(x)))
    x = L.BatchNormalization()(L.Conv2D(16, 3, padding="same")(x))
    x = L.BatchNormalization()(L.Conv2D(16, 3, padding="same", activation="relu")(x))
    model = nc.Model(inputs, L.Dense(3, activation="softmax")(L.Flatten()(x)), dtype=dtype)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_a_convolution_and_the_batch_norm_reading_it_run_as_one_step():
    from npconv.engine.plan import BatchNormReLU, BatchNormReLUMaxPool, execution_steps

    model = build_conv_norms()
    steps = [n.layer for n in model._steps]
    assert [type(step).__name__ for step in steps] == [
        "ConvBatchStatistics",
        "ConvBatchStatistics",
        "ConvBatchStatistics",
        "Conv2D",
        "BatchNormalization",
        "Flatten",
        "Dense",
    ]
    assert [type(step.norm_step) for step in steps[:3]] == [BatchNormReLUMaxPool, BatchNormReLU, L.BatchNormalization]
    assert steps[0].conv is model.layers[1] and steps[0].norm is model.layers[2]
    assert steps[0].trainable_weights == model.layers[1].trainable_weights + model.layers[2].trainable_weights
    layer_by_layer = execution_steps(model._nodes, pools=False)  # a learner's functions in their place
    assert "ConvBatchStatistics" not in [type(n.layer).__name__ for n in layer_by_layer]


@pytest.mark.usefixtures("tier")
@pytest.mark.parametrize("dtype, frozen", [("float64", False), ("float64", True), ("float32", False)])
def test_the_statistics_fusion_changes_outputs_and_gradients_by_rounding_alone(dtype, frozen):
    """The same outputs, gradients, moving statistics and trained weights as the layers one by one;
    in the compiled tier, no batch norm that a convolution reads makes its own statistics' pass."""
    from npconv.functional._tier import load_compiled, tier

    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((6, 16, 26, 3)).astype(dtype), np.array([0, 1, 2, 1, 0, 2])
    fused, plain = build_conv_norms(dtype=dtype, frozen=frozen), build_conv_norms(dtype=dtype, frozen=frozen)
    plain._steps = plain._inference_steps = plain._nodes
    passes = []
    if tier() == "compiled":
        kernels = load_compiled().batchnorm
        moments = kernels.channel_moments
        kernels.channel_moments = lambda *args: passes.append(args[0].shape) or moments(*args)
    try:
        out_fused, grads_fused = forward_and_gradients(fused, x, y)
    finally:
        if tier() == "compiled":
            kernels.channel_moments = moments
    out_plain, grads_plain = forward_and_gradients(plain, x, y)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(out_fused, out_plain, **tol)
    for g_fused, g_plain in zip(grads_fused, grads_plain):
        np.testing.assert_allclose(g_fused, g_plain, **tol)
    for w_fused, w_plain in zip(fused.weights, plain.weights):  # the moving statistics among them
        np.testing.assert_allclose(w_fused.value, w_plain.value, **tol)
    if tier() == "compiled":
        assert passes == [(6 * 8 * 13, 16)]  # the last batch norm's: its convolution has an activation
    assert all(node.layer._cache is None for node in fused._steps)


def build_rgb_stem(dtype, filters, seed=0):
    """``smallres``'s stem: a 3 x 3 convolution of an RGB image, batch norm, ReLU, 2 x 2 max pool."""
    nc.utils.set_random_seed(seed)
    inputs = nc.Input(shape=(16, 26, 3))
    x = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same", use_bias=False)(inputs))
    x = L.MaxPooling2D(2)(L.ReLU()(x))
    model = nc.Model(inputs, L.Dense(3, activation="softmax")(L.Flatten()(x)), dtype=dtype)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("dtype, filters", [("float32", 16), ("float64", 8)])
def test_a_first_layers_weight_gradient_takes_its_batch_norms_gradient_as_it_reads_it(dtype, filters, monkeypatch):
    """The stem's batch norm's input gradient is never written (computed in the weight gradient's
    tiles): the outputs, gradients and trained weights of the two backwards, bit for bit."""
    from conftest import require

    from npconv.functional._tier import compiled_available, load_compiled

    require(compiled_available(), "Numba is not installed (pip install numba)")
    from npconv.functional.compiled import conv as compiled_conv

    monkeypatch.setattr("npconv.functional._tier._use_compiled", True)  # whatever NPCONV_JIT says

    rng = np.random.default_rng(12)
    x, y = rng.standard_normal((6, 16, 26, 3)).astype(dtype), np.array([0, 1, 2, 1, 0, 2])
    kernels, written = load_compiled().norm_pool, []
    write = kernels.winner_input_gradient
    monkeypatch.setattr(kernels, "winner_input_gradient", lambda *args: written.append(1) or write(*args))
    results = []
    for routed in (True, False):
        if not routed:
            monkeypatch.setattr(compiled_conv, "reads_each_gradient_once", lambda *args: False)
        model = build_rgb_stem(dtype, filters)
        out, grads = forward_and_gradients(model, x, y)
        assert len(written) == (0 if routed else 1)
        nc.utils.set_random_seed(1)
        model.fit(x, y, epochs=2, batch_size=4, verbose=0)
        results.append((out, grads, [w.value for w in model.weights]))
        assert all(node.layer._cache is None for node in model._steps)
    (out_routed, grads_routed, weights_routed), (out_plain, grads_plain, weights_plain) = results
    np.testing.assert_array_equal(out_routed, out_plain)
    for a, b in zip(grads_routed + weights_routed, grads_plain + weights_plain):
        np.testing.assert_array_equal(a, b)


def build_projection_block(seed=0, dtype="float64"):
    """A residual block whose two branches end in batch norms, summed, ReLU, max pool: CONV-BN-RELU-
    CONV-BN beside a 1 x 1 CONV-BN projection (``smallres``'s second and third stages)."""
    nc.utils.set_random_seed(seed)
    inputs = nc.Input(shape=(8, 16, 3))
    x = L.Conv2D(4, 3, padding="same", activation="relu")(inputs)  # the block's input gradient is needed
    y = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(x)))
    y = L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(y))
    shortcut = L.BatchNormalization()(L.Conv2D(8, 1, use_bias=False)(x))
    x = L.MaxPooling2D(2)(L.ReLU()(L.Add()([y, shortcut])))
    model = nc.Model(inputs, L.Dense(3, activation="softmax")(L.Flatten()(x)), dtype=dtype)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.usefixtures("tier")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_add_pool_pass_applies_the_branches_batch_norms_with_their_bits(dtype, monkeypatch):
    """Both branches' last batch norms leave their outputs unwritten (``ScaleShift``) and the Add +
    pool pass applies them: the outputs, gradients and trained weights of the written outputs, bit
    for bit, and two full-size passes fewer."""
    from npconv.engine.plan import ConvBatchStatistics
    from npconv.functional import batchnorm as bn_module
    from npconv.functional._tier import tier

    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((6, 8, 16, 3)).astype(dtype), np.array([0, 1, 2, 1, 0, 2])
    deferred, written = build_projection_block(dtype=dtype), build_projection_block(dtype=dtype)
    statistics = [n.layer for n in deferred._steps if isinstance(n.layer, ConvBatchStatistics)]
    assert [step.defers_output for step in statistics] == [False, True, True]
    for node in written._steps:
        if isinstance(node.layer, ConvBatchStatistics):
            node.layer.defers_output = False
    passes = []
    scale_shift = bn_module._scale_shift
    monkeypatch.setattr(bn_module, "_scale_shift", lambda *args: passes.append(args[0].shape) or scale_shift(*args))
    out_deferred, grads_deferred = forward_and_gradients(deferred, x, y)
    # compiled: the first batch norm's alone (with its ReLU); NumPy: the two branches', written by
    # the Add + pool's NumPy version (the first batch norm's is the NumPy forward's own multiply-add)
    assert len(passes) == (1 if tier() == "compiled" else 2)
    out_written, grads_written = forward_and_gradients(written, x, y)
    np.testing.assert_array_equal(out_deferred, out_written)
    for g_deferred, g_written in zip(grads_deferred, grads_written):
        np.testing.assert_array_equal(g_deferred, g_written)
    assert all(node.layer._cache is None for node in deferred._steps)
    for model in (deferred, written):
        nc.utils.set_random_seed(1)
        model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    for w_deferred, w_written in zip(deferred.weights, written.weights):
        np.testing.assert_array_equal(w_deferred.value, w_written.value)


@pytest.mark.usefixtures("tier")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_batch_norms_write_into_the_next_convolutions_padded_buffers_with_the_same_bits(dtype, monkeypatch):
    """A batch norm + ReLU that a convolution alone reads writes its output into that convolution's
    padded input, and each batch norm after a convolution writes its input gradient into the
    convolution's padded output gradient: the outputs, gradients and trained weights of the padded
    copies, bit for bit; in the compiled tier, none of those padding passes."""
    from npconv.engine.plan import ConvBatchStatistics
    from npconv.functional import padding
    from npconv.functional._tier import tier

    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((6, 8, 16, 3)).astype(dtype), np.array([0, 1, 2, 1, 0, 2])
    bordered, copied = build_projection_block(dtype=dtype), build_projection_block(dtype=dtype)
    statistics = [n.layer for n in bordered._steps if isinstance(n.layer, ConvBatchStatistics)]
    assert statistics[0].output_reader is statistics[1].conv and statistics[1].output_reader is None
    padded = []
    fill = padding._fill_padded
    monkeypatch.setattr(padding, "_fill_padded", lambda x, *args: padded.append(x.shape) or fill(x, *args))
    out_bordered, grads_bordered = forward_and_gradients(bordered, x, y)
    if tier() == "compiled":  # the inputs read twice (the NumPy tier pads for its patch matrices)
        assert padded == [(6, 8, 16, 3), (6, 8, 16, 4)]
    for node in copied._steps:
        if isinstance(node.layer, ConvBatchStatistics):
            node.layer.output_reader = None
    monkeypatch.setattr(L.Conv2D, "bordered_output_gradient", lambda self: None)
    out_copied, grads_copied = forward_and_gradients(copied, x, y)
    np.testing.assert_array_equal(out_bordered, out_copied)
    for g_bordered, g_copied in zip(grads_bordered, grads_copied):
        np.testing.assert_array_equal(g_bordered, g_copied)
    monkeypatch.undo()
    for model in (bordered, copied):
        nc.utils.set_random_seed(1)
        if model is copied:
            monkeypatch.setattr(L.Conv2D, "bordered_output_gradient", lambda self: None)
        model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    for w_bordered, w_copied in zip(bordered.weights, copied.weights):
        np.testing.assert_array_equal(w_bordered.value, w_copied.value)


@pytest.mark.usefixtures("tier")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fit_gathers_each_shuffled_batch_into_the_first_convolutions_padded_input(dtype, monkeypatch):
    """The convolution that alone reads the model's input gets each shuffled batch gathered into
    its padded input buffer: the trained weights of gathering and padding, bit for bit; in the
    compiled tier, no padding pass of the input."""
    from npconv.engine import feeding
    from npconv.engine.plan import input_reader
    from npconv.functional import padding
    from npconv.functional._tier import tier

    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((7, 16, 26, 3)).astype(dtype), rng.integers(0, 3, 7)
    gathered, copied = build_conv_norms(dtype=dtype), build_conv_norms(dtype=dtype)
    assert input_reader(gathered._steps) is gathered._steps[0].layer.conv
    padded = []
    fill = padding._fill_padded
    monkeypatch.setattr(padding, "_fill_padded", lambda x, *args: padded.append(x.shape) or fill(x, *args))
    nc.utils.set_random_seed(1)
    gathered.fit(x, y, epochs=2, batch_size=3, verbose=0)
    if tier() == "compiled":
        assert (3, 16, 26, 3) not in padded and (1, 16, 26, 3) not in padded
    monkeypatch.setattr(feeding, "input_reader", lambda steps: None)
    nc.utils.set_random_seed(1)
    copied.fit(x, y, epochs=2, batch_size=3, verbose=0)
    for w_gathered, w_copied in zip(gathered.weights, copied.weights):
        np.testing.assert_array_equal(w_gathered.value, w_copied.value)


def test_only_a_convolution_reading_the_input_alone_takes_the_gathered_batches():
    from npconv.engine.plan import input_reader

    inputs = nc.Input(shape=(8, 8, 3))
    flipped = nc.Model(inputs, L.Conv2D(4, 3, padding="same")(L.RandomFlip()(inputs)))
    shared = L.Conv2D(4, 3, padding="same")
    twice = nc.Model(inputs, L.Add()([shared(inputs), L.Conv2D(4, 1)(inputs)]))
    assert input_reader(flipped._steps) is None and input_reader(twice._steps) is None


@pytest.mark.usefixtures("tier")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("build", [build_projection_block, build_conv_norms])
def test_planned_steps_train_with_the_checked_calls_bits(build, dtype, monkeypatch):
    """After its first batch of a shape, a convolution + batch norm step and an Add + pool step call
    the unchecked functions directly (compiled tier): the weights trained, bit for bit, those of the
    layers' checked calls on every batch; the last, smaller batch of an epoch has a plan of its own,
    so each shape is checked once in the whole training."""
    from npconv.engine.plan import AddMaxPool, ConvBatchStatistics
    from npconv.functional._tier import tier

    rng = np.random.default_rng(12)
    shape = build(dtype=dtype).input_shape[1:]
    x, y = rng.standard_normal((7, *shape)).astype(dtype), rng.integers(0, 3, 7)
    checked_calls = []
    forward_with_moments = L.Conv2D.forward_with_moments
    monkeypatch.setattr(
        L.Conv2D, "forward_with_moments", lambda self, *a: checked_calls.append(1) or forward_with_moments(self, *a)
    )
    planned = build(dtype=dtype)
    nc.utils.set_random_seed(1)
    planned.fit(x, y, epochs=3, batch_size=2, verbose=0)
    steps = sum(isinstance(n.layer, ConvBatchStatistics) for n in planned._steps)
    batches = 3 * 4  # batches of 2, 2, 2 and 1 image
    # compiled: each step checks its first batch of 2 and its first of 1; NumPy: every batch
    assert len(checked_calls) == (steps * 2 if tier() == "compiled" else steps * batches)

    # no plans: every batch through the layers' checked calls
    monkeypatch.setattr(ConvBatchStatistics, "_plan", lambda self, *a: None)
    monkeypatch.setattr(AddMaxPool, "_plan", lambda self, *a: None)
    checked = build(dtype=dtype)
    nc.utils.set_random_seed(1)
    checked.fit(x, y, epochs=3, batch_size=2, verbose=0)
    for w_planned, w_checked in zip(planned.weights, checked.weights):
        np.testing.assert_array_equal(w_planned.value, w_checked.value)


# ----- at inference, a batch norm is folded into the convolution before it -----


def test_inference_folds_each_batch_norm_into_its_convolution():
    from npconv.engine.plan import ConvBatchNorm

    model = build_bn_relu()
    steps = [n.layer for n in model._inference_steps]
    assert [type(layer).__name__ for layer in steps] == [
        "ConvBatchNorm",
        "MaxPooling2D",
        "ConvBatchNorm",
        "Add",
        "ReLU",
        "Flatten",
        "Dense",
    ]
    assert isinstance(steps[0], ConvBatchNorm) and steps[0].relu and not steps[2].relu
    assert (steps[0].conv, steps[0].norm) == (model.layers[1], model.layers[2])


def test_no_fold_after_an_activation_or_for_an_output_read_twice():
    inputs = nc.Input(shape=(8, 8, 2))
    a = L.BatchNormalization()(L.Conv2D(4, 3, padding="same", activation="relu")(inputs))
    b = L.Conv2D(4, 3, padding="same")(a)
    merged = L.Add()([L.BatchNormalization()(b), b])
    model = nc.Model(inputs, L.Dense(2, activation="softmax")(L.Flatten()(merged)))
    assert [n.layer for n in model._inference_steps] == [n.layer for n in model._steps]


def predict_and_evaluate(model, x, y):
    return model.predict(x), model.evaluate(x, y, verbose=0)


@pytest.mark.usefixtures("tier")
@pytest.mark.parametrize("frozen", [False, True])
def test_the_fold_changes_predictions_by_rounding_alone_and_follows_the_weights(frozen):
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((6, 8, 8, 2)), np.array([0, 1, 2, 1, 0, 2])
    folded, plain = build_bn_relu(frozen=frozen), build_bn_relu(frozen=frozen)
    plain._inference_steps = plain._steps
    for model in (folded, plain):  # moving statistics and weights away from their initial values
        nc.utils.set_random_seed(2)
        model.fit(x, y, epochs=2, batch_size=3, verbose=0)
    for _ in range(2):
        (p_folded, loss_folded), (p_plain, loss_plain) = (predict_and_evaluate(m, x, y) for m in (folded, plain))
        np.testing.assert_allclose(p_folded, p_plain, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(loss_folded, loss_plain, rtol=1e-12)
        np.testing.assert_allclose(folded(x), plain(x), rtol=1e-12, atol=1e-14)
        for model in (folded, plain):  # weights changed by hand: the next predictions use them
            bn = model.layers[2]
            bn.moving_variance.value *= 3.0
            bn.gamma.value[0] = -2.0
            model.layers[1].kernel.value[0, 0] += 0.5


def test_a_float32_fold_is_as_close_as_float32_allows():
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((6, 8, 8, 2)).astype(np.float32), np.array([0, 1, 2, 1, 0, 2])
    nc.utils.set_random_seed(0)
    inputs = nc.Input(shape=(8, 8, 2))
    h = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(inputs)))
    model = nc.Model(inputs, L.Dense(3, activation="softmax")(L.Flatten()(h)))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=3, verbose=0)
    folded = model.predict(x)
    model._inference_steps = model._steps
    np.testing.assert_allclose(folded, model.predict(x), rtol=1e-5, atol=1e-6)


def test_gradients_run_the_layers_as_they_are():
    model = build_bn_relu()
    x = np.random.default_rng(8).standard_normal((2, 8, 8, 2))
    seed = np.ones((2, 3))
    z, _, grads = model.gradients(x, seed)
    model._inference_steps = model._nodes  # nothing folded: the same logits and gradients, bit for bit
    z_plain, _, grads_plain = model.gradients(x, seed)
    np.testing.assert_array_equal(z, z_plain)
    for name in grads:
        np.testing.assert_array_equal(grads[name], grads_plain[name])
