"""Faithfulness of every explanation source, side by side, on the held-back split of the cases.

    attnlens bench faithfulness --model M [--cases N] [--json] [--out FILE.jsonl]

For N held-back cases (the split `attnlens train-scorer` did not learn from, taken round-robin
over the categories): generate the model's greedy answer (at most 32 new tokens), capture,
cluster and verify as `attnlens explain` does (clusters ranked by measured deletion effect), then
score every source in one run with the evaluation suite (deletion: words deleted from the prompt text):
random, last-layer attention, mean attention, rollout, gradient x input, leave-one-out,
ContextCite (32 ablations), the learned head weights alone, and the attnlens clusters. Metrics:
AOPC comprehensiveness and sufficiency (ERASER bins), the deletion and insertion curves' areas, top-k drop at the
first cluster's size, Kendall tau with leave-one-out, and LDS on 32 fresh random word deletions,
each a mean with its bootstrap 95% interval; paired Wilcoxon tests of attnlens against every other
source, Holm-corrected. Beside them: the first cluster against random sets of as many of the
user's words (8 draws), its share of the words, and each method's cost per explanation (forward
rows beyond the capture, seconds). Rows are appended to --out as they finish; a rerun skips them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

SOURCES = ("attnlens", "head_weights", "context_cite", "loo", "last_layer", "mean", "rollout", "grad_x_input", "random")
HEADERS = {
    "aopc_comprehensiveness_eraser": "AOPC comp ↑", "aopc_sufficiency_eraser": "AOPC suff ↓",
    "deletion_auc": "del. AUC ↓", "insertion_auc": "ins. AUC ↑", "top_k_drop": "top-k drop ↑", "tau_loo": "tau LOO ↑",
    "lds": "LDS ↑",
}  # fmt: skip
METRICS = tuple(HEADERS)
MAX_NEW_TOKENS = 32


def held_back(n: int, seed: int = 0) -> list:
    """The first n held-back cases, round-robin over the categories (so a small n spans all of them)."""
    from attnlens.evaluation.cases import load_cases
    from attnlens.evaluation.head_weights import split_cases

    _, test = split_cases(load_cases(), seed=seed)
    by_category: dict[str, list] = {}
    for case in test:
        by_category.setdefault(case.category, []).append(case)
    picked = []
    while len(picked) < min(n, len(test)):
        for cases in by_category.values():
            if cases and len(picked) < n:
                picked.append(cases.pop(0))
    return picked


def forward_rows(source: str, row: dict) -> float:
    """Ablated inputs a source needs beyond the capture (the cost in forward rows)."""
    from attnlens.evaluation.suite import SuiteConfig

    return {
        "attnlens": row["verify_variants"], "context_cite": SuiteConfig().context_cite_ablations,
        "loo": row["user_tokens"], "grad_x_input": 1,
    }.get(source, 0)


def run_case(lm, case, source: str = "mean") -> dict:
    from attnlens.clustering import ClusterConfig, cluster
    from attnlens.evaluation.suite import SuiteConfig, score_case
    from attnlens.extraction import CaptureConfig, capture, generate
    from attnlens.extraction.words import user_words
    from attnlens.pipeline.explainer import verify

    started = time.perf_counter()
    generation = generate(lm, case.prompt, max_new_tokens=MAX_NEW_TOKENS)
    if not generation.answer.strip():
        return {"case": case.id, "skipped": "empty answer"}
    record = capture(lm, generation, CaptureConfig())
    clustering = cluster(record, ClusterConfig(source=source))
    prepared = time.perf_counter()
    clustering, report = verify(lm, record, clustering)
    verified = time.perf_counter()
    result = score_case(lm, record, clustering, 0, SuiteConfig(ablations=("deletion",)), key=case.id,
                        meta=case.model_dump())  # fmt: skip
    top = report.clusters[0]
    words = len(user_words(generation))
    return {
        "case": case.id, "category": case.category, "words": words, "user_tokens": result.user_tokens,
        "cluster0_words": top.words, "cluster0_share": top.words / words if words else math.nan,
        "cluster0_comprehensiveness": top.comprehensiveness,
        "cluster0_random": top.random_comprehensiveness, "cluster0_random_sd": top.random_comprehensiveness_sd,
        "verify_variants": report.stats.variants, "verify_s": verified - prepared, "capture_cluster_s": prepared - started,
        "faithfulness": result.faithfulness["deletion"], "lds": result.lds, "complexity": result.complexity,
        "seconds": result.seconds, "answer_probability": result.answer_probability,
    }  # fmt: skip


def summarise(rows: list[dict]) -> dict:
    from attnlens.evaluation.stats import correct, mean_ci, paired

    done = [r for r in rows if "skipped" not in r]

    def values(source: str, metric: str) -> list[float]:
        out = []
        for r in done:
            v = r["lds"].get(source) if metric == "lds" else r["faithfulness"].get(source, {}).get(metric)
            out.append(math.nan if v is None else v)
        return out

    table = {}
    for source in SOURCES:
        table[source] = {m: mean_ci(values(source, m)).__dict__ for m in METRICS}
        seconds = [r["verify_s"] if source == "attnlens" else r["seconds"].get(f"source:{source}", 0.0) for r in done]
        if source == "loo":
            seconds = [math.nan] * len(done)  # measured inside the suite's shared pass, not apart
        table[source]["forward_rows"] = float(np.mean([forward_rows(source, r) for r in done])) if done else math.nan
        table[source]["seconds"] = float(np.nanmean(seconds)) if done and not all(map(math.isnan, seconds)) else math.nan
    tests = {}
    for metric in ("aopc_comprehensiveness_eraser", "lds", "top_k_drop"):
        comparisons = [paired(values("attnlens", metric), values(s, metric)) for s in SOURCES if s != "attnlens"]
        tests[metric] = {s: c.to_dict() for s, c in zip([s for s in SOURCES if s != "attnlens"], correct(comparisons))}
    comp = [r["cluster0_comprehensiveness"] for r in done]
    rnd = [r["cluster0_random"] for r in done]
    last = [r["faithfulness"].get("last_layer", {}).get("top_k_drop") for r in done]
    long = [r for r in done if r["words"] >= 6]
    return {
        "cases": len(done), "skipped": len(rows) - len(done), "sources": table, "tests": tests,
        "cluster0": {
            "comprehensiveness": mean_ci(comp).__dict__, "random_same_size": mean_ci(rnd).__dict__,
            "ratio_to_random": float(np.mean(comp) / np.mean(rnd)) if done and np.mean(rnd) else math.nan,
            "vs_random": paired(comp, rnd).to_dict(),
            "last_layer_same_size": mean_ci([math.nan if v is None else v for v in last]).__dict__,
            "vs_last_layer": paired(comp, [math.nan if v is None else v for v in last]).to_dict(),
            "share_of_words_6plus": mean_ci([r["cluster0_share"] for r in long]).__dict__,
            "at_most_half_6plus": float(np.mean([r["cluster0_share"] <= 0.5 for r in long])) if long else math.nan,
            "entropy_head_weights": mean_ci([r["complexity"]["head_weights"]["entropy"] for r in done]).__dict__,
            "gini_head_weights": mean_ci([r["complexity"]["head_weights"]["gini"] for r in done]).__dict__,
        },
    }  # fmt: skip


def _fmt(e: dict) -> str:
    return "n/a" if not e["n"] else f"{e['mean']:+.3f} [{e['low']:+.3f}, {e['high']:+.3f}]"


def _short(e: dict) -> str:
    """The mean and the half-width of its interval: the table's cells (the JSON has both ends)."""
    return "n/a" if not e["n"] else f"{e['mean']:.3f}\n±{(e['high'] - e['low']) / 2:.3f}"


