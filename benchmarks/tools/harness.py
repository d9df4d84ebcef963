"""Run every (tool, model, length) cell in the tool's own venv, under a time and a memory budget.

Each cell is one subprocess (the tool's adapter script, run by path in the tool's venv) in its
own process group. The harness polls its memory and stops it at the memory or time budget. The
peak RSS is the child's own high-water mark (VmHWM, polled every 0.1 s): `ru_maxrss` from `wait4`
is not usable here, because Linux carries the forking parent's high-water mark across `exec`,
so every child would report at least the harness's own size. Rows are appended to a
JSON-lines file as they finish, so an interrupted grid keeps what it measured and a second run
skips finished cells (`--force` redoes them). Nothing a tool does can crash the harness: every
failure becomes a row with the tool's own words.

A tool whose view is a server (LIT) has an adapter that starts the server on 127.0.0.1, prints
its result line with the view's `url` and keeps serving: the harness opens that URL in Chromium
while the server runs (the same render check as for a file, plus the clicks a user makes to open
the view, `click` in the result line), then stops the process group. Its "process s" is the time
until the result line, its peak RSS includes serving the page.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import psutil

from attnlens.benchmarks.tools.envs import TOOLS, Env, ensure_env, install_summary
from attnlens.benchmarks.tools.inputs import ContextError, prepare
from attnlens.benchmarks.tools.render import render as render_page
from attnlens.extraction.models import cache_root

REPO = Path(__file__).resolve().parents[2]
SCREENS = REPO / "docs" / "tool-screens"
KEPT_SCREEN = ("smollm2-135m", 256)  # the one screenshot per tool kept in git
POLL_S = 0.1
MAX_RENDER_BYTES = 1 << 30  # Chromium is not asked to open a page over 1 GiB


@dataclass(frozen=True)
class Budget:
    seconds: float = 120.0
    memory_mb: float = 6144.0  # MiB (6 GiB); like the rows' peak_rss_mb, the name says mb for MiB
    render_seconds: float = 60.0


def tools_dir() -> Path:
    return cache_root() / "tools"


def integration_lines(tool: str) -> int:
    """Non-blank, non-comment lines of the tool's adapter: the code a user needs (docstring excluded)."""
    text = TOOLS[tool].adapter.read_text()
    if text.startswith('"""'):
        text = text[text.index('"""', 3) + 3:]
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))


def _high_water_mb(pid: int) -> float:
    """VmHWM of a running process, MiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _stderr_block(text: str) -> tuple[str, str]:
    """(last line, the verbatim traceback or tail) of a child's stderr, progress bars dropped."""
    lines = [line.split("\r")[-1] for line in text.splitlines()]
    lines = [line for line in lines if line.strip() and "it/s]" not in line]
    if not lines:
        return "no output", ""
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
    block = lines[starts[-1]:] if starts else lines[-30:]
    return lines[-1], "\n".join(block[-60:])


def _result_line(stdout: Path) -> dict | None:
    """The adapter's JSON result line, once it has printed one."""
    try:
        lines = stdout.read_text(errors="replace").strip().splitlines()
        reported = json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None
    return reported if isinstance(reported, dict) else None


