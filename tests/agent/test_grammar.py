"""The agent's grammars: what they let through, what they make impossible, and that the engines
compile them (llguidance, which vLLM and the transformers fallback both run here)."""

import re

import pytest
from outlines.types.dsl import to_regex

from attnlens.agent.facts import ClusterFacts, Effect, Evidence, plausible_labels
from attnlens.agent.grammar import (
    CRITIC_REASONS,
    allowed_numbers,
    critique_grammar,
    draft_grammar,
    literal,
    parse_draft,
    parse_verdict,
)
from attnlens.prompts import examples

PROMPT = "What is 12 times 7? (Use a.b notation.)"
WORDS = ("12", "times", "a.b", "?")


def facts(words=WORDS, prompt=PROMPT, answer="12 times 7 is 84.") -> ClusterFacts:
    citable = tuple(w for w in words if w != "?")
    return ClusterFacts(
        id=0, evidence=Evidence(prompt, answer, citable), words=words, citable=citable,
        effect=Effect(0.6, 0.1, 0.4), layers=(3, 4), prompt=prompt, answer=answer,
        outside_words=frozenset(), outside_names=frozenset(),
        allowed_labels=plausible_labels(words, prompt), default_label="numeric operand",
    )


def matches(grammar, text: str) -> bool:
    return re.fullmatch(to_regex(grammar), text) is not None


def test_a_good_line_matches():
    line = "numeric operand: '12' and 'times' set the product to find, so the answer multiplies 12 by 7 to get 84."
    assert matches(draft_grammar(facts()), line)
    draft = parse_draft(line)
    assert draft.label == "numeric operand" and draft.evidence_tokens == ("12", "times")
    assert draft.sentence.startswith("'12' and 'times'")


@pytest.mark.parametrize(
    "line, why",
    [
        ("numeric operand: '12' and 'times' set the product, so the answer multiplies them to get 85.", "85 is nowhere"),
        ("numeric operand: '12' and 'times' set the product, so the answer writes 1284 instead.", "no number by juxtaposition"),
        ("numeric operand: '12' and 'seven' set the product, so the answer multiplies them.", "'seven' is not a cluster word"),
        ("numeric operand: the words set the product, so the answer multiplies them.", "it must open with a cluster word"),
        ("numeric operand: '12' sets the product, and the answer multiplies them.", "no ', so the answer'"),
        ("poetic device: '12' sets the product, so the answer multiplies them.", "not a label"),
        ("function words: '12' sets the product, so the answer multiplies them.", "a label whose precondition fails"),
        ("numeric operand: '12' sets the product \"quoted\", so the answer multiplies them.", "a double quote"),
        ("numeric operand: '12' sets the product, so the answer multiplies them", "no full stop"),
        ("numeric operand: '12' sets 这个, so the answer multiplies them.", "not Latin script"),
        ("numeric operand: 'times' sets it, so the answer " + "x" * 61 + ".", "too long"),
    ],
)
def test_what_the_grammar_makes_impossible(line, why):
    assert not matches(draft_grammar(facts()), line), why


def test_numbers_come_from_the_question_and_answer_only():
    assert set(allowed_numbers(facts())) == {"12", "7", "84"}
    assert not matches(draft_grammar(facts()), "numeric operand: 'times' gives 62 percent, so the answer multiplies.")


def test_a_dotted_run_of_digits_is_read_not_crashed_on():
    # An answer such as "32.123.123.21" (an address) once stopped a 500-case annotation with
    # "could not convert string to float": every number the facts hold must be a number.
    f = facts(answer="The server is at 32.123.123.21, port 8,080.")
    assert allowed_numbers(f)[:2] == ["32.123", "8,080"]
    assert {32.123, 8080.0} <= f.numbers


def test_every_example_line_matches_its_own_grammar():
    assert len(examples().items) >= 12
    for e in examples().items:
        f = ClusterFacts.from_dict(e["facts"])
        assert e["label"] in f.allowed_labels
        assert matches(draft_grammar(f), f"{e['label']}: {e['sentence']}"), e["sentence"]
        assert e["values"] == f.evidence.slots()


def test_verdicts():
    grammar = critique_grammar()
    assert matches(grammar, "accept") and matches(grammar, "revise: too vague")
    assert not matches(grammar, "revise: I do not like it") and not matches(grammar, "reject")
    assert parse_verdict("accept") == ("accept", None)
    assert parse_verdict("revise: restates the answer") == ("revise", CRITIC_REASONS["restates the answer"])
    assert parse_verdict("revise: nonsense") == ("accept", None)


def test_literals_escape_only_what_regexes_need():
    assert to_regex(literal("a.b (c)")) == r"(a\.b \(c\))"
    assert re.fullmatch(to_regex(literal("x+y? [z]")), "x+y? [z]")


def test_llguidance_compiles_every_grammar_for_the_writer():
    """The engines' grammar library accepts the regexes as outlines writes them (a regex it
    cannot parse would fail every request of a batch at run time)."""
    import llguidance.hf
    from llguidance import LLMatcher
    from transformers import AutoTokenizer

    from attnlens.extraction.models import resolve_model

    tokenizer = llguidance.hf.from_tokenizer(AutoTokenizer.from_pretrained(resolve_model("qwen2.5-0.5b").path))
    grammars = [draft_grammar(facts()), critique_grammar()] + [
        draft_grammar(ClusterFacts.from_dict(e["facts"])) for e in examples().items
    ]
    for grammar in grammars:
        matcher = LLMatcher(tokenizer, LLMatcher.grammar_from_regex(to_regex(grammar)))
        assert not matcher.is_error(), matcher.get_error()
