"""The transforms of Winograd's F(2 x 2, 3 x 3), written as LLVM vector code (see :mod:`.winograd`).

Each works on one vector of channels at a time, the vector along the channels as in the direct
kernels' tiles (:mod:`._simd`), so a transform is the same few adds in every lane. The input
transform ``B^T d B`` of a 4 x 4 window ``d`` and the output transform ``A^T M A`` of a 4 x 4
product ``M`` are, along each axis::

    B^T (d0, d1, d2, d3) = (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
    A^T (m0, m1, m2, m3) = (m0 + m1 + m2, m1 - m2 - m3)

and the weight gradient's transform of a 2 x 2 tile ``e`` of the output gradient, ``A e A^T``::

    A (e0, e1) = (e0, e0 + e1, e0 - e1, -e1)

Numba's loops left these scalar (the vectoriser gave up over the 20 arrays a window's loads and
stores might alias), hence intrinsics, inlined into :mod:`.winograd`'s kernel like the tiles.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._simd import VECTOR_BYTES, _data, _i64, _not_unrolled, _Vectors

__all__ = ["input_row", "output_tile", "gradient_tile"]


def _along_input(builder, d):
    """``B^T d`` for four vectors ``d``."""
    return [builder.fsub(d[0], d[2]), builder.fadd(d[1], d[2]), builder.fsub(d[2], d[1]), builder.fsub(d[1], d[3])]


def _along_output(builder, m):
    """``A^T m`` for four vectors ``m``."""
    return [builder.fadd(builder.fadd(m[0], m[1]), m[2]), builder.fsub(builder.fsub(m[1], m[2]), m[3])]


@intrinsic
def input_row(typingctx, x, x0, x_row, x_step, n_tiles, v, v0, tile_step, plane):
    """An intrinsic ``input_row(x, x0, x_row, x_step, n_tiles, v, v0, tile_step, plane)``: the input
    transforms of a row of ``n_tiles`` windows for one vector of channels. Window ``t`` is the 4 x 4
    positions from ``x[x0 + 2 t x_step]`` (rows ``x_row`` apart, positions ``x_step`` apart); its 16
    transformed vectors go to ``v[v0 + t * tile_step + j * plane]``, ``j = 4 r + s``.

    Windows ``t`` and ``t + 1`` share two columns: each column's transform along the rows is done
    once and carried to the next window in registers (8 loads a window where 16 were)."""
    sig = types.void(x, x0, x_row, x_step, n_tiles, v, v0, tile_step, plane)

    def codegen(context, builder, sig, args):
        x_data, v_data = _data(context, builder, sig.args[0], args[0]), _data(context, builder, sig.args[5], args[5])
        x0, x_row, x_step, n_tiles, v0, tile_step, plane = (args[i] for i in (1, 2, 3, 4, 6, 7, 8))
        vec = _Vectors(context, builder, sig.args[0].dtype, VECTOR_BYTES)

        def column(at):
            """``B^T`` down the column of four positions from ``at``."""
            return _along_input(
                builder, [vec.load(x_data, builder.add(at, builder.mul(x_row, _i64(r)))) for r in range(4)]
            )

        carried = [[cgutils.alloca_once(builder, vec.type) for _ in range(4)] for _ in range(2)]
        for q in range(2):
            for r, value in enumerate(column(builder.add(x0, builder.mul(x_step, _i64(q))))):
                builder.store(value, carried[q][r])
        with cgutils.for_range(builder, n_tiles) as loop:
            start = builder.add(x0, builder.mul(builder.mul(loop.index, _i64(2)), x_step))
            fresh = [column(builder.add(start, builder.mul(x_step, _i64(q)))) for q in (2, 3)]
            columns = [[builder.load(a) for a in carried[q]] for q in range(2)] + fresh
            base = builder.add(v0, builder.mul(loop.index, tile_step))
            for r in range(4):
                for s, value in enumerate(_along_input(builder, [columns[q][r] for q in range(4)])):
                    vec.store(value, v_data, builder.add(base, builder.mul(plane, _i64(4 * r + s))))
            for q in range(2):
                for r in range(4):
                    builder.store(fresh[q][r], carried[q][r])
        _not_unrolled(builder, loop)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def output_tile(
    typingctx, m, m0, plane, out, o0, o_row, o_step, bias, k0, residual, with_residual, moments, mo, mo_step, first
):
    """An intrinsic ``output_tile(m, m0, plane, out, o0, o_row, o_step, bias, k0, residual, with_residual,
    moments, mo, mo_step, first)``: one 2 x 2 tile of outputs for one vector of filters,
    ``A^T M A + bias[k0 ..]`` from the 16 products ``m[m0 + j * plane]``, written to
    ``out[o0 + a * o_row + b * o_step]``; with ``with_residual``, ``residual`` at the same index
    added to each.

    When ``mo >= 0``, also the moments of the tile's two output rows as :func:`~.conv.conv_nhwc`
    keeps them (first output, sums of the outputs less it and of their squares; the residual not
    counted), at ``moments[mo + j * mo_step]`` for the top row and ``mo + 3 * mo_step`` on for the
    bottom one, ``j = 0, 1, 2``: started by the row's ``first`` tile, added to by the next ones."""
    sig = types.void(
        m, m0, plane, out, o0, o_row, o_step, bias, k0, residual, with_residual, moments, mo, mo_step, first
    )

    def codegen(context, builder, sig, args):
        m_data, out_data, bias_data, residual_data, moments_data = (
            _data(context, builder, sig.args[i], args[i]) for i in (0, 3, 7, 9, 11)
        )
        m0, plane, o0, o_row, o_step, k0, with_residual, mo, mo_step, first = (
            args[i] for i in (1, 2, 4, 5, 6, 8, 10, 12, 13, 14)
        )
        vec = _Vectors(context, builder, sig.args[0].dtype, VECTOR_BYTES)
        products = [
            [vec.load(m_data, builder.add(m0, builder.mul(plane, _i64(4 * r + s)))) for s in range(4)] for r in range(4)
        ]
        down = [_along_output(builder, [products[r][s] for r in range(4)]) for s in range(4)]  # down[s][a]
        bias = vec.load(bias_data, k0)
        outputs = [
            [builder.fadd(y, bias) for y in _along_output(builder, [down[s][a] for s in range(4)])] for a in range(2)
        ]
        places = [
            [builder.add(o0, builder.add(builder.mul(o_row, _i64(a)), builder.mul(o_step, _i64(b)))) for b in range(2)]
            for a in range(2)
        ]
        with builder.if_else(with_residual) as (added, alone):
            for branch, add in ((added, True), (alone, False)):
                with branch:
                    for a in range(2):
                        for b in range(2):
                            y = outputs[a][b]
                            if add:
                                y = builder.fadd(y, vec.load(residual_data, places[a][b]))
                            vec.store(y, out_data, places[a][b])
        with builder.if_then(builder.icmp_signed(">=", mo, _i64(0))):
            zero = ir.Constant(vec.type, None)
            for a in range(2):
                at = [builder.add(mo, builder.mul(mo_step, _i64(3 * a + j))) for j in range(3)]
                with builder.if_then(first):
                    vec.store(outputs[a][0], moments_data, at[0])
                    vec.store(zero, moments_data, at[1])
                    vec.store(zero, moments_data, at[2])
                shift, s1, s2 = (vec.load(moments_data, place) for place in at)
                for b in range(2):
                    d = builder.fsub(outputs[a][b], shift)
                    s1 = builder.fadd(s1, d)
                    s2 = builder.call(vec.fma, [d, d, s2])
                vec.store(s1, moments_data, at[1])
                vec.store(s2, moments_data, at[2])
        return context.get_dummy_value()

    return sig, codegen


