"""The ``/learn`` page's state: one training step of the served model on a visitor's photo, per session.

The page traces a private copy of the model (:func:`npconv.trace.step`), so the served model, which
``/api/predict`` answers with, never changes. A session is a photo and, once the visitor has pressed
"step", the weights and optimizer state after those steps; "rewind" forgets them (back to the
model's own weights, bit for bit). The server keeps at most :data:`MAX_SESSIONS` sessions (the
least recently used goes first) and the traces of the last :data:`MAX_TRACES` views, so its memory
stays bounded however many visitors come.

A step is the update ``fit`` makes for this one-photo batch with a new optimizer of the model's
settings (its class, rates and schedule, from its config): the first step starts from zero moments
at ``t = 1``, so ``m = 0.1 dW`` and ``v = 0.001 dW**2`` can be checked by hand, and each later step
continues the session's own state; then ``apply_gradients`` on copies of the weights. (Continuing the
saved training state instead makes the first step mostly the training's momentum: on the Happy House
model it raised the photo's loss from 3e-4 to 4.9.) Batch normalisation's moving averages are left
as they are (the trace runs with the batch's statistics and puts them back).
"""

from __future__ import annotations

import copy
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from .. import trace as tracing
from ..apps.datasets import to_float
from ..errors import expected
from ..optimizers import Optimizer
from ..trace.step import grad_name

#: Sessions kept; a visitor whose session was dropped chooses the photo again.
MAX_SESSIONS = 8
#: Recent traces kept, so the clicks on one view do not recompute the step.
MAX_TRACES = 4


class SessionGone(LookupError):
    """The session id is unknown (expired, or the server restarted)."""


@dataclass
class Session:
    photo: np.ndarray  # uint8 (n_H, n_W, n_C)
    weights: list | None = None  # trainable weights after the steps; None: the model's
    optimizer_state: dict | None = None
    steps: int = 0
    version: int = 0  # bumped at every step and rewind: the trace cache's key
    last_update: dict = field(default_factory=dict)  # weight name -> (W_old, dW) of the last step


@dataclass
class Views:
    """The traces of one view: npconv's, and with ``--kernels`` the learner's (in float64, as the course's
    loops compute) and its first difference from npconv's float64 step."""

    reference: object
    mine: object = None
    difference: object = None
    kernels_error: str | None = None


