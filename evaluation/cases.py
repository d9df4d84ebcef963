"""The curated case dataset (data/cases.jsonl): its schema, loader and answer checkers.

Each case is a short prompt for a tiny model plus a machine check of the answer, so that a
batch run can say *whether* the model was right before attnlens explains *why* it said what it
said. The checks are deliberately simple string tests: they are cheap, deterministic and never
execute anything the model wrote (code answers are only parsed with ``ast``).
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from attnlens.errors import InputError

__all__ = [
    "CATEGORIES",
    "DEFAULT_PATH",
    "NAMED_CHECKERS",
    "AcceptedCheck",
    "AllCheck",
    "Case",
    "InputError",
    "Check",
    "CheckResult",
    "ChoiceCheck",
    "NamedCheck",
    "NumericCheck",
    "RegexCheck",
    "check_answer",
    "first_number",
    "load_cases",
    "normalise",
    "pronoun_pairs",
]

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "data" / "cases.jsonl"

# The categories and their subcategories; a case outside this map is a typo, so it is rejected.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "factual_recall": ("simple_facts", "multi_hop", "temporal"),
    "reasoning": ("arithmetic", "deduction", "chain_of_thought"),
    "creative_generation": ("storytelling", "code_generation", "constrained_writing"),
    "instruction_following": ("task_completion", "constraint_adherence"),
    "ambiguity_context": ("pronoun_resolution", "word_sense", "context_lookup"),
    "hallucination_bait": ("false_attribution", "nonexistent_entity", "false_fact"),
}


# --------------------------------------------------------------------------- text helpers


def normalise(text: str) -> str:
    """Lower-case, strip accents, turn punctuation into spaces and collapse whitespace.

    Both the answer and the accepted strings go through this, so "Brasília," matches "brasilia"
    and "didn't" becomes "didn t" on both sides.
    """
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[^\w\s]|_", " ", text.lower())
    return " ".join(text.split())


def _contains_phrase(text: str, phrase: str, plurals: bool = False) -> bool:
    """Whole-word containment on normalised text ("au" must not match inside "gaul").

    With ``plurals`` the phrase may also carry an "s"/"es" ending, so "dragon" matches "dragons".
    """
    phrase = normalise(phrase)
    if not phrase:
        return False
    suffix = "(?:s|es)?" if plurals else ""
    return re.search(rf"(?<!\S){re.escape(phrase)}{suffix}(?!\S)", normalise(text)) is not None


_WORD_NUMBERS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
        " fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
# A digit number ("1,234", "-5", "3.5") or a number word 0-20 ("twenty-one" is not read as 20 or 1).
_NUMBER = re.compile(
    r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
    r"|(?<![\w-])(?:" + "|".join(_WORD_NUMBERS) + r")(?![\w-])",
    re.IGNORECASE,
)


def _numbers(text: str) -> list[float]:
    """Every number in the text, in order of appearance."""
    out = []
    for m in _NUMBER.finditer(text):
        token = m.group(0).lower()
        out.append(float(_WORD_NUMBERS[token]) if token in _WORD_NUMBERS else float(token.replace(",", "")))
    return out


def first_number(text: str) -> float | None:
    """The first number in the text, or None; commas and the words zero..twenty are understood."""
    found = _numbers(text)
    return found[0] if found else None


def _words(text: str) -> list[str]:
    """Words as a reader counts them: "don't" and "well-known" are one word each."""
    return re.findall(r"[^\W_]+(?:['’-][^\W_]+)*", text)


# --------------------------------------------------------------------------- result


class CheckResult(BaseModel):
    """Whether an answer passed, and a sentence saying why, so a reviewer can audit the verdict."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    detail: str


# --------------------------------------------------------------------------- named checkers
# Each named checker has an argument model (so a typo in the data fails at load time, not at
# scoring time) and a function (answer, args) -> CheckResult.


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArgs(_Args):
    pass


