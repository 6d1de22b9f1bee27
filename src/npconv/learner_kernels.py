"""The learner's own ``conv_forward``/``conv_backward``/``pool_forward``/``pool_backward`` inside a network.

:func:`load_kernels` takes a module, any object or dict holding the functions (a notebook's
``globals()``), a module name (``"npconv.course"``) or the path of a ``.py`` file, and returns
:class:`LearnerKernels`, which runs a model's ``Conv2D`` and ``MaxPooling2D``/``AveragePooling2D``
layers through those functions with the course's shapes:

* ``conv_forward(A_prev, W, b, {"stride": s, "pad": p}) -> (Z, cache)`` with ``b`` of shape
  ``(1, 1, 1, n_C)``; ``conv_backward(dZ, cache) -> (dA_prev, dW, db)``;
* ``pool_forward(A_prev, {"f": f, "stride": s}, mode) -> (A, cache)``;
  ``pool_backward(dA, cache, mode) -> dA_prev``, ``mode`` ``"max"`` or ``"average"``.

A convolution's own activation (``Conv2D(..., activation="relu")``) is applied outside the
learner's function, as in the course. The course's functions pad every side by one ``pad`` and have
square windows with one stride; a layer they cannot express is refused, naming it and the reason.
A learner's function that raises is reported with the line of the learner's code that raised.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import traceback
from pathlib import Path

import numpy as np

from .errors import NpconvError, expected
from .functional._shapes import resolve_padding
from .layers import AveragePooling2D, Conv2D, MaxPooling2D

CONV_FUNCTIONS = ("conv_forward", "conv_backward")
POOL_FUNCTIONS = ("pool_forward", "pool_backward")


class LearnerCodeError(NpconvError):
    """The learner's kernels cannot be used: missing functions, a file that fails, a function that raises."""


class WrongShape(Exception):
    """A learner's function returned an array of the wrong shape; the step stops there (not an error:
    the trace keeps what came, for ``first_difference``)."""

    def __init__(self, which: str, got: np.ndarray, message: str):
        super().__init__(message)
        self.which, self.got = which, got
        self.grads: dict = {}  # the gradients that came with it, of the right shapes


def _function_names(model) -> tuple[str, ...]:
    layers = [node.layer for node in model._nodes]
    names = CONV_FUNCTIONS if any(isinstance(layer, Conv2D) for layer in layers) else ()
    if any(isinstance(layer, (MaxPooling2D, AveragePooling2D)) for layer in layers):
        names += POOL_FUNCTIONS
    return names


def _import_path(path: Path):
    if not path.is_file():
        raise LearnerCodeError(
            expected(
                "kernels",
                "a .py file with conv_forward, conv_backward, pool_forward and pool_backward",
                f"{str(path)!r}, which does not exist",
            )
        )
    spec = importlib.util.spec_from_file_location(f"npconv_learner_{abs(hash(str(path.resolve())))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise LearnerCodeError(
            f"kernels: running {path} raised {type(exc).__name__}: {exc}{learner_line(exc, str(path))}"
        ) from exc
    return module


def load_kernels(kernels, model) -> LearnerKernels:
    """``kernels`` (module, object, dict, module name or ``.py`` path) as :class:`LearnerKernels`
    for ``model``, refusing missing functions and layers the course's functions cannot express
    (``model`` None: all four functions, no layers checked)."""
    source = kernels
    if isinstance(kernels, (str, Path)):
        text = str(kernels)
        if text.endswith(".py") or Path(text).exists():
            source = _import_path(Path(text))
        else:
            try:
                source = importlib.import_module(text)
            except ImportError as exc:
                raise LearnerCodeError(
                    expected(
                        "kernels",
                        "a module, a module name or the path of a .py file",
                        repr(text),
                        f"Importing it failed: {exc}",
                    )
                ) from exc
    lookup = source.get if isinstance(source, dict) else lambda name: getattr(source, name, None)
    needed = CONV_FUNCTIONS + POOL_FUNCTIONS if model is None else _function_names(model)
    functions = {name: lookup(name) for name in needed}
    missing = [name for name, f in functions.items() if not callable(f)]
    if missing:
        where = (
            "the dict given"
            if isinstance(source, dict)
            else getattr(source, "__file__", None) or getattr(source, "__name__", None) or type(source).__name__
        )
        raise LearnerCodeError(
            f"kernels: {where} does not define {', '.join(missing)} (this model needs {', '.join(needed)}). "
            "Define them with the course's signatures: conv_forward(A_prev, W, b, hparameters), "
            "conv_backward(dZ, cache), pool_forward(A_prev, hparameters, mode), pool_backward(dA, cache, mode)."
        )
    nodes = [] if model is None else model._nodes
    refusals = [reason for node in nodes if (reason := _refusal(node.layer))]
    if refusals:
        raise LearnerCodeError(
            "kernels: the course's functions cannot run "
            + "; ".join(refusals)
            + ". Trace this model without kernels=, or use square kernels with one stride "
            "and an odd kernel size for padding='same' (stride 1)."
        )
    return LearnerKernels(functions)


