"""Optimisers with Keras's names, defaults and update rules: SGD, Adam, RMSprop.

``opt.apply_gradients([(grad, param), ...])`` updates every ``param`` in place. Slot arrays
(momentum, Adam's moments, ...) are created on the first call with each param's shape and dtype
and are keyed by position, so a model must pass its trainable weights in the same order every
time. Each update works in place through ``out=`` arguments on one preallocated scratch array
per param: no temporaries, and float32 stays float32. For the small arrays of the course models
the cost of a step is the ~11 ufunc calls per array, not arithmetic; so with the compiled tier
(:mod:`npconv.functional._tier`) Adam updates every param in one compiled call instead, with the
same bits (``smallres``'s 29 arrays: about 2.5x faster).

``learning_rate`` is a float or a schedule from :mod:`schedules <npconv.schedules>`, evaluated at ``iterations``
(the number of updates applied so far) as in Keras.

``weight_decay`` (every optimiser, as in Keras 3) is decoupled weight decay (Loshchilov & Hutter):
before each update ``p -= lr * weight_decay * p``, apart from the gradient, so Adam's scaling does
not touch it. :class:`AdamW` is Adam with it on by default. It applies to every trainable weight
(biases and batch-norm scales too, as Keras and PyTorch do unless told otherwise).
"""

from __future__ import annotations

import math

import numpy as np

from . import schedules, utils
from .errors import check_range, expected
from .functional._tier import tiered
from .schedules import SCHEDULES, CosineDecay, ExponentialDecay, LearningRateSchedule

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "LearningRateSchedule",
    "ExponentialDecay",
    "CosineDecay",
    "schedules",
    "get",
    "serialize",
]


