"""Register-blocked micro-kernels of the direct convolution, written as LLVM vector code.

A tile keeps ``P x V`` accumulators in vector registers for a whole loop over taps (forward) or over
positions (weight gradient) and feeds each with one fused multiply-add per step: the register
blocking of oneDNN's direct convolution over NHWC, vectorised across output channels. Numba's loops
cannot express it (LLVM kept such accumulators in memory, or scalar, see :mod:`.conv`), so each
tile is a Numba ``@intrinsic`` that emits the loop itself as LLVM IR over ``<lanes x float>``
values; LLVM then allocates the registers and lowers the vectors to the machine's SIMD (AVX-512,
AVX2 or SSE: :data:`VECTOR_BYTES`). The tiles are inlined into the kernels that call them and cached
with them; their loops sum in a fixed order, so results do not depend on the machine's vector width
beyond rounding of FMA against multiply-then-add.

Numba caches the kernels that inline these tiles under *their* module's file (``conv.py``), by its
content: ``conv.py``'s ``INLINED_SOURCES`` is a hash of this file, so an edit here changes it (see
:mod:`._jit`). The cache index also records the CPU and its features, from which
:data:`VECTOR_BYTES` is chosen, so a cache moved to another machine is not reused with the wrong
vector width.

Both tiles read the input as a flat NHWC array: position ``j``'s channel ``c`` at ``j * C + c``, so
tap ``t = (p, q, c)`` of the window at ``j`` is at ``j * C + offsets[t]`` with
``offsets[t] = (p * W_pad + q) * C + c``, and a vector of ``lanes`` filters is one contiguous load
from a ``(T, K_pad)`` weight table or a ``(..., K_pad)`` gradient.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["VECTOR_BYTES", "ACCUMULATORS", "forward_row", "weight_grad_tile", "channel_weight_grad_tile"]


def _machine() -> tuple[int, int]:
    """``(vector bytes, accumulators)`` for the CPU Numba compiles for (its ``NUMBA_CPU_*`` settings,
    else the host): 32 vector registers of 64 bytes with AVX-512, 16 of 32 with AVX, 16 of 16 else.
    Accumulators use half the registers, leaving the rest for weights, inputs and addresses."""
    import llvmlite.binding as llvm
    import numba

    features = numba.config.CPU_FEATURES or llvm.get_host_cpu_features().flatten()
    if "+avx512f" in features:
        return 64, 16
    return (32 if "+avx" in features else 16), 8


#: Bytes of one vector: 64 (16 float32 lanes) with AVX-512.
#: Accumulators per tile (``P x V``): half the vector registers.
VECTOR_BYTES, ACCUMULATORS = _machine()


class _Vectors:
    """Helpers over ``<lanes x dtype>`` for one tile's code generation."""

    def __init__(self, context, builder, dtype, vector_bytes):
        self.builder = builder
        self.scalar = context.get_value_type(dtype)
        self.scalar_bytes = 4 if isinstance(self.scalar, ir.FloatType) else 8  # float32 or float64
        self.lanes = vector_bytes // self.scalar_bytes
        self.type = ir.VectorType(self.scalar, self.lanes)
        self.zero_index = ir.Constant(ir.VectorType(ir.IntType(32), self.lanes), [0] * self.lanes)
        self.fma = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(self.type, [self.type] * 3),
            f"llvm.fma.v{self.lanes}f{8 * self.scalar_bytes}",
        )

    def load(self, base, index):
        return self.builder.load(
            self.builder.bitcast(self.builder.gep(base, [index]), self.type.as_pointer()), align=self.scalar_bytes
        )

    def store(self, value, base, index):
        self.builder.store(
            value,
            self.builder.bitcast(self.builder.gep(base, [index]), self.type.as_pointer()),
            align=self.scalar_bytes,
        )

    def load_int32(self, base, index):
        """``lanes`` int32 values from ``base`` (an ``i32*``) at ``index``."""
        vector_type = ir.VectorType(ir.IntType(32), self.lanes)
        return self.builder.load(
            self.builder.bitcast(self.builder.gep(base, [index]), vector_type.as_pointer()), align=4
        )

    def splat(self, value, vector_type):
        """``value`` in every lane of ``vector_type``."""
        undefined = ir.Constant(vector_type, ir.Undefined)
        single = self.builder.insert_element(undefined, value, ir.Constant(ir.IntType(32), 0))
        return self.builder.shuffle_vector(single, undefined, self.zero_index)

    def broadcast(self, base, index):
        value = self.builder.load(self.builder.gep(base, [index]))
        undefined = ir.Constant(self.type, ir.Undefined)
        single = self.builder.insert_element(undefined, value, ir.Constant(ir.IntType(32), 0))
        return self.builder.shuffle_vector(single, undefined, self.zero_index)

    def broadcast_pair(self, base, index):
        """``[base[index], base[index + 1]]`` repeated across the vector: one broadcast load of
        their 8 or 16 bytes (``vbroadcastsd`` for float32 pairs)."""
        pair_type = ir.VectorType(self.scalar, 2)
        pointer = self.builder.bitcast(self.builder.gep(base, [index]), pair_type.as_pointer())
        pair = self.builder.load(pointer, align=self.scalar_bytes)
        mask = ir.Constant(ir.VectorType(ir.IntType(32), self.lanes), [j % 2 for j in range(self.lanes)])
        return self.builder.shuffle_vector(pair, ir.Constant(pair_type, ir.Undefined), mask)

    def pair_sums(self, value, half):
        """``value[2j] + value[2j + 1]`` for ``j < lanes / 2``, as ``half``'s vector type."""
        undefined = ir.Constant(self.type, ir.Undefined)
        evens, odds = (
            self.builder.shuffle_vector(
                value, undefined, ir.Constant(ir.VectorType(ir.IntType(32), half.lanes), list(range(j, self.lanes, 2)))
            )
            for j in (0, 1)
        )
        return self.builder.fadd(evens, odds)

    def multiply_add(self, a, b, accumulator):
        """``accumulator += a * b``, accumulator an alloca (promoted to a register by LLVM)."""
        self.builder.store(self.builder.call(self.fma, [a, b, self.builder.load(accumulator)]), accumulator)