def _refusal(layer) -> str | None:
    """Why the course's functions cannot express ``layer``, or None (also for layers they do not run)."""
    if isinstance(layer, Conv2D):
        size, stride = layer.kernel_size, layer.strides
    elif isinstance(layer, (MaxPooling2D, AveragePooling2D)):
        size, stride = layer.pool_size, layer.strides
    else:
        return None
    what = f"layer {layer.name!r} ({type(layer).__name__})"
    if size[0] != size[1]:
        return f"{what}: its {size[0]}x{size[1]} window is not square (the course's f is one number)"
    if stride[0] != stride[1]:
        return f"{what}: its strides {stride} differ by axis (the course's stride is one number)"
    (top, bottom), (left, right) = resolve_padding(layer.padding, tuple(layer.built_input_shape[:2]), size, stride)
    if isinstance(layer, Conv2D) and len({top, bottom, left, right}) > 1:
        return (
            f"{what}: padding='same' pads {top} above, {bottom} below, {left} left and {right} right "
            "(TensorFlow's rule for an even kernel or a stride), and the course pads every side by one pad"
        )
    if not isinstance(layer, Conv2D) and top + bottom + left + right:
        return f"{what}: padding='same' pads this input and the course's pooling has no padding"
    return None


def learner_line(exc: BaseException, filename: str | None = None) -> str:
    """`` (at mine.py, line 42: dW[...] = ...)``: the deepest frame of the learner's code in ``exc``'s
    traceback (of ``filename`` when given, else the deepest frame outside npconv)."""
    frames = traceback.extract_tb(exc.__traceback__)
    package = str(Path(__file__).resolve().parents[1])
    mine = [f for f in frames if (f.filename == filename if filename else not f.filename.startswith(package))]
    if not mine:
        return ""
    frame = mine[-1]
    code = f": {frame.line.strip()}" if frame.line else ""
    return f" (at {frame.filename}, line {frame.lineno}{code})"


def _pads(layer, x_shape) -> int:
    size = layer.kernel_size if isinstance(layer, Conv2D) else layer.pool_size
    return resolve_padding(layer.padding, x_shape[1:3], size, layer.strides)[0][0]


class LearnerKernels:
    """Runs ``Conv2D`` and pooling layers through the learner's functions, keeping their caches."""

    def __init__(self, functions: dict):
        self.functions = functions
        self._caches: dict[str, object] = {}

    @staticmethod
    def runs(layer) -> bool:
        return isinstance(layer, (Conv2D, MaxPooling2D, AveragePooling2D))

    def _call(self, name: str, *args):
        function = self.functions[name]
        try:
            return function(*args)
        except Exception as exc:
            code = getattr(function, "__code__", None)
            raise LearnerCodeError(
                f"your {name} raised {type(exc).__name__}: {exc}{learner_line(exc, code.co_filename if code else None)}"
            ) from exc

    @staticmethod
    def _array(result, what: str, function: str, count: int):
        """``result`` as a tuple of ``count`` values (or the one value), refusing what the course never returns."""
        if count > 1 and (not isinstance(result, tuple) or len(result) != count):
            raise LearnerCodeError(
                f"your {function} should return {what}; got "
                f"{type(result).__name__}" + (f" of {len(result)}" if isinstance(result, tuple) else "")
            )
        return result

    def forward(self, layer, x: np.ndarray, expected_shape: tuple) -> np.ndarray:
        """The layer's output before its own activation (``Z`` for a convolution), through the learner's code."""
        pad = _pads(layer, x.shape)
        if isinstance(layer, Conv2D):
            W = layer.kernel.value.copy()
            b = (layer.bias.value if layer.use_bias else np.zeros(layer.filters, x.dtype)).reshape(1, 1, 1, -1).copy()
            result = self._call("conv_forward", x.copy(), W, b, {"stride": layer.strides[0], "pad": pad})
            out, cache = self._array(result, "(Z, cache)", "conv_forward", 2)
            function = "conv_forward"
        else:
            hparameters = {"f": layer.pool_size[0], "stride": layer.strides[0]}
            result = self._call("pool_forward", x.copy(), hparameters, layer.mode)
            out, cache = self._array(result, "(A, cache)", "pool_forward", 2)
            function = "pool_forward"
        self._caches[layer.name] = cache
        _check_shape(out, expected_shape, "output", f"your {function} returned", layer)
        return out.astype(x.dtype, copy=False)  # the course's np.zeros are float64 in a float32 network

    def backward(self, layer, dout: np.ndarray, x_shape: tuple) -> tuple[np.ndarray, dict]:
        """``(dx, {"dW": ..., "db": ...})`` of the layer through the learner's code (``dout`` is ``dZ``
        for a convolution)."""
        cache = self._caches.pop(layer.name)
        if isinstance(layer, Conv2D):
            result = self._call("conv_backward", dout.copy(), cache)
            dx, dW, db = self._array(result, "(dA_prev, dW, db)", "conv_backward", 3)
            grads = {}  # those of the right shape, in the order a trace compares them
            try:
                _check_shape(dW, layer.kernel.shape, "dW", "your conv_backward returned", layer)
                grads["dW"] = dW.astype(dout.dtype, copy=False)
                if layer.use_bias:
                    db = np.asarray(db)
                    if db.shape == (1, 1, 1, layer.filters):
                        db = db.reshape(layer.filters)
                    _check_shape(
                        db,
                        (layer.filters,),
                        "db",
                        "your conv_backward returned",
                        layer,
                        also=" (the course's b shape (1, 1, 1, n_C) is read as (n_C,))",
                    )
                    grads["db"] = db.astype(dout.dtype, copy=False)
                _check_shape(dx, x_shape, "dx", "your conv_backward returned dA_prev", layer)
            except WrongShape as exc:
                exc.grads = grads
                raise
            return dx.astype(dout.dtype, copy=False), grads
        dx = self._call("pool_backward", dout.copy(), cache, layer.mode)
        _check_shape(dx, x_shape, "dx", "your pool_backward returned dA_prev", layer)
        return dx.astype(dout.dtype, copy=False), {}


