"""Optimisers: Keras's update rules, checked step by step against torch.optim, plus state and config.

Where Keras and PyTorch differ only in where epsilon goes (Adam, RMSprop) the comparison uses a
tiny epsilon so the two formulas agree to float64 rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require

from npconv import optimizers
from npconv.optimizers import SGD, Adam, AdamW, RMSprop, schedules

SHAPES = [(3, 4), (5,), (2, 2, 3, 2)]


def _gradient_stream(rng, steps):
    """Random gradients, one list per step: the optimiser sees non-stationary noisy gradients."""
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]


def _run_npconv(opt, params, grads):
    params = [p.copy() for p in params]
    for step in grads:
        opt.apply_gradients(list(zip(step, params)))
    return params


def _run_torch(torch, make_opt, params, grads):
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    opt = make_opt(tensors)
    for step in grads:
        for t, g in zip(tensors, step):
            t.grad = torch.tensor(g)
        opt.step()
    return [t.detach().numpy() for t in tensors]


CASES = {
    "sgd": (lambda: SGD(0.1), lambda t, ps: t.optim.SGD(ps, lr=0.1)),
    "sgd-momentum": (lambda: SGD(0.05, momentum=0.9), lambda t, ps: t.optim.SGD(ps, lr=0.05, momentum=0.9)),
    "sgd-nesterov": (
        lambda: SGD(0.05, momentum=0.8, nesterov=True),
        lambda t, ps: t.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True),
    ),
    "adam": (lambda: Adam(0.01, epsilon=1e-12), lambda t, ps: t.optim.Adam(ps, lr=0.01, eps=1e-12)),
    "adam-betas": (
        lambda: Adam(0.02, beta_1=0.5, beta_2=0.9, epsilon=1e-12),
        lambda t, ps: t.optim.Adam(ps, lr=0.02, betas=(0.5, 0.9), eps=1e-12),
    ),
    "adam-amsgrad": (
        lambda: Adam(0.01, epsilon=1e-12, amsgrad=True),
        lambda t, ps: t.optim.Adam(ps, lr=0.01, eps=1e-12, amsgrad=True),
    ),
    # Decoupled weight decay: p -= lr * wd * p before the step, as torch.optim.AdamW.
    "adamw": (
        lambda: AdamW(0.01, weight_decay=0.1, epsilon=1e-12),
        lambda t, ps: t.optim.AdamW(ps, lr=0.01, weight_decay=0.1, eps=1e-12),
    ),
    "adamw-amsgrad": (
        lambda: AdamW(0.02, weight_decay=0.05, beta_1=0.5, epsilon=1e-16, amsgrad=True),
        lambda t, ps: t.optim.AdamW(ps, lr=0.02, weight_decay=0.05, betas=(0.5, 0.999), eps=1e-16, amsgrad=True),
    ),
    "adam-weight-decay": (
        lambda: Adam(0.01, epsilon=1e-12, weight_decay=0.2),
        lambda t, ps: t.optim.AdamW(ps, lr=0.01, weight_decay=0.2, eps=1e-12),
    ),
    # Without momentum, decoupled decay and torch's L2 term (g + wd * p) give the same step.
    "sgd-weight-decay": (lambda: SGD(0.1, weight_decay=0.3), lambda t, ps: t.optim.SGD(ps, lr=0.1, weight_decay=0.3)),
    "rmsprop": (
        lambda: RMSprop(0.01, rho=0.9, epsilon=1e-14),
        lambda t, ps: t.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-14),
    ),
    "rmsprop-momentum": (
        lambda: RMSprop(0.01, rho=0.8, momentum=0.5, epsilon=1e-14),
        lambda t, ps: t.optim.RMSprop(ps, lr=0.01, alpha=0.8, momentum=0.5, eps=1e-14),
    ),
}


@pytest.mark.torch
@pytest.mark.parametrize("case", sorted(CASES))
def test_trajectory_matches_torch(torch, rng, case):
    # With a constant learning rate, Keras's SGD velocity (-lr * torch's buffer) gives the same steps;
    # Adam's and RMSprop's epsilon placements differ, made irrelevant by a tiny epsilon.
    make_ours, make_theirs = CASES[case]
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = _gradient_stream(rng, 20)
    ours = _run_npconv(make_ours(), params, grads)
    theirs = _run_torch(torch, lambda ps: make_theirs(torch, ps), params, grads)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.torch
def test_adamw_follows_a_cosine_schedule_like_torch(torch, rng):
    # The decay uses the scheduled rate of each step: torch's LambdaLR with the same cosine.
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = _gradient_stream(rng, 20)
    cosine = schedules.CosineDecay(0.05, decay_steps=15)
    ours = _run_npconv(AdamW(cosine, weight_decay=0.1, epsilon=1e-16), params, grads)
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    opt = torch.optim.AdamW(tensors, lr=0.05, weight_decay=0.1, eps=1e-16)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: cosine(step) / 0.05)
    for step in grads:
        for t, g in zip(tensors, step):
            t.grad = torch.tensor(g)
        opt.step()
        scheduler.step()
    for a, t in zip(ours, tensors):
        np.testing.assert_allclose(a, t.detach().numpy(), rtol=1e-10, atol=1e-10)


def test_weight_decay_is_decoupled_from_momentum():
    # Keras 3 decays the weight itself (p *= 1 - lr * wd) and leaves the velocity alone; torch's
    # SGD(weight_decay=) would add wd * p to the gradient and carry it in the momentum instead.
    param, velocity = np.array([2.0]), 0.0
    opt = SGD(0.1, momentum=0.9, weight_decay=0.5)
    for grad in (1.0, -0.5, 0.25):
        expected_param = param * (1 - 0.1 * 0.5)
        velocity = 0.9 * velocity - 0.1 * grad
        expected_param = expected_param + velocity
        opt.apply_gradients([(np.array([grad]), param)])
        np.testing.assert_allclose(param, expected_param, rtol=1e-12)


def test_zero_gradient_only_decays():
    param = np.array([1.0, -4.0], dtype=np.float32)
    SGD(0.5, weight_decay=0.2).apply_gradients([(np.zeros(2, dtype=np.float32), param)])
    np.testing.assert_allclose(param, [0.9, -3.6], rtol=1e-6)
    assert param.dtype == np.float32


@pytest.mark.torch
def test_adam_default_epsilon_stays_close_to_torch(torch, rng):
    # Keras: lr_t * m / (sqrt(v) + eps); torch: lr * m_hat / (sqrt(v_hat) + eps). With the same eps
    # each step differs by about lr * eps / sqrt(v): negligible, except where a gradient is tiny.
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = _gradient_stream(rng, 20)
    ours = _run_npconv(Adam(0.01), params, grads)
    theirs = _run_torch(torch, lambda ps: torch.optim.Adam(ps, lr=0.01, eps=1e-7), params, grads)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


def test_adam_first_step_moves_each_weight_by_lr():
    # After bias correction the first Adam step is lr * g / (|g| + eps'): lr times the sign.
    param = np.array([1.0, -2.0, 3.0])
    Adam(0.1, epsilon=1e-12).apply_gradients([(np.array([0.5, -4.0, 0.0]), param)])
    np.testing.assert_allclose(param, [0.9, -1.9, 3.0], atol=1e-9)


def test_keras_docstring_example_rmsprop():
    # keras.optimizers.RMSprop(learning_rate=0.1) on loss = var**2 / 2 from 10.0 gives 9.683772.
    var = np.array([10.0], dtype=np.float32)
    RMSprop(learning_rate=0.1).apply_gradients([(var.copy(), var)])
    np.testing.assert_allclose(var, [9.683772], rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [lambda: SGD(0.1, momentum=0.9, nesterov=True), Adam, lambda: Adam(amsgrad=True), lambda: RMSprop(momentum=0.5)],
)
def test_float32_stays_float32_and_in_place(rng, make):
    opt = make()
    param = rng.standard_normal((4, 3)).astype(np.float32)
    before, alias = param.copy(), param
    for _ in range(3):
        opt.apply_gradients([(rng.standard_normal((4, 3)).astype(np.float32), param)])
    assert alias is param and param.dtype == np.float32
    assert not np.array_equal(param, before)
    assert all(v.dtype == np.float32 for k, v in opt.get_state().items() if k != "iterations")


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the NumPy tier's inf / inf
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "make", [lambda: Adam(0.01), lambda: Adam(0.01, amsgrad=True), lambda: AdamW(0.01, 0.1), lambda: Adam(1e3)]
)
def test_adam_gives_the_same_bits_in_both_tiers(dtype, make):
    """The compiled tier updates every param in one call; its arithmetic is the NumPy tier's, in
    its order and types. Gradients of zero, inf and NaN included."""
    from npconv.functional._tier import compiled_available, use_tier

    require(compiled_available(), "Numba is not installed (pip install numba)")

    def train(tier):
        rng = np.random.default_rng(3)
        params = [rng.standard_normal(s).astype(dtype) for s in [(3, 3, 2, 4), (4,), (5, 3), (1,)]]
        opt = make()
        with use_tier(tier):
            for step in range(6):
                grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
                grads[1][0] = 0.0
                if step == 4:
                    grads[2][0, 0], grads[2][1, 1] = np.inf, np.nan
                opt.apply_gradients(zip(grads, params))
        return params, opt.get_state()

    (params_np, state_np), (params_c, state_c) = train("numpy"), train("compiled")
    for a, b in zip(params_np + list(state_np.values()), params_c + list(state_c.values())):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_the_compiled_adams_kept_views_follow_new_params_and_restored_state(amsgrad):
    """The compiled Adam keeps its flat views of the params and slots between calls: a param array
    replaced, the state restored, a param of another dtype, each takes the NumPy tier's bits."""
    from npconv.functional._tier import compiled_available, use_tier

    require(compiled_available(), "Numba is not installed (pip install numba)")

    def train(tier):
        rng = np.random.default_rng(5)
        params = [rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (4,), (2, 2)]]
        opt = Adam(0.01, amsgrad=amsgrad)
        with use_tier(tier):
            for step in range(8):
                if step == 2:
                    params[0] = params[0].copy()  # a new array: the kept view would miss it
                if step == 4:
                    opt.set_state(
                        {k: v * 0.5 for k, v in opt.get_state().items() if k != "iterations"}
                        | {"iterations": opt.get_state()["iterations"]}
                    )
                if step == 6:
                    params[1] = params[1].astype(np.float64)  # then one param at a time
                grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
                opt.apply_gradients(zip(grads, params))
        return params + list(opt.get_state().values())

    for a, b in zip(train("numpy"), train("compiled")):
        np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_compiled_adam_says_whether_its_update_left_every_value_finite(dtype):
    """apply_gradients returns what the compiled update counted as it wrote the values (the
    training step's divergence check), and None where nothing checked them (the NumPy tier)."""
    from npconv.functional._tier import compiled_available, use_tier

    require(compiled_available(), "Numba is not installed (pip install numba)")
    params = [np.ones((3, 4), dtype), np.ones(5, dtype)]
    with use_tier("compiled"):
        opt = Adam(0.1)
        assert opt.apply_gradients([(np.ones_like(p), p) for p in params]) is True
        grads = [np.ones_like(p) for p in params]
        grads[1][-1] = np.nan  # the last value of the last param: every value is counted
        assert opt.apply_gradients(zip(grads, params)) is False
        assert Adam(np.finfo(dtype).max).apply_gradients([(np.ones(2, dtype), np.zeros(2, dtype))]) is True
    with use_tier("numpy"):
        assert Adam(0.1).apply_gradients([(np.ones_like(p), p) for p in params]) is None


