"""The batch annotator at two run sizes: time per case, per stage, and the projection for 500 cases.

One agent engine (vLLM by default) starts once and is reported on its own; then `attnlens annotate`
runs on a stratified sample of each size (fresh run directories) and the table gives, per size,
the wall time per case and each stage's mean per case (`agent` is each case's share of its batch's
agent run). If the time per case does not grow with the size of the run, the larger size's time
per case projects the whole 500-case dataset.

    attnlens bench annotate [--sizes 20,60] [--batch-size 16] [--backend vllm] [--agent-model M] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from attnlens import runtime
from attnlens.agent.backends import DEFAULT_AGENT_MODEL
from attnlens.benchmarks.targets import Target, render
from attnlens.pipeline.distributed import DEFAULT_BATCH_SIZE

STAGES = ("generate", "extract", "cluster", "evaluate", "agent", "save")
FULL = 500
GOAL_MINUTES = 60.0  # all 500 cases, the LLM writer on


def run(
    sizes: tuple[int, ...] = (20, 60),
    batch_size: int = DEFAULT_BATCH_SIZE,
    backend: str = "vllm",
    agent_model: str = DEFAULT_AGENT_MODEL,
    model: str = "smollm2-135m",
    max_new_tokens: int = 32,
    keep: Path | None = None,
    progress=None,
) -> dict:
    import pyarrow.parquet as pq

    from attnlens.agent.backends import get_backend
    from attnlens.evaluation.cases import DEFAULT_PATH
    from attnlens.pipeline.annotate import annotate

    started = time.perf_counter()
    agent_backend = get_backend(backend, model=agent_model)
    startup = time.perf_counter() - started
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="attnlens-bench-annotate-"))
    try:
        for size in sizes:
            out = scratch / f"run-{size}"
            t0 = time.perf_counter()
            [summary] = annotate(
                DEFAULT_PATH, out, [model], sample=size, batch_size=batch_size, max_new_tokens=max_new_tokens,
                backend=agent_backend, progress=progress,
            )
            wall = time.perf_counter() - t0
            table = pq.read_table(out / "annotations.parquet").to_pylist()
            done = [r for r in table if r["error"] is None]
            rows.append(
                {
                    "cases": summary.done,
                    "errors": summary.errors,
                    "seconds": wall,
                    "seconds_per_case": wall / summary.done,
                    **{f"{s}_s": sum(r[f"timings_{s}"] for r in done) / max(1, len(done)) for s in STAGES},
                    "llm_calls_per_case": sum(r["llm_calls"] for r in done) / max(1, len(done)),
                    "correct": sum(bool(r["correct"]) for r in done),
                }
            )
            if keep is not None and size == max(sizes):
                shutil.copytree(out, keep, dirs_exist_ok=False)
    finally:
        agent_backend.close()
        shutil.rmtree(scratch, ignore_errors=True)
    small, large = min(rows, key=lambda r: r["cases"]), max(rows, key=lambda r: r["cases"])
    growth = large["seconds_per_case"] / small["seconds_per_case"]
    return {
        "backend": agent_backend.name,
        "agent_model": agent_model,
        "model": model,
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "startup_s": startup,
        "rows": rows,
        "growth": growth,
        "projected_500_s": startup + FULL * large["seconds_per_case"],
        "targets": [
            Target(f"annotate_{FULL}_min_projected", (startup + FULL * large["seconds_per_case"]) / 60, GOAL_MINUTES,
                   "at_most", "min").to_dict(),
            Target("errors", sum(r["errors"] for r in rows), 0, "at_most").to_dict(),
        ],
    }


def table(result: dict) -> str:
    head = "| cases | errors | wall | per case | " + " | ".join(STAGES) + " | LLM calls/case | correct |"
    lines = [head, "|" + "---|" * (len(STAGES) + 6)]
    for r in result["rows"]:
        lines.append(
            f"| {r['cases']} | {r['errors']} | {r['seconds']:.0f} s | **{r['seconds_per_case']:.2f} s** | "
            + " | ".join(f"{r[f'{s}_s']:.2f}" for s in STAGES)
            + f" | {r['llm_calls_per_case']:.1f} | {r['correct']} |"
        )
    lines.append(
        f"\nsubject {result['model']}, writer {result['agent_model']} on {result['backend']} (start-up {result['startup_s']:.0f} s, once), "
        f"batch size {result['batch_size']}, {result['max_new_tokens']} new tokens. Time per case, larger run / "
        f"smaller run: {result['growth']:.2f} ({'grows' if result['growth'] > 1.15 else 'does not grow'}). "
        f"The projection for {FULL} cases is the start-up plus {FULL} times the larger run's time per case.\n"
    )
    lines.append(render(result["targets"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnlens bench annotate", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,60", help="comma-separated run sizes (stratified samples)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--backend", default="vllm", help="vllm | vllm-server | transformers")
    parser.add_argument("--model", default="smollm2-135m", help="the subject model")
    parser.add_argument("--agent-model", default=DEFAULT_AGENT_MODEL, help="the model that writes the rationales")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--keep", type=Path, help="copy the largest run's directory here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        sizes = tuple(sorted({int(s) for s in args.sizes.split(",")}))
    except ValueError:
        parser.error("--sizes takes comma-separated integers")
    if len(sizes) < 2 or sizes[0] < 1:
        parser.error("--sizes needs two or more positive sizes")
    if args.keep is not None and args.keep.exists():
        parser.error(f"--keep {args.keep} already exists")
    def progress(model: str, finished: int, total: int, stage: str) -> None:
        if stage == "batch written":
            print(f"... {model} {finished}/{total} cases", file=sys.stderr, flush=True)

    with runtime.stdout_to_stderr():  # vLLM logs to stdout; the table or JSON alone goes there
        result = run(sizes, args.batch_size, args.backend, args.agent_model, args.model, args.max_new_tokens, args.keep, progress)
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
