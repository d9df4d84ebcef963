"""Facts from code: the evidence for each cluster, the schemas the LLM must fill, the checks.

Everything here is deterministic. The LLM sees a cluster's `evidence` (numbers already
computed and rounded) and may only choose a label from LABELS, cite the cluster's own tokens
(an enum in the schema) and phrase a rationale; `check` then verifies every claim it can.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from attnlens.clustering import Cluster, Clustering
from attnlens.extraction.record import AttentionRecord

LABELS = (
    "subject entity",
    "relation word",
    "numeric operand",
    "instruction constraint",
    "syntax/function words",
    "punctuation/format",
    "attention sink",
    "coreference",
    "answer continuation",
    "chat template",
    "other",
)
MAX_RATIONALE = 240
MAX_PROBLEM = 160
MAX_CITED = 4
MAX_LISTED_TOKENS = 24  # the most-attended tokens of a cluster shown to the LLM and allowed as citations

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
_WORD = re.compile(r"[^\W\d_]{3,}")
# "x", “x”, or 'x' standing alone (an apostrophe inside a word, as in answer's, is not a quote)
_QUOTED = re.compile(r'"([^"]{1,40})"|“([^”]{1,40})”|(?<!\w)\'([^\']{1,40})\'(?!\w)')
COMMON_WORDS = frozenset(
    """the and for that this with from into onto what which who whom whose when where why how are was were
    is be been being has have had not but its it's their them they these those than then there here also
    about over under more most less least very much many some any each all both either neither such only
    same other another own answer answers answered question token tokens cluster model models attention
    prompt word words text number numbers share percent layer layers head heads delete deleting deleted
    deletion probability likely less more relies rely relied uses used use using helps help helped gives
    give given shows show showed tells tell told says say said makes make made because so thus therefore
    while whereas most strongly strong weak weakly part parts entity relation operand instruction
    constraint syntax function punctuation format sink coreference continuation subject chat template""".split()
)


@dataclass(frozen=True)
class AnswerReader:
    answer_token: str
    percent_of_its_attention: float


@dataclass(frozen=True)
class DeletionEffect:
    answer_probability_before_percent: float
    answer_probability_after_percent: float


@dataclass(frozen=True)
class Evidence:
    """What the LLM is told about one cluster: computed by code, handed over as JSON data."""

    question: str
    answer: str
    cluster_tokens: list[str]  # most attended first
    cluster_spans: list[str]  # the cluster's runs of consecutive tokens, as text
    token_count: int
    where: dict[str, int]  # tokens per segment (user / template / answer)
    token_types: dict[str, int]  # tokens per type (clustering.token_type)
    share_of_answer_attention_percent: float
    importance_rank: str  # "1 of 4"
    answer_tokens_attending_most: tuple[AnswerReader, ...] = ()
    layers_carrying_most: tuple[int, ...] = ()
    deleting_these_tokens: DeletionEffect | None = None

    def to_dict(self) -> dict:
        """The JSON the prompt carries (fields without a value are left out)."""
        return {k: v for k, v in asdict(self).items() if v not in (None, ())}


@dataclass(frozen=True)
class Draft:
    """A rationale as the LLM wrote it (schema-valid), before the checks."""

    label: str
    evidence_tokens: list[str]
    rationale: str

    @classmethod
    def from_dict(cls, data: dict | None) -> "Draft | None":
        if not data:
            return None
        return cls(data.get("label", ""), list(data.get("evidence_tokens", [])), data.get("rationale", ""))


@dataclass
class Rationale:
    """The rationale shown for one cluster, and how it came to be."""

    label: str
    rationale: str
    evidence_tokens: list[str]
    source: Literal["llm", "template"]  # template: built from the evidence because no draft passed the checks
    problems: list[str] = field(default_factory=list)  # what the checks found in the last draft (template only)
    rounds: int = 0  # refine rounds run
    sent_to_llm: bool = True  # False: the LLM never saw this cluster (beyond max_llm_clusters)
    unresolved_critique: str | None = None  # the LLM critic's last objection to an accepted draft

    @classmethod
    def from_draft(cls, draft: Draft, **kwargs) -> "Rationale":
        return cls(draft.label, draft.rationale, list(draft.evidence_tokens), **kwargs)


@dataclass
class ClusterFacts:
    """One cluster as the agent sees it: evidence for the LLM, and what the checks compare against."""

    id: int
    evidence: Evidence
    tokens: list[str]  # the cluster's token texts that may be cited (deduplicated, most attended first)
    numbers: set[float]  # every number the evidence states
    outside_words: set[str]  # prompt words of other clusters (lower case), which the rationale may not name
    allowed_labels: tuple[str, ...]
    default_label: str  # the label the template rationale uses


def _pct(x: float) -> float:
    return round(100 * float(x), 1)


def _numbers_in(value) -> set[float]:
    text = value if isinstance(value, str) else repr(value)
    return {float(m) for m in _NUMBER.findall(text)}


def plausible_labels(cluster: Cluster) -> tuple[str, ...]:
    """Labels whose deterministic precondition holds for this cluster (the rest are refused)."""
    types, roles, size = cluster.token_types, cluster.roles, max(1, cluster.size)
    allowed = []
    for label in LABELS:
        if label == "numeric operand" and not types.get("number"):
            continue
        if label == "attention sink" and not cluster.segments.get("template"):  # never a user word
            continue
        if label == "punctuation/format" and types.get("punctuation", 0) + types.get("space", 0) < size / 2:
            continue
        if label == "answer continuation" and roles.get("answer", 0) < size / 2:
            continue
        if label == "instruction constraint" and not types.get("instruction"):
            continue
        if label == "chat template" and cluster.segments.get("template", 0) < size / 2:
            continue
        allowed.append(label)
    return tuple(allowed)


def default_label(cluster: Cluster) -> str:
    """The label the template rationale uses: the first plausible one by token makeup."""
    allowed = plausible_labels(cluster)
    for label in (
        "attention sink", "chat template", "answer continuation", "numeric operand", "punctuation/format",
        "instruction constraint",
    ):
        if label in allowed:
            return label
    if cluster.token_types.get("capitalised"):
        return "subject entity"
    return "other"


def build_facts(
    record: AttentionRecord,
    clustering: Clustering,
    deletion: dict[int, tuple[float, float]] | None = None,
) -> list[ClusterFacts]:
    """Evidence for every cluster. `deletion` maps a cluster id to the answer's probability
    (geometric mean per token) before and after deleting the cluster's prompt tokens."""
    gen = record.generation
    tokens = gen.tokens
    deletion = deletion or {}
    # which answer tokens attend to each token: answer rows averaged over layers and heads
    per_answer = None
    if gen.answer_start < len(tokens):
        rows = record.answer_rows().mean((0, 1)).numpy()  # A n
        per_answer = rows / np.maximum(rows.sum(-1, keepdims=True), 1e-12)
    words_of = {c.id: {w.lower() for t in c.tokens for w in _WORD.findall(tokens[t].text)} for c in clustering.clusters}
    facts = []
    for cluster in clustering.clusters:
        order = sorted(cluster.tokens, key=lambda t: -_token_weight(per_answer, t))
        listed = list(dict.fromkeys(tokens[t].text for t in order if tokens[t].text.strip()))[:MAX_LISTED_TOKENS]
        if not listed:  # whitespace-only cluster: its tokens are still citable as they are
            listed = list(dict.fromkeys(tokens[t].text for t in order))[:MAX_LISTED_TOKENS]
        span_texts = ["".join(tokens[t].text for t in range(a, b)) for a, b in cluster.spans][:8]
        readers: tuple[AnswerReader, ...] = ()
        if per_answer is not None:
            share = per_answer[:, cluster.tokens].sum(-1)
            top = np.argsort(-share, kind="stable")[:3]
            readers = tuple(AnswerReader(tokens[gen.answer_start + int(a)].text, _pct(share[a])) for a in top)
        effect = None
        if cluster.id in deletion:
            before, after = deletion[cluster.id]
            effect = DeletionEffect(_pct(before), _pct(after))
        evidence = Evidence(
            question=gen.prompt,
            answer=gen.answer,
            cluster_tokens=listed,
            cluster_spans=span_texts,
            token_count=cluster.size,
            where=dict(cluster.segments),
            token_types=dict(cluster.token_types),
            share_of_answer_attention_percent=_pct(cluster.importance),
            importance_rank=f"{cluster.id + 1} of {len(clustering.clusters)}",
            answer_tokens_attending_most=readers,
            layers_carrying_most=tuple(int(layer) for layer, _ in cluster.top_layers),
            deleting_these_tokens=effect,
        )
        outside = set().union(*(w for cid, w in words_of.items() if cid != cluster.id)) - words_of[cluster.id]
        outside -= {w.lower() for w in _WORD.findall(gen.answer)} | COMMON_WORDS
        facts.append(
            ClusterFacts(
                id=cluster.id,
                evidence=evidence,
                tokens=listed,
                numbers=_numbers_in(evidence.to_dict()),
                outside_words=outside,
                allowed_labels=plausible_labels(cluster),
                default_label=default_label(cluster),
            )
        )
    return facts


