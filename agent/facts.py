"""Facts from code: what the agent is told about each cluster, and the parts of a rationale code writes.

Everything here is deterministic. A cluster is a set of the user's words; its `Evidence` (the
question, the answer, the cluster's words, who in the answer reads them) is what the LLM sees.
The LLM writes one sentence about the words' role (agent.grammar constrains it); `compose` then
adds the measured facts in code's own words: the answer's probability with and without the
words, beside random sets of as many words, and the answer words and layers that read them.
`template` is the rationale shown when no LLM sentence passes the checks (agent.checks).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from attnlens.clustering import Clustering
from attnlens.evaluation.faithfulness import FaithfulnessReport
from attnlens.extraction.record import AttentionRecord
from attnlens.extraction.words import user_words

# The roles a cluster can play (the closed set the LLM picks its label from) and how the template says each.
ROLES: dict[str, str] = {
    "subject entity": "the entity the question is about",
    "relation word": "the relation the question asks about",
    "numeric operand": "the numbers the answer works with",
    "task instruction": "the task the answer carries out",
    "instruction constraint": "a constraint the answer must meet",
    "context detail": "context the answer draws on",
    "function words": "function words that hold the question together",
    "punctuation/format": "punctuation that shapes the question",
    "other": "words of the question",
}
LABELS = tuple(ROLES)
MAX_RATIONALE = 240  # the whole shown rationale: the LLM's sentence plus the facts code adds
MAX_SENTENCE = 120  # the LLM's sentence
MAX_CITED = 3
MAX_WORDS_SHOWN = 12  # the cluster's words the LLM sees and may quote
MAX_QUESTION = 600  # characters of the question and the answer shown to the LLM
MAX_ANSWER = 240

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?")  # "1,234.5"; "1.2.3.4" reads as 1.2
LETTERS = re.compile(r"[^\W\d_]{3,}")
_OPENING = re.compile(r"'[^']+'(?:(?:, | and )'[^']+')*")
ANSWER_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
COMMON_WORDS = frozenset(
    """the and for that this with from into onto what which who whom whose when where why how are was were
    is be been being has have had not but its it's their them they these those than then there here also
    about over under more most less least very much many some any each all both either neither such only
    same other another own answer answers answered question questions word words text number numbers
    share percent layer layers probability likely relies rely relied uses used use using helps help
    helped gives give given shows show showed tells tell told says say said makes make made because so
    thus therefore while whereas strongly strong part parts role roles asks ask asked""".split()
)
TASK_WORDS = frozenset(
    """write tell describe translate spell give list name explain summarize summarise rewrite add subtract
    multiply divide calculate compute solve count sort compare define find choose classify answer reply
    complete continue begin start finish generate create compose draft make convert fix correct""".split()
)
CONSTRAINT_WORDS = frozenset(
    """one two three four five single sentence sentences word words line lines paragraph short tiny brief
    only exactly without backwards reverse reversed uppercase lowercase caps list bullet
    bullets json format rhyme rhyming haiku poem limerick title tense plural singular opposite synonym
    formal informal polite simple maximum minimum most least under less more than starting ending""".split()
)
LANGUAGES = frozenset(
    "English French Spanish German Italian Portuguese Dutch Russian Chinese Japanese Korean Arabic Hindi "
    "Latin Greek Turkish Polish Swedish Norwegian Danish Finnish Python JavaScript Java SQL".split()
)
FUNCTION_WORDS = frozenset(
    """a an the of to in on at by for with from into onto as and or but if then than that this these those
    is are was were be been am do does did has have had it its it's he she they we you i me him her them us
    my your his our their what which who whom whose when where why how not no""".split()
)


@dataclass(frozen=True)
class Effect:
    """What deleting the cluster's words from the prompt does to the answer (teacher-forced,
    geometric mean per answer token), beside random sets of as many of the user's words."""

    before: float  # p(answer | prompt)
    after: float  # p(answer | prompt without the cluster's words)
    random_after: float | None  # mean p(answer) over random same-size word sets deleted


