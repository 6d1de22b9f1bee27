"""The exercise notebook: as committed, every check fails with a hint; with npconv's solutions in the
exercise cells, every check passes (the course's test calls, unchanged, against npconv.testing)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "Convolution_model_Step_by_Step.ipynb"
EXERCISES = [
    "zero_pad",
    "conv_single_step",
    "conv_forward",
    "pool_forward",
    "conv_backward",
    "create_mask_from_window",
    "distribute_value",
    "pool_backward",
]


def _read():
    import nbformat

    return nbformat.read(NOTEBOOK, as_version=4)


def _exercise_cells(nb):
    return [(k, cell) for k, cell in enumerate(nb.cells) if "exercise" in cell.metadata.get("tags", [])]


def _run(nb, kernel: str, allow_errors: bool):
    import nbclient

    nbclient.NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=120,
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    return nb


def _text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "".join(parts)


def test_each_exercise_is_a_stub_followed_by_the_course_check():
    nb = _read()
    cells = _exercise_cells(nb)
    assert [cell.metadata["exercise"] for _, cell in cells] == EXERCISES
    for k, cell in cells:
        name = cell.metadata["exercise"]
        assert cell.source.startswith(f"def {name}(") and "# YOUR CODE HERE" in cell.source
        assert nb.cells[k + 1].source == f"{name}_test({name})"
    assert "from npconv.testing import *" in "".join(c.source for c in nb.cells)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit it without outputs"


@pytest.mark.slow
def test_the_stubs_fail_each_check_with_a_hint(notebook_kernel):
    nb = _run(_read(), notebook_kernel, allow_errors=True)
    for k, _cell in _exercise_cells(nb):
        check = _text(nb.cells[k + 1])
        assert check.startswith("AssertionError: the course's"), check
        assert "is None: write the code where it says YOUR CODE HERE" in check, check


@pytest.mark.slow
def test_with_npconv_solutions_every_check_passes(notebook_kernel):
    nb = _read()
    for _, cell in _exercise_cells(nb):
        cell.source = f"from npconv.course import {cell.metadata['exercise']}"
    nb = _run(nb, notebook_kernel, allow_errors=False)  # raises CellExecutionError on a failed check
    for k, _cell in _exercise_cells(nb):
        assert "All tests passed!" in _text(nb.cells[k + 1])
    # Section 6: the functions inside a network, one dW entry as its terms, a slip found with its hint.
    traced = "".join(_text(cell) for cell in nb.cells)
    assert "layer 'conv2d' (Conv2D): padding='same' pads 1 above, 2 below" in traced
    assert "first difference: None" in traced and "= the sum of 64 terms A_prev_pad * dZ" in traced
    assert "layer 'conv2', dx[" in traced and "use +=, not =" in traced