def _check_shape(array, shape, which: str, what: str, layer, also: str = "") -> None:
    if not isinstance(array, np.ndarray):
        raise LearnerCodeError(
            f"{what} a {type(array).__name__} for layer {layer.name!r}'s {which}; expected a NumPy array"
        )
    if array.shape != tuple(shape):
        raise WrongShape(
            which, array, f"layer {layer.name!r}: {what} shape {array.shape} for {which}, expected {tuple(shape)}{also}"
        )


@contextlib.contextmanager
def learner_layers(model, kernels):
    """Within the block, ``model``'s ``Conv2D`` and pooling layers run through the learner's functions
    (``fit(..., kernels=...)``): each layer's ``forward``/``backward`` is replaced on the layer itself,
    fills the weights' ``.grad`` as the layer's own does, and is put back after the block. (``fit``
    runs the model's plan layer by layer meanwhile: its convolution + max pool and folded
    convolution + batch norm steps are npconv's own, not the two layers'.)"""
    learner = load_kernels(kernels, model)
    layers = [node.layer for node in model._nodes if learner.runs(node.layer)]
    for layer in layers:
        layer.forward, layer.backward = _learner_methods(layer, learner)
    try:
        yield learner
    finally:
        for layer in layers:
            del layer.forward, layer.backward  # the class's methods again
            layer._cache = None


def _learner_methods(layer, learner: LearnerKernels):
    """``forward(x, training, logits)`` and ``backward(dout, need_dx)`` of ``layer`` through ``learner``."""

    def forward(x, training=False, logits=False):
        shape = (len(x),) + tuple(layer.compute_output_shape(x.shape[1:]))
        try:
            z = learner.forward(layer, x, shape)
        except WrongShape as exc:
            raise LearnerCodeError(
                f"{exc}. npconv.trace.step(model, x, y, kernels=...).first_difference("
                "npconv.trace.step(model, x, y)) shows what went wrong"
            ) from None
        out, act_cache = layer._activate(z, logits) if isinstance(layer, Conv2D) else (z, None)
        layer._cache = (x.shape, act_cache, logits)
        return out

    def backward(dout, need_dx=True, dx_plus=None):
        x_shape, act_cache, logits = layer._take_cache()
        dz = layer._deactivate(dout, act_cache, logits) if isinstance(layer, Conv2D) else dout
        try:
            dx, grads = learner.backward(layer, dz, x_shape)
        except WrongShape as exc:
            raise LearnerCodeError(
                f"{exc}. npconv.trace.step(model, x, y, kernels=...).first_difference("
                "npconv.trace.step(model, x, y)) shows what went wrong"
            ) from None
        if isinstance(layer, Conv2D):
            layer.kernel.grad = grads["dW"]
            if layer.use_bias:
                layer.bias.grad = grads["db"]
        return dx if dx_plus is None else dx_plus + dx

    return forward, backward
