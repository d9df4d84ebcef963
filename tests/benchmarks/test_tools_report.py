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