def _token_weight(per_answer, t: int) -> float:
    return 0.0 if per_answer is None else float(per_answer[:, t].sum())


# ------------------------------------------------------------------ schemas


def draft_schema(facts: ClusterFacts) -> dict:
    """The JSON schema a draft must satisfy: closed labels, bounded text, only this cluster's tokens."""
    return {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": list(facts.allowed_labels)},
            "evidence_tokens": {
                "type": "array",
                "items": {"type": "string", "enum": facts.tokens},
                "minItems": 1,
                "maxItems": MAX_CITED,
            },
            "rationale": {"type": "string", "minLength": 20, "maxLength": MAX_RATIONALE},
        },
        "required": ["label", "evidence_tokens", "rationale"],
        "additionalProperties": False,
    }


CRITIQUE_SCHEMA = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["accept", "revise"]},
        "problem": {"type": "string", "maxLength": MAX_PROBLEM},
    },
    "required": ["verdict", "problem"],
    "additionalProperties": False,
}


# ------------------------------------------------------------------ checks


def check(facts: ClusterFacts, draft: Draft | Rationale | None) -> list[str]:
    """Every problem the code can prove in a draft; an empty list means it passes."""
    if draft is None:
        return ["no valid draft"]
    problems = []
    label, rationale, cited = draft.label, draft.rationale, draft.evidence_tokens
    if label not in facts.allowed_labels:
        problems.append(f"label {label!r} does not fit this cluster; allowed: {', '.join(facts.allowed_labels)}")
    if not rationale.strip():
        problems.append("the rationale is empty")
    if len(rationale) > MAX_RATIONALE:
        problems.append(f"the rationale is longer than {MAX_RATIONALE} characters")
    foreign = [t for t in cited if t not in facts.tokens]
    if foreign:
        problems.append(f"cites tokens that are not in this cluster: {foreign}")
    if not cited:
        problems.append("cites no token")
    for number in _NUMBER.findall(rationale):
        if not any(_same_number(number, known) for known in facts.numbers):
            problems.append(f"the number {number} is not in the evidence")
    content = [t for t in cited if is_content_word(t)]
    if not any(_mentions(rationale, t) for t in (content or cited)):
        kind = "content tokens (not function words)" if content else "tokens"
        problems.append(f"the rationale does not mention any of the {kind} it cites")
    if _repeats(rationale):
        problems.append("the rationale repeats itself")
    ev = facts.evidence
    copied = _copied_run(rationale, " ".join([ev.question, ev.answer, *ev.cluster_spans]))
    if copied:
        problems.append(f"the rationale copies the input ({copied!r}) instead of explaining it")
    named = sorted({w for w in (m.lower() for m in _WORD.findall(rationale)) if w in facts.outside_words})
    if named:
        problems.append(f"talks about tokens outside this cluster: {', '.join(named)}")
    for groups in _QUOTED.findall(rationale):
        quoted = next(g for g in groups if g)
        if quoted.strip() and not any(quoted.strip().lower() in t.lower() for t in [*facts.tokens, ev.answer]):
            problems.append(f"quotes {quoted!r}, which is neither a cluster token nor the answer")
    return list(dict.fromkeys(problems))


