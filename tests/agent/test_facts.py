"""Facts from code: evidence, schemas and the deterministic checks, on a real record."""

import json
from dataclasses import replace

import pytest

from attnlens.agent.facts import (
    LABELS,
    MAX_RATIONALE,
    DeletionEffect,
    Draft,
    build_facts,
    check,
    draft_schema,
    is_content_word,
    template,
)
from attnlens.clustering import cluster
from attnlens.extraction import CaptureConfig, capture, generate

pytestmark = pytest.mark.slow

PROMPT = "Mia has 3 apples and buys 4 more. The sky is blue today. How many apples does Mia have now?"


@pytest.fixture(scope="module")
def facts(smollm):
    gen = generate(smollm, PROMPT, max_new_tokens=12)
    record = capture(smollm, gen, CaptureConfig())
    clustering = cluster(record)
    deletion = {c.id: (0.5, 0.25) for c in clustering.clusters}
    return build_facts(record, clustering, deletion), clustering


def good_draft(f):
    ev = f.evidence
    return Draft(
        label=f.allowed_labels[0],
        evidence_tokens=f.tokens[:2],
        rationale=f"Tokens like {f.tokens[0].strip()} get {ev.share_of_answer_attention_percent}% of the answer's attention.",
    )


def test_evidence_is_json_data_and_cites_only_the_cluster(facts):
    facts, clustering = facts
    assert len(facts) == len(clustering.clusters)
    for f, c in zip(facts, clustering.clusters):
        json.dumps(f.evidence.to_dict())
        assert set(f.tokens) <= set(c.texts)
        assert f.evidence.question == PROMPT
        assert f.evidence.deleting_these_tokens == DeletionEffect(50.0, 25.0)
        assert set(f.allowed_labels) <= set(LABELS) and "other" in f.allowed_labels


def test_schema_closes_labels_and_tokens(facts):
    f = facts[0][0]
    schema = draft_schema(f)
    props = schema["properties"]
    assert props["label"]["enum"] == list(f.allowed_labels)
    assert props["evidence_tokens"]["items"]["enum"] == f.tokens
    assert props["evidence_tokens"]["maxItems"] == 4 and props["rationale"]["maxLength"] == MAX_RATIONALE
    assert schema["additionalProperties"] is False


def test_checks_accept_a_grounded_draft_and_name_each_problem(facts):
    f = facts[0][0]
    assert check(f, good_draft(f)) == []
    share = f.evidence.share_of_answer_attention_percent
    rounded = f"{f.tokens[0].strip()} and its cluster get {round(share)}% of the attention."
    assert check(f, replace(good_draft(f), rationale=rounded)) == []
    bad_number = replace(good_draft(f), rationale="They get 97.3% of the answer's attention, in layer 912.")
    assert any("912" in p for p in check(f, bad_number))
    foreign = replace(good_draft(f), evidence_tokens=["not-a-token-of-this-cluster"])
    assert any("not in this cluster" in p for p in check(f, foreign))
    assert any("does not fit" in p for p in check(f, replace(good_draft(f), label="no such label")))
    assert check(f, None) == ["no valid draft"]


def test_claims_about_other_clusters_tokens_are_refused(facts):
    facts_, _ = facts
    for f in facts_:
        if f.outside_words:
            word = sorted(f.outside_words)[0]
            problems = check(f, replace(good_draft(f), rationale=f"The model relied on the word {word} here."))
            assert any("outside this cluster" in p and word in p for p in problems)
            quoted = check(f, replace(good_draft(f), rationale='It copies "zebra crossing" into the answer.'))
            assert any("quotes" in p for p in quoted)
            return
    pytest.fail("no cluster has words outside it")


def test_numeric_label_needs_a_number(facts):
    for f in facts[0]:
        numeric = f.evidence.token_types.get("number", 0) > 0
        assert ("numeric operand" in f.allowed_labels) == numeric


def test_the_template_passes_every_check(facts):
    for f in facts[0]:
        t = template(f)
        assert check(f, t) == [], (t, check(f, t))


def test_small_model_failure_modes_are_caught(facts):
    """What SmolLM2-135M actually produced in drafts: loops, copies of the input, parroted problems."""
    f = facts[0][0]
    token = f.tokens[0]
    loop = replace(good_draft(f), evidence_tokens=[token], rationale=f"The answer uses {token}. " * 3)
    assert "the rationale repeats itself" in check(f, loop)
    copy = replace(good_draft(f), evidence_tokens=[token], rationale=f"{token}: " + PROMPT)
    assert any("copies the input" in p for p in check(f, copy))
    parrot = replace(good_draft(f), rationale="the number is not in the evidence, so it was rejected")
    assert any("does not mention any of the" in p for p in check(f, parrot))
    assert len(check(f, replace(loop, rationale=loop.rationale + " 9999 and 9999."))) == len(set(check(f, loop))) + 1


def test_mentioning_only_a_function_word_is_not_enough(facts):
    for f in facts[0]:
        content = [t for t in f.tokens if is_content_word(t)]
        function = [t for t in f.tokens if t.strip().lower() in ("the", "a", "is", "are", "of")]
        if content and function:
            draft = Draft(f.allowed_labels[0], [function[0], content[0]],
                          f"{function[0].strip()} answer is about this part of the question overall.")
            assert any("content tokens" in p for p in check(f, draft))
            return
    pytest.skip("no cluster mixes function and content tokens in this record")
