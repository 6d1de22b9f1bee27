"""The built wheel installs into a fresh virtual environment and runs the README's main job from there.

The editable install that the other tests use reads ``src/`` directly, so it cannot show that the wheel
leaves something out (the web page's HTML, ``py.typed``) or that the ``npconv`` command is declared.
The fresh environment gets npconv from the wheel alone; its dependencies come from this test run's
environment through a ``.pth`` line, so the test needs no network.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import require

ROOT = Path(__file__).resolve().parents[1]


def _clean_environment(tmp_path: Path) -> dict:
    """This process's environment as a fresh machine has it: no PYTHONPATH (with src/ on it, pip takes
    npconv for installed and installs nothing), no data, nothing cached."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NPCONV_DATA")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


def _build_wheel(out: Path, env: dict) -> Path:
    """The wheel, built from a copy of the sources (a build writes build/ and *.egg-info beside them)."""
    require(_has("setuptools"), "setuptools is not installed (pip install -e '.[dev]')")
    source = out.parent / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    (wheel,) = out.glob("npconv-*.whl")
    return wheel


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _fresh_environment(folder: Path, wheel: Path, env: dict) -> Path:
    """A new virtual environment holding the wheel's npconv; returns its ``bin`` (``Scripts``) folder."""
    venv.EnvBuilder(with_pip=False).create(folder)
    scripts = folder / ("Scripts" if os.name == "nt" else "bin")
    python = scripts / "python"
    purelib = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # This run's dependencies, after the fresh environment's own site-packages: npconv there wins.
    ours = [p for p in {*site.getsitepackages(), sysconfig.get_path("purelib")} if Path(p).is_dir()]
    (purelib / "_test_dependencies.pth").write_text("\n".join(ours) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return scripts


@pytest.mark.slow
def test_the_wheel_installs_and_runs_the_main_job(tmp_path):
    env = _clean_environment(tmp_path)
    wheel = _build_wheel(tmp_path / "dist", env)
    names = zipfile.ZipFile(wheel).namelist()
    assert "npconv/serve/static/index.html" in names and "npconv/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "notebooks/")) or n.endswith(".h5")]

    scripts = _fresh_environment(tmp_path / "venv", wheel, env)
    where = subprocess.run(
        [str(scripts / "python"), "-c", "import npconv; print(npconv.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    ).stdout
    assert Path(where.strip()).is_relative_to(tmp_path / "venv"), where

    job = subprocess.run(
        [str(scripts / "npconv"), "train", "--out", "runs/smiles.npz", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert job.returncode == 0, job.stderr[-3000:]
    assert "validation accuracy" in job.stdout and (tmp_path / "runs" / "smiles.npz").is_file()
    assert (tmp_path / "runs" / "smiles_report" / "metrics.json").is_file()
