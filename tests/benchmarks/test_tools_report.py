"""docs/tool-comparison.md shows exactly what docs/data/tool-benchmark.json holds."""

import json

from attnlens.benchmarks.tools.harness import REPO
from attnlens.benchmarks.tools.report import DATA, DOC, END, START, tables


def test_the_report_tables_are_generated_from_the_exported_data():
    doc = json.loads(DATA.read_text())
    assert START + "\n" + tables(doc) + "\n" + END in DOC.read_text()  # else: attnlens bench tools --report


def test_the_data_covers_the_grid_and_every_linked_screenshot_exists():
    doc = json.loads(DATA.read_text())
    cells = {(r["tool"], r["model"], r["tokens"]) for r in doc["rows"]}
    assert len(cells) == len(doc["rows"])  # one row per cell
    assert {r["status"] for r in doc["rows"]} <= {
        "ok", "failed", "install failed", "exceeds context", "time budget exceeded", "memory budget exceeded",
    }
    for row in doc["rows"]:
        if row.get("screenshot"):
            assert (REPO / row["screenshot"]).read_bytes().startswith(b"\x89PNG")


def test_the_grid_is_complete_for_every_tool_and_new_rows_carry_their_versions():
    doc = json.loads(DATA.read_text())
    cells = {(r["tool"], r["model"], r["tokens"]) for r in doc["rows"]}
    assert cells == {(t, m, n) for t in doc["tools"] for m in doc["models"] for n in doc["lengths"]}
    for row in doc["rows"] + doc.get("side_by_side", []):
        if "versions" in row and row["status"] != "install failed":
            assert row["versions"]["torch"] == "2.13.0+cpu"


def _row(tool, model, tokens, **kw):
    return {"tool": tool, "model": model, "tokens": tokens, "status": "ok", **kw}


def test_export_adds_rows_and_keeps_the_install_records_the_rows_were_measured_with(tmp_path, monkeypatch):
    from attnlens.benchmarks.tools import envs
    from attnlens.benchmarks.tools.report import export

    monkeypatch.setenv("ATTNLENS_CACHE", str(tmp_path / "cache"))  # no tool venv here: none may be installed
    bertviz = {"url": "u", "requirements": ["bertviz", *envs.COMMON], "install_error": None, "install_seconds": 49.7,
               "integration_lines": 1, "pip_freeze": {"bertviz": "1.4.1", "transformers": "5.23.0"}}
    path = tmp_path / "data.json"
    path.write_text(json.dumps({
        "tools": {"bertviz": bertviz},
        "rows": [_row("bertviz", "smollm2-135m", 64, wall_s=6.0), _row("attnlens", "smollm2-135m", 64, wall_s=5.6)],
        "side_by_side": [_row("attnlens", "smollm2-135m", 256, viz_s=1.0)],
    }))
    doc = export([_row("attnlens", "smollm2-135m", 64, wall_s=9.9), _row("attnlens", "minilm-l6", 64, wall_s=1.0)], path)
    assert [(r["tool"], r["model"], r.get("wall_s")) for r in doc["rows"]] == [
        ("attnlens", "smollm2-135m", 9.9), ("attnlens", "minilm-l6", 1.0), ("bertviz", "smollm2-135m", 6.0),
    ]  # the new cell replaced the old one, the bertviz row was kept, grid order
    assert doc["tools"]["bertviz"]["pip_freeze"] == bertviz["pip_freeze"]  # the record it was measured with
    assert not envs.env_dir("bertviz").exists()  # and nothing was installed to export it
    assert doc["tools"]["attnlens"]["pip_freeze"]["attnlens"]  # a tool without a record gets one
    assert doc["side_by_side"] == [_row("attnlens", "smollm2-135m", 256, viz_s=1.0)]
    assert json.loads(path.read_text()) == doc
    later = _row("lit", "smollm2-135m", 256, viz_s=3.3, sitting="2026-12-07T22:32:09+00:00")
    again = export([], path, side_by_side=[later])  # a new sitting joins the earlier ones
    assert again["side_by_side"] == [_row("attnlens", "smollm2-135m", 256, viz_s=1.0), later]
    assert len(again["rows"]) == 3


def test_the_side_by_side_table_gives_ratios_to_attnlens_and_bertviz_of_the_same_sitting():
    from attnlens.benchmarks.tools.report import side_by_side_table

    rows = [
        _row("attnlens", "smollm2-135m", 256, viz_s=2.0, wall_s=6.0, peak_rss_mb=1000, load_avg_1m=3.1, finished_at="2026-12-07T22:00:00+00:00"),
        _row("bertviz", "smollm2-135m", 256, viz_s=10.0, wall_s=15.0, peak_rss_mb=3500, load_avg_1m=4.0),
        _row("ecco", "smollm2-135m", 256, viz_s=30.0, wall_s=36.0, peak_rss_mb=2000, load_avg_1m=3.5),
    ]
    text = "\n".join(side_by_side_table(rows))
    assert "smollm2-135m at 256 tokens; one sitting, 2026-12-07" in text
    assert "load average of the machine (2 cores) when each cell started: 3.1 to 4.0; torch threads: its default" in text
    assert "| ecco | ok | 30.0 | 36.0 | 2000 | - | - | 15.0x | 3.0x | 6.0x | 2.0x |" in text
    assert "| attnlens | ok | 2.0 | 6.0 | 1000 | - | - | 1.0x | 0.2x | 1.0x | 1.0x |" in text


def test_each_sitting_gets_its_own_table_and_a_fallback_install_is_shown_with_the_readme_error():
    from attnlens.benchmarks.tools.report import tables

    sitting = [
        _row("attnlens", "tiny-gpt2", 64, viz_s=1.0, wall_s=5.0, peak_rss_mb=500, omp_num_threads="1", sitting="2026-12-07T22:40:00+00:00"),
        _row("ecco", "tiny-gpt2", 64, viz_s=3.0, wall_s=8.0, peak_rss_mb=700, omp_num_threads="1", sitting="2026-12-07T22:40:00+00:00"),
    ]
    ecco = {"url": "u", "requirements": ["ecco"], "fallback": [["--no-deps", "ecco"], ["captum"]],
            "readme_install_error": "Collecting scikit-learn~=0.23\nModuleNotFoundError: No module named 'pkg_resources'",
            "install_error": None, "install_seconds": 270.0, "integration_lines": 30, "pip_freeze": {"ecco": "0.1.2"}}
    doc = {"models": ["tiny-gpt2"], "tools": {"ecco": ecco}, "rows": [_row("ecco", "tiny-gpt2", 64)], "cells_seconds": 1,
           "side_by_side": [*sitting, *(dict(r, sitting="2026-12-08T08:00:00+00:00", omp_num_threads=None) for r in sitting)]}
    text = tables(doc)
    assert "| ecco | 0.1.2 | - | - | 270.0 | 30 | README install failed; ok with the fallback (see below) |" in text
    assert "`pip install ecco` failed; the fallback `pip install --no-deps ecco`; then `pip install captum` installed:" in text
    assert "No module named 'pkg_resources'" in text
    assert text.count("### Side by side") == 2
    assert "one sitting, 2026-12-07 22:40 UTC)" in text and "OMP_NUM_THREADS=1 for every cell" in text
    assert "one sitting, 2026-12-08 08:00 UTC)" in text and "| ecco | ok | 3.0 | 8.0 | 700 | - | - | 3.0x | - | 1.6x | 1.4x |" in text
