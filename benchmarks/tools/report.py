"""The measured tables: from the rows to Markdown, and into docs/tool-comparison.md.

`attnlens bench tools --export docs/data/tool-benchmark.json` writes every row plus each tool's
install record; `attnlens bench tools --report` rewrites the tables between the markers of
docs/tool-comparison.md from that file, so the document is reproducible by one command.

Export adds to what the file already holds, it never drops a cell: a cell of the results file
replaces that cell's row, every other row of the file is kept, and so is a tool's install
record while its requirement set is unchanged (it describes the install its rows were measured
with; rows measured since carry their own `versions`). The side-by-side rows (`--side-by-side`:
a few cells re-run in one sitting, so that timings taken under different loads can be compared
as ratios) are exported beside the grid, every sitting kept.
"""

from __future__ import annotations

import json
from pathlib import Path

from attnlens.benchmarks.tools.envs import COMMON, TOOLS, ensure_env, install_summary
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


def _same_install(record: dict, name: str) -> bool:
    """Does an exported install record describe the tool's current requirement set?"""
    tool = TOOLS[name]
    if tool.main_venv:
        return True
    fallback = [list(step) for step in tool.fallback] or None
    return record.get("requirements") == [*tool.requirements, *COMMON] and record.get("fallback") == fallback


def tool_records(tools, previous: dict | None = None) -> dict[str, dict]:
    """Install outcome, resolved versions and integration lines of each tool; a previous record
    is kept while the tool's requirement set is unchanged (a missing venv is not reinstalled)."""
    records = {}
    for name in tools:
        old = (previous or {}).get(name)
        if old and _same_install(old, name):
            records[name] = old | {"integration_lines": integration_lines(name)}
            continue
        env = ensure_env(name)
        records[name] = {
            "url": TOOLS[name].url, "requirements": env.requirements, "fallback": env.fallback,
            "readme_install_error": env.readme_error, "install_error": env.error,
            "install_seconds": env.install_seconds, "integration_lines": integration_lines(name),
            "pip_freeze": env.versions,
        }
    return records


def _order(row: dict) -> tuple:
    tools, models = list(TOOLS), list(MODELS)
    return (tools.index(row["tool"]) if row["tool"] in tools else len(tools),
            models.index(row["model"]) if row["model"] in models else len(models), row["tokens"])


