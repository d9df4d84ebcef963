"""The evaluation suite per case, batched against unbatched, on smollm2-135m and data/cases.jsonl.

    attnlens bench evaluate [--model M] [--cases N] [--ablation deletion|knockout|both] [--draws R]
                            [--no-unbatched] [--json]

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
100); the targets are the batched suite's median seconds per case (6 s on SmolLM2, 12 s on other
models) and 100 cases in 10 minutes (20 on other models); generation, capture and clustering are shown apart (the
annotator has done them before `attnlens evaluate` runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from attnlens.benchmarks.targets import Target, render

MODEL = "smollm2-135m"
MAX_NEW_TOKENS = 16
# The whole suite, batched, median seconds per case: SmolLM2's goal, and the other models'.
GOAL_SECONDS_PER_CASE = {"smollm2-135m": 6.0}
OTHER_GOAL_SECONDS_PER_CASE = 12.0


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


def run(
    n_cases: int, ablations: list[str], threads: int, max_batch: int, draws: int, model: str = MODEL, unbatched: bool = True
) -> dict:
    from attnlens import runtime
    from attnlens.clustering import cluster
    from attnlens.evaluation.suite import SuiteConfig, score_case
    from attnlens.extraction import CaptureConfig, capture, generate, load_model

    runtime.set_threads(threads)
    load_before = os.getloadavg()
    lm = load_model(model)
    modes = {"batched": SuiteConfig(tuple(ablations), random_draws=draws, max_batch=max_batch)}
    if unbatched:
        modes["unbatched"] = SuiteConfig(tuple(ablations), random_draws=draws, max_batch=1, reuse_prefix=False)
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
        b, u = results["batched"], results.get("unbatched")
        row = {
            "case": case.id, "tokens": len(g.tokens), "user_tokens": b.user_tokens, "answer_tokens": b.answer_tokens,
            "prepare_s": prepare_s, "variants": b.variants,
            "batched_s": dict(b.seconds), "batched_total_s": sum(b.seconds.values()),
        }  # fmt: skip
        if u is not None:
            row["max_abs_diff"] = max(abs(x - y) for x, y in zip(_numbers(b), _numbers(u)))
            row["unbatched_s"], row["unbatched_total_s"] = dict(u.seconds), sum(u.seconds.values())
        rows.append(row)
        print(f"[{j + 1}/{n_cases}] {case.id}: {row['user_tokens']} user tokens, batched {row['batched_total_s']:.1f} s"
              + (f", unbatched {row['unbatched_total_s']:.1f} s, max diff {row['max_abs_diff']:.1e}" if u else ""),
              file=sys.stderr, flush=True)  # fmt: skip
    done = [r for r in rows if "skipped" not in r]
    summary = {}
    if done:
        batched = [r["batched_total_s"] for r in done]
        summary = {
            "cases": len(done),
            "median_batched_s": statistics.median(batched),
            "median_user_tokens": statistics.median(r["user_tokens"] for r in done),
            "median_variants": {a: statistics.median(r["variants"][a] for r in done) for a in ablations},
            "median_stage_s": {k: statistics.median(r["batched_s"][k] for r in done) for k in done[0]["batched_s"]},
            "projected_100_cases_s": 100 * statistics.fmean(batched),
            "prepare_median_s": statistics.median(r["prepare_s"] for r in done),
        }
        if unbatched:
            slow = [r["unbatched_total_s"] for r in done]
            summary |= {
                "median_unbatched_s": statistics.median(slow),
                "ratio_of_medians": statistics.median(slow) / statistics.median(batched),
                "ratio_of_totals": sum(slow) / sum(batched),
                "max_abs_diff": max(r["max_abs_diff"] for r in done),
                "projected_100_cases_unbatched_s": 100 * statistics.fmean(slow),
            }
    goal = GOAL_SECONDS_PER_CASE.get(model, OTHER_GOAL_SECONDS_PER_CASE)
    targets = [
        Target("suite_s_per_case_median", summary.get("median_batched_s"), goal, "at_most", "s"),
        Target("suite_min_per_100_cases", summary["projected_100_cases_s"] / 60 if summary else None, goal * 100 / 60, "at_most", "min"),
    ]
    return {
        "model": model, "unbatched": unbatched, "threads": threads, "max_batch": max_batch, "random_draws": draws,
        "ablations": ablations, "max_new_tokens": MAX_NEW_TOKENS, "load_before": load_before,
        "load_after": os.getloadavg(), "cpus": os.cpu_count(), "rows": rows, "summary": summary,
        "targets": [t.to_dict() for t in targets],
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
    print(f"cases: {s['cases']}, median user tokens {s['median_user_tokens']:.0f}")
    print(f"batched: median {s['median_batched_s']:.2f} s per case, {s['projected_100_cases_s'] / 60:.1f} min per 100 cases")
    if result["unbatched"]:
        print(f"unbatched: median {s['median_unbatched_s']:.2f} s per case ({s['ratio_of_medians']:.1f}x the batched), "
              f"{s['projected_100_cases_unbatched_s'] / 60:.1f} min per 100 cases; max abs difference {s['max_abs_diff']:.1e}")
    print("median seconds per stage (batched): " + ", ".join(f"{k} {v:.2f}" for k, v in s["median_stage_s"].items()))
    print("median distinct ablated inputs per case: " + ", ".join(f"{k} {v:.0f}" for k, v in s["median_variants"].items()))
    print(f"(generation + capture + clustering, done by the annotator: median {s['prepare_median_s']:.2f} s per case)")
    print(render(result["targets"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnlens bench evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6, help="cases, spread evenly over data/cases.jsonl")
    parser.add_argument("--ablation", choices=("deletion", "knockout", "both"), default="both")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads (default: all cores; use 1 when the machine is shared)")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--draws", type=int, default=3, help="random rankings per case")
    parser.add_argument("--model", default=MODEL, help="the subject model (a bundled model or a model folder)")
    parser.add_argument("--unbatched", action=argparse.BooleanOptionalAction, default=True,
                        help="also run every case unbatched and compare (--no-unbatched: the batched suite only)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    ablations = ["deletion", "knockout"] if args.ablation == "both" else [args.ablation]
    result = run(args.cases, ablations, args.threads, args.max_batch, args.draws, args.model, args.unbatched)
    if args.json:
        print(json.dumps(result))
    else:
        _print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