def _along_gradient(builder, e):
    """``A e`` for two vectors ``e``."""
    return [e[0], builder.fadd(e[0], e[1]), builder.fsub(e[0], e[1]), builder.fneg(e[1])]


@intrinsic
def gradient_tile(typingctx, g, g0, g_row, g_step, out, o0, plane, acc, b0):
    """An intrinsic ``gradient_tile(g, g0, g_row, g_step, out, o0, plane, acc, b0)``: the transform
    ``A e A^T`` of one 2 x 2 tile ``e`` of the output gradient for one vector of filters, ``e[a][b]``
    at ``g[g0 + a * g_row + b * g_step]``, its 16 vectors to ``out[o0 + j * plane]``. When
    ``b0 >= 0``, also the bias's gradient: the tile's four vectors added to ``acc[b0 ..]``."""
    sig = types.void(g, g0, g_row, g_step, out, o0, plane, acc, b0)

    def codegen(context, builder, sig, args):
        g_data, out_data, acc_data = (_data(context, builder, sig.args[i], args[i]) for i in (0, 4, 7))
        g0, g_row, g_step, o0, plane, b0 = (args[i] for i in (1, 2, 3, 5, 6, 8))
        vec = _Vectors(context, builder, sig.args[0].dtype, VECTOR_BYTES)
        tile = [
            [
                vec.load(
                    g_data, builder.add(g0, builder.add(builder.mul(g_row, _i64(a)), builder.mul(g_step, _i64(b))))
                )
                for b in range(2)
            ]
            for a in range(2)
        ]
        down = [_along_gradient(builder, [tile[0][b], tile[1][b]]) for b in range(2)]  # down[b][r]
        for r in range(4):
            for s, value in enumerate(_along_gradient(builder, [down[0][r], down[1][r]])):
                vec.store(value, out_data, builder.add(o0, builder.mul(plane, _i64(4 * r + s))))
        with builder.if_then(builder.icmp_signed(">=", b0, _i64(0))):
            total = builder.fadd(builder.fadd(tile[0][0], tile[0][1]), builder.fadd(tile[1][0], tile[1][1]))
            vec.store(builder.fadd(vec.load(acc_data, b0), total), acc_data, b0)
        return context.get_dummy_value()

    return sig, codegen
