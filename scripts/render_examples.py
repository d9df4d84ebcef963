"""Render docs/examples.md from an annotate run: the first N explained cases of each task category.

The cases are taken in the run's file order, not picked by how good they look; the page prints
each one's answer, its first four clusters (rationale, source, effect beside random words) and
their rows of the JSON contract, unedited (the token list and later clusters left out for length).

    .venv/bin/attnlens annotate --dataset data/cases.jsonl --split held-back --sample 40 --out runs/examples
    .venv/bin/python scripts/render_examples.py runs/examples [--per-category 5] [--out docs/examples.md]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

CATEGORIES = ("factual_recall", "reasoning", "creative_generation", "instruction_following")
SHOWN_CLUSTERS = 4
OUT = Path(__file__).resolve().parents[1] / "docs" / "examples.md"


def pick(run: Path, per_category: int) -> list[dict]:
    import pyarrow.parquet as pq

    rows = [r for r in pq.read_table(run / "annotations.parquet").to_pylist() if r["error"] is None]
    chosen = []
    for category in CATEGORIES:
        chosen += [r for r in rows if r["category"] == category][:per_category]
    return chosen


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(run: Path, per_category: int) -> str:
    from attnlens.pipeline.explanation import Explanation

    meta = json.loads((run / "run.json").read_text())
    rows = pick(run, per_category)
    explained = [(r, Explanation.load(run / r["explanation_dir"]).to_dict()) for r in rows]
    shown = [c for _, e in explained for c in e["clusters"][:SHOWN_CLUSTERS]]
    sources = Counter(c["source"] for c in shown)
    settings = meta["settings"]
    models = ", ".join(sorted({r["model"] for r in rows}))
    lines = [
        "# Example explanations",
        "",
        f"{len(rows)} explanations of held-back cases (the half of the dataset that no step of attnlens "
        f"learned from), the first {per_category} of each task category in the run's order, printed unedited. "
        f"Subject model: {models}. Rationales written by {settings['agent_model']} "
        f"(backend `{explained[0][1]['agent']['backend']}`), greedy, `--max-new-tokens {settings['max_new_tokens']}`. Made with:",
        "",
        "```bash",
        "attnlens annotate --dataset data/cases.jsonl --split held-back --sample 40 --out runs/examples",
        "python scripts/render_examples.py runs/examples",
        "```",
        "",
        f"Of the {len(shown)} rationales shown (the first {SHOWN_CLUSTERS} clusters of each case, or fewer when "
        f"a case has fewer), {sources['llm']} were written by the LLM and passed every check (`source: llm`) and "
        f"{sources['template']} are templates (`source: template`: no line of the LLM passed the checks; the "
        "audit trail of the saved explanation says which check failed).",
        "",
        "How to read them: a cluster is a group of the question's words, largest measured effect first. The "
        "LLM wrote the sentence up to its first full stop; code added the measured facts after it: the "
        "answer's probability with the words deleted, the same for as many random words of the question "
        "(the baseline), and the answer words and layers that attend to the words most. `comp.` "
        "(comprehensiveness) is the drop in the answer's probability when the cluster's words are deleted, "
        "`random` the mean drop over random sets of as many words (docs/metrics.md).",
        "",
    ]
    for row, e in explained:
        verdict = {True: "correct", False: "incorrect", None: "not checked"}[row["correct"]]
        lines += [
            f"## {row['category']} / {row['subcategory']}: `{row['id']}`",
            "",
            f"**Question:** {e['prompt']}",
            "",
            f"**Answer** ({verdict}): {json.dumps(e['answer'], ensure_ascii=False)}",
            "",
            "| # | words | role | source | rationale | comp. | random |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in e["clusters"][:SHOWN_CLUSTERS]:
            random = c["random_comprehensiveness"]
            lines.append(
                f"| {c['id']} | {cell(', '.join(c['words']))} | {c['label']} | {c['source']} | {cell(c['rationale'])} "
                f"| {c['comprehensiveness']:.2f} | {'' if random is None else f'{random:.2f}'} |"
            )
        contract = {k: v for k, v in e.items() if k != "tokens"}
        contract["clusters"] = e["clusters"][:SHOWN_CLUSTERS]
        lines += [
            "",
            "<details><summary>JSON (the token list and clusters after the fourth left out)</summary>",
            "",
            "```json",
            json.dumps(contract, indent=1, ensure_ascii=False),
            "```",
            "",
            "</details>",
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--per-category", type=int, default=5)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.out.write_text(render(args.run, args.per_category))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