class WordCountArgs(_Args):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _some_bound(self) -> WordCountArgs:
        if self.min is None and self.max is None:
            raise ValueError("word_count needs min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("word_count min > max")
        return self


class WordsArgs(_Args):
    words: list[str] = Field(min_length=1)


class PythonCodeArgs(_Args):
    function: str | None = None


class RejectsPremiseArgs(_Args):
    claim: list[str] = Field(min_length=1)
    corrections: list[str] = Field(default_factory=list)


class ListItemsArgs(_Args):
    n: int = Field(ge=1)


class StartsWithArgs(_Args):
    prefix: str = Field(min_length=1)


class JsonObjectArgs(_Args):
    keys: list[str] = Field(default_factory=list)


def _word_count(answer: str, args: WordCountArgs) -> CheckResult:
    n = len(_words(answer))
    ok = (args.min is None or n >= args.min) and (args.max is None or n <= args.max)
    return CheckResult(passed=ok, detail=f"{n} words; wanted between {args.min} and {args.max}")


def _must_include(answer: str, args: WordsArgs) -> CheckResult:
    missing = [w for w in args.words if not _contains_phrase(answer, w, plurals=True)]
    if missing:
        return CheckResult(passed=False, detail=f"missing required word(s): {missing}")
    return CheckResult(passed=True, detail=f"contains all of {args.words}")


def _must_exclude(answer: str, args: WordsArgs) -> CheckResult:
    present = [w for w in args.words if _contains_phrase(answer, w, plurals=True)]
    if present:
        return CheckResult(passed=False, detail=f"contains forbidden word(s): {present}")
    return CheckResult(passed=True, detail=f"contains none of {args.words}")


def _extract_code(answer: str) -> str:
    """The code part of an answer: a fenced block if there is one, else from the first code-like line."""
    fenced = re.search(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", answer, re.DOTALL | re.IGNORECASE)
    if fenced:
        return fenced.group(1)
    lines = answer.splitlines()
    code_start = re.compile(r"\s*(def |class |import |from |for |while |if |print\(|return |[A-Za-z_]\w*\s*=[^=])")
    for i, line in enumerate(lines):
        if code_start.match(line):
            return "\n".join(lines[i:])
    return answer


def _python_code(answer: str, args: PythonCodeArgs) -> CheckResult:
    """Parse (never run) the code. Trailing lines may be dropped, since answers are cut at ~32 tokens."""
    lines = textwrap.dedent(_extract_code(answer)).strip("\n").splitlines()
    dropped = 0
    while lines:
        try:
            tree = ast.parse("\n".join(lines))
            break
        except (SyntaxError, ValueError):
            lines.pop()
            dropped += 1
    else:
        return CheckResult(passed=False, detail="no parseable Python code in the answer")
    if not tree.body:
        return CheckResult(passed=False, detail="the parsed code is empty")
    note = f" (after dropping {dropped} trailing line(s))" if dropped else ""
    if args.function is not None:
        names = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        if args.function not in names:
            return CheckResult(passed=False, detail=f"parses{note} but defines no function {args.function!r} (found {names})")
        return CheckResult(passed=True, detail=f"parses{note} and defines {args.function!r}")
    return CheckResult(passed=True, detail=f"parses as Python{note}")


# A clause ends at sentence punctuation, a comma, or a linking word, so that "Dickens wrote it
# because he was not tired" does not put the "not" beside "Dickens" ("so" is no break: "so fast").
_CLAUSE_BREAK = re.compile(
    r"[.!?;:,\n]+|\b(?:because|but|although|though|while|whereas|which|since|however)\b", re.IGNORECASE
)
# Words that negate or reject what they stand beside (normalised: "didn't" is "didn t"; the "t"
# of a contraction is recognised by the "n" before it).
_NEGATIONS = frozenset(
    "no not never none nobody nothing nowhere neither nor cannot false incorrect untrue wrong myth"
    " mythical fictional fictitious imaginary nonexistent".split()
)
_NEGATION_WINDOW = 5  # words between a negation and the claim it negates
_REFUSAL_OPENING = 4  # "No one.", "That is a myth.": a negation among the first four words


def _clauses(text: str) -> list[list[str]]:
    """The answer's clauses as lists of normalised words."""
    return [words for part in _CLAUSE_BREAK.split(text) if (words := normalise(part).split())]


def _negation_positions(words: list[str]) -> list[int]:
    """Where the clause negates: "not only" is not a negation, a contraction's "t" is."""
    found = []
    for i, w in enumerate(words):
        if w == "not" and i + 1 < len(words) and words[i + 1] == "only":
            continue
        if w in _NEGATIONS or (w == "t" and i > 0 and words[i - 1].endswith("n")):
            found.append(i)
    return found


def _phrase_spans(words: list[str], phrases: list[str]) -> list[tuple[int, int]]:
    """(start, end) of every whole-word occurrence of any phrase (a plain s/es plural counts)."""
    spans = []
    for phrase in phrases:
        target = normalise(phrase).split()
        for i in range(len(words) - len(target) + 1):
            head, last = words[i : i + len(target) - 1], words[i + len(target) - 1]
            if head == target[:-1] and last in (target[-1], target[-1] + "s", target[-1] + "es"):
                spans.append((i, i + len(target)))
    return spans


def _rejects_premise(answer: str, args: RejectsPremiseArgs) -> CheckResult:
    """The premise is rejected when a negation stands beside its false claim ("Dickens did not
    write it", "there is no tenth planet"), or when the answer states the correct fact or opens
    with a refusal and nowhere states the claim without a negation."""
    clauses = _clauses(answer)
    negated = affirmed = None
    for words in clauses:
        spans = _phrase_spans(words, args.claim)
        if not spans:
            continue
        negations = _negation_positions(words)
        for start, end in spans:
            if any(start - _NEGATION_WINDOW <= n < end + _NEGATION_WINDOW for n in negations):
                negated = negated or " ".join(words)
        if not negations:
            affirmed = affirmed or " ".join(words)
    if negated:
        return CheckResult(passed=True, detail=f"negates the false claim: {negated!r}")
    if affirmed:
        return CheckResult(passed=False, detail=f"states the false claim without a negation: {affirmed!r}")
    for fact in args.corrections:
        if _contains_phrase(answer, fact):
            return CheckResult(passed=True, detail=f"states the correct fact {fact!r}")
    if clauses and any(i < _REFUSAL_OPENING for i in _negation_positions(clauses[0])):
        return CheckResult(passed=True, detail=f"opens with a refusal: {' '.join(clauses[0][:8])!r}")
    return CheckResult(passed=False, detail=f"neither negates the claim {args.claim} nor states a correct fact")


_ITEM_MARKER = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def _count_items(answer: str) -> int:
    """Items in a list answer: marked lines, else one item per line, else comma/"and" separated."""
    lines = [line.strip() for line in answer.strip().splitlines() if line.strip()]
    marked = [line for line in lines if _ITEM_MARKER.match(line)]
    if len(marked) >= 2:
        return len(marked)
    lines = [line for line in lines if not line.endswith(":")]  # "Here are three fruits:"
    if len(lines) > 1:
        return len(lines)
    line = lines[0] if lines else ""
    inline_numbers = re.findall(r"(?:^|\s)\d+[.)]\s", line)
    if len(inline_numbers) >= 2:
        return len(inline_numbers)
    line = line.rsplit(":", 1)[-1]
    parts = re.split(r"\s*(?:,|;|\band\b)\s*", line)
    return len([p for p in parts if p.strip(" .!") and p.strip(" .!").lower() != "etc"])


def _list_items(answer: str, args: ListItemsArgs) -> CheckResult:
    n = _count_items(answer)
    return CheckResult(passed=n == args.n, detail=f"{n} list item(s); wanted {args.n}")


def _starts_with(answer: str, args: StartsWithArgs) -> CheckResult:
    head = answer.lstrip(" \t\r\n\"'“”‘’*#>")
    ok = head.lower().startswith(args.prefix.lower())
    return CheckResult(passed=ok, detail=f"starts with {head[:len(args.prefix) + 10]!r}; wanted {args.prefix!r}")


def _all_caps(answer: str, args: NoArgs) -> CheckResult:
    letters = [c for c in answer if c.isalpha()]
    if not letters:
        return CheckResult(passed=False, detail="no letters at all")
    lower = [c for c in letters if not c.isupper()]
    return CheckResult(passed=not lower, detail=f"{len(lower)} of {len(letters)} letters are not upper case")


def _json_object(answer: str, args: JsonObjectArgs) -> CheckResult:
    start = answer.find("{")
    if start < 0:
        return CheckResult(passed=False, detail="no '{' in the answer")
    try:
        obj, _ = json.JSONDecoder().raw_decode(answer, start)
    except json.JSONDecodeError as e:
        return CheckResult(passed=False, detail=f"not valid JSON: {e.msg}")
    if not isinstance(obj, dict):
        return CheckResult(passed=False, detail="JSON value is not an object")
    missing = [k for k in args.keys if k not in obj]
    if missing:
        return CheckResult(passed=False, detail=f"JSON object lacks key(s) {missing}")
    return CheckResult(passed=True, detail=f"JSON object with keys {sorted(obj)}")


NAMED_CHECKERS: dict[str, tuple[type[_Args], Callable[[str, Any], CheckResult]]] = {
    "word_count": (WordCountArgs, _word_count),
    "must_include": (WordsArgs, _must_include),
    "must_exclude": (WordsArgs, _must_exclude),
    "python_code": (PythonCodeArgs, _python_code),
    "rejects_premise": (RejectsPremiseArgs, _rejects_premise),
    "list_items": (ListItemsArgs, _list_items),
    "starts_with": (StartsWithArgs, _starts_with),
    "all_caps": (NoArgs, _all_caps),
    "json_object": (JsonObjectArgs, _json_object),
}


# --------------------------------------------------------------------------- check variants


class _CheckBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AcceptedCheck(_CheckBase):
    """Passes if any accepted answer occurs, as whole words, in the normalised answer."""

    type: Literal["accepted"]
    answers: list[str] = Field(min_length=1)

    @field_validator("answers")
    @classmethod
    def _not_blank(cls, v: list[str]) -> list[str]:
        if any(not normalise(a) for a in v):
            raise ValueError("an accepted answer is empty after normalising")
        return v


class RegexCheck(_CheckBase):
    """Passes if the pattern is found (re.search) in the stripped answer."""

    type: Literal["regex"]
    pattern: str
    ignore_case: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"pattern does not compile: {e}") from e
        return v


class NumericCheck(_CheckBase):
    """Passes if the answer's number equals value within tolerance.

    Which number: "new" (default) is the first one the prompt does not already state, so
    "12 times 7 is 84" is read as 84 (all numbers restated: the last one); "first"; or "last",
    for worked answers that end with their result.
    """

    type: Literal["numeric"]
    value: float
    tolerance: float = Field(default=0.0, ge=0)
    position: Literal["new", "first", "last"] = "new"


class ChoiceCheck(_CheckBase):
    """Which of the prompt's candidates the answer picks; passes when it picks one of `right`.

    A sentence copied from the prompt that names candidates of both sides decides nothing and is
    dropped first, so echoing the prompt passes neither case of a pair. Then a clause that states
    the asked property (`says`, e.g. "too big") decides by the candidate named nearest before it
    (else the first after it); failing that, the first candidate named decides.
    """

    type: Literal["choice"]
    right: list[str] = Field(min_length=1)
    wrong: list[str] = Field(min_length=1)
    says: list[str] = Field(default_factory=list)


class NamedCheck(_CheckBase):
    """One of NAMED_CHECKERS with its arguments; the arguments are validated when the case loads."""

    type: Literal["named"]
    name: str
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> NamedCheck:
        if self.name not in NAMED_CHECKERS:
            raise ValueError(f"unknown named checker {self.name!r}; known: {sorted(NAMED_CHECKERS)}")
        NAMED_CHECKERS[self.name][0].model_validate(self.args)
        return self


class AllCheck(_CheckBase):
    """Passes only if every sub-check passes (several constraints on one answer)."""

    type: Literal["all"]
    checks: list[Check] = Field(min_length=1)


Check = Annotated[
    Union[AcceptedCheck, RegexCheck, NumericCheck, ChoiceCheck, NamedCheck, AllCheck],
    Field(discriminator="type"),
]
AllCheck.model_rebuild()


# --------------------------------------------------------------------------- case


class Case(BaseModel):
    """One prompt with its check, the prompt words the answer rests on, and a reference answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z]+(?:-[a-z]+)*-\d{3}$")
    category: Literal[
        "factual_recall",
        "reasoning",
        "creative_generation",
        "instruction_following",
        "ambiguity_context",
        "hallucination_bait",
    ]
    subcategory: str
    prompt: str = Field(min_length=1)
    check: Check
    evidence: list[str] = Field(default_factory=list)
    answer_hint: str = Field(min_length=1)
    source: str = Field(pattern=r"^(handwritten|generated: .+)$")

    @model_validator(mode="after")
    def _consistent(self) -> Case:
        if self.subcategory not in CATEGORIES[self.category]:
            raise ValueError(f"subcategory {self.subcategory!r} is not one of {CATEGORIES[self.category]}")
        for item in self.evidence:
            if not item.strip() or item not in self.prompt:
                raise ValueError(f"evidence {item!r} is not an exact substring of the prompt")
        if len(set(self.evidence)) != len(self.evidence):
            raise ValueError("evidence has duplicates")
        return self


def load_cases(path: str | Path = DEFAULT_PATH) -> list[Case]:
    """Read and validate every case; the first bad line raises InputError naming its line."""
    path = Path(path)
    cases: list[Case] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                case = Case.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError) as e:
                raise InputError(f"{path}:{lineno}: invalid case: {e}") from e
            if case.id in seen:
                raise InputError(f"{path}:{lineno}: duplicate id {case.id!r} (first on line {seen[case.id]})")
            seen[case.id] = lineno
            cases.append(case)
    return cases


# --------------------------------------------------------------------------- checking


def _candidates(words: list[str], check: ChoiceCheck) -> list[tuple[int, bool, str]]:
    """(position, is right, the words) of every candidate named in a clause, in order."""
    found = [(i, True, " ".join(words[i:j])) for i, j in _phrase_spans(words, check.right)]
    found += [(i, False, " ".join(words[i:j])) for i, j in _phrase_spans(words, check.wrong)]
    return sorted(found)


_PRONOUNS = frozenset("it he she they him her them".split())


def _choice(check: ChoiceCheck, answer: str, prompt: str) -> CheckResult:
    prompt_text = f" {normalise(prompt)} "
    kept, echoed = [], 0
    for sentence in re.split(r"[.!?;:\n]+", answer):
        words = normalise(sentence)
        named = {right for _, right, _ in _candidates(words.split(), check)}
        if named == {True, False} and f" {words} " in prompt_text:
            echoed += 1
            continue
        kept.append(sentence)
    note = f" ({echoed} sentence(s) copied from the prompt dropped)" if echoed else ""
    chosen, how = None, "first named"
    for words in _clauses(". ".join(kept)):
        states = _phrase_spans(words, check.says)
        named = _candidates(words, check)
        if states and named:
            before = [c for c in named if c[0] < states[0][0]]
            pick = before[-1] if before else named[0]
            if before and _PRONOUNS & set(words[pick[0] : states[0][0]]):
                continue  # "the cat until it climbed": the clause leaves the pronoun unresolved
            chosen, how = pick, f"named with {' '.join(words[slice(*states[0])])!r}"
            break
    if chosen is None:
        named = _candidates(normalise(". ".join(kept)).split(), check)
        if not named:
            return CheckResult(passed=False, detail=f"names none of the candidates{note}")
        chosen = named[0]
    _, right, text = chosen
    verdict = "right" if right else "wrong"
    return CheckResult(passed=right, detail=f"picks {text!r} ({how}), the {verdict} candidate{note}")


def pronoun_pairs(cases: list[Case]) -> list[tuple[Case, Case]]:
    """The pronoun cases two by two, as the file lists them: one word of the statement flips the
    referent, so one case's right candidate is the other's wrong one."""
    pronoun = [c for c in cases if c.subcategory == "pronoun_resolution"]
    return [(a, b) for a, b in zip(pronoun, pronoun[1:])
            if set(a.check.right) & set(b.check.wrong) and set(a.check.wrong) & set(b.check.right)]  # fmt: skip


def _run(check: Check, answer: str, prompt: str) -> CheckResult:
    if isinstance(check, AcceptedCheck):
        for accepted in check.answers:
            if _contains_phrase(answer, accepted):
                return CheckResult(passed=True, detail=f"contains accepted answer {accepted!r}")
        return CheckResult(passed=False, detail=f"contains none of the accepted answers {check.answers}")
    if isinstance(check, RegexCheck):
        flags = re.IGNORECASE if check.ignore_case else 0
        found = re.search(check.pattern, answer.strip(), flags)
        if found:
            return CheckResult(passed=True, detail=f"pattern {check.pattern!r} matched {found.group(0)!r}")
        return CheckResult(passed=False, detail=f"pattern {check.pattern!r} not found")
    if isinstance(check, NumericCheck):
        found = _numbers(answer)
        if not found:
            return CheckResult(passed=False, detail="no number in the answer")
        if check.position == "new":
            stated = set(_numbers(prompt))
            got = next((x for x in found if x not in stated), found[-1])
        else:
            got = found[0] if check.position == "first" else found[-1]
        ok = abs(got - check.value) <= check.tolerance
        return CheckResult(
            passed=ok, detail=f"{check.position} number is {got:g}; expected {check.value:g} ± {check.tolerance:g}"
        )
    if isinstance(check, ChoiceCheck):
        return _choice(check, answer, prompt)
    if isinstance(check, NamedCheck):
        args_model, func = NAMED_CHECKERS[check.name]
        result = func(answer, args_model.model_validate(check.args))
        return CheckResult(passed=result.passed, detail=f"{check.name}: {result.detail}")
    if isinstance(check, AllCheck):
        results = [_run(c, answer, prompt) for c in check.checks]
        failed = [r.detail for r in results if not r.passed]
        if failed:
            return CheckResult(passed=False, detail="failed: " + "; ".join(failed))
        return CheckResult(passed=True, detail="all passed: " + "; ".join(r.detail for r in results))
    raise TypeError(f"not a check: {check!r}")


def check_answer(case: Case | Check, answer: str, prompt: str | None = None) -> CheckResult:
    """Score a model's answer against a case (or a bare check and its prompt). Nothing in the answer is executed."""
    if not answer.strip():
        return CheckResult(passed=False, detail="empty answer")
    if isinstance(case, Case):
        return _run(case.check, answer, case.prompt if prompt is None else prompt)
    return _run(case, answer, prompt or "")
