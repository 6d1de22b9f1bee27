"""``Conv2D`` and ``ZeroPadding2D`` on NHWC batches."""

from __future__ import annotations

from .. import functional as F
from ..errors import ShapeError, check_choice, check_positive_int, expected
from ..functional._shapes import as_pair, explicit_padding, output_size, resolve_padding
from ..functional._workspace import Workspace
from ..functional.conv import direct_input_buffer, direct_output_gradient_buffer
from . import activations
from .base import Layer, check_input_rank
from .core import _Affine


class Conv2D(_Affine):
    """2-D convolution: ``Z[i,h,w,k] = sum(A_pad[i, h*s:h*s+fh, w*s:w*s+fw, :] * W[..., k]) + b[k]``.

    ``W (fh, fw, n_C_prev, filters)``, ``b (filters,)``; ``padding="same"`` follows TensorFlow
    (an even kernel pads one more row/column at the bottom/right).
    """

    _config_keys = (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "use_bias",
        "kernel_initializer",
        "bias_initializer",
    )

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_positive_int(filters, "filters")
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.strides = as_pair(strides, "strides")
        self.padding = check_choice(padding, "padding", {"valid", "same"})
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self._set_initializers(kernel_initializer, bias_initializer)

    def _output_shape(self, input_shape):
        n_H, n_W, n_C = check_input_rank(self, input_shape, 3)
        if self.built and n_C != self.kernel.shape[2]:
            raise ShapeError(expected(f"input of layer {self.name!r}", f"{self.kernel.shape[2]} channels", f"{n_C}"))
        pads = resolve_padding(self.padding, (n_H, n_W), self.kernel_size, self.strides)
        out_h, out_w = output_size((n_H, n_W), self.kernel_size, self.strides, pads, f"layer {self.name!r} kernel")
        return out_h, out_w, self.filters

    def _build(self, input_shape):
        shape = self.kernel_size + (input_shape[-1], self.filters)
        self.kernel = self.add_weight("kernel", shape, self.kernel_initializer)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer) if self.use_bias else None
        # The patch matrix is rebuilt every batch at the same size: reusing its buffer saves the
        # page faults of a fresh allocation (as costly as the copy for the course models' first layers).
        self._workspace = Workspace()
        # Zero-bordered buffers handed to the layer before, by name, until this layer's next pass.
        self._handed_out = {}

    def forward(self, x, training=False, logits=False):
        return self._affine_forward(
            F.conv2d_forward,
            x,
            logits,
            stride=self.strides,
            padding=self.padding,
            workspace=self._workspace,
            x_pad=self._taken_back("x_pad", x),
        )

    def bordered_input(self, shape, dtype):
        """A zero-bordered buffer (:class:`~npconv.functional.padding.Bordered`) for this layer's
        next input, of ``shape``, for the layer before to write its output into (and pass on the
        buffer's ``interior``): the direct kernel then reads the buffer as the padded input
        (:func:`~npconv.functional.conv2d_forward`'s ``x_pad``), with no padding pass. ``None``
        where that kernel would not run. Valid until this layer's next pass."""
        return self._hand_out(
            "x_pad",
            direct_input_buffer(shape, dtype, self.kernel.value.shape, self.strides, self.padding, self._workspace),
        )

    def bordered_output_gradient(self):
        """A zero-bordered buffer for the output gradient of this layer's last forward, for the layer
        after it to write its input gradient into (and pass on the ``interior``): the input gradient
        then reads the buffer as its padded operand (:func:`~npconv.functional.conv2d_backward`'s
        ``dout_pad``). ``None`` where the direct kernels would not run, or the layer has an
        activation."""
        cache = self._cache[0] if self._cache is not None and self.activation.name == "linear" else None
        return self._hand_out(
            "dout_pad", None if cache is None else direct_output_gradient_buffer(cache, self._workspace)
        )

    def _hand_out(self, name, buffer):
        self._handed_out[name] = buffer
        return buffer

    def _taken_back(self, name, array):
        """The padded array of the buffer handed out as ``name`` where ``array`` is its very interior
        view (the layer before wrote into it); ``None`` otherwise. Forgotten either way: one pass
        per hand-out."""
        buffer = self._handed_out.pop(name, None)
        return buffer.padded if buffer is not None and array is buffer.interior else None

    def forward_with_moments(self, x, training=False):
        """``(out, moments)``: :meth:`forward` of a convolution without activation, and its output's
        per-filter mean and variance where the compiled kernel took them as it wrote it (else
        ``None``): a batch norm reading ``out`` then skips its statistics' pass
        (:func:`~npconv.functional.conv2d_forward_with_moments`)."""
        if self.activation.name != "linear":
            raise ValueError(f"{self.name}: forward_with_moments is for a convolution without activation")
        b = self.bias.value if self.use_bias else None
        out, cache, moments = F.conv2d_forward_with_moments(
            x,
            self.kernel.value,
            b,
            stride=self.strides,
            padding=self.padding,
            workspace=self._workspace,
            x_pad=self._taken_back("x_pad", x),
        )
        self._cache = (cache, None, False)
        return out, moments

    #: ``backward(dout, need_dx, dx_plus)`` returns ``dx_plus + dx``: the engine hands it the other
    #: branches' gradient of the input, summed as the kernel writes ``dx`` (a residual block's).
    adds_to_dx = True

    def backward(self, dout, need_dx=True, dx_plus=None):
        return self._affine_backward(
            F.conv2d_backward,
            dout,
            need_dx,
            workspace=self._workspace,
            dx_plus=dx_plus,
            dout_pad=self._taken_back("dout_pad", dout),
        )

    def backward_through_max_pool(self, dout, pool_cache, need_dx=True):
        """This layer's ``backward`` and that of the max pool reading its output, from the pool's
        output gradient ``dout`` and cache (:func:`~npconv.functional.conv2d_maxpool_backward`:
        without ``dx``, the weight gradient from the pool's winners alone). Needs no activation."""
        return self._affine_backward(
            F.conv2d_maxpool_backward, dout, need_dx, pool_cache=pool_cache, workspace=self._workspace
        )


class ZeroPadding2D(Layer):
    """Zero rows/columns around each image: ``padding`` int, ``(ph, pw)`` or ``((top, bottom), (left, right))``."""

    def __init__(self, padding=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.padding = explicit_padding(padding)

    def _output_shape(self, input_shape):
        n_H, n_W, n_C = check_input_rank(self, input_shape, 3)
        (t, b), (l, r) = self.padding
        return n_H + t + b, n_W + l + r, n_C

    def forward(self, x, training=False):
        out, self._cache = F.zero_pad2d_forward(x, self.padding)
        return out

    def backward(self, dout, need_dx=True):
        return F.zero_pad2d_backward(dout, self._take_cache())

    def get_config(self):
        config = super().get_config()
        config["padding"] = [list(p) for p in self.padding]
        return config