def test_adam_takes_params_one_call_cannot(rng):
    """Params of two dtypes, or a param that is a strided view, are updated one by one."""
    from npconv.functional._tier import compiled_available, use_tier

    require(compiled_available(), "Numba is not installed (pip install numba)")

    def train(tier):
        base = np.random.default_rng(4).standard_normal((6, 4))
        params = [base.astype(np.float32), base[:, ::2].copy(), base[::2]]  # float32, float64, a view
        opt = Adam(0.05)
        with use_tier(tier):
            for step in range(3):
                opt.apply_gradients([(np.full(p.shape, step + 1.0, p.dtype), p) for p in params])
        return params

    for a, b in zip(train("numpy"), train("compiled")):
        np.testing.assert_array_equal(a, b)


def test_float64_gradient_on_float32_param_keeps_float32(rng):
    param = np.zeros(5, dtype=np.float32)
    Adam().apply_gradients([(rng.standard_normal(5), param)])
    assert param.dtype == np.float32


@pytest.mark.parametrize(
    "make",
    [
        lambda: SGD(0.1, momentum=0.9),
        lambda: Adam(0.01, amsgrad=True),
        lambda: RMSprop(0.01, momentum=0.3),
        lambda: AdamW(0.01, 0.1),
        lambda: Adam(schedules.CosineDecay(0.01, 10)),
    ],
)
def test_state_round_trip_resumes_exactly(rng, make):
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = _gradient_stream(rng, 12)
    uninterrupted = _run_npconv(make(), params, grads)

    first = make()
    halfway = _run_npconv(first, params, grads[:5])
    state = {k: v.copy() for k, v in first.get_state().items()}
    assert all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in state.items())
    resumed = make()
    resumed.set_state(state)
    finished = _run_npconv(resumed, halfway, grads[5:])
    for a, b in zip(finished, uninterrupted):
        np.testing.assert_array_equal(a, b)
    assert resumed.iterations == 12


