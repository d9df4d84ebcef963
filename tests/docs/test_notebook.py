"""The demonstration notebook executes from top to bottom on the bundled model (as CI runs it)."""

import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "notebooks" / "attnlens-demo.ipynb"


@pytest.mark.slow
def test_the_demo_notebook_runs(tmp_path):
    # The venv's "python3" kernelspec says argv[0] "python"; jupyter_client runs that as sys.executable,
    # so the kernel is this venv's interpreter whatever PATH holds.
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] in ("python", sys.executable)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "answer:" in text and "sink (token 0) holds" in text and "clusters, modularity" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # the two plots
    assert any("text/html" in o.get("data", {}) for o in outputs)  # the cluster table
