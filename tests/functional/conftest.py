"""Fixtures of the kernel tests."""

import pytest
from conftest import require

from npconv.functional._tier import compiled_available


@pytest.fixture
def needs_numba():
    """Numba is installed (with ``CI`` set, its absence fails the test instead of skipping it)."""
    require(compiled_available(), "Numba is not installed (pip install numba)")
