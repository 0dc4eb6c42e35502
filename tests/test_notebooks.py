"""The notebooks: committed with their outputs, and re-run here from top to bottom so that they cannot rot.

The re-run sets ``HINGEMETRICS_FAST=1``, which each notebook reads to cut its epochs and data, and uses the Agg
backend. The kernel is the ``python3`` one, which jupyter_client starts with this interpreter, so it sees the same
environment as the tests.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# One notebook for each method of the original material, then the extra ones.
EXPECTED = [
    "01_mlp_two_circles.ipynb",
    "02_hinge_embedding_loss.ipynb",
    "03_hinge_loss_task.ipynb",
    "04_functional_multiclass.ipynb",
    "05_history_plot.ipynb",
    "06_choosing_normalization.ipynb",
    "07_distributed_evaluation.ipynb",
    "08_triplet_embedding.ipynb",
    "09_model_comparison.ipynb",
]


def code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_every_method_has_its_notebook():
    assert [path.name for path in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_with_the_outputs_of_one_clean_run(path):
    notebook = nbformat.read(path, as_version=4)
    cells = code_cells(notebook)
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1)), "run top to bottom, once"
    outputs = [output for cell in cells for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "readers should see at least one plot"
    assert any(o.output_type == "stream" and o.name == "stdout" for o in outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_from_top_to_bottom(path, monkeypatch, tmp_path):
    monkeypatch.setenv("HINGEMETRICS_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "1")  # this environment's kernel spec before a user-wide one
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("import sys\n\nprint(sys.executable)"))
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, when a cell fails
    cells = code_cells(notebook)
    assert all(cell.execution_count is not None for cell in cells)
    assert not [o for cell in cells for o in cell.outputs if o.output_type == "error"]
    printed = "".join(o.text for cell in cells[:-1] for o in cell.outputs if o.output_type == "stream")
    assert printed, "the notebook printed nothing"
    kernel_python = cells[-1].outputs[0].text.strip()
    assert kernel_python == sys.executable, "the kernel ran another interpreter"