def export(rows: list[dict], path: Path, side_by_side: list[dict] | None = None) -> dict:
    """Write the rows (merged into what `path` holds), the install records and the side-by-side rows."""
    previous = json.loads(path.read_text()) if path.exists() else {}
    cells = {(r["tool"], r["model"], r["tokens"]): r for r in [*previous.get("rows", []), *rows]}
    rows = sorted(cells.values(), key=_order)
    doc = {
        "models": list(MODELS), "lengths": list(LENGTHS), "tiny_gpt2": TINY_GPT2,
        "tools": tool_records(dict.fromkeys(r["tool"] for r in rows), previous.get("tools")), "rows": rows,
        "cells_seconds": round(sum(r.get("wall_s", 0) + (r.get("render_s") or 0) for r in rows), 1),
    }
    side = {(r.get("sitting"), r["tool"], r["model"], r["tokens"]): r
            for r in [*previous.get("side_by_side", []), *(side_by_side or [])]}
    if side:
        doc["side_by_side"] = sorted(side.values(), key=lambda r: (r.get("sitting") or "", _order(r)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def _mb(value) -> str:
    """Bytes as MiB (2**20 bytes), the unit of every size and memory figure here."""
    return "-" if value is None else f"{value / 2**20:.1f}" if value >= 2**17 else f"{value / 2**20:.3f}"


def _mark(row: dict | None) -> str:
    if row is None:
        return "not run"
    return "yes" if row["status"] == "ok" else f"no: {row['status']}"


def _cell(value, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _measured(r: dict) -> list[str]:
    """A row's measured cells: visualisation s, process s, peak RSS MiB, output MiB, renders offline."""
    renders = "-" if r.get("renders") is None else "yes" if r["renders"] else "no"
    return [_cell(r.get("viz_s")), _cell(r.get("wall_s")), _cell(r.get("peak_rss_mb"), "{:.0f}"), _mb(r.get("output_bytes")), renders]


def rows_table(rows: list[dict]) -> str:
    lines = [
        "| tool | model | tokens | status | visualisation s | process s | peak RSS MiB | output MiB | renders offline | render s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["tool"], r["model"], str(r["tokens"]), r["status"], *_measured(r), _cell(r.get("render_s"))]
        lines.append("| " + " | ".join(cells) + " |")
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
        version = freeze.get(TOOLS[name].distribution if name in TOOLS else name, freeze.get("attnlens", "-"))
        outcome = "ok" if not rec["install_error"] else "failed: " + install_summary(rec["install_error"]).replace("|", "\\|")
        if rec.get("readme_install_error") and not rec["install_error"]:
            outcome = "README install failed; ok with the fallback (see below)"
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
        elif rec.get("readme_install_error"):
            steps = "; then ".join("`pip install " + " ".join(step) + "`" for step in rec["fallback"])
            out += [f"- **{name}**: `pip install {' '.join(rec['requirements'])}` failed; the fallback {steps} installed:",
                    *_verbatim(rec["readme_install_error"])]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["status"] not in ("ok", "exceeds context", "install failed"):
            groups.setdefault((r["tool"], r["status"], r["error"]), []).append(r)
        if r.get("renders") is False:  # the same errors in another order (requests in parallel) are one group
            errors = "; ".join(sorted(set(r["render_error"].split("; "))))
            groups.setdefault((r["tool"], NOT_RENDERED, errors), []).append(r)
    for (name, status, error), cells in groups.items():
        where = ", ".join(f"{c['model']} {c['tokens']}" for c in cells)
        out.append(f"- **{name}** ({where}): {status}: `{error}`")
        if cells[0].get("detail") and status != NOT_RENDERED:
            out += _verbatim(cells[0]["detail"])
    shots = [r for r in rows if r.get("screenshot")]
    if shots:
        out += ["", f"### Screenshots ({shots[0]['model']}, {shots[0]['tokens']} tokens, headless Chromium, no internet)", ""]
        out += [f"- {r['tool']}: ![{r['tool']}]({Path(r['screenshot']).relative_to('docs')})" for r in shots]
    sittings: dict[str, list[dict]] = {}
    for r in doc.get("side_by_side", []):
        sittings.setdefault(r.get("sitting", ""), []).append(r)
    for sitting in sorted(sittings):
        out += ["", *side_by_side_table(sittings[sitting])]
    out += ["", f"Sum of cell times (processes + rendering): {doc['cells_seconds'] / 60:.1f} min."]
    return "\n".join(out)


def _ratio(value, base) -> str:
    return "-" if value is None or not base else f"{value / base:.1f}x"


def side_by_side_table(rows: list[dict]) -> list[str]:
    """The cells of one sitting, and each tool's times and memory as ratios to attnlens and BertViz there."""
    base = {r["tool"]: r for r in rows if r["status"] == "ok"}
    attnlens, bertviz = base.get("attnlens", {}), base.get("bertviz", {})
    days = sorted({r["finished_at"][:10] for r in rows if r.get("finished_at")})
    loads = [r["load_avg_1m"] for r in rows if r.get("load_avg_1m") is not None]
    cells = sorted({f"{r['model']} at {r['tokens']} tokens" for r in rows})
    threads = {r.get("omp_num_threads") for r in rows}
    started = min((r["sitting"] for r in rows if r.get("sitting")), default=None)
    when = started.replace("T", " ")[:16] + " UTC" if started else ", ".join(days) or "date not recorded"
    out = [f"### Side by side ({', '.join(cells)}; one sitting, {when})", ""]
    facts = []
    if loads:
        facts.append(f"1-minute load average of the machine (2 cores) when each cell started: {min(loads):.1f} to {max(loads):.1f}")
    if threads == {None}:
        facts.append("torch threads: its default (one per core)")
    elif len(threads) == 1:
        facts.append(f"OMP_NUM_THREADS={threads.pop()} for every cell")
    if facts:
        out += ["; ".join(facts) + ".", ""]
    out += ["| tool | status | visualisation s | process s | peak RSS MiB | output MiB | renders offline | "
            "visualisation s / attnlens | visualisation s / BertViz | process s / attnlens | peak RSS / attnlens |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratios = [_ratio(r.get("viz_s"), attnlens.get("viz_s")), _ratio(r.get("viz_s"), bertviz.get("viz_s")),
                  _ratio(r.get("wall_s"), attnlens.get("wall_s")), _ratio(r.get("peak_rss_mb"), attnlens.get("peak_rss_mb"))]
        out.append("| " + " | ".join([r["tool"], r["status"], *_measured(r), *ratios]) + " |")
    return out


def update_doc(data: Path = DATA, doc_path: Path = DOC) -> None:
    """Rewrite the tables between the markers of the report from the exported JSON."""
    text = doc_path.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{doc_path} has no measured-tables markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc_path.write_text(head + START + "\n" + tables(json.loads(data.read_text())) + "\n" + END + tail)