def test_state_keys_name_slots_and_positions(rng):
    opt = Adam()
    opt.apply_gradients([(np.ones(2), np.zeros(2)), (np.ones((1, 3)), np.zeros((1, 3)))])
    state = opt.get_state()
    assert sorted(state) == ["iterations", "m/0", "m/1", "v/0", "v/1"]
    assert int(state["iterations"]) == 1 and state["m/1"].shape == (1, 3)


def test_set_state_refuses_wrong_shapes_and_foreign_slots():
    opt = Adam()
    opt.apply_gradients([(np.ones(2), np.zeros(2))])
    state = opt.get_state()
    with pytest.raises(ValueError, match="shapes"):
        opt.set_state({**state, "m/0": np.zeros(3), "v/0": np.zeros(3)})
    with pytest.raises(ValueError, match="unexpected keys"):
        SGD(momentum=0.9).set_state(state)
    with pytest.raises(ValueError, match="iterations"):
        opt.set_state({"m/0": np.zeros(2)})


def test_restored_state_checked_against_params_on_next_update():
    opt = Adam()
    opt.set_state({"iterations": np.array(3), "m/0": np.zeros(4), "v/0": np.zeros(4)})
    with pytest.raises(ValueError, match="param 0"):
        opt.apply_gradients([(np.ones(2), np.zeros(2))])


