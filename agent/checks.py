"""The deterministic checks every rationale must pass before it is shown as the LLM's.

Each check has a stable name (the audit trail and the acceptance table use it) and returns what
it found wrong, or None. They read the LLM's sentence and the whole shown text (the sentence plus
the facts code adds); a draft passes when every check returns None. The grammar (agent.grammar)
already makes some failures impossible; the checks hold on any backend, grammar or not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from attnlens.agent.facts import (
    LETTERS,
    MAX_RATIONALE,
    NUMBER,
    ClusterFacts,
    Draft,
    compose,
    is_content_word,
    opening_words,
)

COPY_RUN = 5  # this many words in a row taken from the prompt or the answer is a copy, not an explanation
MIN_SENTENCE = 15
# 'x' or "x" standing alone (an apostrophe inside a word, as in answer's, is not a quote)
_QUOTED = re.compile(r"(?<!\w)'([^']{1,60})'(?!\w)|\"([^\"]{1,60})\"|“([^”]{1,60})”")


@dataclass(frozen=True)
class Problem:
    check: str  # the name of the check that failed
    message: str  # what it found, in words the refine step reads

    def __str__(self) -> str:
        return self.message


def _label(f: ClusterFacts, d: Draft, text: str) -> str | None:
    if d.label not in f.allowed_labels:
        return f"the label {d.label!r} does not fit these words; choose one of: {', '.join(f.allowed_labels)}"
    return None


def _cites_own_words(f: ClusterFacts, d: Draft, text: str) -> str | None:
    if not d.evidence_tokens:
        return "it quotes none of the cluster's words"
    foreign = [t for t in d.evidence_tokens if t not in f.words]
    if foreign:
        return f"it cites words that are not in this cluster: {', '.join(map(repr, foreign))}"
    return None


def _names_evidence(f: ClusterFacts, d: Draft, text: str) -> str | None:
    cited = [t for t in d.evidence_tokens if t in f.words]
    content = [t for t in cited if is_content_word(t)]
    if any(mentions(d.sentence, t) for t in (content or cited)):
        return None
    wanted = content or list(f.citable[:3])
    return f"the sentence must name at least one of these words: {', '.join(map(repr, wanted))}"


def _no_copy(f: ClusterFacts, d: Draft, text: str) -> str | None:
    for source, what in ((f.answer, "the answer"), (f.prompt, "the question")):
        run = copied_run(d.sentence, source)
        if run:
            return f"it copies {what} ({run!r}) instead of saying what these words do"
    return None


def _numbers(f: ClusterFacts, d: Draft, text: str) -> str | None:
    known = f.numbers
    wrong = [n for n in NUMBER.findall(text) if not any(same_number(n, k) for k in known)]
    if wrong:
        return f"it states {', '.join(wrong)}, which is not a measured fact or a number of the question or answer"
    return None


def _length(f: ClusterFacts, d: Draft, text: str) -> str | None:
    if len(d.sentence.strip()) < MIN_SENTENCE:
        return f"the sentence is shorter than {MIN_SENTENCE} characters"
    if len(text) > MAX_RATIONALE:
        return f"the rationale is {len(text)} characters, more than {MAX_RATIONALE}: shorten the sentence"
    return None


def _no_outside_words(f: ClusterFacts, d: Draft, text: str) -> str | None:
    words = [w.lower() for w in LETTERS.findall(d.sentence)]
    named = sorted({w for w in words if w in f.outside_names})
    if named:
        return f"it names words of the question outside this cluster: {', '.join(named)}"
    pairs = [f"{a} {b}" for a, b in zip(words, words[1:]) if a in f.outside_words and b in f.outside_words]
    if pairs:
        return f"it repeats text of the question outside this cluster: {pairs[0]!r}"
    for groups in _QUOTED.findall(d.sentence):
        inner = next(g for g in groups if g).strip()
        if inner and inner not in f.words and inner.lower() not in f.answer.lower():
            return f"it quotes {inner!r}, which is neither a word of this cluster nor part of the answer"
    return None


def _no_invented_names(f: ClusterFacts, d: Draft, text: str) -> str | None:
    known = f"{f.prompt} {f.answer}".lower()
    body = re.sub(r"'[^']*'", " ", d.sentence)  # quoted words are the cluster's own
    names = [m.group() for m in re.finditer(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w’-]*", body.strip())]
    invented = [n for n in dict.fromkeys(names) if n.lower() not in known and n not in ("I",)]
    if invented:
        return f"it names {', '.join(map(repr, invented))}, which the question and the answer never mention"
    return None


def _no_repeats(f: ClusterFacts, d: Draft, text: str) -> str | None:
    quoted = opening_words(d.sentence)
    if len(quoted) != len(set(quoted)):
        return "it opens with the same word twice"
    sentences = [s.strip().lower() for s in re.split(r"[.!?]+", d.sentence) if len(s.split()) >= 3]
    words = re.findall(r"\w+", d.sentence.lower())
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    if len(sentences) != len(set(sentences)) or len(grams) != len(set(grams)):
        return "it repeats itself"
    return None


# name -> (what it asks, the check). The order is the order problems are reported in.
CHECKS: dict[str, tuple[str, Callable[[ClusterFacts, Draft, str], str | None]]] = {
    "label": ("its label is one of the roles that fit the cluster's words", _label),
    "cites_own_words": ("it cites only its cluster's words", _cites_own_words),
    "names_evidence": ("it names at least one of its evidence words", _names_evidence),
    "no_copy": (f"it copies no run of {COPY_RUN} words from the answer or the question", _no_copy),
    "numbers": ("every number it states is a measured fact or in the question or answer", _numbers),
    "length": (f"at most {MAX_RATIONALE} characters in all", _length),
    "no_outside_words": ("it repeats no text of the question outside its cluster (nothing the user injected)", _no_outside_words),
    "no_invented_names": ("it names nothing, no person, place or language, that the question and answer do not", _no_invented_names),
    "no_repeats": ("it does not repeat itself", _no_repeats),
}


def check(facts: ClusterFacts, draft: Draft | None) -> list[Problem]:
    """Every problem the code can prove in a draft; an empty list means it passes."""
    if draft is None:
        return [Problem("parsed", "there is no valid draft")]
    text = compose(facts, draft.sentence)
    problems = []
    for name, (_, run) in CHECKS.items():
        found = run(facts, draft, text)
        if found:
            problems.append(Problem(name, found))
    return problems


def mentions(text: str, word: str) -> bool:
    """The word appears in the text (as a whole word when it is one), case-insensitively."""
    word = word.strip()
    if not word:
        return False
    if word[0].isalnum() and word[-1].isalnum():
        return re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", text, re.IGNORECASE) is not None
    return word in text


def copied_run(text: str, source: str, length: int = COPY_RUN) -> str | None:
    """The first run of `length` words the text takes verbatim from the source, if any."""
    words = re.findall(r"\w+", text.lower())
    joined = " " + " ".join(re.findall(r"\w+", source.lower())) + " "
    for i in range(len(words) - length + 1):
        run = " ".join(words[i : i + length])
        if f" {run} " in joined:
            return run
    return None


def same_number(written: str, known: float) -> bool:
    """"23" matches 23.4 (rounded to the precision written); "24" does not."""
    written = written.replace(",", "")
    decimals = len(written.split(".")[1]) if "." in written else 0
    return round(known, decimals) == float(written)
