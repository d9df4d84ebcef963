"""From prompt to explanation with a warm agent: per-stage time, and how the LLM's rationales fare.

The subject model and the writer's engine (vLLM by default) start once and their start-up is
reported on its own (the cold start); then each held-back case (the half of the dataset no
few-shot example or learned weight came from, round-robin over the categories) runs the whole
pipeline (generate -> extract -> cluster -> evaluate -> agent). The table gives each stage's
median, the LLM calls, and for the first four clusters of each explanation: how many rationales
the LLM wrote that passed every check, the acceptance rate of each check over every checked draft,
and the critic's verdicts. Targets: the agent adds at most 8 s (median) and the LLM writes at
least 80% of the first four clusters' rationales; no shown rationale (LLM or template) fails a check;
the whole explanation of an answer that runs to the token limit (32 tokens) takes at most 15 s.

    attnlens bench explain [--backend vllm] [--agent-model qwen2.5-0.5b] [--cases N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter

from attnlens import runtime
from attnlens.benchmarks.targets import Target, render

STAGES = ("generate", "extract", "cluster", "evaluate", "agent")
FIRST = 4  # the clusters the LLM writes for (Explainer's max_llm_clusters)
FULL_ANSWER_GOAL_S = 15.0  # the whole explanation, median over the cases whose answer ran to max_new_tokens


def run(
    backend: str = "vllm",
    agent_model: str | None = None,
    model: str = "smollm2-135m",
    cases: int = 8,
    max_new_tokens: int = 32,
    progress=None,
) -> dict:
    from attnlens.agent.backends import DEFAULT_AGENT_MODEL, get_backend  # deferred: heavy
    from attnlens.agent.checks import CHECKS, check
    from attnlens.agent.facts import build_facts
    from attnlens.benchmarks.faithfulness import held_back
    from attnlens.pipeline.explainer import Explainer

    agent_model = agent_model or DEFAULT_AGENT_MODEL
    started = time.perf_counter()
    agent_backend = get_backend(backend, model=agent_model)
    explainer = Explainer(model, agent_backend, max_llm_clusters=FIRST)
    startup = time.perf_counter() - started
    rows, checked, failed, verdicts = [], 0, Counter(), Counter()
    try:
        explainer.explain("What is the capital of France?", max_new_tokens=8)  # warm: grammars, prefix cache
        for case in held_back(cases):
            if progress:
                progress(case.id)
            tokens_before, seconds_before = agent_backend.stats.tokens, agent_backend.stats.seconds
            t0 = time.perf_counter()
            explanation = explainer.explain(case.prompt, max_new_tokens=max_new_tokens)
            total = time.perf_counter() - t0
            llm_tokens = agent_backend.stats.tokens - tokens_before
            llm_seconds = agent_backend.stats.seconds - seconds_before
            shown = [r for r in explanation.agent.rationales.values() if r.sent_to_llm]
            facts = {f.id: f for f in build_facts(explanation.record, explanation.clustering, explanation.faithfulness)}
            failing = sum(bool(check(facts[cid], r.draft())) for cid, r in explanation.agent.rationales.items())
            for step in explanation.agent.history:
                if step.step == "check":
                    checked += 1
                    failed.update(step.failed)
                elif step.step == "critique":
                    verdicts[step.output or "(no verdict)"] += 1
            rows.append(
                {
                    "case": case.id,
                    "category": case.category,
                    "answer_tokens": len(explanation.generation.answer_indices),
                    "tokens": len(explanation.generation.tokens),
                    "clusters": len(explanation.clustering.clusters),
                    "seconds": total,
                    **{f"{s}_s": explanation.timings[s] for s in STAGES},
                    "llm_calls": explanation.agent.llm_calls,
                    "llm_tokens": llm_tokens,
                    "llm_tokens_per_s": llm_tokens / llm_seconds if llm_seconds else 0.0,
                    "sent_to_llm": len(shown),
                    "llm_rationales": sum(r.source == "llm" for r in shown),
                    "shown_failing_a_check": failing,
                }
            )
    finally:
        explainer.close()
        agent_backend.close()
    medians = {key: statistics.median(r[key] for r in rows) for key in ["seconds", *(f"{s}_s" for s in STAGES)]}
    sent = sum(r["sent_to_llm"] for r in rows)
    full = [r["seconds"] for r in rows if r["answer_tokens"] >= max_new_tokens]
    targets = [
        Target("agent_s_median", medians["agent_s"], 8.0, "at_most", "s"),
        Target(f"explain_s_median_{max_new_tokens}_token_answers", statistics.median(full) if full else None,
               FULL_ANSWER_GOAL_S, "at_most", "s"),
        Target("llm_share_first_four", sum(r["llm_rationales"] for r in rows) / sent if sent else 0.0, 0.80, "at_least", "%"),
        Target("shown_failing_a_check", sum(r["shown_failing_a_check"] for r in rows), 0, "at_most"),
    ]
    return {
        "backend": agent_backend.name,
        "agent_model": agent_model,
        "model": model,
        "startup_s": startup,
        "engine_start_s": agent_backend.stats.startup_seconds,
        "rows": rows,
        "median": medians,
        "checked_drafts": checked,
        "acceptance": {name: 1 - failed[name] / checked if checked else 0.0 for name in CHECKS},
        "critic": dict(verdicts),
        "full_answers": len(full),
        "targets": [t.to_dict() for t in targets],
    }


def table(result: dict) -> str:
    head = "| case | tokens (answer) | " + " | ".join(STAGES) + " | total | LLM calls | LLM tok/s | LLM-written |"
    lines = [head, "|" + "---|" * (len(STAGES) + 6)]
    for r in result["rows"]:
        lines.append(
            f"| {r['case']} | {r['tokens']} ({r['answer_tokens']}) | "
            + " | ".join(f"{r[f'{s}_s']:.1f}" for s in STAGES)
            + f" | {r['seconds']:.1f} | {r['llm_calls']} | {r['llm_tokens_per_s']:.0f} | {r['llm_rationales']}/{r['sent_to_llm']} |"
        )
    m = result["median"]
    lines.append("| **median** | | " + " | ".join(f"{m[f'{s}_s']:.1f}" for s in STAGES) + f" | **{m['seconds']:.1f}** | | | |")
    lines.append("")
    lines.append(f"checks passed, over {result['checked_drafts']} checked drafts: "
                 + ", ".join(f"{k} {v:.0%}" for k, v in result["acceptance"].items()))
    lines.append("critic verdicts: " + (", ".join(f"{k} {v}" for k, v in sorted(result["critic"].items())) or "none"))
    lines.append(render(result["targets"]))
    lines.append(f"({result['full_answers']} of {len(result['rows'])} answers ran to the token limit)")
    lines.append(
        f"\nwriter: {result['agent_model']} on {result['backend']}; subject model: {result['model']}; cold start "
        f"(subject model + engine, once): {result['startup_s']:.1f} s, of which the engine {result['engine_start_s']:.1f} s"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnlens bench explain", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="vllm", help="vllm | vllm-server | transformers")
    parser.add_argument("--agent-model", default=None, help="the writer (default: the default writer, qwen2.5-0.5b)")
    parser.add_argument("--model", default="smollm2-135m", help="the subject model")
    parser.add_argument("--cases", type=int, default=8, help="held-back cases, round-robin over the categories")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with runtime.stdout_to_stderr():  # vLLM logs to stdout; the table or JSON alone goes there
        result = run(
            args.backend, args.agent_model, args.model, args.cases, args.max_new_tokens,
            progress=lambda p: print(f"... {p}", file=sys.stderr, flush=True),
        )
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