def test_changing_the_parameter_list_is_refused():
    opt = SGD(momentum=0.5)
    opt.apply_gradients([(np.ones(2), np.zeros(2))])
    with pytest.raises(ValueError, match="pairs"):
        opt.apply_gradients([(np.ones(2), np.zeros(2)), (np.ones(2), np.zeros(2))])


def test_bad_pairs_are_refused():
    with pytest.raises(ValueError, match="grad 0"):
        SGD().apply_gradients([(np.ones(3), np.zeros(2))])
    with pytest.raises(TypeError, match="param 0"):
        SGD().apply_gradients([(np.ones(2), np.zeros(2, dtype=np.int64))])


# --------------------------------------------------------------------------- learning rate


def test_learning_rate_is_settable_and_read_by_the_next_update():
    opt = SGD(0.1)
    param = np.zeros(1)
    opt.learning_rate = 0.5
    opt.apply_gradients([(np.ones(1), param)])
    assert opt.learning_rate == 0.5 and param[0] == -0.5


def test_schedules_follow_keras_formulas():
    decay = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert decay(0) == pytest.approx(0.1) and decay(5) == pytest.approx(0.1 * 0.5**0.5)
    stairs = schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True)
    assert stairs(9) == pytest.approx(0.1) and stairs(10) == pytest.approx(0.05)
    cosine = schedules.CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert cosine(0) == pytest.approx(1.0) and cosine(50) == pytest.approx(0.55)
    assert cosine(100) == pytest.approx(0.1) and cosine(500) == pytest.approx(0.1)