class Optimizer(utils.Configurable):
    """Base class. Subclasses name their slots in ``slot_names()`` and implement ``_update``.

    State: ``iterations`` (updates applied) and ``_slots[name][i]``, the slot ``name`` of the
    ``i``-th param; ``_scratch[i]`` is work space, not state. ``weight_decay``: ``None`` (off) or
    the decoupled decay rate (see the module docstring).
    """

    name = "optimizer"

    def __init__(self, learning_rate=0.001, weight_decay=None):
        self.learning_rate = learning_rate
        self.weight_decay = (
            None if weight_decay is None else check_range(weight_decay, "weight_decay", 0.0, math.inf, False)
        )
        self.iterations = 0
        self._slots: dict[str, list[np.ndarray]] = {}
        self._scratch: list[np.ndarray] = []
        self._flat = None  # the compiled Adam's flat views of the params and slots (_flat_state)

    # ---- learning rate
    @property
    def learning_rate(self) -> float:
        """The rate the next update uses: the float set, or the schedule at ``iterations``."""
        if isinstance(self._learning_rate, LearningRateSchedule):
            return float(self._learning_rate(self.iterations))
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        # A float replaces any schedule: this is how ReduceLROnPlateau and LearningRateScheduler work.
        if isinstance(value, LearningRateSchedule):
            self._learning_rate = value
        else:
            self._learning_rate = check_range(value, "learning_rate", 0.0, math.inf, False)

    # ---- updates
    def slot_names(self) -> tuple[str, ...]:
        return ()

    def apply_gradients(self, grads_and_vars) -> bool | None:
        """Update each ``param`` in place from its ``grad``; both ``ndarray``, same shape.

        The pairs must come in the same order on every call (slots are keyed by position). Returns
        whether every updated value is finite where the update checked it as it wrote them (the
        compiled tier's Adam), else ``None``.
        """
        pairs = list(grads_and_vars)
        for i, (grad, param) in enumerate(pairs):
            if not isinstance(param, np.ndarray) or param.dtype.kind != "f":
                raise TypeError(expected(f"param {i}", "a floating ndarray updated in place", param))
            if np.shape(grad) != param.shape:
                raise ValueError(expected(f"grad {i}", f"shape {param.shape} (its param's)", f"shape {np.shape(grad)}"))
        self._build([param for _, param in pairs])
        finite = self._apply(pairs, self.learning_rate)
        self.iterations += 1
        return finite

    def _apply(self, pairs: list, lr: float) -> bool | None:
        """Decay and :meth:`_update` each ``(grad, param)`` in turn (the NumPy tier); ``None``: the
        values are not checked."""
        for i, (grad, param) in enumerate(pairs):
            if self.weight_decay:
                param *= param.dtype.type(1.0 - lr * self.weight_decay)  # p -= lr * wd * p
            self._update(i, grad, param, lr, param.dtype.type)

    def _update(self, i: int, grad, param: np.ndarray, lr: float, f) -> None:
        """Update ``param`` (index ``i``); ``f`` is the param's scalar type for the coefficients."""
        raise NotImplementedError

    def _build(self, params: list[np.ndarray]) -> None:
        """Create missing slots and scratch (zeros, param dtype); check restored ones still fit."""
        names = self.slot_names()
        if len(self._scratch) == len(params) and all(
            s.shape == p.shape and s.dtype == p.dtype for s, p in zip(self._scratch, params)
        ):
            return
        for name in names:
            slots = self._slots.get(name)
            if slots is None:
                self._slots[name] = [np.zeros_like(p) for p in params]
                continue
            if len(slots) != len(params):
                raise ValueError(
                    expected(
                        "grads_and_vars",
                        f"{len(slots)} (grad, param) pairs, as the optimizer state was built for",
                        f"{len(params)} pairs",
                        "Use a new optimizer for a different model.",
                    )
                )
            for j, (slot, p) in enumerate(zip(slots, params)):
                if slot.shape != p.shape:
                    raise ValueError(
                        expected(
                            f"param {j}",
                            f"shape {slot.shape} (optimizer state)",
                            f"shape {p.shape}",
                            "Pass the weights in the same order every time.",
                        )
                    )
                slots[j] = slot.astype(p.dtype, copy=False)
        self._scratch = [np.empty_like(p) for p in params]
        self._flat = None

    # ---- state for save/load
    def get_state(self) -> dict[str, np.ndarray]:
        """``{"iterations": int64 array, "<slot>/<i>": array, ...}``: plain arrays for ``.npz``."""
        state = {"iterations": np.array(self.iterations, dtype=np.int64)}
        for name, slots in self._slots.items():
            state.update({f"{name}/{i}": slot.copy() for i, slot in enumerate(slots)})
        return state

    def set_state(self, state: dict) -> None:
        """Restore what :meth:`get_state` returned; the next update continues exactly."""
        if "iterations" not in state:
            raise ValueError(
                expected(
                    "state",
                    'a dict with an "iterations" entry',
                    f"keys {sorted(state)}",
                    "Pass what get_state() returned.",
                )
            )
        slots: dict[str, list] = {}
        for name in self.slot_names():
            count = sum(1 for key in state if key.startswith(name + "/"))
            try:
                slots[name] = [np.array(state[f"{name}/{i}"]) for i in range(count)]
            except KeyError as exc:
                raise ValueError(
                    expected("state", f"{name}/0 ... {name}/{count - 1}", f"{exc.args[0]} missing")
                ) from None
        counts = {len(v) for v in slots.values()}
        if len(counts) > 1:
            raise ValueError(
                expected(
                    "state", "the same number of arrays for every slot", str({k: len(v) for k, v in slots.items()})
                )
            )
        unknown = set(state) - {"iterations"} - {f"{n}/{i}" for n, v in slots.items() for i in range(len(v))}
        if unknown:
            raise ValueError(
                expected(
                    "state",
                    f"slots {list(self.slot_names())} of {self.name}",
                    f"unexpected keys {sorted(unknown)}",
                    "Was it saved by another optimizer or settings?",
                )
            )
        for name, arrays in slots.items():
            mine = self._slots.get(name)
            if mine is not None and [a.shape for a in mine] != [a.shape for a in arrays]:
                raise ValueError(
                    expected(
                        f"state[{name!r}]", f"shapes {[a.shape for a in mine]}", f"shapes {[a.shape for a in arrays]}"
                    )
                )
        self.iterations = int(state["iterations"])
        self._slots = {name: arrays for name, arrays in slots.items() if arrays}
        self._scratch = []  # rebuilt (and dtypes matched) on the next update
        self._flat = None

    # ---- config
    def get_config(self) -> dict:
        """Hyper-parameters as JSON-friendly values, with Keras's lower-case ``"name"``
        (``weight_decay`` only when set, so configs saved before it existed read the same)."""
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = {"class_name": type(lr).__name__, "config": lr.get_config()}
        decay = {} if self.weight_decay is None else {"weight_decay": self.weight_decay}
        return {"name": self.name, "learning_rate": lr, **self._hyper(), **decay}

    def _hyper(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        """Rebuild from :meth:`get_config`; on ``Optimizer`` itself the ``"name"`` picks the class."""
        config = dict(config)
        name = config.pop("name", None)
        if cls is Optimizer:
            if name is None:
                raise ValueError(expected("config", 'a "name" entry such as "adam"', f"keys {sorted(config)}"))
            cls = utils.lookup(name, _REGISTRY, "optimizer")
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            config["learning_rate"] = utils.deserialize(lr, SCHEDULES, LearningRateSchedule, "learning_rate")
        return cls(**config)


class SGD(Optimizer):
    """Gradient descent, with Keras's momentum form.

    ``momentum == 0``: ``p -= lr * g``. Otherwise ``v = momentum * v - lr * g`` and ``p += v``, or
    with ``nesterov`` ``p += momentum * v - lr * g``.
    """

    name = "sgd"

    def __init__(self, learning_rate=0.01, momentum: float = 0.0, nesterov: bool = False, weight_decay=None):
        super().__init__(learning_rate, weight_decay)
        self.momentum = check_range(momentum, "momentum", 0.0, 1.0, True)
        self.nesterov = bool(nesterov)

    def slot_names(self):
        return ("momentum",) if self.momentum > 0 else ()

    def _update(self, i, grad, param, lr, f):
        step = self._scratch[i]
        np.multiply(grad, f(lr), out=step)  # lr * g
        if self.momentum == 0:
            param -= step
            return
        velocity = self._slots["momentum"][i]
        velocity *= f(self.momentum)
        velocity -= step
        if self.nesterov:
            param -= step
            np.multiply(velocity, f(self.momentum), out=step)
            param += step
        else:
            param += velocity

    def _hyper(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam as Keras computes it, with ``t = iterations + 1``::

        m = b1 * m + (1 - b1) * g;   v = b2 * v + (1 - b2) * g**2
        alpha = lr * sqrt(1 - b2**t) / (1 - b1**t);   p -= alpha * m / (sqrt(v) + epsilon)

    ``amsgrad`` divides by ``sqrt(v_hat)`` with ``v_hat = max(v_hat, v)``. (PyTorch adds its eps to
    ``sqrt(v / (1 - b2**t))`` instead; the two agree when eps is negligible.)
    """

    name = "adam"

    def __init__(
        self,
        learning_rate=0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        weight_decay=None,
    ):
        super().__init__(learning_rate, weight_decay)
        self.beta_1 = check_range(beta_1, "beta_1", 0.0, 1.0, False)
        self.beta_2 = check_range(beta_2, "beta_2", 0.0, 1.0, False)
        self.epsilon = check_range(epsilon, "epsilon", 0.0, math.inf, False)
        self.amsgrad = bool(amsgrad)

    def slot_names(self):
        return ("m", "v", "v_hat") if self.amsgrad else ("m", "v")

    def _alpha(self, lr: float) -> float:
        t = self.iterations + 1
        return lr * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)

    def _apply(self, pairs, lr):
        return _adam_step(self, pairs, lr)

    def _update(self, i, grad, param, lr, f):
        alpha = self._alpha(lr)
        m, v, s = self._slots["m"][i], self._slots["v"][i], self._scratch[i]
        m *= f(self.beta_1)  # m = b1*m + (1-b1)*g
        np.multiply(grad, f(1.0 - self.beta_1), out=s)
        m += s
        v *= f(self.beta_2)  # v = b2*v + (1-b2)*g^2
        np.square(grad, out=s)
        s *= f(1.0 - self.beta_2)
        v += s
        if self.amsgrad:
            v = np.maximum(self._slots["v_hat"][i], v, out=self._slots["v_hat"][i])
        np.sqrt(v, out=s)  # alpha * m / (sqrt(v) + eps)
        s += f(self.epsilon)
        np.divide(m, s, out=s)
        s *= f(alpha)
        param -= s

    def _hyper(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras's ``AdamW``, default ``weight_decay=0.004``)::

        p -= lr * weight_decay * p;   then the Adam step above

    ``torch.optim.AdamW`` decays the same way (its default rate is 0.01).
    """

    name = "adamw"

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay=0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
    ):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay)