@dataclass(frozen=True)
class Evidence:
    """What the LLM is told about one cluster (JSON data in its prompt)."""

    question: str
    answer: str
    words: tuple[str, ...]  # the words a rationale may quote: content words first (at most MAX_WORDS_SHOWN)
    dependence: str | None = None  # how much the answer depends on them, in words (see `dependence`)
    read_most_by: tuple[str, ...] = ()  # the answer's words that attend most to these words

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if v not in (None, ())}

    def slots(self) -> dict:
        """The prompt's two data blocks: the case (shared by the case's clusters) and the words."""
        data = self.to_dict()
        return {"case": {k: data[k] for k in ("question", "answer")}, "words": {k: data[k] for k in ("words", "dependence") if k in data}}


@dataclass(frozen=True)
class ClusterFacts:
    """One cluster as the agent sees it: evidence for the LLM, and what code checks and states."""

    id: int
    evidence: Evidence
    words: tuple[str, ...]  # every word of the cluster, prompt order
    citable: tuple[str, ...]  # the words a rationale may quote: content words first (MAX_WORDS_SHOWN at most)
    effect: Effect | None
    layers: tuple[int, ...]  # the layers whose answer attention falls most on these words
    prompt: str
    answer: str
    outside_words: frozenset[str]  # the user's words outside the cluster (lower case): no two in a row may be named
    outside_names: frozenset[str]  # those written with a capital in the prompt and absent from the answer: none may be named
    allowed_labels: tuple[str, ...]
    default_label: str

    def slots(self) -> dict:
        """The prompt's data blocks: the evidence's, with the role code guesses for the words in the
        words block (after the case, which every cluster of the case shares)."""
        slots = self.evidence.slots()
        return {**slots, "words": {**slots["words"], "likely role": self.default_label}}

    @property
    def numbers(self) -> frozenset[float]:
        """Every number a rationale may state: the facts code states, and those of the prompt and answer."""
        return frozenset(_numbers(self.prompt) | _numbers(self.answer) | _numbers(facts_sentence(self)))

    def context(self) -> str:
        """Everything a rationale may rest on, as plain statements: what a grounding judge checks it against."""
        lines = [
            f"The question is: {self.prompt}",
            f"The model's answer is: {self.answer.strip()}",
            f"The group of the question's words is: {quoted(self.words)}.",
        ]
        if self.evidence.dependence:
            lines.append(f"Measured by deleting the words: {self.evidence.dependence}.")
        measured = facts_sentence(self)
        if measured:
            lines.append(measured)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["outside_words"] = sorted(self.outside_words)
        data["outside_names"] = sorted(self.outside_names)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ClusterFacts":
        ev = data["evidence"]
        evidence = Evidence(
            ev["question"], ev["answer"], tuple(ev["words"]), ev.get("dependence"), tuple(ev.get("read_most_by", ()))
        )
        effect = Effect(**data["effect"]) if data.get("effect") else None
        return cls(
            **{
                **data,
                "evidence": evidence,
                "effect": effect,
                "words": tuple(data["words"]),
                "citable": tuple(data["citable"]),
                "layers": tuple(data["layers"]),
                "outside_words": frozenset(data["outside_words"]),
                "outside_names": frozenset(data["outside_names"]),
                "allowed_labels": tuple(data["allowed_labels"]),
            }
        )


@dataclass(frozen=True)
class Draft:
    """What the LLM wrote for one cluster (grammar-valid), before the checks."""

    label: str
    sentence: str  # the LLM's own words: the role of the cluster's words in this answer
    evidence_tokens: tuple[str, ...]  # the cluster words the sentence quotes


