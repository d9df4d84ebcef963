"""The case dataset (data/cases.jsonl), its card, and the answer checkers in evaluation.cases."""

import builtins
import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from attnlens.data import build_cases
from attnlens.evaluation.cases import (
    CATEGORIES,
    DEFAULT_PATH,
    Case,
    InputError,
    NumericCheck,
    check_answer,
    first_number,
    load_cases,
    normalise,
    pronoun_pairs,
)

ROOT = Path(__file__).resolve().parents[2]
CASES = load_cases()
BY_ID = {c.id: c for c in CASES}


def check(spec: dict, answer: str) -> bool:
    """Run a bare check spec (as written in the JSONL) against an answer."""
    case = Case.model_validate(
        {"id": "t-001", "category": "reasoning", "subcategory": "deduction", "prompt": "p",
         "check": spec, "answer_hint": "h", "source": "handwritten"}
    )  # fmt: skip
    return check_answer(case, answer).passed


def named(name: str, **args) -> dict:
    return {"type": "named", "name": name, "args": args}


# --------------------------------------------------------------------------- the file


def test_file_loads_with_500_valid_cases():
    assert DEFAULT_PATH == ROOT / "data" / "cases.jsonl"
    assert len(CASES) == 500
    assert all(isinstance(c, Case) for c in CASES)


def test_ids_are_unique_and_share_a_prefix_per_subcategory():
    assert len(BY_ID) == len(CASES)
    prefixes: dict[str, set[str]] = {}
    for c in CASES:
        prefixes.setdefault(c.subcategory, set()).add(c.id.rsplit("-", 1)[0])
    assert all(len(p) == 1 for p in prefixes.values()), prefixes
    assert len({p.pop() for p in prefixes.values()}) == len(prefixes)


def test_prompts_are_unique_and_short():
    assert len({c.prompt for c in CASES}) == len(CASES)
    lengths = [len(c.prompt.split()) for c in CASES]
    assert max(lengths) <= 40
    assert sum(n < 30 for n in lengths) >= 0.95 * len(CASES)


def test_categories_and_subcategories_are_balanced():
    per_cat = Counter(c.category for c in CASES)
    assert set(per_cat) == set(CATEGORIES)
    assert min(per_cat.values()) >= 40
    assert max(per_cat.values()) - min(per_cat.values()) <= 4, per_cat
    for category, subs in CATEGORIES.items():
        per_sub = Counter(c.subcategory for c in CASES if c.category == category)
        assert set(per_sub) == set(subs), category
        assert max(per_sub.values()) - min(per_sub.values()) <= 1, per_sub


def test_evidence_is_prompt_substrings_for_at_least_150_cases():
    with_evidence = [c for c in CASES if c.evidence]
    assert len(with_evidence) >= 150
    for c in with_evidence:
        for item in c.evidence:
            assert item in c.prompt, (c.id, item)


def test_sources_say_handwritten_or_how_generated():
    sources = Counter(c.source for c in CASES)
    assert sources["handwritten"] >= 400
    generated = [c for c in CASES if c.source != "handwritten"]
    assert generated and all("build_cases.py" in c.source and "random.Random(" in c.source for c in generated)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_answer_hint_passes_its_own_check(case):
    result = check_answer(case, case.answer_hint)
    assert result.passed, result.detail


