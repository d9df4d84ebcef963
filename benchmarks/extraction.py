"""Attention extraction: the SDPA floor vs eager output_attentions vs attnlens capture.

Each (method, tokens) pair runs in its own process so peak RSS is that method's alone, one
process at a time (two processes on two cores ruin every timing). A size a method cannot do
is a row with its error (out of memory, refused), never a crash.

    attnlens bench extraction [--model NAME] [--tokens 512 1024 ...] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from attnlens.benchmarks.targets import Target, render

METHODS = ("floor", "eager", "attnlens")
DEFAULT_TOKENS = (512, 1024, 2048, 4096, 8192)
MODEL = "smollm2-135m"
ANSWER_ROWS = 32  # capture as if the last 32 tokens were the answer
TEXT = (
    "The history of the printing press begins in the fifteenth century, when movable type changed how "
    "books were made across Europe. Scholars, merchants and priests argued about what the new machines "
    "would mean for learning, for trade and for faith; some of them were right, and many were not. "
)


# Capture time / the SDPA floor's, per size: SmolLM2's goals, and every other model's.
TIME_GOALS = {"smollm2-135m": {2048: 1.15, 8192: 1.3}}
OTHER_TIME_GOALS = {2048: 1.3, 8192: 1.3}
MEMORY_GOAL, MEMORY_UP_TO = 1.3, 8192  # peak RSS / the floor's, at every size up to 8192


def targets(model: str, rows: list[dict]) -> list[dict]:
    """Capture vs the floor at the sizes with a goal; a size not run (or failed) is not measured."""
    by = {(r["method"], r["tokens"]): r for r in rows}

    def ratio(n: int, key: str) -> float | None:
        floor, ours = by.get(("floor", n)), by.get(("attnlens", n))
        if not floor or not ours or floor["error"] or ours["error"]:
            return None
        return ours[key] / floor[key]

    out = [
        Target(f"time_vs_floor_{n}", ratio(n, "seconds"), goal, "at_most", "x")
        for n, goal in TIME_GOALS.get(model, OTHER_TIME_GOALS).items()
    ]
    sizes = sorted({n for _, n in by if n <= MEMORY_UP_TO})
    out += [Target(f"memory_vs_floor_{n}", ratio(n, "peak_rss_mb"), MEMORY_GOAL, "at_most", "x") for n in sizes]
    return [t.to_dict() for t in out]


def token_ids(tokenizer, n: int) -> list[int]:
    ids = tokenizer(TEXT)["input_ids"]
    return (ids * (n // len(ids) + 1))[:n]


def _available_bytes() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def worker(method: str, n: int, model: str = MODEL) -> dict:
    """Runs in a child process: one timed run of `method` at n tokens (after a warm-up where cheap)."""
    import torch

    from attnlens.extraction import CaptureConfig, capture_ids, load_model

    lm = load_model(model)
    arch = lm.architecture
    if method == "eager":
        # every layer's weights are kept, plus one layer's score/softmax temporaries
        needed = (arch.layers + 2) * arch.heads * n * n * 4
        if needed > _available_bytes():
            return {"error": f"refused: eager weights need ~{needed / 2**30:.0f} GiB, {_available_bytes() / 2**30:.0f} GiB available"}
    ids = torch.tensor([token_ids(lm.tokenizer, n)])
    rows = list(range(n - ANSWER_ROWS - 1, n - 1))

    def run_once():
        if method == "attnlens":
            capture_ids(lm.model, arch, [ids[0].tolist()], [rows], CaptureConfig())
            return
        lm.model.set_attn_implementation("eager" if method == "eager" else "sdpa")
        with torch.inference_mode():
            lm.model(ids, logits_to_keep=1, use_cache=False, output_attentions=method == "eager")

    if n <= 2048:
        run_once()  # warm-up: first-call allocations and the kernel's load
    start = time.perf_counter()
    run_once()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def max_abs_error(n: int = 512, model: str = MODEL) -> float:
    """Largest difference between attnlens capture and eager weights over every captured array."""
    import torch

    from attnlens.extraction import CaptureConfig, capture_ids, load_model

    lm = load_model(model)
    ids = token_ids(lm.tokenizer, n)
    [(arrays, _)], _ = capture_ids(lm.model, lm.architecture, [ids], [list(range(n - 33, n - 1))], CaptureConfig())
    lm.model.set_attn_implementation("eager")
    with torch.inference_mode():
        attn = torch.stack([a[0] for a in lm.model(torch.tensor([ids]), output_attentions=True).attentions])
    errors = [
        (arrays["rows"] - attn[:, :, arrays["row_positions"]]).abs().max(),
        (arrays["mean"] - attn.mean((0, 1))).abs().max(),
        (arrays["max"] - attn.amax((0, 1))).abs().max(),
        (arrays["head_entropy"] - (-torch.special.xlogy(attn, attn).sum(-1).mean(-1))).abs().max(),
        (arrays["topk_values"] - attn.topk(8, -1).values).abs().max(),
    ]
    return float(max(errors))


def measure(method: str, n: int, timeout: float, model: str = MODEL) -> dict:
    cmd = [sys.executable, "-m", "attnlens.benchmarks.extraction", "--model", model, "--worker", method, str(n)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    except subprocess.TimeoutExpired:
        return {"error": f"stopped: over the {timeout:.0f} s budget"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": "killed: out of memory" if proc.returncode in (-9, 137) else f"failed: {tail}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(tokens=DEFAULT_TOKENS, repeats: int = 3, timeout: float = 900, progress=None, model: str = MODEL) -> dict:
    """Rounds interleave the methods, so a load spike on this shared host hits all three alike."""
    rows = []
    for n in tokens:
        runs: dict[str, list[dict]] = {m: [] for m in METHODS}
        for round_ in range(repeats):
            for method in METHODS:
                if runs[method] and runs[method][-1].get("error"):
                    continue  # an error (out of memory, refused) does not get better on a second try
                if progress:
                    progress(f"{method} at {n} tokens, round {round_ + 1}/{repeats}")
                runs[method].append(measure(method, n, timeout, model))
        for method, results in runs.items():
            errors = [r["error"] for r in results if r.get("error")]
            rows.append(
                {
                    "method": method, "tokens": n, "error": errors[0] if errors else None,
                    "seconds": None if errors else statistics.median(r["seconds"] for r in results),
                    "peak_rss_mb": None if errors else statistics.median(r["peak_rss_mb"] for r in results),
                }
            )
    return {
        "model": model, "repeats": repeats, "rows": rows, "max_abs_error": max_abs_error(model=model),
        "targets": targets(model, rows),
    }


def table(result: dict) -> str:
    """Markdown table with ratios to the floor at each size."""
    floor = {r["tokens"]: r for r in result["rows"] if r["method"] == "floor" and not r["error"]}
    lines = ["| tokens | method | seconds | peak RSS (MB) | time / floor | memory / floor | error |", "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        f = floor.get(r["tokens"])
        ok = not r["error"] and f
        lines.append(
            f"| {r['tokens']} | {r['method']} | {r['seconds']:.2f} | {r['peak_rss_mb']:.0f} | "
            f"{r['seconds'] / f['seconds']:.2f}x | {r['peak_rss_mb'] / f['peak_rss_mb']:.2f}x | |"
            if ok
            else f"| {r['tokens']} | {r['method']} | - | - | - | - | {r['error'] or 'no floor'} |"
        )
    lines.append(f"\nmax abs error vs eager (512 tokens, every captured array): {result['max_abs_error']:.1e}")
    return "\n".join(lines) + "\n\n" + render(result["targets"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnlens bench extraction", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL, help="a bundled model or a model folder")
    parser.add_argument("--tokens", type=int, nargs="+", default=list(DEFAULT_TOKENS))
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each method runs once per round, in its own process")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per (method, size) before it is stopped")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.model)))
        return 0
    result = run(
        args.tokens, args.repeats, args.timeout, progress=lambda s: print(f"... {s}", file=sys.stderr, flush=True), model=args.model
    )
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