def _data(context, builder, array_type, array):
    return context.make_array(array_type)(context, builder, array).data


def _i64(value):
    return ir.Constant(ir.IntType(64), value)


class _LoopID(ir.values.MDValue):
    """A loop's ``llvm.loop`` metadata node: distinct, its first operand itself (LLVM's rule), hashed
    by identity (llvmlite hashes a node by its operands, which would recurse)."""

    def __init__(self, module, options):
        super().__init__(module, [], name=str(len(module.metadata)))
        self.operands = (self, *options)

    def descr(self, buf):
        buf.append("distinct ")
        super().descr(buf)

    __hash__ = object.__hash__
    __eq__ = object.__eq__


def _not_unrolled(builder, loop):
    """Tell LLVM not to unroll ``loop``, a ``cgutils.for_range`` loop just closed (metadata on its
    jump back). A tile's loop is its register blocking: unrolled, twice its values are live, and
    LLVM does unroll such loops for CPUs whose scheduling model asks it to (AMD Zen 4), where the
    16-filter forward tile then spilled its accumulators, one stack store and load per FMA."""
    module = builder.module
    option = module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.disable")])
    back_edge = loop.index.incomings[-1][1].terminator
    back_edge.set_metadata("llvm.loop", _LoopID(module, [option]))


def _emit_forward_tile(builder, vec, positions, vectors, data, args, v, start, moments, residual, out_vec=None):
    """IR for one tile: ``positions`` outputs from column ``v`` of a row, ``vectors`` filter vectors;
    ``moments`` (a :class:`_RowMoments`) counts those from column ``start`` on; ``residual``,
    ``(data, flag)``: where the flag is set, each output is added to the residual's value at its
    index before it is stored.

    With ``out_vec`` (half of ``vec``'s lanes), the taps come in adjacent pairs: ``n_taps`` counts
    pairs, pair ``i`` at ``offsets[2 * i]``, and ``w``'s row ``i`` interleaves the two taps' filters
    (``w[i, 2j + h] = weights[2i + h, j]``). Each step multiplies a broadcast pair of inputs by that
    row's vectors, each output being two lanes' sum. With one vector, every lane works where a
    half-vector tile leaves half of them idle (8 filters of float32 with AVX-512: SIGNS's first
    layer); with two (16 filters), each broadcast feeds two FMAs, so loads no longer outnumber them
    (``smallres``'s 16-channel stage)."""
    x_data, offset_data, w_data, out_data, bias_data = data
    x_row, x_step, n_taps, w_row, k0, o_row, o_step, n_lanes = args
    acc = [[cgutils.alloca_once(builder, vec.type) for _ in range(vectors)] for _ in range(positions)]
    for row in acc:
        for a in row:
            builder.store(ir.Constant(vec.type, None), a)
    starts = [builder.mul(builder.add(builder.add(x_row, v), _i64(u)), x_step) for u in range(positions)]
    with cgutils.for_range(builder, n_taps) as loop:
        tap = loop.index if out_vec is None else builder.mul(loop.index, _i64(2))
        offset = builder.load(builder.gep(offset_data, [tap]))
        w_start = builder.add(builder.mul(loop.index, w_row), k0)
        weights = [vec.load(w_data, builder.add(w_start, _i64(s * vec.lanes))) for s in range(vectors)]
        for u in range(positions):
            at = builder.add(starts[u], offset)
            pixel = vec.broadcast(x_data, at) if out_vec is None else vec.broadcast_pair(x_data, at)
            for s in range(vectors):
                vec.multiply_add(pixel, weights[s], acc[u][s])
    _not_unrolled(builder, loop)
    if out_vec is not None:  # from here on, each pixel's outputs are one vector of half the lanes
        sums = [[vec.pair_sums(builder.load(acc[u][s]), out_vec) for s in range(vectors)] for u in range(positions)]
        vec = out_vec
    else:
        sums = [[builder.load(acc[u][s]) for s in range(vectors)] for u in range(positions)]
    biases = [vec.load(bias_data, builder.add(k0, _i64(s * vec.lanes))) for s in range(vectors)]
    last_full = builder.icmp_signed("==", n_lanes, _i64(vectors * vec.lanes))
    last_lanes = builder.sub(n_lanes, _i64((vectors - 1) * vec.lanes))
    outputs = [[builder.fadd(sums[u][s], biases[s]) for s in range(vectors)] for u in range(positions)]
    moments.add(outputs, v, start)
    residual_data, with_residual = residual

    def store_outputs(add_residual):
        for u in range(positions):
            at = builder.add(builder.mul(builder.add(builder.add(o_row, v), _i64(u)), o_step), k0)
            sums = outputs[u]
            for s in range(vectors - 1):
                index = builder.add(at, _i64(s * vec.lanes))
                value = builder.fadd(sums[s], vec.load(residual_data, index)) if add_residual else sums[s]
                vec.store(value, out_data, index)
            last = builder.add(at, _i64((vectors - 1) * vec.lanes))
            with builder.if_else(last_full) as (whole, part):
                with whole:
                    value = builder.fadd(sums[-1], vec.load(residual_data, last)) if add_residual else sums[-1]
                    vec.store(value, out_data, last)
                with part:  # the layer's last filters: lane by lane, never past the pixel
                    with cgutils.for_range(builder, last_lanes) as lane:
                        index = builder.add(last, lane.index)
                        value = builder.extract_element(sums[-1], lane.index)
                        if add_residual:
                            value = builder.fadd(value, builder.load(builder.gep(residual_data, [index])))
                        builder.store(value, builder.gep(out_data, [index]))

    with builder.if_else(with_residual) as (added, alone):
        with added:
            store_outputs(True)
        with alone:
            store_outputs(False)