@dataclass
class Rationale:
    """The rationale shown for one cluster, and how it came to be."""

    label: str
    rationale: str  # what the user reads: the sentence, then the facts code adds
    evidence_tokens: list[str]
    source: Literal["llm", "template"]  # template: no LLM sentence passed the checks
    sentence: str = ""  # the part the LLM wrote (source "llm") or code wrote (source "template")
    problems: list[str] = field(default_factory=list)  # what the checks found in the last draft (template only)
    rounds: int = 0  # refine rounds run
    sent_to_llm: bool = True  # False: the LLM never saw this cluster (beyond max_llm_clusters)
    unresolved_critique: str | None = None  # the LLM critic's last objection to a draft the checks passed

    @classmethod
    def from_draft(cls, facts: ClusterFacts, draft: Draft, **kwargs) -> "Rationale":
        return cls(draft.label, compose(facts, draft.sentence), list(draft.evidence_tokens), sentence=draft.sentence, **kwargs)

    def draft(self) -> Draft:
        """The draft this rationale shows, to run the checks on again."""
        return Draft(self.label, self.sentence, tuple(self.evidence_tokens))


# ------------------------------------------------------------------ building the facts


def _numbers(text: str) -> set[float]:
    return {float(m.replace(",", "")) for m in NUMBER.findall(text)}


def opening_words(sentence: str) -> list[str]:
    """The quoted words a line's sentence opens with ('a', 'b' and 'c'), as written, repeats kept."""
    opening = _OPENING.match(sentence)
    return re.findall(r"'([^']+)'", opening.group()) if opening else []


def is_number(word: str) -> bool:
    return bool(NUMBER.fullmatch(word.strip()))


def is_punctuation(word: str) -> bool:
    return not any(ch.isalnum() for ch in word)


def is_content_word(word: str) -> bool:
    """A word that carries meaning: a number, or three letters or more and not a function word."""
    w = word.strip().lower()
    return is_number(w) or (len(w) >= 3 and any(ch.isalpha() for ch in w) and w not in COMMON_WORDS and w not in FUNCTION_WORDS)