def print_table(result: dict) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    s = result["summary"]
    console = Console()
    if not console.is_terminal:  # a file or a pipe: the whole table, whatever COLUMNS says
        console = Console(width=120)
    table = Table(box=box.SIMPLE_HEAD, title=f"faithfulness on {result['model']}: {s['cases']} held-back cases (deletion; graph source "
                        f"{result.get('source', 'mean')}; mean ± 95% CI half-width)")
    table.add_column("source", no_wrap=True)
    for column in (*HEADERS.values(), "rows", "s"):
        table.add_column(column, justify="right")
    for source, row in s["sources"].items():
        table.add_row(source, *(_short(row[m]) for m in METRICS), f"{row['forward_rows']:.0f}", "n/a" if math.isnan(row["seconds"]) else f"{row['seconds']:.2f}")
    console.print(table)
    c = s["cluster0"]
    console.print(
        f"cluster 0: comprehensiveness {_fmt(c['comprehensiveness'])}, random same-size word sets "
        f"{_fmt(c['random_same_size'])} (ratio {c['ratio_to_random']:.2f}), last layer's top same-size set "
        f"{_fmt(c['last_layer_same_size'])}; share of words (6+ words) {_fmt(c['share_of_words_6plus'])}, "
        f"at most half in {c['at_most_half_6plus']:.0%}"
    )
    for metric, tests in s["tests"].items():
        console.print(f"attnlens vs each source on {metric} (Holm): " + ", ".join(
            f"{k} {v['effect']:+.3f} p={v['p_holm']:.3g}" for k, v in tests.items()))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnlens bench faithfulness", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--cases", type=int, default=40, help="held-back cases (round-robin over categories)")
    parser.add_argument("--out", type=Path, default=None, help="append each case's row here (JSONL); a rerun resumes")
    parser.add_argument("--source", default="mean", help="the word graph's source (ClusterConfig.source; mean is the default)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from attnlens import runtime
    from attnlens.extraction import load_model

    runtime.set_threads(args.threads)
    lm = load_model(args.model)
    rows = []
    if args.out and args.out.is_file():
        rows = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    done = {r["case"] for r in rows}
    cases = held_back(args.cases)
    for i, case in enumerate(cases):
        if case.id in done:
            continue
        try:
            row = run_case(lm, case, args.source)
        except Exception as exc:  # noqa: BLE001 - recorded; the others go on
            row = {"case": case.id, "skipped": f"{type(exc).__name__}: {exc}"}
        rows.append(row)
        if args.out:
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
        print(f"[{i + 1}/{len(cases)}] {case.id}: {row.get('skipped') or 'ok'}", file=sys.stderr)
    result = {"model": lm.name, "source": args.source, "max_new_tokens": MAX_NEW_TOKENS, "summary": summarise(rows)}
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
