"""The compiled kernels' machine code, read for CPUs where LLVM made it slow.

The convolution tiles keep their accumulators in registers: a tile's loop holds ``P x V``
accumulators across its taps; if LLVM unrolls that loop, twice as many values are live and the
accumulators spill to the stack, one store and one load per FMA. LLVM's unroller follows the CPU's
scheduling model: on AMD Zen 4 (``znver4``) it unrolled the 16-filter forward tile by two, whose
accumulators then spilled in the kernel (``smallres``'s 16-channel stage at 0.7 of the speed it runs
at not unrolled); for Intel's server cores it did not.

The flat element-wise passes load and store whole vectors: a loop indexed from a block's start kept
Numba's negative-index wrap-around, which LLVM vectorised with gathers and scatters (ReLU's gradient
5x slower than NumPy's pass on Zen 4).

Each case compiles for one CPU in a process of its own (Numba's target CPU is fixed at import, and
its disk cache is kept apart) and reads the machine code: no code runs, so any x86-64 machine checks
every CPU.
"""

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.usefixtures("needs_numba"),
    pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="reads x86-64 machine code"),
]


def _probe_for(cpu: str, probe: str, *args: str, cache_dir) -> object:
    """What ``probe`` prints last (JSON), run with Numba compiling for ``cpu`` (with AVX-512, whatever
    this machine has) into ``cache_dir`` (code loaded from a cache cannot be read)."""
    env = {
        **os.environ,
        "NUMBA_CPU_NAME": cpu,
        "NUMBA_CPU_FEATURES": "+avx512f,+avx512vl,+avx512bw,+avx512dq,+fma",
        "NUMBA_CACHE_DIR": str(cache_dir),
    }
    out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.splitlines()[-1])


# Compiles one tile into a small function and prints, for each loop of 16 or more FMAs in one block
# (the tile's), how many of its operands address the stack.
_PROBE = """
import json, re, sys
from numba import njit, types
from npconv.functional.compiled._simd import forward_row, weight_grad_tile

f32, i64, n = types.float32[::1], types.int64[::1], types.int64
if sys.argv[1] == "forward":  # 8 pixels x two vectors of tap pairs: the 16-filter layers' tile

    tile = forward_row(8, 2, 64, paired=True)

    @njit
    def probe(x, offsets, w, bias, out, moments, residual, rows, taps):
        for r in range(rows):  # loop counts are arguments, and the tile is inside a loop, as in the kernel
            tile(x, r * 34, 16, offsets, taps, w, 32, 0, out, r * 32, 16, bias, 16, 32, moments, -1, residual, False)

    signature = (f32, i64, f32, f32, f32, f32, f32, n, n)
else:  # 16 taps x one vector of filters over a band of positions: a weight gradient's tile

    tile = weight_grad_tile(16, 1, 64)

    @njit
    def probe(x, offsets, g, acc, rows, cols):
        for t in range(rows):
            tile(x, 0, 64, 16, offsets, 16 * t, g, 0, 64, 16, rows, cols, acc, 256 * t, 16, -1, None, 0, 0)

    signature = (f32, i64, f32, f32, n, n)
probe.compile(signature)
loops = []  # each single-block loop of 16 FMAs or more: (FMAs, operands on the stack)
for block in re.split(r"\\n(?=\\.LBB)", probe.inspect_asm(signature)):
    label = block.split(":", 1)[0]
    back = re.search(r"\\tj\\w+\\t" + re.escape(label) + r"\\b", block)
    body = block[: back.start()] if back else ""
    if body.count("vfmadd") >= 16:
        loops.append((body.count("vfmadd"), len(re.findall(r"\\(%rsp\\)", body))))
print(json.dumps(loops))
"""


@pytest.mark.parametrize("tile", ["forward", "weight_gradient"])
@pytest.mark.parametrize("cpu", ["znver4", "sapphirerapids", "skylake-avx512"])
def test_a_tiles_loop_is_not_unrolled_and_keeps_its_accumulators_in_registers(cpu, tile, tmp_path):
    loops = _probe_for(cpu, _PROBE, tile, cache_dir=tmp_path)
    assert loops, f"no loop of 16 FMAs in the {tile} tile compiled for {cpu}"
    # each loop one step of the tile (16 FMAs), with at most a few values reloaded from the stack per
    # step, where a spilled tile has one or two per FMA
    assert all(fmas == 16 and on_stack <= 4 for fmas, on_stack in loops), f"{cpu}, {tile}: {loops}"


# Compiles the flat passes' serial builds and prints how many gathers and scatters their code holds.
_FLAT_PROBE = """
import json
from numba import types
from npconv.functional.compiled import elementwise

flat = types.float32[::1]
build = elementwise.relu_gradient.serial
build.compile((flat, flat, flat))
code = build.inspect_asm((flat, flat, flat))
print(json.dumps({"gathers": code.count("vgather"), "scatters": code.count("vscatter")}))
"""


@pytest.mark.parametrize("cpu", ["znver4", "sapphirerapids"])
def test_relus_gradient_is_a_pass_of_whole_vectors(cpu, tmp_path):
    assert _probe_for(cpu, _FLAT_PROBE, cache_dir=tmp_path) == {"gathers": 0, "scatters": 0}
