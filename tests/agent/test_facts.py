"""Facts from code, on a real explanation: the evidence, the measured sentence, the template."""

import json
import re
from dataclasses import dataclass

import pytest

from attnlens.agent.checks import check
from attnlens.agent.facts import (
    LABELS,
    MAX_RATIONALE,
    ClusterFacts,
    Effect,
    build_facts,
    compose,
    default_label,
    dependence,
    facts_sentence,
    percent,
    plausible_labels,
    prompt_kind,
    template,
)
from attnlens.pipeline.explainer import Explainer

pytestmark = pytest.mark.slow

PROMPT = "Mia has 3 apples and buys 4 more. The sky is blue today. How many apples does Mia have now?"


@dataclass
class Prepared:
    record: object
    clustering: object
    report: object
    facts: list


@pytest.fixture(scope="module")
def prepared():
    """The deterministic stages of a real explanation (templates only: no LLM needed here)."""
    explainer = Explainer("smollm2-135m", backend=None, max_llm_clusters=0)
    e = explainer.explain(PROMPT, max_new_tokens=12)
    return Prepared(e.record, e.clustering, e.faithfulness, build_facts(e.record, e.clustering, e.faithfulness))


def test_evidence_holds_only_the_users_words_and_the_measured_effect(prepared):
    facts, clustering, report = prepared.facts, prepared.clustering, prepared.report
    assert [f.id for f in facts] == [c.id for c in clustering.clusters]
    for f, c, measured in zip(facts, clustering.clusters, report.clusters):
        assert f.words == tuple(c.words) and set(f.citable) <= set(f.words)
        assert all(w in PROMPT for w in f.words)  # the user's words, never template or answer tokens
        json.dumps(f.evidence.to_dict())
        assert f.evidence.question == PROMPT and f.evidence.answer == prepared.record.generation.answer.strip()
        assert f.effect.before == pytest.approx(report.answer_probability)
        assert f.effect.after == pytest.approx(report.answer_probability - measured.comprehensiveness)
        assert f.effect.random_after == pytest.approx(report.answer_probability - measured.random_comprehensiveness)
        assert f.evidence.dependence == dependence(f.effect)
        assert set(f.allowed_labels) <= set(LABELS) and "other" in f.allowed_labels
        assert f.default_label in f.allowed_labels
        assert not f.outside_words & {w.lower() for w in f.words}


def test_the_measured_sentence_states_the_facts_and_fits(prepared):
    for f in prepared.facts:
        text = facts_sentence(f)
        e = f.effect
        assert f"from {percent(e.before)} to {percent(e.after)}" in text
        assert f"random word{'s' if len(f.words) > 1 else ''}: {percent(e.random_after)}" in text
        for reader in f.evidence.read_most_by:
            assert f"'{reader}'" in text and reader in prepared.record.generation.answer
        long = compose(f, "'x' " + "y" * 140 + ".")
        assert len(long) <= MAX_RATIONALE or "Read most by" not in long  # the readers go first when space is short


def test_the_template_passes_every_check(prepared):
    for f in prepared.facts:
        draft = template(f)
        assert check(f, draft) == [], (draft, check(f, draft))
        assert draft.label == f.default_label and set(draft.evidence_tokens) <= set(f.words)


def test_facts_round_trip_through_json(prepared):
    for f in prepared.facts:
        again = ClusterFacts.from_dict(json.loads(json.dumps(f.to_dict())))
        assert again == f


@pytest.mark.parametrize(
    "words, prompt, offered, guessed",
    [
        (("?",), "What is 2 + 2?", {"punctuation/format", "function words"}, "punctuation/format"),
        (("12", "times"), "What is 12 times 7?", {"numeric operand", "instruction constraint"}, "numeric operand"),
        (("What", "is"), "What is the capital of Japan?", {"function words"}, "function words"),
        (("Translate",), "Translate apple into French.", {"task instruction"}, "task instruction"),
        (("French",), "Translate apple into French.", {"instruction constraint", "subject entity"}, "instruction constraint"),
        (("Japan",), "What is the capital of Japan?", {"subject entity", "relation word"}, "subject entity"),
        (("capital",), "What is the capital of Japan?", {"relation word"}, "relation word"),
        (("rock", "hit"), "The rock hit the window and it shattered. What shattered?", {"context detail"}, "context detail"),
    ],
)
def test_labels_follow_the_words(words, prompt, offered, guessed):
    allowed = plausible_labels(words, prompt)
    assert offered <= set(allowed) and allowed[-1] == "other"
    assert default_label(words, prompt) == guessed
    if not any(w[0].isdigit() for w in words):
        assert "numeric operand" not in allowed
    if "context detail" not in offered:
        assert "context detail" not in allowed  # only words of a statement before the question


def test_prompt_kinds():
    assert prompt_kind("Write a story about a fox.") == "task"
    assert prompt_kind("The rock hit the window. What shattered?") == "context"
    assert prompt_kind("What is the capital of Japan?") == "question"


def test_dependence_in_words():
    assert dependence(None) is None
    assert dependence(Effect(0.6, 0.1, 0.5)) == "the answer needs them more than random words"
    assert dependence(Effect(0.6, 0.5, 0.1)) == "the answer needs them less than random words"
    assert dependence(Effect(0.6, 0.3, 0.32)) == "the answer needs them about as much as random words"
    assert dependence(Effect(0.6, 0.7, 0.5)) == "the answer is more likely without them"
    assert dependence(Effect(0.6, 0.59, 0.5)) == "the answer barely changes without them"
    assert [percent(p) for p in (0.62, 0.083, 0.0004)] == ["62%", "8.3%", "0.04%"]
    assert re.fullmatch(r"\d+%", percent(1.0))
