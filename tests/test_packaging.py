"""What pyproject.toml declares is true of what gets installed."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    listed = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [r for r in map(Requirement, listed) if r.name != "npconv"]


def test_requires_python_is_what_every_installed_dependency_needs():
    """requires-python said >= 3.10 while the dev extra's httpx2 needs 3.11: a 3.10 user could
    install npconv and not its test dependencies."""
    floor = Version(re.fullmatch(r">=(\d+\.\d+)", PYPROJECT["project"]["requires-python"]).group(1))
    too_old = []
    for requirement in _requirements():
        needs = importlib.metadata.metadata(requirement.name).get("Requires-Python")
        if needs and not SpecifierSet(needs).contains(floor):
            too_old.append(f"{requirement.name} needs Python {needs}")
    assert not too_old, f"requires-python >= {floor}, but " + "; ".join(too_old)


def test_the_readme_states_the_declared_python():
    floor = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert f"Python ≥ {floor}" in (ROOT / "README.md").read_text()


def test_contributing_names_every_test_file_that_needs_the_data_and_how_to_point_them_at_it():
    """A run without the data printed 43 skips and nothing said which tests or how to give them it."""
    guide = (ROOT / "CONTRIBUTING.md").read_text()
    section = guide[guide.index("### The tests and the data") : guide.index("## How the tiers are checked")]
    assert "NPCONV_DATA=/path/to/datasets python -m pytest" in section
    tests = ROOT / "tests"
    # A function taking the data_dir fixture, or the data mark (tests/data/test_sources.py passes a
    # data_dir= argument of its own and needs no data).
    needing = sorted(
        path.relative_to(tests).with_suffix("").as_posix()
        for path in tests.rglob("test_*.py")
        if re.search(r"def \w+\([^)]*\bdata_dir\b|pytest\.mark\.data", path.read_text())
    )
    missing = [name for name in needing if f"`{name}`" not in section]
    assert not missing, f"tests that read the shared data sets but are not named in CONTRIBUTING.md: {missing}"
