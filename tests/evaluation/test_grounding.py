"""The ragas judge's grammar: the verdicts step is pinned to one 0/1 verdict per statement, in order."""

import json

import jsonschema
import pytest
from ragas.metrics.collections.faithfulness.util import NLIStatementOutput, StatementGeneratorOutput

from attnlens.evaluation.grounding import MAX_ITEMS, OutlinesRagasLLM, bounded_schema, pinned_verdicts

STATEMENTS = ["'capital' asks for a city.", "The answer names Paris."]


def verdict(statement: str, value: int = 1, reason: str = "the context says so") -> dict:
    return {"statement": statement, "reason": reason, "verdict": value}


def pinned() -> dict:
    return pinned_verdicts(bounded_schema(NLIStatementOutput.model_json_schema()), STATEMENTS)


def test_pinned_schema_takes_one_verdict_per_statement():
    jsonschema.validate({"statements": [verdict(s) for s in STATEMENTS]}, pinned())


@pytest.mark.parametrize(
    "items",
    [
        [verdict(STATEMENTS[0])],  # one statement left unjudged
        [verdict(s) for s in STATEMENTS * 2],  # a list that runs on
        [verdict(STATEMENTS[0], 11), verdict(STATEMENTS[1])],  # a run of digits
        [verdict("Paris is in France."), verdict(STATEMENTS[1])],  # a statement nobody wrote
        [verdict(STATEMENTS[0]), verdict(STATEMENTS[0])],  # one statement judged twice, one never
        [verdict(STATEMENTS[0], reason="x" * 101), verdict(STATEMENTS[1])],  # a reason without end
        [{**verdict(STATEMENTS[0]), "verdict_reason": "..."}, verdict(STATEMENTS[1])],  # a key it invented
    ],
)
def test_pinned_schema_rejects_what_cut_judges_off(items):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"statements": items}, pinned())


def test_bounded_schema_bounds_the_statements():
    schema = bounded_schema(StatementGeneratorOutput.model_json_schema())
    assert schema["properties"]["statements"]["maxItems"] == MAX_ITEMS
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"statements": []}, schema)  # ragas never expects an empty list


@pytest.mark.slow
@pytest.mark.vllm
def test_real_judge_writes_exactly_one_verdict_per_statement(vllm_backend):
    """On the real engine: the verdicts follow the statements the judge wrote just before."""
    llm = OutlinesRagasLLM(vllm_backend)
    llm.statements = list(STATEMENTS)
    prompt = (
        "Judge each statement against the context: verdict 1 if the context supports it, else 0.\n"
        f"Context: The question asks for the capital of France; the answer is Paris.\nStatements: {json.dumps(STATEMENTS)}"
    )
    result = llm.generate(prompt, NLIStatementOutput)
    assert [s.statement for s in result.statements] == STATEMENTS
    assert {s.verdict for s in result.statements} <= {0, 1}
    assert llm.failures == 0
