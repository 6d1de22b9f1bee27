"""Choosing the tier: ``NPCONV_JIT``, ``use_tier``, and ``_tier.tiered``, the one place where a
kernel's tier is chosen; ``import npconv`` does not import Numba.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

from npconv.functional import _tier
from npconv.functional._tier import use_tier

pytestmark = pytest.mark.usefixtures("needs_numba")


@pytest.mark.parametrize("value, expected", [("0", "numpy"), ("1", "compiled"), (None, "compiled")])
def test_npconv_jit_chooses_the_tier(value, expected):
    env = {k: v for k, v in os.environ.items() if k != "NPCONV_JIT"}
    if value is not None:
        env["NPCONV_JIT"] = value
    code = "from npconv.functional._tier import tier; print(tier())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


def test_unknown_tier_is_refused():
    with pytest.raises(ValueError, match="'numpy' or 'compiled'"):
        with use_tier("fast"):
            pass


def test_tiered_runs_the_compiled_version_where_the_tier_and_its_condition_allow():
    def numpy_version(x, y):
        return "numpy", x, y

    @_tier.tiered(numpy_version, applies=lambda x, y: x > 0)
    def add(kernels, x, y):
        """The compiled version."""
        assert kernels is _tier.load_compiled()
        return "compiled", x, y

    assert add.__doc__ == "The compiled version."
    with use_tier("numpy"):
        assert add(1, 2) == ("numpy", 1, 2)
    with use_tier("compiled"):
        assert add(1, 2) == ("compiled", 1, 2)
        assert add(0, 2) == ("numpy", 0, 2)


def test_the_tier_is_chosen_in_one_place():
    """Every kernel with a compiled version dispatches through ``_tier.tiered``: no module but
    ``_tier`` asks for ``compiled()`` itself."""
    src = pathlib.Path(_tier.__file__).parents[1]
    callers = [
        str(path.relative_to(src))
        for path in sorted(src.rglob("*.py"))
        if path.name != "_tier.py" and re.search(r"\bcompiled\(\)", path.read_text(encoding="utf-8"))
    ]
    assert callers == []


def test_import_npconv_does_not_import_numba():
    """Numba (about 0.3 s to import) loads at the first compiled kernel call, not with npconv."""
    code = "import sys, npconv; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert _tier.tier() in ("numpy", "compiled")
