"""The findings notebook re-derives the findings from the published annotations, top to bottom (as CI runs it)."""

from pathlib import Path

import nbformat
import pyarrow.parquet as pq
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "docs" / "notebooks" / "findings.ipynb"


@pytest.mark.slow
def test_the_findings_notebook_runs(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    rows = pq.read_table(ROOT / "data" / "annotations" / "annotations.parquet").num_rows
    assert f"{rows} rows" in text and "verdicts changed by the current checks" in text
    assert "strongest dependence on length: |rho|" in text and "survive the length control" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 1  # the length scatter
    tables = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert len(tables) == 4 and "both right" in tables[-1]  # conditions, accuracy, contrasts, pronoun pairs
