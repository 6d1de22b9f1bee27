"""The course notebook runs top to bottom (FAST mode) in a kernel of this interpreter."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest
from conftest import require

import npconv

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "Convolution_model_Application.ipynb"
KERNEL = "npconv-test"


def _kernel_dir(root: Path) -> Path:
    """A kernelspec running ``sys.executable``, so the kernel sees the packages of this test run."""
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "npconv test",
                "language": "python",
            }
        )
    )
    return root


@pytest.mark.slow
def test_notebook_runs_in_fast_mode(data_dir, tmp_path, monkeypatch):
    for package in ("nbformat", "nbclient", "ipykernel"):
        require(importlib.util.find_spec(package) is not None, f"{package} is not installed (pip install -e '.[dev]')")
    import nbclient
    import nbformat

    monkeypatch.setenv("JUPYTER_PATH", str(_kernel_dir(tmp_path / "jupyter")))
    # The kernel runs in notebooks/, where a relative PYTHONPATH=src would miss: give it this npconv's folder.
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join([str(Path(npconv.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
    )
    monkeypatch.setenv("NPCONV_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("NPCONV_DATA", str(data_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # CI sets Agg; the notebook asks for inline

    nb = nbformat.read(NOTEBOOK, as_version=4)  # executed in memory: the committed file is untouched
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL, timeout=300, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, if a cell fails

    text, images = [], 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"{output.get('ename')}: {output.get('evalue')}"
            if output["output_type"] == "stream":
                text.append(output["text"])
            elif "image/png" in output.get("data", {}):
                images += 1
            elif "text/plain" in output.get("data", {}):
                text.append(output["data"]["text/plain"])
    text = "".join(text)
    assert "FAST = True" in text
    assert "MISSING" not in text  # the real data was used, not the synthetic stand-in
    for expected in (
        "-6.99908945068",
        "0.5511276474566768",
        "dA_mean = 1.45243777",
        "37,633",
        "1,310",
        "test accuracy",
        "held-out accuracy",
    ):
        assert expected in text, f"{expected!r} not in the notebook's output"
    assert "<Figure" not in text, "a figure printed as text instead of an image"
    assert images >= 19  # 15, then the four of "Where does the model look?"


@pytest.mark.parametrize("name", ["Convolution_model_Application", "Convolution_model_Step_by_Step"])
def test_each_notebook_is_its_paired_percent_source(name):
    """The ``.py`` (jupytext's percent format) is the source; the ``.ipynb`` must hold the same cells,
    or an edit made on one side only (as the hand-written cell lists once drifted) goes unseen."""
    require(importlib.util.find_spec("jupytext") is not None, "jupytext is not installed (pip install -e '.[dev]')")
    import jupytext
    import nbformat

    source = jupytext.read(NOTEBOOK.with_name(name + ".py"))
    notebook = nbformat.read(NOTEBOOK.with_name(name + ".ipynb"), as_version=4)
    assert notebook.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert [(c.cell_type, c.source) for c in notebook.cells] == [(c.cell_type, c.source) for c in source.cells], (
        f"{name}.ipynb and {name}.py differ: run jupytext --sync notebooks/{name}.py"
    )
    exercises = [c.metadata.get("exercise") for c in notebook.cells]
    assert exercises == [c.metadata.get("exercise") for c in source.cells]


def test_every_long_cell_says_how_long_and_shows_progress():
    """A cell trained a full SMILEsmileD model with verbose=0: 14 minutes with no output."""
    import nbformat

    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    training = [c.source for c in cells if c.cell_type == "code" and re.search(r"\.fit\(|training\.train\(", c.source)]
    assert len(training) >= 5
    for source in training:
        assert "verbose=0" not in source, source
        assert re.search(r"about [\w ]+ on two idle cores", source), f"no time stated in:\n{source}"
    first = cells[0].source
    assert re.search(r"about \*\*[\d.]+ minutes on two idle CPU cores\*\*", first), "the first cell states no time"


def test_what_the_notebook_says_of_the_readme_main_job_is_the_readme_main_job():
    """Cell 39 said the main job was `npconv train smiles`; it is `npconv train` on the built-in faces."""
    import nbformat

    readme = (NOTEBOOK.parents[1] / "README.md").read_text()
    main_job = re.search(r"&& (npconv train [^\n]*)\n", readme).group(1)
    text = " ".join(c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells)
    for mention in re.finditer(r"main job[^`]*`([^`]+)`", text):
        assert mention.group(1) == main_job, mention.group(0)
    assert main_job in text
