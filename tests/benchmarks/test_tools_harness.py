"""The tool-benchmark harness, fast: the attnlens adapter end to end, budgets, failures verbatim.

No tool venv is installed here (that takes minutes per tool); the attnlens adapter runs in the
project's own venv, and the failing and over-budget cells are real child processes.
"""

import json
import sys
from pathlib import Path

import pytest

from attnlens.benchmarks.tools import main
from attnlens.benchmarks.tools.envs import ensure_env
from attnlens.benchmarks.tools.harness import Budget, integration_lines, load_rows, run_adapter, run_cell
from attnlens.benchmarks.tools.inputs import prepare


def test_the_attnlens_cell_runs_end_to_end(tmp_path):
    row = run_cell("attnlens", ensure_env("attnlens"), "tiny-gpt2", 64, Budget(), tmp_path, render=False)
    assert row["status"] == "ok", row
    html = Path(row["output"]).read_text()
    assert row["output_bytes"] == len(html.encode())
    assert html.count("<span") == 64  # one shaded span per token
    assert 0 < row["viz_s"] < row["wall_s"]
    assert 100 < row["peak_rss_mb"] < 4000  # torch alone is a few hundred MB


def test_inputs_have_exactly_the_asked_length_or_say_why_not(tmp_path):
    for model, n in (("minilm-l6", 64), ("tiny-gpt2", 256)):
        spec = json.loads(prepare(model, n, tmp_path).read_text())
        assert len(spec["ids"]) == n
    minilm = json.loads((tmp_path / "minilm-l6-64.json").read_text())
    assert minilm["ids"][0] == 101 and minilm["ids"][-1] == 102  # [CLS] ... [SEP]
    with pytest.raises(ValueError, match="exceeds context: 1024 tokens > 512 positions"):
        prepare("minilm-l6", 1024, tmp_path)


def test_a_cell_over_its_time_budget_is_stopped_and_recorded(tmp_path):
    row = run_cell("attnlens", ensure_env("attnlens"), "tiny-gpt2", 64, Budget(seconds=0.5), tmp_path, render=False)
    assert row["status"] == "time budget exceeded"
    assert row["error"] == "time budget exceeded (over 0.5 s)"
    assert row["wall_s"] < 3


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "adapter.py"
    path.write_text(body)
    return path


def test_a_cell_over_its_memory_budget_is_stopped_and_recorded(tmp_path):
    adapter = _script(tmp_path, "import time\nblock = bytearray(400 * 2**20)\ntime.sleep(30)\n")
    row = run_adapter(sys.executable, adapter, tmp_path / "unused.json", tmp_path / "out", Budget(memory_mb=200))
    assert row["status"] == "memory budget exceeded"
    assert row["peak_rss_mb"] >= 200 and row["wall_s"] < 10


def test_a_failing_tool_is_recorded_verbatim(tmp_path):
    adapter = _script(tmp_path, "def load():\n    raise ValueError('no attention for this model: 42')\nload()\n")
    row = run_adapter(sys.executable, adapter, tmp_path / "unused.json", tmp_path / "out", Budget())
    assert row["status"] == "failed"
    assert row["error"] == "ValueError: no attention for this model: 42"
    assert row["detail"].startswith("Traceback (most recent call last):") and "in load" in row["detail"]


def test_an_adapter_without_a_result_line_is_a_failure_not_a_crash(tmp_path):
    adapter = _script(tmp_path, "print('hello')\n")
    row = run_adapter(sys.executable, adapter, tmp_path / "unused.json", tmp_path / "out", Budget())
    assert row["status"] == "failed" and row["error"].startswith("no result line from the adapter")


def test_json_rows_and_a_second_run_skips_finished_cells(tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    argv = ["--tools", "attnlens", "--models", "minilm-l6", "--lengths", "64", "1024", "--no-render", "--json", "--results", str(results)]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["tool"], r["model"], r["tokens"], r["status"]) for r in rows] == [
        ("attnlens", "minilm-l6", 64, "ok"), ("attnlens", "minilm-l6", 1024, "exceeds context"),
    ]
    assert {"wall_s", "viz_s", "peak_rss_mb", "output_bytes", "budget", "finished_at"} <= rows[0].keys()
    assert main(argv) == 0  # nothing left to run: the same rows, no new line in the results file
    assert json.loads(capsys.readouterr().out) == rows
    assert len(results.read_text().splitlines()) == 2 and len(load_rows(results)) == 2


def test_integration_lines_count_code_not_the_docstring():
    from attnlens.benchmarks.tools.envs import TOOLS

    text = TOOLS["bertviz"].adapter.read_text()
    code = text[text.index('"""', 3) + 3:]
    assert integration_lines("bertviz") == sum(1 for line in code.splitlines() if line.strip())


@pytest.mark.browser
def test_chromium_tells_a_self_contained_page_from_one_that_needs_a_cdn(tmp_path):
    """`.invalid` never resolves (RFC 2606): the same failure a CDN gives on a machine without internet."""
    from attnlens.benchmarks.tools.render import render

    local = tmp_path / "local.html"
    local.write_text("<!doctype html><svg width='50' height='50'><circle r='20' cx='25' cy='25'/></svg><p>attention</p>")
    cdn = tmp_path / "cdn.html"
    cdn.write_text("<!doctype html><script src='https://cdn.invalid/d3/5.7.0/d3.min.js'></script>"
                   "<div id='vis'></div><script>d3.select('#vis').append('p').text('drawn')</script>")
    ok = render(local, tmp_path / "local.png", budget_s=30)
    broken = render(cdn, tmp_path / "cdn.png", budget_s=30)
    assert ok["renders"] is True and ok["render_error"] is None and ok["render_s"] < 30
    assert (tmp_path / "local.png").read_bytes().startswith(b"\x89PNG")
    assert broken["renders"] is False
    assert "request failed: https://cdn.invalid/d3/5.7.0/d3.min.js" in broken["render_error"]
    assert "d3 is not defined" in broken["render_error"]


@pytest.mark.browser
def test_a_page_that_keeps_chromium_busy_is_stopped_at_the_budget(tmp_path):
    from attnlens.benchmarks.tools.render import render

    busy = tmp_path / "busy.html"
    busy.write_text("<!doctype html><p>loading</p><script>while (true) {}</script>")
    result = render(busy, tmp_path / "busy.png", budget_s=3)
    assert result["renders"] is False and result["render_s"] is None