def run_adapter(
    python: str, adapter: Path, spec: Path, out_dir: Path, budget: Budget, serve: Callable[[dict], dict] | None = None,
) -> dict:
    """One cell in its own process group, stopped at the time or memory budget. An adapter that
    serves its view prints a result line with a `url` and keeps running: `serve(result line)` is
    called while it runs (its dict joins the row), then the process group is stopped."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    with open(out_dir / "stdout.txt", "wb") as stdout, open(out_dir / "stderr.txt", "wb") as stderr:
        proc = subprocess.Popen(
            [python, str(adapter), str(spec), str(out_dir)], stdout=stdout, stderr=stderr,
            start_new_session=True, env=env, cwd=REPO,
        )
        stopped, peak_mb, served, ready_s = None, 0.0, None, None
        while True:
            peak_mb = max(peak_mb, _high_water_mb(proc.pid))
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid:
                break
            if stopped is None and served is None and serve is not None:
                reported = _result_line(out_dir / "stdout.txt")
                if reported and "url" in reported:
                    ready_s = time.perf_counter() - started
                    served = serve(reported)  # the view is opened while the adapter's server runs
                    peak_mb = max(peak_mb, _high_water_mb(proc.pid))
                    os.killpg(proc.pid, signal.SIGKILL)
                    continue
            if stopped is None and served is None:
                elapsed = time.perf_counter() - started
                try:
                    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
                    rss_mb = sum(p.memory_info().rss for p in tree) / 2**20
                except psutil.NoSuchProcess:
                    rss_mb = 0.0
                if elapsed > budget.seconds:
                    stopped = f"time budget exceeded (over {budget.seconds:g} s)"
                elif rss_mb > budget.memory_mb:
                    stopped = f"memory budget exceeded ({rss_mb:.0f} MiB > {budget.memory_mb:g} MiB)"
                if stopped:
                    os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(POLL_S)
        proc.returncode = os.waitstatus_to_exitcode(status)
    row = {"wall_s": round(ready_s or time.perf_counter() - started, 2), "peak_rss_mb": round(peak_mb)}
    if stopped:
        return {**row, "status": stopped.split(" (")[0], "error": stopped}
    stdout_text = (out_dir / "stdout.txt").read_text(errors="replace").strip()
    last, block = _stderr_block((out_dir / "stderr.txt").read_text(errors="replace"))
    if served is not None:
        reported = _result_line(out_dir / "stdout.txt")
        output = Path(reported["output"])
        return {
            **row, "status": "ok", "viz_s": round(reported["seconds"], 2), "output": str(output),
            "output_bytes": output.stat().st_size if output.exists() else 0, "url": reported["url"], **served,
        }
    if proc.returncode != 0:
        status_text = "memory budget exceeded" if proc.returncode == -signal.SIGKILL else "failed"
        return {**row, "status": status_text, "error": last, "detail": block}
    try:
        reported = json.loads(stdout_text.splitlines()[-1])
        output = Path(reported["output"])
        return {**row, "status": "ok", "viz_s": round(reported["seconds"], 2), "output": str(output), "output_bytes": output.stat().st_size}
    except (ValueError, KeyError, IndexError, OSError) as exc:
        return {**row, "status": "failed", "error": f"no result line from the adapter ({exc})", "detail": stdout_text[-2000:]}


def run_cell(
    tool: str, env: Env, model: str, n: int, budget: Budget, work: Path, render: bool = True, screens: bool = True,
) -> dict:
    """One (tool, model, length) cell: inputs and outputs under `work`, one row back whatever happens;
    the screenshot of the KEPT_SCREEN cell is copied into docs/tool-screens unless `screens` is off."""
    row: dict = {"tool": tool, "model": model, "tokens": n, "budget": budget.__dict__}
    if env.error:
        return {**row, "status": "install failed", "error": install_summary(env.error)}
    try:
        spec = prepare(model, n, work / "inputs")
    except ContextError as exc:
        return {**row, "status": "exceeds context", "error": str(exc)}
    out_dir = work / "runs" / tool / f"{model}-{n}"
    shutil.rmtree(out_dir, ignore_errors=True)
    shot = out_dir / "screen.png"

    def serve(reported: dict) -> dict:
        """A served view (LIT) is opened while its server runs; with render off it is only stopped."""
        return render_page(reported["url"], shot, budget.render_seconds, reported.get("click", ())) if render else {}

    row |= run_adapter(env.python, TOOLS[tool].adapter, spec, out_dir, budget, serve=serve)
    if row["status"] != "ok" or not render:
        return row
    if "url" not in row:
        if row["output_bytes"] > MAX_RENDER_BYTES:
            return {**row, "renders": False, "render_error": f"not opened: {row['output_bytes'] / 2**20:.0f} MiB of HTML"}
        row |= render_page(Path(row["output"]), shot, budget.render_seconds)
    if screens and (model, n) == KEPT_SCREEN and shot.exists():
        SCREENS.mkdir(parents=True, exist_ok=True)
        kept = SCREENS / f"{tool}-{model}-{n}.png"
        shutil.copyfile(shot, kept)
        row["screenshot"] = str(kept.relative_to(REPO))
    return row


def load_rows(path: Path) -> dict[tuple, dict]:
    """Finished rows by (tool, model, tokens); the last row of a cell wins."""
    rows = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows[(row["tool"], row["model"], row["tokens"])] = row
    return rows


def run_grid(
    tools, models, lengths, budget: Budget, results: Path, force: bool = False, render: bool = True, log=print,
    screens: bool = True, sitting: str | None = None,
) -> list[dict]:
    """Run the missing cells (all with force), appending each row to `results` as it finishes;
    inputs and tool outputs go next to `results`."""
    done = load_rows(results)
    todo = [(t, m, n) for t in tools for m in models for n in lengths if force or (t, m, n) not in done]
    results.parent.mkdir(parents=True, exist_ok=True)
    envs: dict[str, Env] = {}
    for i, (tool, model, n) in enumerate(todo, 1):
        if tool not in envs:
            envs[tool] = ensure_env(tool, log=log)
        log(f"[{i}/{len(todo)}] {tool} on {model} at {n} tokens")
        load = os.getloadavg()[0]  # other work on the machine slows every timing: kept with the row
        row = run_cell(tool, envs[tool], model, n, budget, results.parent, render, screens)
        freeze = {k.lower(): v for k, v in envs[tool].versions.items()}
        row["versions"] = {k: freeze.get(k) for k in (TOOLS[tool].distribution, "torch", "transformers")}
        row["load_avg_1m"] = round(load, 2)
        row["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")  # None: torch's default (one per core)
        if sitting:
            row["sitting"] = sitting
        row["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        shown = row.get("error") or f"{row['status']} in {row['wall_s']} s"
        log("    " + (shown if shown.startswith(row["status"]) else f"{row['status']}: {shown}"))
        with results.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        done[(tool, model, n)] = row
    return [done[(t, m, n)] for t in tools for m in models for n in lengths if (t, m, n) in done]