class _RowMoments:
    """IR for a row's per-filter moments about its first output, summed as its tiles are computed:
    ``shift = y[0]``, ``s1 = sum_v (y[v] - shift)``, ``s2 = sum_v (y[v] - shift)^2`` over the row's
    outputs ``y[v]``, each counted once (the last tile, moved back, repeats some), in the data's
    type. Shifted by a value of the row, the squares do not cancel as ``E[y^2] - E[y]^2`` would.
    ``m0 < 0``: no moments (a branch per tile)."""

    def __init__(self, builder, vec, vectors, m0):
        self.builder, self.vec = builder, vec
        self.wanted = builder.icmp_signed(">=", m0, _i64(0))
        self.shift, self.s1, self.s2 = (
            [cgutils.alloca_once(builder, vec.type) for _ in range(vectors)] for _ in range(3)
        )
        for sums in (self.s1, self.s2):
            for a in sums:
                builder.store(ir.Constant(vec.type, None), a)

    def add(self, outputs, v, start):
        """Count ``outputs[u][s]`` (column ``v + u``) from column ``start`` on (the columns before it
        were counted by the tile before); the row's first output is the shift."""
        builder, zero = self.builder, ir.Constant(self.vec.type, None)
        with builder.if_then(self.wanted):
            with builder.if_then(builder.icmp_signed("==", start, _i64(0))):
                for s, a in enumerate(self.shift):
                    builder.store(outputs[0][s], a)
            shift = [builder.load(a) for a in self.shift]
            for u, row in enumerate(outputs):
                new = builder.icmp_signed(">=", builder.add(v, _i64(u)), start)
                for s, y in enumerate(row):
                    d = builder.select(new, builder.fsub(y, shift[s]), zero)
                    builder.store(builder.fadd(builder.load(self.s1[s]), d), self.s1[s])
                    builder.store(builder.call(self.vec.fma, [d, d, builder.load(self.s2[s])]), self.s2[s])

    def store(self, data, m0, stride):
        """``data[m0 + j * stride + l]``: shift, s1 and s2 for ``j = 0, 1, 2``."""
        builder = self.builder
        with builder.if_then(self.wanted):
            for j, sums in enumerate((self.shift, self.s1, self.s2)):
                for s, a in enumerate(sums):
                    at = builder.add(builder.add(m0, builder.mul(stride, _i64(j))), _i64(s * self.vec.lanes))
                    self.vec.store(builder.load(a), data, at)