def is_content_word(token: str) -> bool:
    """A word that carries meaning: at least three letters or a number, and not a common function word."""
    word = token.strip().lower()
    return (len(word) >= 3 and word.isalpha() and word not in COMMON_WORDS) or word.isdigit()


def _mentions(rationale: str, token: str) -> bool:
    """The token's text appears in the rationale (as a word when it is one)."""
    word = token.strip()
    if not word:
        return False
    if word.isalnum():
        return re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", rationale, re.IGNORECASE) is not None
    return word in rationale


def _repeats(rationale: str) -> bool:
    """A sentence, or a run of five words, said twice: the loop small models fall into."""
    sentences = [s.strip().lower() for s in re.split(r"[.!?]+", rationale) if len(s.split()) >= 3]
    if len(sentences) != len(set(sentences)):
        return True
    words = re.findall(r"\w+", rationale.lower())
    grams = [tuple(words[i : i + 5]) for i in range(len(words) - 4)]
    return len(grams) != len(set(grams))


def _copied_run(rationale: str, source: str, length: int = 7) -> str | None:
    """The first run of `length` words the rationale takes verbatim from the input, if any."""
    words = re.findall(r"\w+", rationale.lower())
    text = " ".join(re.findall(r"\w+", source.lower()))
    for i in range(len(words) - length + 1):
        run = " ".join(words[i : i + length])
        if f" {run} " in f" {text} ":
            return run
    return None


def _same_number(written: str, known: float) -> bool:
    """"23" matches 23.4 (rounded to the precision written); "24" does not."""
    decimals = len(written.split(".")[1]) if "." in written else 0
    return round(known, decimals) == float(written)


def template(facts: ClusterFacts) -> Draft:
    """A plain rationale built from the evidence alone: used when no draft passes its checks."""
    ev = facts.evidence
    cited = facts.tokens[:MAX_CITED]
    shown = ", ".join(repr(t.strip() or t) for t in cited)
    text = f"Tokens {shown} get {ev.share_of_answer_attention_percent}% of the answer's attention"
    deleting = ev.deleting_these_tokens
    if deleting:
        text += (
            f"; deleting them moves the answer's probability from {deleting.answer_probability_before_percent}%"
            f" to {deleting.answer_probability_after_percent}%"
        )
    text += "."
    if len(text) > MAX_RATIONALE:
        text = f"Tokens {shown} get {ev.share_of_answer_attention_percent}% of the answer's attention."
    return Draft(facts.default_label, cited, text[:MAX_RATIONALE])
