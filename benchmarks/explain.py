"""From prompt to explanation: per-stage time with a warm agent engine.

The engine (vLLM by default) starts once and its start-up is reported on its own; then each
prompt runs the whole pipeline (generate 32 tokens -> extract -> cluster -> evaluate -> agent)
and the table gives each stage's median, the LLM calls and the agent's generated tokens/s.

    attnlens bench explain [--backend vllm] [--prompts N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from attnlens import runtime

PROMPTS = (  # held-out style: not in data/cases.jsonl
    "A train leaves at 3 pm and the trip takes 2 hours. When does it arrive?",
    "Name the largest planet in our solar system and say one fact about it.",
    "Rewrite this sentence in the past tense: The cat sleeps on the warm mat.",
    "Which is heavier, a kilogram of feathers or a kilogram of iron?",
)
STAGES = ("generate", "extract", "cluster", "evaluate", "agent")


def run(backend: str = "vllm", prompts: int = 3, max_new_tokens: int = 32, progress=None) -> dict:
    from attnlens.agent.backends import get_backend  # deferred: heavy
    from attnlens.pipeline.explainer import Explainer

    started = time.perf_counter()
    agent_backend = get_backend(backend, model="smollm2-135m")
    explainer = Explainer("smollm2-135m", agent_backend)
    startup = time.perf_counter() - started
    rows = []
    try:
        for prompt in PROMPTS[:prompts]:
            if progress:
                progress(prompt)
            tokens_before, seconds_before = agent_backend.stats.tokens, agent_backend.stats.seconds
            t0 = time.perf_counter()
            explanation = explainer.explain(prompt, max_new_tokens=max_new_tokens)
            total = time.perf_counter() - t0
            llm_tokens = agent_backend.stats.tokens - tokens_before
            llm_seconds = agent_backend.stats.seconds - seconds_before
            rows.append(
                {
                    "prompt": prompt,
                    "answer_tokens": len(explanation.generation.answer_indices),
                    "tokens": len(explanation.generation.tokens),
                    "clusters": len(explanation.clustering.clusters),
                    "seconds": total,
                    **{f"{s}_s": explanation.timings[s] for s in STAGES},
                    "llm_calls": explanation.agent.llm_calls,
                    "llm_tokens": llm_tokens,
                    "llm_tokens_per_s": llm_tokens / llm_seconds if llm_seconds else 0.0,
                    "template_rationales": sum(r.source == "template" for r in explanation.agent.rationales.values()),
                }
            )
    finally:
        agent_backend.close()
    medians = {key: statistics.median(r[key] for r in rows) for key in ["seconds", *(f"{s}_s" for s in STAGES)]}
    return {"backend": agent_backend.name, "startup_s": startup, "rows": rows, "median": medians}


def table(result: dict) -> str:
    head = "| prompt | tokens (answer) | " + " | ".join(STAGES) + " | total | LLM calls | LLM tok/s | templates |"
    lines = [head, "|" + "---|" * (len(STAGES) + 6)]
    for r in result["rows"]:
        lines.append(
            f"| {r['prompt'][:40]}... | {r['tokens']} ({r['answer_tokens']}) | "
            + " | ".join(f"{r[f'{s}_s']:.1f}" for s in STAGES)
            + f" | {r['seconds']:.1f} | {r['llm_calls']} | {r['llm_tokens_per_s']:.0f} | {r['template_rationales']} |"
        )
    m = result["median"]
    lines.append(
        "| **median** | | " + " | ".join(f"{m[f'{s}_s']:.1f}" for s in STAGES) + f" | **{m['seconds']:.1f}** | | | |"
    )
    lines.append(f"\nagent backend: {result['backend']}; start-up (subject model + engine, once): {result['startup_s']:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnlens bench explain", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="vllm", help="vllm | vllm-server | transformers")
    parser.add_argument("--prompts", type=int, default=3, choices=range(1, len(PROMPTS) + 1))
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with runtime.stdout_to_stderr():  # vLLM logs to stdout; the table or JSON alone goes there
        result = run(args.backend, args.prompts, args.max_new_tokens, progress=lambda p: print(f"... {p}", file=sys.stderr, flush=True))
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
