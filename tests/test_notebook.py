"""examples/quickstart.ipynb runs from top to bottom in the test environment's Python."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


@pytest.mark.subprocess
def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the notebook's inline backend, as for a user
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # The kernel is this environment's Python (ipykernel's own kernel spec), not another one.
    assert Path(nb.cells[-1].outputs[0]["text"].strip()).resolve() == Path(sys.executable).resolve()
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the paper-style, report-style and classification figures
    tables = [o for o in outputs if "text/html" in o.get("data", {}) and "<table" in o["data"]["text/html"]]
    assert len(tables) >= 3  # summaries and the grouped table as DataFrames
    assert (tmp_path / "notebook-results" / "fig1a" / "results.csv").exists()
    assert os.path.getsize(tmp_path / "notebook-results" / "fig1a" / "fig1a.png") > 1000
