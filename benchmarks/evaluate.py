"""The faithfulness suite per case, batched against unbatched, on smollm2-135m and data/cases.jsonl.

    python -m benchmarks.evaluate [--cases N] [--ablation deletion|knockout|both] [--threads T] [--json]

For each of N cases spread evenly over data/cases.jsonl: generate the model's greedy answer (at
most 16 new tokens), capture its attention, and take the mean-attention importance vector
(evaluation.importance.mean_attention). Then the full suite, `evaluation.faithfulness`, with
the importance vector, the human evidence as a cluster (when the case has evidence), 10 random
draws and the leave-one-out baseline, runs twice in the same process:
- batched: every ablation of the case in one left-padded batch (chunks of --max-batch rows),
  the shared prefix's keys/values computed once;
- unbatched: one full forward per ablation (max_batch=1, no prefix reuse).
The two alternate which goes first from case to case (the machine's two cores are shared, so
load drifts). The `attnlens explain` fast path (`cluster_faithfulness`: the evidence cluster, or
the top 3 tokens, with the random baseline of its size) is timed the same way. Both must give the same numbers (max abs difference printed). The table gives the
median seconds per case of each, their ratio, and the projected time for 100 cases (mean per
case x 100; generation and capture shown apart).
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
    from evaluation.cases import load_cases

    cases = load_cases()
    if n >= len(cases):
        return cases
    step = len(cases) / n
    return [cases[int(i * step)] for i in range(n)]


def _numbers(report) -> list[float]:
    out = []
    for scored in report.metrics().values():
        out += [v for v in (scored.value, scored.random, scored.loo) if v is not None]
    out += [c.comprehensiveness for c in report.clusters] + [c.sufficiency for c in report.clusters]
    return out


def _top(importance, generation, k: int) -> list[int]:
    """Token indices of the k most important user tokens."""
    from evaluation.faithfulness import ranking, user_indices

    return ranking(importance.numpy(), user_indices(generation))[:k]


def run(n_cases: int, ablations: list[str], threads: int, max_batch: int, draws: int) -> dict:
    import torch

    from evaluation.faithfulness import FaithfulnessError, cluster_faithfulness, faithfulness
    from evaluation.importance import mean_attention
    from evaluation.plausibility import evidence_tokens
    from extraction import CaptureConfig, capture, generate, load_model

    torch.set_num_threads(threads)
    load_before = os.getloadavg()
    lm = load_model(MODEL)
    rows = []
    for j, case in enumerate(pick_cases(n_cases)):
        t0 = time.perf_counter()
        g = generate(lm, case.prompt, max_new_tokens=MAX_NEW_TOKENS)
        t1 = time.perf_counter()
        if g.answer_start >= len(g.tokens):
            rows.append({"case": case.id, "skipped": "empty answer"})
            continue
        record = capture(lm, g, CaptureConfig())
        importance = mean_attention(record)
        t2 = time.perf_counter()
        clusters = [sorted(evidence_tokens(g, case.evidence))] if case.evidence else None
        row = {
            "case": case.id, "tokens": len(g.tokens), "user_tokens": len(importance),
            "answer_tokens": len(g.tokens) - g.answer_start, "generate_s": t1 - t0, "capture_s": t2 - t1,
        }  # fmt: skip
        for ablation in ablations:
            modes = {"batched": {"max_batch": max_batch, "reuse_prefix": True},
                     "unbatched": {"max_batch": 1, "reuse_prefix": False}}  # fmt: skip
            order = list(modes) if j % 2 == 0 else list(reversed(modes))
            reports = {}
            for mode in order:
                try:
                    reports[mode] = faithfulness(
                        lm, g, importance, clusters, ablation=ablation, random_draws=draws, **modes[mode]
                    )
                except FaithfulnessError as exc:
                    reports[mode] = exc
            if any(isinstance(r, Exception) for r in reports.values()):
                row[ablation] = {"skipped": str(reports["batched"])}
                continue
            b, u = reports["batched"], reports["unbatched"]
            diff = max(abs(x - y) for x, y in zip(_numbers(b), _numbers(u)))
            # the `attnlens explain` path: one cluster (the evidence, else the top 3 tokens), top-size baseline
            explain_clusters = clusters or [_top(importance, g, 3)]
            fast = {mode: cluster_faithfulness(lm, g, explain_clusters, ablation=ablation, random_draws=draws,
                                               max_batch=modes[mode]["max_batch"]) for mode in order}  # fmt: skip
            row[ablation] = {
                "batched_s": b.seconds, "unbatched_s": u.seconds, "variants": b.stats.variants,
                "batched_rows_tokens": b.stats.tokens, "unbatched_tokens": u.stats.tokens, "max_abs_diff": diff,
                "aopc_comprehensiveness_eraser": b.aopc["aopc_comprehensiveness_eraser"].value,
                "aopc_comprehensiveness_eraser_random": b.aopc["aopc_comprehensiveness_eraser"].random,
                "tau_loo": b.tau_loo.value,
                "explain_batched_s": fast["batched"].seconds, "explain_unbatched_s": fast["unbatched"].seconds,
                "explain_variants": fast["batched"].stats.variants,
            }  # fmt: skip
        rows.append(row)
        print(f"[{j + 1}/{n_cases}] {case.id}: " + ", ".join(
            f"{a} {row[a]['batched_s']:.1f}s vs {row[a]['unbatched_s']:.1f}s" for a in ablations
            if a in row and "batched_s" in row[a]
        ), file=sys.stderr, flush=True)  # fmt: skip
    summary = {}
    done = [r for r in rows if "skipped" not in r]
    for ablation in ablations:
        ok = [r[ablation] for r in done if "batched_s" in r.get(ablation, {})]
        if not ok:
            continue
        batched = [r["batched_s"] for r in ok]
        unbatched = [r["unbatched_s"] for r in ok]
        per_case = statistics.fmean(batched)
        extra = statistics.fmean([r["generate_s"] + r["capture_s"] for r in done])
        summary[ablation] = {
            "cases": len(ok),
            "median_batched_s": statistics.median(batched),
            "median_unbatched_s": statistics.median(unbatched),
            "ratio_of_medians": statistics.median(unbatched) / statistics.median(batched),
            "ratio_of_totals": sum(unbatched) / sum(batched),
            "median_variants": statistics.median(r["variants"] for r in ok),
            "max_abs_diff": max(r["max_abs_diff"] for r in ok),
            "projected_100_cases_s": 100 * per_case,
            "projected_100_cases_with_generation_s": 100 * (per_case + extra),
            "meets_10_min_goal": 100 * per_case <= GOAL_SECONDS_PER_100,
            "explain_median_batched_s": statistics.median(r["explain_batched_s"] for r in ok),
            "explain_median_unbatched_s": statistics.median(r["explain_unbatched_s"] for r in ok),
            "explain_median_variants": statistics.median(r["explain_variants"] for r in ok),
            "explain_projected_100_cases_s": 100 * statistics.fmean(r["explain_batched_s"] for r in ok),
        }
    return {
        "model": MODEL, "threads": threads, "max_batch": max_batch, "random_draws": draws,
        "max_new_tokens": MAX_NEW_TOKENS, "load_before": load_before, "load_after": os.getloadavg(),
        "cpus": os.cpu_count(), "rows": rows, "summary": summary,
    }  # fmt: skip


def _print_table(result: dict) -> None:
    print(
        f"faithfulness suite on {result['model']}: {result['threads']} thread(s), max_batch {result['max_batch']}, "
        f"{result['random_draws']} random draws, answers <= {result['max_new_tokens']} tokens; "
        f"load average {result['load_before'][0]:.1f} -> {result['load_after'][0]:.1f} on {result['cpus']} CPUs"
    )
    print(f"{'ablation':<10} {'cases':>5} {'variants':>8} {'batched s':>10} {'unbatched s':>12} {'ratio':>6} "
          f"{'100 cases':>10} {'+gen/capture':>12} {'<=10 min':>8} {'max diff':>9}")  # fmt: skip
    for ablation, s in result["summary"].items():
        print(
            f"{ablation:<10} {s['cases']:>5} {s['median_variants']:>8.0f} {s['median_batched_s']:>10.2f} "
            f"{s['median_unbatched_s']:>12.2f} {s['ratio_of_medians']:>5.1f}x "
            f"{s['projected_100_cases_s'] / 60:>8.1f} m {s['projected_100_cases_with_generation_s'] / 60:>10.1f} m "
            f"{'yes' if s['meets_10_min_goal'] else 'no':>8} {s['max_abs_diff']:>9.1e}"
        )
    print("(batched/unbatched s: median seconds per case; ratio: of the medians; 100 cases: mean batched x 100)")
    print("explain fast path (cluster_faithfulness: one cluster, random baseline of its size):")
    for ablation, s in result["summary"].items():
        print(
            f"{ablation:<10} {s['explain_median_variants']:>4.0f} variants  batched {s['explain_median_batched_s']:.2f} s"
            f"  unbatched {s['explain_median_unbatched_s']:.2f} s  100 cases {s['explain_projected_100_cases_s'] / 60:.1f} m"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6, help="cases, spread evenly over data/cases.jsonl")
    parser.add_argument("--ablation", choices=("deletion", "knockout", "both"), default="both")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 by default: on two shared cores two OpenMP threads spin and run far slower)")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--draws", type=int, default=10, help="random draws per baseline")
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