def forward_row(positions: int, vectors: int, vector_bytes: int = VECTOR_BYTES, paired: bool = False):
    """An intrinsic
    ``row(x, x_row, x_step, offsets, n_taps, w, w_row, k0, out, o_row, o_step, bias, n_lanes, n_cols, moments, m0,
    residual, with_residual)``:

    ``out[(o_row + v) * o_step + k0 + l] = bias[k0 + l] + sum_{t < n_taps} x[(x_row + v) * x_step +
    offsets[t]] * w[t * w_row + k0 + l]`` for ``v < n_cols`` and ``l < n_lanes <= vectors * lanes``:
    one output row (positions ``o_row ..``, input positions ``x_row ..``) for one block of filters.
    When ``m0 >= 0``, also the row's moments (:class:`_RowMoments`) of each of the ``vectors * lanes``
    filters: its first output, and the sums of the outputs less it and of their squares, at
    ``moments[m0 + j * w_row + l]`` for ``j = 0, 1, 2``, from the outputs in registers. When
    ``with_residual``, each output is ``residual[index] +`` the above, ``index`` its own in ``out``
    (a residual branch's other gradient, summed as the input gradient is written); the moments are
    the sums' without it.

    Tiles of ``positions`` columns, the last one moved back to end at ``n_cols`` (it recomputes a few
    outputs, with the same values); rows narrower than a tile use tiles of half as many, so
    ``n_cols >= positions // 2``. ``x``, ``w``, ``out``, ``bias`` flat arrays of one float dtype; ``w``
    and ``bias`` hold ``vectors * lanes`` values from ``k0`` (zero-padded), ``out`` gets ``n_lanes``.

    ``paired``: taps in adjacent pairs, ``n_taps`` pairs and ``w`` rows of interleaved pairs, as
    :func:`_emit_forward_tile` describes; ``bias``, ``out`` and the moments then hold half as many
    lanes (``vectors * lanes / 2``).
    """

    @intrinsic
    def row(
        typingctx,
        x,
        x_row,
        x_step,
        offsets,
        n_taps,
        w,
        w_row,
        k0,
        out,
        o_row,
        o_step,
        bias,
        n_lanes,
        n_cols,
        moments,
        m0,
        residual,
        with_residual,
    ):
        sig = types.void(
            x,
            x_row,
            x_step,
            offsets,
            n_taps,
            w,
            w_row,
            k0,
            out,
            o_row,
            o_step,
            bias,
            n_lanes,
            n_cols,
            moments,
            m0,
            residual,
            with_residual,
        )

        def codegen(context, builder, sig, args):
            data = [_data(context, builder, sig.args[i], args[i]) for i in (0, 3, 5, 8, 11)]
            scalars = [args[i] for i in (1, 2, 4, 6, 7, 9, 10, 12)]
            n_cols, m0 = args[13], args[15]
            vec = _Vectors(context, builder, sig.args[0].dtype, vector_bytes)
            out_vec = _Vectors(context, builder, sig.args[0].dtype, vector_bytes // 2) if paired else None
            row_moments = _RowMoments(builder, out_vec or vec, vectors, m0)
            residual = (_data(context, builder, sig.args[16], args[16]), args[17])
            wide = builder.icmp_signed(">=", n_cols, _i64(positions))
            with builder.if_else(wide) as (then, otherwise):
                for branch, width in ((then, positions), (otherwise, positions // 2)):
                    with branch:
                        n_tiles = builder.sdiv(builder.add(n_cols, _i64(width - 1)), _i64(width))
                        with cgutils.for_range(builder, n_tiles) as tile:
                            start = builder.mul(tile.index, _i64(width))
                            last = builder.sub(n_cols, _i64(width))
                            v = builder.select(builder.icmp_signed("<", start, last), start, last)
                            _emit_forward_tile(
                                builder, vec, width, vectors, data, scalars, v, start, row_moments, residual, out_vec
                            )
            row_moments.store(_data(context, builder, sig.args[14], args[14]), m0, args[6])
            return context.get_dummy_value()

        return sig, codegen

    return row


class _Routing:
    """IR for :func:`weight_grad_tile`'s ``route``: each position's gradient from a batch norm's
    input, the max pool's winners and its output gradient (see there)."""

    def __init__(self, context, builder, vec, vectors, route_type, route, p0, y0, a0, a_row):
        self.builder, self.vec, self.vectors, self.p0, self.y0 = builder, vec, vectors, p0, y0
        pooled_type, winner_type, constants_type, _ = route_type.types
        pooled, winner, constants, relu = cgutils.unpack_tuple(builder, route, 4)
        pooled_array = context.make_array(pooled_type)(context, builder, pooled)
        _, self.n_hp, self.n_wp, self.k_pad = cgutils.unpack_tuple(builder, pooled_array.shape, 4)
        self.pooled = pooled_array.data
        self.winner = context.make_array(winner_type)(context, builder, winner).data
        constants_data = context.make_array(constants_type)(context, builder, constants).data
        self.k0 = builder.srem(a0, a_row)  # the tile's first filter: acc rows are K_pad long
        self.a, self.b, self.c0, self.scale, self.offset = (
            [
                vec.load(
                    constants_data,
                    builder.add(builder.add(builder.mul(_i64(j), self.k_pad), self.k0), _i64(s * vec.lanes)),
                )
                for s in range(vectors)
            ]
            for j in range(5)
        )
        mask_type = ir.VectorType(ir.IntType(1), vec.lanes)
        self.mask_type = mask_type
        self.no_relu = vec.splat(builder.not_(relu), mask_type)

    def gradients(self, z_data, z_at, row, col):
        """The gradient vectors at band row ``row``, column ``col``, ``z`` read at ``z_at``."""
        builder, vec = self.builder, self.vec
        one = _i64(1)
        y = builder.add(self.y0, row)
        pooled_row, p = builder.ashr(y, one), builder.and_(y, one)
        pooled_col, q = builder.ashr(col, one), builder.and_(col, one)
        valid = builder.and_(
            builder.icmp_signed("<", pooled_row, self.n_hp), builder.icmp_signed("<", pooled_col, self.n_wp)
        )
        window = builder.add(
            builder.mul(builder.add(builder.mul(pooled_row, self.n_wp), pooled_col), self.k_pad), self.k0
        )
        first = builder.add(self.p0, self.k0)
        at = builder.select(valid, builder.add(self.p0, window), first)  # in bounds either way
        key = builder.trunc(builder.add(builder.shl(p, one), q), ir.IntType(32))
        key_vector = vec.splat(key, ir.VectorType(ir.IntType(32), vec.lanes))
        valid_vector = vec.splat(valid, self.mask_type)
        zero = ir.Constant(vec.type, None)
        grads = []
        for s in range(self.vectors):
            lane = _i64(s * vec.lanes)
            z = vec.load(z_data, builder.add(z_at, lane))
            won = vec.load_int32(self.winner, builder.add(at, lane))
            hit = builder.and_(builder.icmp_signed("==", won, key_vector), valid_vector)
            routed = builder.select(hit, vec.load(self.pooled, builder.add(at, lane)), zero)
            passes = builder.fcmp_ordered(">", builder.fadd(builder.fmul(z, self.scale[s]), self.offset[s]), zero)
            kept = builder.select(builder.or_(self.no_relu, passes), routed, zero)
            product = builder.fsub(builder.fmul(self.a[s], kept), builder.fmul(self.b[s], z))
            grads.append(builder.fadd(product, self.c0[s]))
        return grads


def weight_grad_tile(taps: int, vectors: int, vector_bytes: int = VECTOR_BYTES, run_taps: int | None = None):
    """An intrinsic
    ``tile(x, x0, x_row, x_step, offsets, t0, g, g0, g_row, g_step, n_rows, n_cols, acc, a0, a_row, b0,
    route, p0, y0)``:

    ``acc[a0 + u * a_row + l] += sum_{r < n_rows, v < n_cols} x[x0 + r * x_row + v * x_step +
    offsets[t0 + u]] * g[g0 + r * g_row + v * g_step + l]`` for ``u < taps``, ``l < vectors * lanes``:
    ``taps`` rows of a weight gradient over a band of output rows, ``g`` the output gradient. When
    ``b0 >= 0``, also the bias's gradient ``acc[b0 + l] += sum_{r, v} g[g0 + r * g_row + v * g_step
    + l]``, from the vectors of ``g`` already in registers (a pass of its own over ``g`` cost a
    quarter of Happy's weight gradient).

    ``run_taps``: the tile's taps are runs of this many consecutive offsets (a window row of a
    few-channel input), each run addressed from its first offset; default, all of them one run.
    Offsets that are not (checked at the call) are read 8 at a time instead.

    ``route``, ``p0``, ``y0``: ``None`` (and unused) for ``g`` as above. Else ``route = (pooled,
    winner, constants, relu)`` and ``g`` holds a batch norm's input ``z``: the gradient read at each
    position is the one that batch norm (+ ReLU) gives its input where a 2 x 2 max pool read its
    output, ``a * r - b * z + c0`` with ``r`` the pool's output gradient ``pooled`` at the window
    whose ``winner`` is this position (0 elsewhere, and past the last window), masked by ReLU's
    ``z * scale + offset > 0``; ``constants (5, K_pad)`` rows ``a, b, c0, scale, offset``. The
    position is row ``y0 + r`` and column ``v`` of the image whose pooled values start at ``p0``:
    the same values, in the same order of operations, as ``norm_pool.winner_input_gradient``
    writes, never written themselves.
    """

    @intrinsic
    def tile(
        typingctx,
        x,
        x0,
        x_row,
        x_step,
        offsets,
        t0,
        g,
        g0,
        g_row,
        g_step,
        n_rows,
        n_cols,
        acc,
        a0,
        a_row,
        b0,
        route,
        p0,
        y0,
    ):
        sig = types.void(
            x, x0, x_row, x_step, offsets, t0, g, g0, g_row, g_step, n_rows, n_cols, acc, a0, a_row, b0, route, p0, y0
        )

        def codegen(context, builder, sig, args):
            x, x0, x_row, x_step, offsets, t0, g, g0, g_row, g_step, n_rows, n_cols, acc, a0, a_row, b0 = args[:16]
            x_data, offset_data, g_data, acc_data = (
                _data(context, builder, sig.args[i], args[i]) for i in (0, 4, 6, 12)
            )
            vec = _Vectors(context, builder, sig.args[0].dtype, vector_bytes)
            routing = None
            if not isinstance(sig.args[16], (types.NoneType, types.Omitted)):
                routing = _Routing(
                    context, builder, vec, vectors, sig.args[16], args[16], args[17], args[18], a0, a_row
                )
            sums = [[cgutils.alloca_once(builder, vec.type) for _ in range(vectors)] for _ in range(taps)]
            acc_starts = [builder.add(a0, builder.mul(a_row, _i64(u))) for u in range(taps)]
            for u in range(taps):
                for s in range(vectors):
                    builder.store(vec.load(acc_data, builder.add(acc_starts[u], _i64(s * vec.lanes))), sums[u][s])
            with_bias = builder.icmp_signed(">=", b0, _i64(0))
            bias_sums = [cgutils.alloca_once(builder, vec.type) for _ in range(vectors)]
            for s in range(vectors):
                builder.store(ir.Constant(vec.type, None), bias_sums[s])
            tap_offsets = [builder.load(builder.gep(offset_data, [builder.add(t0, _i64(u))])) for u in range(taps)]
            # Taps of one window position (p, q) and consecutive channels sit next to each other:
            # then one offset and constant displacements address them all (one per run). Held in
            # registers instead, 16 offsets left too few for the loop, which reloaded them from the
            # stack; so scattered taps are summed 8 at a time (Happy's weight gradient 1.2x faster).
            run = run_taps or taps
            consecutive = ir.Constant(ir.IntType(1), 1)
            for u in range(taps):
                if u % run:
                    first = tap_offsets[u - u % run]
                    consecutive = builder.and_(
                        consecutive, builder.icmp_signed("==", tap_offsets[u], builder.add(first, _i64(u % run)))
                    )

            def emit_loops(offset_of, tap_range):
                with cgutils.for_range(builder, n_rows) as row:
                    x_start = builder.add(x0, builder.mul(row.index, x_row))
                    g_start = builder.add(g0, builder.mul(row.index, g_row))
                    with cgutils.for_range(builder, n_cols) as col:
                        x_at = builder.add(x_start, builder.mul(col.index, x_step))
                        g_at = builder.add(g_start, builder.mul(col.index, g_step))
                        if routing is None:
                            grads = [vec.load(g_data, builder.add(g_at, _i64(s * vec.lanes))) for s in range(vectors)]
                        else:
                            grads = routing.gradients(g_data, g_at, row.index, col.index)
                        if tap_range[0] == 0:  # the first loop over the band also sums g, if asked
                            with builder.if_then(with_bias):
                                for s in range(vectors):
                                    builder.store(builder.fadd(builder.load(bias_sums[s]), grads[s]), bias_sums[s])
                        for u in tap_range:
                            pixel = vec.broadcast(x_data, offset_of(x_at, u))
                            for s in range(vectors):
                                vec.multiply_add(pixel, grads[s], sums[u][s])
                    _not_unrolled(builder, col)
                _not_unrolled(builder, row)

            with builder.if_else(consecutive) as (runs, scattered):
                with runs:
                    emit_loops(
                        lambda x_at, u: builder.add(builder.add(x_at, tap_offsets[u - u % run]), _i64(u % run)),
                        range(taps),
                    )
                with scattered:  # at most 8 offsets held at a time
                    for first in range(0, taps, 8):
                        emit_loops(
                            lambda x_at, u: builder.add(x_at, tap_offsets[u]), range(first, min(taps, first + 8))
                        )
            for u in range(taps):
                for s in range(vectors):
                    vec.store(builder.load(sums[u][s]), acc_data, builder.add(acc_starts[u], _i64(s * vec.lanes)))
            with builder.if_then(with_bias):
                for s in range(vectors):
                    at = builder.add(b0, _i64(s * vec.lanes))
                    vec.store(builder.fadd(vec.load(acc_data, at), builder.load(bias_sums[s])), acc_data, at)
            return context.get_dummy_value()

        return sig, codegen

    return tile


def channel_weight_grad_tile(positions: int, filters: int, vector_bytes: int = VECTOR_BYTES):
    """An intrinsic
    ``tile(x, x0, x_row, x_step, offsets, o0, o_step, c0, g, g0, g_row, g_step, n_rows, n_cols, acc, a0,
    a_position, a_filter)``, the weight gradient with the vector along the input's channels:

    ``acc[a0 + f * a_filter + u * a_position + l] += sum_{r < n_rows, v < n_cols} x[x0 + r * x_row + v *
    x_step + offsets[o0 + u * o_step] + c0 + l] * g[g0 + r * g_row + v * g_step + f]`` for ``u <
    positions``, ``f < filters``, ``l < lanes``: ``lanes`` channels from ``c0`` of ``positions`` window
    positions (whose first taps' offsets are ``o_step`` apart in ``offsets``) for ``filters`` filters,
    each output gradient broadcast. Each position's channels are one vector load, so a step of
    ``positions x filters`` FMAs loads ``positions + filters`` values: with 16 filters on one vector,
    :func:`weight_grad_tile` loads one input per FMA and one gradient vector more (3 positions x 8
    filters here: 11 loads per 24 FMAs). Each sum takes the same products in the same order as
    there: the same bits.
    """

    @intrinsic
    def tile(
        typingctx,
        x,
        x0,
        x_row,
        x_step,
        offsets,
        o0,
        o_step,
        c0,
        g,
        g0,
        g_row,
        g_step,
        n_rows,
        n_cols,
        acc,
        a0,
        a_position,
        a_filter,
    ):
        sig = types.void(
            x,
            x0,
            x_row,
            x_step,
            offsets,
            o0,
            o_step,
            c0,
            g,
            g0,
            g_row,
            g_step,
            n_rows,
            n_cols,
            acc,
            a0,
            a_position,
            a_filter,
        )

        def codegen(context, builder, sig, args):
            (
                _,
                x0,
                x_row,
                x_step,
                _,
                o0,
                o_step,
                c0,
                _,
                g0,
                g_row,
                g_step,
                n_rows,
                n_cols,
                _,
                a0,
                a_position,
                a_filter,
            ) = args
            x_data, offset_data, g_data, acc_data = (
                _data(context, builder, sig.args[i], args[i]) for i in (0, 4, 8, 14)
            )
            vec = _Vectors(context, builder, sig.args[0].dtype, vector_bytes)
            starts = [
                [
                    builder.add(builder.add(a0, builder.mul(a_filter, _i64(f))), builder.mul(a_position, _i64(u)))
                    for f in range(filters)
                ]
                for u in range(positions)
            ]
            sums = [[cgutils.alloca_once(builder, vec.type) for _ in range(filters)] for _ in range(positions)]
            for u in range(positions):
                for f in range(filters):
                    builder.store(vec.load(acc_data, starts[u][f]), sums[u][f])
            position_offsets = [
                builder.add(builder.load(builder.gep(offset_data, [builder.add(o0, builder.mul(o_step, _i64(u)))])), c0)
                for u in range(positions)
            ]
            with cgutils.for_range(builder, n_rows) as row:
                x_start = builder.add(x0, builder.mul(row.index, x_row))
                g_start = builder.add(g0, builder.mul(row.index, g_row))
                with cgutils.for_range(builder, n_cols) as col:
                    x_at = builder.add(x_start, builder.mul(col.index, x_step))
                    g_at = builder.add(g_start, builder.mul(col.index, g_step))
                    inputs = [vec.load(x_data, builder.add(x_at, position_offsets[u])) for u in range(positions)]
                    for f in range(filters):
                        grad = vec.broadcast(g_data, builder.add(g_at, _i64(f)))
                        for u in range(positions):
                            vec.multiply_add(inputs[u], grad, sums[u][f])
                _not_unrolled(builder, col)
            _not_unrolled(builder, row)
            for u in range(positions):
                for f in range(filters):
                    vec.store(builder.load(sums[u][f]), acc_data, starts[u][f])
            return context.get_dummy_value()

        return sig, codegen

    return tile
