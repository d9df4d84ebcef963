"""The evaluation suite per case, batched against unbatched, on smollm2-135m and data/cases.jsonl.

    python -m benchmarks.evaluate [--cases N] [--ablation deletion|knockout|both] [--draws R] [--json]

For each of N cases spread evenly over data/cases.jsonl: generate the model's greedy answer (at
most 16 new tokens), capture its attention and cluster it (what `attnlens annotate` saves), then
run the whole per-case suite of `attnlens evaluate` (`evaluation.suite.score_case`: five
importance sources, the scored cluster, leave-one-out and R random rankings, both ablations,
plausibility, complexity, signatures) twice in the same process:
- batched: every ablated input of the case in left-padded batches of --max-batch rows, the
  shared prefix's keys/values computed once;
- unbatched: one full forward per ablated input (max_batch=1, no prefix reuse).
The two alternate which goes first from case to case (the machine's two cores are shared, so load
drifts), and must give the same numbers (max abs difference printed). The table gives the median
seconds per case of each, their ratio, and the projected time for 100 cases (mean per case x
100), against the goal of 10 minutes; generation, capture and clustering are shown apart (the
annotator has done them before `attnlens evaluate` runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

MODEL = "smollm2-135m"
MAX_NEW_TOKENS = 16
GOAL_SECONDS_PER_100 = 600.0


def pick_cases(n: int) -> list:
    from attnlens.evaluation.cases import load_cases

    cases = load_cases()
    if n >= len(cases):
        return cases
    step = len(cases) / n
    return [cases[int(i * step)] for i in range(n)]


def _numbers(result) -> list[float]:
    out = []
    for per_source in result.faithfulness.values():
        for metrics in per_source.values():
            out += [v for v in metrics.values() if v is not None]
    return out


def run(n_cases: int, ablations: list[str], threads: int, max_batch: int, draws: int) -> dict:
    import torch

    from attnlens.clustering import cluster
    from attnlens.evaluation.suite import SuiteConfig, score_case
    from attnlens.extraction import CaptureConfig, capture, generate, load_model

    torch.set_num_threads(threads)
    load_before = os.getloadavg()
    lm = load_model(MODEL)
    modes = {
        "batched": SuiteConfig(tuple(ablations), random_draws=draws, max_batch=max_batch),
        "unbatched": SuiteConfig(tuple(ablations), random_draws=draws, max_batch=1, reuse_prefix=False),
    }
    rows = []
    for j, case in enumerate(pick_cases(n_cases)):
        t0 = time.perf_counter()
        g = generate(lm, case.prompt, max_new_tokens=MAX_NEW_TOKENS)
        if g.answer_start >= len(g.tokens):
            rows.append({"case": case.id, "skipped": "empty answer"})
            continue
        record = capture(lm, g, CaptureConfig())
        clustering = cluster(record)
        prepare_s = time.perf_counter() - t0
        results = {}
        for mode in list(modes) if j % 2 == 0 else list(reversed(modes)):
            results[mode] = score_case(lm, record, clustering, 0, modes[mode], case.evidence or None)
        b, u = results["batched"], results["unbatched"]
        diff = max(abs(x - y) for x, y in zip(_numbers(b), _numbers(u)))
        row = {
            "case": case.id, "tokens": len(g.tokens), "user_tokens": b.user_tokens, "answer_tokens": b.answer_tokens,
            "prepare_s": prepare_s, "max_abs_diff": diff, "variants": b.variants,
            "batched_s": {k: v for k, v in b.seconds.items()}, "unbatched_s": {k: v for k, v in u.seconds.items()},
            "batched_total_s": sum(b.seconds.values()), "unbatched_total_s": sum(u.seconds.values()),
        }  # fmt: skip
        rows.append(row)
        print(f"[{j + 1}/{n_cases}] {case.id}: {row['user_tokens']} user tokens, batched {row['batched_total_s']:.1f} s, "
              f"unbatched {row['unbatched_total_s']:.1f} s, max diff {diff:.1e}", file=sys.stderr, flush=True)  # fmt: skip
    done = [r for r in rows if "skipped" not in r]
    summary = {}
    if done:
        batched = [r["batched_total_s"] for r in done]
        unbatched = [r["unbatched_total_s"] for r in done]
        summary = {
            "cases": len(done),
            "median_batched_s": statistics.median(batched),
            "median_unbatched_s": statistics.median(unbatched),
            "ratio_of_medians": statistics.median(unbatched) / statistics.median(batched),
            "ratio_of_totals": sum(unbatched) / sum(batched),
            "median_user_tokens": statistics.median(r["user_tokens"] for r in done),
            "median_variants": {a: statistics.median(r["variants"][a] for r in done) for a in ablations},
            "median_stage_s": {k: statistics.median(r["batched_s"][k] for r in done) for k in done[0]["batched_s"]},
            "max_abs_diff": max(r["max_abs_diff"] for r in done),
            "projected_100_cases_s": 100 * statistics.fmean(batched),
            "projected_100_cases_unbatched_s": 100 * statistics.fmean(unbatched),
            "prepare_median_s": statistics.median(r["prepare_s"] for r in done),
            "meets_10_min_goal": 100 * statistics.fmean(batched) <= GOAL_SECONDS_PER_100,
        }
    return {
        "model": MODEL, "threads": threads, "max_batch": max_batch, "random_draws": draws, "ablations": ablations,
        "max_new_tokens": MAX_NEW_TOKENS, "load_before": load_before, "load_after": os.getloadavg(),
        "cpus": os.cpu_count(), "rows": rows, "summary": summary,
    }  # fmt: skip


def _print_table(result: dict) -> None:
    s = result["summary"]
    print(
        f"evaluation suite on {result['model']}: {', '.join(result['ablations'])}; {result['threads']} thread(s), "
        f"max_batch {result['max_batch']}, {result['random_draws']} random rankings, answers <= "
        f"{result['max_new_tokens']} tokens; load average {result['load_before'][0]:.1f} -> "
        f"{result['load_after'][0]:.1f} on {result['cpus']} CPUs"
    )
    if not s:
        print("no case could be scored")
        return
    print(f"{'cases':>5} {'user tok':>8} {'batched s':>10} {'unbatched s':>12} {'ratio':>6} {'100 cases':>10} {'unbatched':>10} {'<=10 min':>8} {'max diff':>9}")
    print(
        f"{s['cases']:>5} {s['median_user_tokens']:>8.0f} {s['median_batched_s']:>10.2f} {s['median_unbatched_s']:>12.2f} "
        f"{s['ratio_of_medians']:>5.1f}x {s['projected_100_cases_s'] / 60:>8.1f} m "
        f"{s['projected_100_cases_unbatched_s'] / 60:>8.1f} m {'yes' if s['meets_10_min_goal'] else 'no':>8} {s['max_abs_diff']:>9.1e}"
    )
    print("median seconds per stage (batched): " + ", ".join(f"{k} {v:.2f}" for k, v in s["median_stage_s"].items()))
    print("median distinct ablated inputs per case: " + ", ".join(f"{k} {v:.0f}" for k, v in s["median_variants"].items()))
    print(f"(generation + capture + clustering, done by the annotator: median {s['prepare_median_s']:.2f} s per case)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnlens bench evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6, help="cases, spread evenly over data/cases.jsonl")
    parser.add_argument("--ablation", choices=("deletion", "knockout", "both"), default="both")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads (default: all cores; use 1 when the machine is shared)")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--draws", type=int, default=3, help="random rankings per case")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    ablations = ["deletion", "knockout"] if args.ablation == "both" else [args.ablation]
    result = run(args.cases, ablations, args.threads, args.max_batch, args.draws)
    if args.json:
        print(json.dumps(result))
    else:
        _print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
