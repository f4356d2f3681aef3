"""The notebooks in examples/notebooks/ run from a clean state in a real Jupyter kernel, and are committed clean."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "examples" / "notebooks"
ROOT = NOTEBOOKS.parent.parent
PICTURES = ("image/svg+xml", "image/png")
# notebook -> how many of its cells must show a picture (the drawn graphs, filters and feature maps)
EXPECTED_PICTURES = {"step_by_step.ipynb": 3, "train_digits.ipynb": 6, "explain_gradient.ipynb": 2,
                     "train_resnet_digits.ipynb": 4, "second_order.ipynb": 3}


def test_every_notebook_is_executed_here():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(EXPECTED_PICTURES)


@pytest.mark.parametrize("name", sorted(EXPECTED_PICTURES))
def test_committed_notebooks_carry_no_outputs(name):
    notebook = json.loads((NOTEBOOKS / name).read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None, f"{name}: strip outputs: {cell['source']}"


@pytest.mark.parametrize("name", sorted(EXPECTED_PICTURES))
def test_notebook_runs_and_draws(name, this_python_kernel):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name=this_python_kernel, timeout=300,
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError, naming the cell, when one fails
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    pictures = [cell for cell in notebook.cells if cell.cell_type == "code"
                and any(kind in out.get("data", {}) for out in cell.outputs for kind in PICTURES)]
    assert len(pictures) >= EXPECTED_PICTURES[name]
    drawings = [cell for cell in notebook.cells if cell.cell_type == "code" and ".draw(" in cell.source]
    assert drawings
    for cell in drawings:  # a cell ending in loss.draw() shows the graph as SVG
        svg = [out["data"]["image/svg+xml"] for out in cell.outputs if "image/svg+xml" in out.get("data", {})]
        assert svg and "<svg" in svg[0], cell.source
