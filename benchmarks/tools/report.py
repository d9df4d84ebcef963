"""The measured tables: from the rows to Markdown, and into docs/tool-comparison.md.

`attnlens bench tools --export docs/data/tool-benchmark.json` writes every row plus each tool's
install record; `attnlens bench tools --report` rewrites the tables between the markers of
docs/tool-comparison.md from that file, so the document is reproducible by one command.
"""

from __future__ import annotations

import json
from pathlib import Path

from attnlens.benchmarks.tools.envs import TOOLS, ensure_env, install_summary
from attnlens.benchmarks.tools.harness import REPO, integration_lines
from attnlens.benchmarks.tools.inputs import LENGTHS, MODELS, TINY_GPT2

DATA = REPO / "docs" / "data" / "tool-benchmark.json"
DOC = REPO / "docs" / "tool-comparison.md"
START, END = "<!-- measured tables: start (attnlens bench tools --report) -->", "<!-- measured tables: end -->"
NOT_RENDERED = "does not render (offline, within the render budget)"
# (column, model, tokens): the cells that show whether a tool copes with each kind of model
COMPATIBILITY = (
    ("GQA (SmolLM2, 256)", "smollm2-135m", 256),
    ("GQA + 1 KV head (Gemma 3, 256)", "gemma3-270m", 256),
    ("sliding window (Gemma 3, 1024)", "gemma3-270m", 1024),
    ("encoder (MiniLM, 256)", "minilm-l6", 256),
    ("long (SmolLM2, 1024)", "smollm2-135m", 1024),
    ("long (SmolLM2, 4096)", "smollm2-135m", 4096),
)


def tool_records(tools) -> dict[str, dict]:
    """Install outcome, resolved versions and integration lines of each tool."""
    records = {}
    for name in tools:
        env = ensure_env(name)
        records[name] = {
            "url": TOOLS[name].url, "requirements": env.requirements, "install_error": env.error,
            "install_seconds": env.install_seconds, "integration_lines": integration_lines(name),
            "pip_freeze": env.versions,
        }
    return records


def export(rows: list[dict], path: Path) -> dict:
    doc = {
        "models": list(MODELS), "lengths": list(LENGTHS), "tiny_gpt2": TINY_GPT2,
        "tools": tool_records(dict.fromkeys(r["tool"] for r in rows)), "rows": rows,
        "cells_seconds": round(sum(r.get("wall_s", 0) + (r.get("render_s") or 0) for r in rows), 1),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def _mb(value) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}" if value >= 2**17 else f"{value / 2**20:.3f}"


def _mark(row: dict | None) -> str:
    if row is None:
        return "not run"
    return "yes" if row["status"] == "ok" else f"no: {row['status']}"


def _cell(value, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def rows_table(rows: list[dict]) -> str:
    lines = [
        "| tool | model | tokens | status | visualisation s | process s | peak RSS MB | output MB | renders offline | render s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        renders = "-" if r.get("renders") is None else "yes" if r["renders"] else "no"
        lines.append(
            f"| {r['tool']} | {r['model']} | {r['tokens']} | {r['status']} | {_cell(r.get('viz_s'))} | "
            f"{_cell(r.get('wall_s'))} | {_cell(r.get('peak_rss_mb'), '{:.0f}')} | {_mb(r.get('output_bytes'))} | "
            f"{renders} | {_cell(r.get('render_s'))} |"
        )
    return "\n".join(lines)


def _verbatim(text: str) -> list[str]:
    return ["  <details><summary>output</summary>", "", "  ```", *("  " + line for line in text.splitlines()), "  ```", "  </details>"]


def tables(doc: dict) -> str:
    """Every measured table of the report, as Markdown."""
    rows = doc["rows"]
    by_cell = {(r["tool"], r["model"], r["tokens"]): r for r in rows}
    tools = list(doc["tools"])
    out = ["### Installation and integration", "",
           "| tool | installed version | torch | transformers | install s | integration lines | install |",
           "|---|---|---|---|---|---|---|"]
    for name, rec in doc["tools"].items():
        freeze = {k.lower().replace("_", "-"): v for k, v in rec["pip_freeze"].items()}
        version = freeze.get(name, freeze.get("attnlens", "-"))
        outcome = "ok" if not rec["install_error"] else "failed: " + install_summary(rec["install_error"]).replace("|", "\\|")
        out.append(
            f"| {name} | {version} | {freeze.get('torch', '-')} | {freeze.get('transformers', '-')} | "
            f"{_cell(rec['install_seconds'])} | {rec['integration_lines']} | {outcome} |"
        )
    out += ["", "### Compatibility (from the runs)", "", "| tool | " + " | ".join(c for c, _, _ in COMPATIBILITY) + " |",
            "|---|" + "---|" * len(COMPATIBILITY)]
    for name in tools:
        out.append(f"| {name} | " + " | ".join(_mark(by_cell.get((name, m, n))) for _, m, n in COMPATIBILITY) + " |")
    for model in doc["models"]:
        out += ["", f"### {model}", "", rows_table([r for r in rows if r["model"] == model])]
    out += ["", "### Failures, verbatim (identical errors of one tool grouped)", ""]
    for name, rec in doc["tools"].items():
        if rec["install_error"]:
            out += [f"- **{name}**: `pip install` failed, so every cell is \"install failed\":", *_verbatim(rec["install_error"])]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["status"] not in ("ok", "exceeds context", "install failed"):
            groups.setdefault((r["tool"], r["status"], r["error"]), []).append(r)
        if r.get("renders") is False:
            groups.setdefault((r["tool"], NOT_RENDERED, r["render_error"]), []).append(r)
    for (name, status, error), cells in groups.items():
        where = ", ".join(f"{c['model']} {c['tokens']}" for c in cells)
        out.append(f"- **{name}** ({where}): {status}: `{error}`")
        if cells[0].get("detail") and status != NOT_RENDERED:
            out += _verbatim(cells[0]["detail"])
    shots = [r for r in rows if r.get("screenshot")]
    if shots:
        out += ["", f"### Screenshots ({shots[0]['model']}, {shots[0]['tokens']} tokens, headless Chromium, no internet)", ""]
        out += [f"- {r['tool']}: ![{r['tool']}]({Path(r['screenshot']).relative_to('docs')})" for r in shots]
    out += ["", f"Sum of cell times (processes + rendering): {doc['cells_seconds'] / 60:.1f} min."]
    return "\n".join(out)


def update_doc(data: Path = DATA, doc_path: Path = DOC) -> None:
    """Rewrite the tables between the markers of the report from the exported JSON."""
    text = doc_path.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{doc_path} has no measured-tables markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc_path.write_text(head + START + "\n" + tables(json.loads(data.read_text())) + "\n" + END + tail)
