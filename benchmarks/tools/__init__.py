"""attnlens vs attention-visualisation tools: BertViz, Inspectus, CircuitsVis, inseq, Ecco, LIT.

Every tool runs in its own venv (installed on first use, the way its README says) on the same
inputs: four models at 64, 256, 1024 and 4096 tokens. Per cell: time to produce the view, peak
memory, output size, whether the HTML renders in headless Chromium (and how long that takes),
under a time and a memory budget. Finished cells are kept in a JSON-lines file and skipped on a
second run; a long grid can be split by --tools/--models/--lengths.

    attnlens bench tools [--tools ...] [--models ...] [--lengths ...] [--json]
    attnlens bench tools --side-by-side --tools attnlens bertviz ecco lit --models smollm2-135m --lengths 256
    attnlens bench tools --export docs/data/tool-benchmark.json   # finished rows added, install records
    attnlens bench tools --report                                 # tables of docs/tool-comparison.md

--side-by-side runs the given cells again, all in one sitting, into their own file
(side-by-side.jsonl; each sitting is added, the grid's rows are not touched): timings taken on
different days or under different loads are compared as ratios to the attnlens and BertViz cells
of the same sitting.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from attnlens.benchmarks.tools.envs import TOOLS
from attnlens.benchmarks.tools.harness import Budget, load_rows, run_grid, tools_dir
from attnlens.benchmarks.tools.inputs import LENGTHS, MODELS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnlens bench tools", description=__doc__.splitlines()[0])
    parser.add_argument("--tools", nargs="+", choices=list(TOOLS), default=list(TOOLS))
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--lengths", nargs="+", type=int, default=list(LENGTHS))
    parser.add_argument("--time-budget", type=float, default=Budget.seconds, help="seconds per cell before it is stopped")
    parser.add_argument("--memory-budget", type=float, default=Budget.memory_mb, help="MiB of RSS per cell before it is stopped")
    parser.add_argument("--render-budget", type=float, default=Budget.render_seconds, help="seconds for Chromium to load a page")
    parser.add_argument("--results", type=Path, default=None, help="JSON-lines file of finished cells (default: in the attnlens cache)")
    parser.add_argument("--force", action="store_true", help="redo finished cells")
    parser.add_argument("--side-by-side", action="store_true", help="run these cells again in one sitting, into side-by-side.jsonl")
    parser.add_argument("--no-render", action="store_true", help="skip the Chromium check")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--export", type=Path, help="write every finished row and the install records to this JSON file")
    parser.add_argument("--report", action="store_true", help="rewrite the tables of docs/tool-comparison.md from docs/data/tool-benchmark.json")
    args = parser.parse_args(argv)
    if any(n < 2 for n in args.lengths):
        parser.error("--lengths must be at least 2 tokens")

    from attnlens.benchmarks.tools import report

    if args.report:
        report.update_doc()
        print(f"updated {report.DOC} from {report.DATA}")
        return 0
    results = args.results or tools_dir() / "results.jsonl"
    side_by_side = results.with_name("side-by-side.jsonl")
    if args.export:
        side = [json.loads(line) for line in side_by_side.read_text().splitlines() if line.strip()] if side_by_side.exists() else None
        doc = report.export(list(load_rows(results).values()), args.export, side)
        print(f"wrote {len(doc['rows'])} rows to {args.export}" + (f" and {len(side)} side-by-side rows" if side else ""))
        return 0
    sitting = datetime.now(timezone.utc).isoformat(timespec="seconds") if args.side_by_side else None
    budget = Budget(args.time_budget, args.memory_budget, args.render_budget)
    rows = run_grid(
        args.tools, args.models, args.lengths, budget, side_by_side if sitting else results,
        force=args.force or bool(sitting), render=not args.no_render,
        log=lambda msg: print(msg, file=sys.stderr, flush=True), screens=not sitting, sitting=sitting,
    )
    print(json.dumps(rows) if args.json else report.rows_table(rows))
    return 0
