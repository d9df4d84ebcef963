"""The grammars every LLM output of the agent must match, built with outlines' regex DSL.

A draft (or a refinement) is one line, `<label>: <sentence>`. The label is one of the roles whose
precondition holds for the cluster's words (agent.facts.plausible_labels). The sentence opens
with the cluster's own words, quoted, says what they do, and then what that does to the answer:
`relation word: 'capital' asks for a city, so the answer names Cairo.` Inside the sentence a
quote can only be one of the cluster's words and a number only one of the question's or the
answer's; measured figures are not the LLM's to write (code adds them, agent.facts.compose). A
verdict is `accept` or `revise: <one of a closed set of reasons>`. The backends hand the same
outlines term to vLLM (per request, in one batched call) or to outlines' own generator
(transformers), so the constraint is the same everywhere.
"""

from __future__ import annotations

import re

from outlines.types import Regex, between, either, optional
from outlines.types.dsl import Term

from attnlens.agent.facts import MAX_CITED, NUMBER, ClusterFacts, Draft, opening_words

ROLE_CHARS = (8, 60)  # what the words do: characters (or quoted words, or numbers) after the opening words
EFFECT_CHARS = (4, 60)  # what that does to the answer, after ", so the answer "
SO = ", so the answer "
# printable ASCII and Latin letters, but no quote, backslash or digit (numbers come from the choices below)
_FREE_CHAR = Regex(r"[ !#-&(-/:-\[\]-~" + "\u00c0-\u024f]")
_END = Regex(r"[.!]")
_SPECIAL = re.compile(r"([\\^$.|?*+()\[\]{}])")

# What the LLM critic may object to: a closed set, so the refine step knows exactly what to fix.
CRITIC_REASONS = {
    "restates the answer": "it restates the answer instead of saying what these words do for it",
    "unsupported claim": "it claims something the question and answer do not show",
    "too vague": "it is too vague to tell a reader why these words matter",
    "not about these words": "it is not about these words",
}


def literal(text: str) -> Regex:
    """`text` matched as is. (outlines' String escapes spaces too, as re.escape does, which
    xgrammar's regex parser warns about on stderr for every request.)"""
    return Regex(_SPECIAL.sub(r"\\\1", text))


def _choice(texts) -> Term:
    return either(*[literal(t) for t in texts])


def _quoted_word(words) -> Term:
    return literal("'") + _choice(words) + literal("'")


def _opening(words: tuple[str, ...]) -> Term:
    """One to three distinct words of the cluster, quoted: 'a', 'a' and 'b', 'a', 'b' and 'c'.
    The first may be any of them; the others come from its first four (content words first)."""
    words = tuple(dict.fromkeys(words))
    openings = []
    for first in words:
        rest = [w for w in words[:4] if w != first]
        openings.append(f"'{first}'")
        for second in rest:
            openings.append(f"'{first}' and '{second}'")
            for third in rest:
                if third != second:
                    openings.append(f"'{first}', '{second}' and '{third}'")
    return _choice(openings)


def allowed_numbers(facts: ClusterFacts) -> list[str]:
    """The numbers a sentence may write: those of the question and the answer, as written there."""
    found = dict.fromkeys(NUMBER.findall(facts.prompt) + NUMBER.findall(facts.answer))
    return sorted(found, key=lambda n: (-len(n), n))[:40]


def draft_grammar(facts: ClusterFacts) -> Term:
    """`<label>: <sentence>` for this cluster (see the module docstring)."""
    word = _quoted_word(facts.citable or facts.words)
    units = [_FREE_CHAR, word]
    numbers = allowed_numbers(facts)
    ending = _END
    if numbers:  # a number is followed by a character that is not a digit: no new numbers by juxtaposition
        units.append(_choice(numbers) + _FREE_CHAR)
        ending = optional(_choice(numbers)) + _END
    unit = either(*units)
    sentence = _opening(facts.citable or facts.words) + literal(" ") + between(*ROLE_CHARS, unit) + literal(SO) + between(*EFFECT_CHARS, unit) + ending
    return _choice(facts.allowed_labels) + literal(": ") + sentence


def critique_grammar() -> Term:
    return either(literal("accept"), literal("revise: ") + _choice(CRITIC_REASONS))


def parse_draft(text: str) -> Draft | None:
    """The draft in a grammar-valid line; None when the text does not have the line's shape."""
    label, sep, sentence = text.strip().partition(": ")
    if not sep or not sentence.strip():
        return None
    sentence = sentence.strip()
    return Draft(label, sentence, tuple(dict.fromkeys(opening_words(sentence)))[:MAX_CITED])


def parse_verdict(text: str) -> tuple[str, str | None]:
    """("accept", None) or ("revise", the reason in full); anything else reads as accept."""
    verdict, _, reason = text.strip().partition(": ")
    if verdict == "revise" and reason in CRITIC_REASONS:
        return "revise", CRITIC_REASONS[reason]
    return "accept", None