def test_schedule_is_evaluated_at_iterations():
    opt = SGD(schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5))
    param = np.zeros(1)
    for _ in range(3):
        opt.apply_gradients([(np.ones(1), param)])
    # steps 0, 1, 2 use 1, 0.5, 0.25
    assert param[0] == pytest.approx(-1.75)
    assert opt.learning_rate == pytest.approx(0.125)


# --------------------------------------------------------------------------- config and registry


@pytest.mark.parametrize(
    "opt",
    [
        SGD(0.2, momentum=0.9, nesterov=True),
        Adam(3e-4, amsgrad=True),
        RMSprop(0.01, rho=0.8, momentum=0.1),
        Adam(schedules.CosineDecay(0.01, 100, alpha=0.1)),
        AdamW(1e-3, weight_decay=0.05),
        SGD(0.1, weight_decay=1e-4),
    ],
)
def test_config_round_trip(opt):
    import json

    config = json.loads(json.dumps(opt.get_config()))
    for clone in (
        type(opt).from_config(config),
        optimizers.Optimizer.from_config(config),
        optimizers.get(config),
        optimizers.get(optimizers.serialize(opt)),
    ):
        assert type(clone) is type(opt) and clone.get_config() == opt.get_config()


@pytest.mark.parametrize(
    "name, cls",
    [
        ("sgd", SGD),
        ("SGD", SGD),
        ("adam", Adam),
        ("Adam", Adam),
        ("rmsprop", RMSprop),
        ("RMSprop", RMSprop),
        ("AdamW", AdamW),
    ],
)
def test_get_by_name(name, cls):
    opt = optimizers.get(name)
    assert type(opt) is cls
    assert optimizers.get(opt) is opt


def test_defaults_are_keras():
    assert SGD().learning_rate == 0.01 and Adam().learning_rate == 0.001
    assert Adam().get_config() == {
        "name": "adam",
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
    }
    assert RMSprop().get_config()["rho"] == 0.9
    assert AdamW().weight_decay == 0.004 and Adam().weight_decay is None
    assert AdamW().get_config()["name"] == "adamw"


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="'adam', 'adamw', 'rmsprop', 'sgd'"):
        optimizers.get("adagrad")


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: SGD(-0.1), "learning_rate"),
        (lambda: SGD(momentum=1.5), "momentum"),
        (lambda: Adam(beta_1=1.0), "beta_1"),
        (lambda: Adam(beta_2=-0.1), "beta_2"),
        (lambda: Adam(epsilon=-1), "epsilon"),
        (lambda: RMSprop(rho=1.0), "rho"),
        (lambda: Adam(learning_rate="fast"), "learning_rate"),
        (lambda: schedules.CosineDecay(0.1, 0), "decay_steps"),
        (lambda: AdamW(weight_decay=-0.1), "weight_decay"),
        (lambda: SGD(weight_decay="lots"), "weight_decay"),
    ],
)
def test_bad_hyper_parameters_name_the_argument(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()