class RMSprop(Optimizer):
    """RMSprop as Keras computes it (epsilon inside the root)::

        r = rho * r + (1 - rho) * g**2;   step = lr * g / sqrt(r + epsilon)
        p -= step,  or with momentum:  u = momentum * u + step;  p -= u

    (PyTorch's ``alpha`` is ``rho``, and it adds eps outside the root.)
    """

    name = "rmsprop"

    def __init__(
        self, learning_rate=0.001, rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7, weight_decay=None
    ):
        super().__init__(learning_rate, weight_decay)
        self.rho = check_range(rho, "rho", 0.0, 1.0, False)
        self.momentum = check_range(momentum, "momentum", 0.0, 1.0, True)
        self.epsilon = check_range(epsilon, "epsilon", 0.0, math.inf, False)

    def slot_names(self):
        return ("velocity", "momentum") if self.momentum > 0 else ("velocity",)

    def _update(self, i, grad, param, lr, f):
        r, s = self._slots["velocity"][i], self._scratch[i]
        r *= f(self.rho)
        np.square(grad, out=s)
        s *= f(1.0 - self.rho)
        r += s
        np.add(r, f(self.epsilon), out=s)  # lr * g / sqrt(r + eps)
        np.sqrt(s, out=s)
        np.divide(grad, s, out=s)
        s *= f(lr)
        if self.momentum > 0:
            u = self._slots["momentum"][i]
            u *= f(self.momentum)
            u += s
            s = u
        param -= s

    def _hyper(self):
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon}