def _context_sentence(words: tuple[str, ...], prompt: str) -> bool:
    """The words all come from a statement of the prompt that is not its last sentence (the
    background of a question, as in "The rock hit the window and it shattered. What shattered?")."""
    sentences = [x for x in re.split(r"(?<=[.!?])\s+", prompt.strip()) if x]
    if len(sentences) < 2:
        return False
    background = " ".join(x for x in sentences[:-1] if not x.endswith("?")).lower()
    content = [w.lower() for w in words if is_content_word(w)]
    return bool(content) and all(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", background) for w in content)


def prompt_kind(prompt: str) -> str:
    """"task" (an instruction: Write..., Translate...), "context" (statements, then a question) or "question"."""
    stripped = prompt.strip()
    first = stripped.split()[0].lower().strip(".,:;!?\"'") if stripped else ""
    if first in TASK_WORDS:
        return "task"
    if len([x for x in re.split(r"(?<=[.!?])\s+", stripped) if x]) > 1:
        return "context"
    return "question"


def plausible_labels(words: tuple[str, ...], prompt: str = "") -> tuple[str, ...]:
    """Labels whose precondition holds for these words (the rest are not offered to the LLM)."""
    lower = {w.lower() for w in words}
    content = [w for w in words if is_content_word(w) and not is_number(w)]
    allowed = []
    for label in LABELS:
        if label == "numeric operand" and not any(is_number(w) for w in words):
            continue
        if label == "punctuation/format" and not all(is_punctuation(w) for w in words):
            continue
        if label == "function words" and content:
            continue
        if label in ("subject entity", "relation word") and not content:
            continue
        if label == "context detail" and not _context_sentence(words, prompt):
            continue
        if label == "task instruction" and not lower & TASK_WORDS:
            continue
        if label == "instruction constraint" and not (
            lower & CONSTRAINT_WORDS or any(is_number(w) for w in words) or any(w in LANGUAGES for w in words)
        ):
            continue
        allowed.append(label)
    return tuple(allowed)


def default_label(words: tuple[str, ...], prompt: str = "") -> str:
    """The role code guesses from the words' make-up: the template's label, and the role whose
    examples the LLM is shown (it may choose another of the plausible labels)."""
    allowed = plausible_labels(words, prompt)
    order = ("punctuation/format", "numeric operand", "function words", "task instruction", "instruction constraint", "context detail")
    for label in order:
        if label in allowed:
            return label
    if "subject entity" not in allowed:
        return "other"
    if prompt_kind(prompt) == "task" or any(w.lower() in _names(prompt) for w in words):
        return "subject entity"  # the topic of a task, or a name
    return "relation word"


def _answer_readers(record: AttentionRecord, tokens: list[int], count: int = 2) -> tuple[str, ...]:
    """The answer's content words whose tokens attend most (answer rows, mean over layers and
    heads) to `tokens`; none when the answer has no content word."""
    gen = record.generation
    if gen.answer_start >= len(gen.tokens) or not tokens:
        return ()
    rows = record.answer_rows().mean((0, 1)).numpy()  # A n
    rows = rows / np.maximum(rows.sum(-1, keepdims=True), 1e-12)
    share = rows[:, tokens].sum(-1)
    text, base = gen.text, gen.tokens[gen.answer_start].start
    spans = [(base + m.start(), base + m.end(), m.group()) for m in ANSWER_WORD.finditer(text[base:])]
    per_word: dict[str, float] = {}
    for a, t in enumerate(gen.tokens[gen.answer_start :]):
        word = next((w for s, e, w in spans if s < t.end and t.start < e), None)
        if word is not None and is_content_word(word) and not is_number(word) and "'" not in word:
            per_word[word] = per_word.get(word, 0.0) + float(share[a])
    return tuple(sorted(per_word, key=lambda w: -per_word[w])[:count])


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def build_facts(
    record: AttentionRecord, clustering: Clustering, report: FaithfulnessReport | None = None
) -> list[ClusterFacts]:
    """Facts for every cluster; `report` (verify_clusters, in the clustering's order) gives the
    measured effect of deleting each cluster's words."""
    gen = record.generation
    user = [w.text for w in user_words(gen)]
    answer_words = _letter_runs([gen.answer])
    capitalised = _names(gen.prompt)
    scores = report.clusters if report is not None else [None] * len(clustering.clusters)
    facts = []
    for cluster, measured in zip(clustering.clusters, scores):
        words = tuple(cluster.words)
        citable = _citable(words)
        effect = None
        if measured is not None and measured.tokens:
            before = report.answer_probability
            random_after = None if measured.random_comprehensiveness is None else before - measured.random_comprehensiveness
            effect = Effect(before, before - measured.comprehensiveness, random_after)
        outside = _letter_runs(user) - _letter_runs(words) - answer_words - COMMON_WORDS - FUNCTION_WORDS
        names = {w for w in outside if w in capitalised}
        facts.append(
            ClusterFacts(
                id=cluster.id,
                evidence=Evidence(
                    question=_clip(gen.prompt, MAX_QUESTION),
                    answer=_clip(gen.answer.strip(), MAX_ANSWER),
                    words=citable,
                    dependence=dependence(effect),
                    read_most_by=_answer_readers(record, list(cluster.tokens)),
                ),
                words=words,
                citable=citable,
                effect=effect,
                layers=tuple(int(layer) for layer, _ in cluster.top_layers[:2]),
                prompt=gen.prompt,
                answer=gen.answer,
                outside_words=frozenset(outside),
                outside_names=frozenset(names),
                allowed_labels=plausible_labels(words, gen.prompt),
                default_label=default_label(words, gen.prompt),
            )
        )
    return facts


def dependence(effect: Effect | None) -> str | None:
    """The measured effect in words, for the LLM (the figures themselves are code's to state)."""
    if effect is None:
        return None
    drop = effect.before - effect.after
    if drop < -0.02:
        return "the answer is more likely without them"
    if drop < 0.02:
        return "the answer barely changes without them"
    if effect.random_after is None:
        return "the answer is less likely without them"
    random_drop = effect.before - effect.random_after
    if drop > random_drop + 0.05:
        return "the answer needs them more than random words"
    if drop < random_drop - 0.05:
        return "the answer needs them less than random words"
    return "the answer needs them about as much as random words"


def _names(text: str) -> set[str]:
    """Words the text writes as names (lower case): a capital not at the start of a sentence, or all capitals."""
    found = {m.group().lower() for m in re.finditer(r"(?<![.!?:]\s)(?<!^)\b[A-Z][^\W\d_]{2,}", text.strip())}
    return found | {m.lower() for m in LETTERS.findall(text) if m.isupper()}


def _letter_runs(texts) -> set[str]:
    """The runs of three letters or more in these texts, lower case (how the checks find words)."""
    return {m.lower() for text in texts for m in LETTERS.findall(text)}


def _citable(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words a rationale may quote: distinct, content words first, then the rest (no whitespace, no quotes)."""
    distinct = [w for w in dict.fromkeys(words) if w.strip() and "'" not in w and '"' not in w and "\\" not in w]
    content = [w for w in distinct if is_content_word(w)]
    rest = [w for w in distinct if w not in content and not is_punctuation(w)]
    punct = [w for w in distinct if is_punctuation(w)]
    return tuple((content + rest + punct)[:MAX_WORDS_SHOWN])


# ------------------------------------------------------------------ the parts code writes


def percent(p: float) -> str:
    """A probability as the rationale writes it: 62%, 8.3%, 0.05%."""
    x = 100 * p
    if x >= 9.95:
        return f"{x:.0f}%"
    if x >= 0.995:
        return f"{x:.1f}%"
    return f"{x:.2f}%"


def quoted(words) -> str:
    """'a', 'b' and 'c'."""
    shown = [f"'{w}'" for w in words]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def facts_sentence(facts: ClusterFacts, readers: bool = True) -> str:
    """The measured facts in code's words: the deletion effect beside random words, and who reads the words."""
    parts = []
    e = facts.effect
    if e is not None:
        them = "it" if len(facts.words) == 1 else "them"
        move = "falls" if e.after < e.before else "rises"
        if abs(e.after - e.before) < 0.005:
            move = "barely moves"
        where = f"from {percent(e.before)} to {percent(e.after)}"
        text = f"Without {them}, the answer's probability {move} {where}"
        if e.random_after is not None:
            n = len(facts.words)
            text += f" ({n} random word{'s' if n > 1 else ''}: {percent(e.random_after)})"
        parts.append(text + ".")
    if readers and facts.evidence.read_most_by:
        text = f"Read most by {quoted(facts.evidence.read_most_by[:2])}"
        if facts.layers:
            text += f" in layer{'s' if len(facts.layers) > 1 else ''} {', '.join(map(str, facts.layers))}"
        parts.append(text + ".")
    return " ".join(parts)


def compose(facts: ClusterFacts, sentence: str) -> str:
    """The shown rationale: the role sentence, then the facts (who reads the words only where it fits)."""
    sentence = sentence.strip()
    for readers in (True, False):
        text = f"{sentence} {facts_sentence(facts, readers)}".strip()
        if len(text) <= MAX_RATIONALE:
            return text
    return text


def template(facts: ClusterFacts) -> Draft:
    """A plain sentence built from the facts alone: shown when no LLM sentence passes the checks."""
    cited = (facts.citable or facts.words)[:2]
    label = facts.default_label
    sentence = f"{quoted(cited)}: {ROLES[label]}."
    return Draft(label, sentence, tuple(cited))