class Learner:
    """Sessions and traces for the ``/learn`` page of ``model`` (the served model; it is copied)."""

    def __init__(self, model, value_scale: float, class_names: list[str], kernels=None):
        self.model = copy.deepcopy(model)
        self.value_scale = value_scale
        self.class_names = class_names
        self.kernels = kernels
        self.weights = [w for w in self.model.trainable_weights]
        self.start = [w.value.copy() for w in self.weights]
        self.names = {id(w): f"{layer.name}/{w.name}" for layer in self.model.layers for w in layer.weights}
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._traces: OrderedDict[tuple, Views] = OrderedDict()
        self._lock = threading.Lock()
        if kernels is not None:
            tracing.load_kernels(kernels, self.model)  # refuse a bad file when the server starts

    # ---------------------------------------------------------------- sessions
    def open(self, photo: np.ndarray) -> str:
        """A new session for ``photo``; its id."""
        sid = secrets.token_urlsafe(12)
        with self._lock:
            self._sessions[sid] = Session(photo)
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return sid

    def session(self, sid: str) -> Session:
        with self._lock:
            if sid not in self._sessions:
                raise SessionGone(
                    "this session has expired (the server keeps the last "
                    f"{MAX_SESSIONS} photos): choose the photo again"
                )
            self._sessions.move_to_end(sid)
            return self._sessions[sid]

    def label(self, text) -> int:
        """A class index from the page's label (a class name or its index)."""
        if str(text) in self.class_names:
            return self.class_names.index(str(text))
        if str(text).isdigit() and int(text) < len(self.class_names):
            return int(text)
        raise ValueError(expected("label", "one of " + ", ".join(map(repr, self.class_names)), repr(text)))

    # ---------------------------------------------------------------- traces
    def views(self, sid: str, label: int) -> Views:
        """The traces of session ``sid`` for ``label`` at its current weights (cached)."""
        session = self.session(sid)
        key = (sid, session.version, label)
        with self._lock:
            if key in self._traces:
                self._traces.move_to_end(key)
                return self._traces[key]
            views = self._trace(session, label)
            self._traces[key] = views
            while len(self._traces) > MAX_TRACES:
                self._traces.popitem(last=False)
            return views

    def _batch(self, session: Session, label: int):
        x = to_float(session.photo[None], self.value_scale)
        return x, np.array([label])

    def _set_weights(self, values) -> None:
        for w, value in zip(self.weights, values):
            np.copyto(w.value, value)

    def _trace(self, session: Session, label: int) -> Views:
        x, y = self._batch(session, label)
        self._set_weights(session.weights or self.start)
        try:
            views = Views(tracing.step(self.model, x, y))
            if self.kernels is not None:
                try:
                    # both in float64, as the learner's loops compute: the comparison is exact
                    views.mine = tracing.step(self.model, x, y, kernels=self.kernels, dtype="float64")
                    views.difference = views.mine.first_difference(tracing.step(self.model, x, y, dtype="float64"))
                except tracing.LearnerCodeError as exc:
                    views.kernels_error = str(exc)
            return views
        finally:
            self._set_weights(self.start)  # the copy back at the model's weights

    # ---------------------------------------------------------------- step and rewind
    def step(self, sid: str, label: int, learning_rate: float | None = None) -> dict:
        """One optimizer update of the session's weights from the gradient of its photo and ``label``.

        The rate is ``learning_rate`` when given, else the optimizer's own at the session's step count
        (a schedule's initial rate at the first step).
        """
        views = self.views(sid, label)
        session = self.session(sid)
        with self._lock:
            grads = [self._grad(views.reference, w) for w in self.weights]
            old = [np.array(v) for v in (session.weights or self.start)]
            new = [v.copy() for v in old]
            optimizer = Optimizer.from_config(self.model.optimizer.get_config())
            if session.optimizer_state is not None:
                optimizer.set_state(session.optimizer_state)
            natural = optimizer.learning_rate
            if learning_rate is None:
                learning_rate = natural
            optimizer.learning_rate = learning_rate  # a float replaces the schedule for this update
            optimizer.apply_gradients(zip(grads, new))
            session.weights, session.optimizer_state = new, optimizer.get_state()
            session.last_update = {self.names[id(w)]: (o, g) for w, o, g in zip(self.weights, old, grads)}
            session.steps += 1
            session.version += 1
        return {
            "steps": session.steps,
            "learning_rate": float(learning_rate),
            "scheduled_rate": natural,
            "loss_before": views.reference.loss,
            "optimizer": self.model.optimizer.get_config(),
            "iterations": optimizer.iterations,
        }

    def rewind(self, sid: str) -> None:
        session = self.session(sid)
        with self._lock:
            session.weights = session.optimizer_state = None
            session.last_update = {}
            session.steps = 0
            session.version += 1

    def _grad(self, trace, weight) -> np.ndarray:
        layer_name, weight_name = self.names[id(weight)].rsplit("/", 1)
        return trace.grad(layer_name, grad_name(weight_name))

    def update(self, sid: str, layer_name: str) -> dict:
        """The last step's arrays for the weights of ``layer_name``: ``{weight: {"W_old", "dW", "W_new",
        "m", "v", ...}}`` (the optimizer's slots after the step, by their names)."""
        session = self.session(sid)
        out = {}
        for k, w in enumerate(self.weights):
            name = self.names[id(w)]
            if name.rsplit("/", 1)[0] != layer_name or name not in session.last_update:
                continue
            old, grad = session.last_update[name]
            arrays = {"W_old": old, "dW": grad, "W_new": session.weights[k]}
            for slot, value in (session.optimizer_state or {}).items():
                if "/" in slot and int(slot.rsplit("/", 1)[1]) == k:
                    arrays[slot.rsplit("/", 1)[0]] = value
            out[name] = arrays
        return out

    def weights_now(self, sid: str) -> list[np.ndarray]:
        """The session's trainable weights (the model's own until a step)."""
        session = self.session(sid)
        return [np.array(v) for v in (session.weights or self.start)]