def test_loads_with_datasets_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    import datasets

    ds = datasets.load_dataset("json", data_files=str(DEFAULT_PATH), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 500
    assert {"id", "category", "subcategory", "prompt", "check", "evidence", "answer_hint", "source"} <= set(
        ds.column_names
    )
    assert ds[0]["id"] == CASES[0].id


def test_file_and_card_table_are_what_build_cases_produces():
    build = build_cases
    built = build.build()
    on_disk = [json.loads(line) for line in DEFAULT_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert built == on_disk, "data/cases.jsonl is stale: run .venv/bin/python -m attnlens.data.build_cases"
    readme = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    assert f"{build.TABLE_START}\n{build.counts_table(built)}\n{build.TABLE_END}" in readme
    assert build.generate_arithmetic() == build.generate_arithmetic()  # deterministic


# --------------------------------------------------------------------------- loading errors


def _write(tmp_path: Path, rows: list) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


GOOD = {
    "id": "fact-simple-001", "category": "factual_recall", "subcategory": "simple_facts",
    "prompt": "What is the capital of France?", "check": {"type": "accepted", "answers": ["Paris"]},
    "evidence": ["capital", "France"], "answer_hint": "Paris", "source": "handwritten",
}  # fmt: skip


@pytest.mark.parametrize(
    "bad, message",
    [
        ("{not json", "invalid case"),
        ({**GOOD, "id": "fact-simple-002", "subcategory": "multi_hop_typo"}, "subcategory"),
        ({**GOOD, "id": "fact-simple-002", "evidence": ["Germany"]}, "substring"),
        ({**GOOD, "id": "fact-simple-002", "check": {"type": "named", "name": "no_such_checker"}}, "unknown named checker"),
        ({**GOOD, "id": "fact-simple-002", "check": named("word_count", mni=3)}, "mni"),
        ({**GOOD, "id": "fact-simple-002", "check": {"type": "regex", "pattern": "("}}, "pattern"),
        ({**GOOD, "id": "fact-simple-002", "check": {"type": "telepathy"}}, "telepathy"),
        ({**GOOD, "id": "fact-simple-002", "source": "found it somewhere"}, "source"),
        (GOOD, "duplicate id"),
    ],
)
def test_bad_line_is_reported_with_its_line_number(tmp_path, bad, message):
    path = _write(tmp_path, [GOOD, bad])
    with pytest.raises(InputError, match=r":2:") as err:
        load_cases(path)
    assert message in str(err.value)


def test_load_cases_skips_blank_lines(tmp_path):
    assert [c.id for c in load_cases(_write(tmp_path, [GOOD, ""]))] == ["fact-simple-001"]


# --------------------------------------------------------------------------- checkers


def test_empty_answer_always_fails():
    assert not check_answer(BY_ID["fact-simple-001"], "   ").passed


def test_accepted_is_whole_word_and_normalised():
    spec = {"type": "accepted", "answers": ["Brasilia", "Au"]}
    assert check(spec, "It is Brasília.")
    assert check(spec, "The symbol is AU!")
    assert not check(spec, "The Gauls lived there.")  # "au" inside a word does not count
    assert not check(spec, "I think it is Rio.")
    assert normalise("  Didn’t  Brasília, ok? ") == "didn t brasilia ok"


def test_regex():
    assert check({"type": "regex", "pattern": r"^\W*yes\b"}, "Yes, Tom is an animal.")
    assert not check({"type": "regex", "pattern": r"^\W*yes\b"}, "No, yes... maybe.")
    assert not check({"type": "regex", "pattern": "HELLO", "ignore_case": False}, "hello")
    assert check({"type": "regex", "pattern": "HELLO", "ignore_case": False}, "Sure: HELLO")
    assert check({"type": "regex", "pattern": r"2\D+4\D+7\D+9"}, "2, 4, 7, 9")
    assert not check({"type": "regex", "pattern": r"2\D+4\D+7\D+9"}, "9, 7, 4, 2")


def test_choice_reads_which_candidate_the_answer_picks():
    pronoun = BY_ID["ambig-pronoun-002"]  # "... because it was too small. What was too small?"
    assert check_answer(pronoun, "The suitcase was too small for the trophy.").passed
    assert check_answer(pronoun, "The trophy did not fit because the suitcase was too small.").passed
    assert not check_answer(pronoun, "The trophy.").passed
    assert not check_answer(pronoun, "The trophy did not fit in the suitcase.").passed  # an echo decides nothing
    result = check_answer(pronoun, "The trophy was too small.")
    assert not result.passed and "'trophy'" in result.detail and "too small" in result.detail
    context = BY_ID["ambig-context-002"]  # Mia's red bike and blue kite
    assert check_answer(context, "Mia has a red bike and a blue kite. The kite is blue.").passed


def test_an_echo_of_the_prompt_passes_neither_case_of_a_pronoun_pair():
    pairs = pronoun_pairs(CASES)
    assert len(pairs) >= 8
    for case in [c for pair in pairs for c in pair]:
        statement = case.prompt.rsplit(". ", 1)[0] + "."
        assert not check_answer(case, case.prompt).passed, case.id
        assert not check_answer(case, statement).passed, case.id
        assert check_answer(case, case.answer_hint).passed, case.id


def test_numeric_reads_commas_words_and_signs():
    assert check({"type": "numeric", "value": 2420}, "The answer is 2,420.")
    assert check({"type": "numeric", "value": 12}, "Twelve eggs.")
    assert check({"type": "numeric", "value": 0}, "Water freezes at zero degrees.")
    assert check({"type": "numeric", "value": -5}, "It is -5 today.")
    assert check({"type": "numeric", "value": 3.5, "tolerance": 0.01}, "About 3.5 hours.")
    assert not check({"type": "numeric", "value": 12}, "13, not twelve")  # the first number counts
    assert not check({"type": "numeric", "value": 12}, "I am not sure.")
    assert first_number("twenty-one") is None  # not misread as 20 or 1
    assert first_number("3, 4 and 5") == 3
    assert first_number("10-15") == 10


def test_numeric_last_position_for_worked_answers():
    spec = {"type": "numeric", "value": 5, "position": "last"}
    assert check(spec, "3 + 4 = 7, and 7 - 2 = 5")
    assert not check(spec, "3 + 4 = 7 apples")
    assert check_answer(BY_ID["reason-cot-001"], "He has 3 + 4 - 2 = 5 apples.").passed


def test_word_count():
    assert check(named("word_count", min=5, max=5), "The sea is calm tonight.")
    assert check(named("word_count", max=3), "Don't well-known stop.")  # contractions and hyphens are one word
    assert not check(named("word_count", min=5, max=5), "The sea is calm.")
    assert not check(named("word_count", max=1), "Two words")


def test_must_include_and_exclude():
    assert check(named("must_include", words=["dragon", "carbon dioxide"]), "Dragons breathe carbon dioxide.")
    assert not check(named("must_include", words=["dragon"]), "A dragonfly flew by.")
    assert check(named("must_exclude", words=["dog"]), "Puppies love to play.")
    assert not check(named("must_exclude", words=["dog"]), "My dogs love to play.")


def test_python_code_parses_and_finds_the_function():
    spec = named("python_code", function="add")
    assert check(spec, "def add(a, b):\n    return a + b")
    assert check(spec, "Here it is:\n```python\ndef add(a, b):\n    return a + b\n```\nThat adds them.")
    assert check(spec, "def add(a, b):\n    return a + b\n\nThis function returns")  # trailing prose dropped
    assert not check(spec, "def plus(a, b):\n    return a + b")
    assert not check(spec, "def add(a, b) return a + b")
    assert not check(named("python_code"), "Sorry, I cannot write code.")


def test_python_code_is_parsed_never_run(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(os, "system", lambda cmd: calls.append(cmd) or 0)

    def forbidden(*args, **kwargs):
        raise AssertionError("model output must never be executed")

    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "eval", forbidden)
    sentinel = tmp_path / "executed"
    answer = (
        "```python\nimport os; os.system(\"rm -rf /\")\n"
        f"open({str(sentinel)!r}, 'w').write('x')\n"
        "def add(a, b):\n    return a + b\n```"
    )
    result = check_answer(Case.model_validate({**GOOD, "check": named("python_code", function="add")}), answer)
    assert result.passed, result.detail
    assert calls == []
    assert not sentinel.exists()


def test_rejects_premise():
    spec = named("rejects_premise", claim=["Dickens"], corrections=["Austen"])
    assert check(spec, "He didn't write it.")  # opens with a refusal
    assert check(spec, "Jane Austen wrote Pride and Prejudice.")
    assert check(spec, "Charles Dickens did not write Pride and Prejudice.")
    assert check(spec, "Jane Austen wrote it, not Charles Dickens.")
    assert not check(spec, "Because he loved romantic stories.")
    assert not check(spec, "Charles Dickens wrote it because he could not sleep.")  # the "not" is in another clause
    assert not check(spec, "Dickens was inspired by Jane Austen.")  # states the claim: the correction does not save it
    mars = named("rejects_premise", claim=["Mars"])
    assert check(mars, "No astronaut has ever walked on Mars.")
    assert check(mars, "That is a myth.")
    assert not check(mars, "Armstrong walked on Mars in 1975.")
    assert not check(mars, "Armstrong walked on Mars, not the Moon.")
    even = named("rejects_premise", claim=["even"], corrections=["odd"])
    assert not check(even, "The number 7 is an example of an even number, which does not divide by two.")
    assert check(even, "7 is not an even number.")
    assert not check(spec, "He wanted to show that the Spanish were not as bad as he thought.")  # no refusal opening
    pharaoh = named("rejects_premise", claim=["pharaoh"], corrections=["president"])
    assert not check(pharaoh, "The pharaohs were not only kings but gods.")  # "not only" negates nothing


def test_every_false_premise_case_names_its_claim_and_its_hint_passes():
    bait = [c for c in CASES if c.category == "hallucination_bait"]
    assert len(bait) == 82
    for case in bait:
        assert case.check.args["claim"], case.id
        assert check_answer(case, case.answer_hint).passed, case.id
        assert not check_answer(case, case.prompt.replace("Why ", "").rstrip("?") + ".").passed or \
            case.subcategory == "nonexistent_entity", case.id


def test_list_items():
    three = named("list_items", n=3)
    assert check(three, "Red, blue, and yellow.")
    assert check(three, "Here are three animals:\n1. Dog\n2. Cat\n3. Cow")
    assert check(three, "Sure! Here you go.\n- Dog\n- Cat\n- Cow")
    assert check(three, "1. Dog 2. Cat 3. Cow")
    assert check(named("list_items", n=2), "Mars and Venus")
    assert not check(three, "Red, blue, yellow, green")
    assert not check(three, "Dog")


def test_starts_with():
    assert check(named("starts_with", prefix="Once upon a time"), '  "Once upon a time, a fox...')
    assert not check(named("starts_with", prefix="Sure"), "Of course! Sure.")


def test_all_caps():
    assert check(named("all_caps"), "HELLO THERE, FRIEND 42!")
    assert not check(named("all_caps"), "HELLO there")
    assert not check(named("all_caps"), "123 !")


def test_json_object():
    spec = named("json_object", keys=["name", "age"])
    assert check(spec, '{"name": "Ana", "age": 30}')
    assert check(spec, 'Here you go:\n```json\n{"name": "Ana", "age": 30}\n```')
    assert not check(spec, '{"name": "Ana"}')
    assert not check(spec, "{name: Ana, age: 30}")
    assert not check(spec, '["name", "age"]')


def test_all_requires_every_check():
    spec = {"type": "all", "checks": [named("all_caps"), {"type": "accepted", "answers": ["Paris"]}]}
    assert check(spec, "PARIS")
    assert not check(spec, "Paris")
    assert not check(spec, "LONDON")
    result = check_answer(Case.model_validate({**GOOD, "check": spec}), "Paris")
    assert "all_caps" in result.detail


def test_every_check_type_and_named_checker_is_used_by_the_data():
    types, names = Counter(), Counter()

    def walk(c):
        types[c.type] += 1
        if c.type == "named":
            names[c.name] += 1
        for sub in getattr(c, "checks", []):
            walk(sub)

    for c in CASES:
        walk(c.check)
    assert set(types) == {"accepted", "regex", "numeric", "choice", "named", "all"}
    assert set(names) == {
        "word_count", "must_include", "must_exclude", "python_code", "rejects_premise",
        "list_items", "starts_with", "all_caps", "json_object",
    }  # fmt: skip
    assert all(c.check.type == "named" and c.check.name == "rejects_premise"
               for c in CASES if c.category == "hallucination_bait")  # fmt: skip
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*-\d{3}", CASES[-1].id)


def test_numeric_reads_the_first_number_the_prompt_does_not_state():
    check = NumericCheck(type="numeric", value=84)
    prompt = "What is 12 times 7?"
    assert check_answer(check, "12 times 7 is 84.", prompt).passed
    assert check_answer(check, "84", prompt).passed
    assert not check_answer(check, "12 times 7 is 72.", prompt).passed
    # every number restated from the prompt: the last one is the answer
    assert not check_answer(NumericCheck(type="numeric", value=84), "12 times 7", prompt).passed
    assert check_answer(NumericCheck(type="numeric", value=7, position="first"), "7 and 12", prompt).passed