def _fits_one_kernel(optimizer: Adam, pairs: list, lr: float) -> bool:
    """Whether every param, its slots and its grad share one float dtype, params and slots
    C-contiguous (updated through flat views): then one compiled call updates them all. The params'
    and slots' part is answered once for the arrays :func:`_flat_state` keeps."""
    if not pairs:
        return False
    dtype = pairs[0][1].dtype
    if not all(np.asarray(g).dtype == dtype for g, _ in pairs):
        return False
    if _flat_state(optimizer, pairs) is not None:
        return True
    slots = [s for name in optimizer.slot_names() for s in optimizer._slots[name]]
    return all(p.dtype == dtype and p.flags.c_contiguous for _, p in pairs) and all(
        s.dtype == dtype and s.flags.c_contiguous for s in slots
    )


def _flat_state(optimizer: Adam, pairs: list):
    """``(params, ms, vs, v_hats)``: tuples of flat views of the params and slots that the last
    compiled update made for these very param arrays, or ``None``. Rebuilt only when the params or
    the slots change (a new model, restored state): 29 x 4 reshapes a ``smallres`` batch fewer."""
    flat = optimizer._flat
    if flat is None or len(flat[0]) != len(pairs) or any(p is not q for (_, p), q in zip(pairs, flat[0])):
        return None
    return flat[1]


@tiered(Optimizer._apply, applies=_fits_one_kernel)
def _adam_step(kernels, optimizer: Adam, pairs: list, lr: float) -> bool:
    """:meth:`Adam._apply` in one compiled call over every param (same bits as the NumPy tier's);
    whether every updated value is finite (counted by the kernel as it writes them)."""
    f = pairs[0][1].dtype.type

    def flat(arrays):
        return tuple(np.asarray(a).reshape(-1) for a in arrays)

    state = _flat_state(optimizer, pairs)
    if state is None:
        slots = optimizer._slots
        ms, vs = flat(slots["m"]), flat(slots["v"])
        state = (flat(p for _, p in pairs), ms, vs, flat(slots["v_hat"]) if optimizer.amsgrad else vs)
        optimizer._flat = (tuple(p for _, p in pairs), state)
    params, ms, vs, v_hats = state
    decay = f(1.0 - lr * optimizer.weight_decay) if optimizer.weight_decay else f(1)
    not_finite = kernels.optimizer.adam(
        params,
        flat(g for g, _ in pairs),
        ms,
        vs,
        v_hats,
        optimizer.amsgrad,
        decay,
        f(optimizer.beta_1),
        f(1.0 - optimizer.beta_1),
        f(optimizer.beta_2),
        f(1.0 - optimizer.beta_2),
        f(optimizer.epsilon),
        f(optimizer._alpha(lr)),
    )
    return not_finite == 0


_REGISTRY = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}


def serialize(optimizer: Optimizer) -> dict:
    """``{"class_name": "Adam", "config": {...}}``, the form :func:`get` reads back."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def get(identifier) -> Optimizer:
    """An optimiser from a name (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, any case), an instance
    (returned as is) or a config dict (:meth:`Optimizer.get_config` or :func:`serialize` form)."""
    return utils.deserialize(identifier, _REGISTRY, Optimizer, "optimizer")
