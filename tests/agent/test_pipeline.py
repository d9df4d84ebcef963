"""`attnlens explain` end to end: the JSON contract, on the real models and the real engine."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.explanation import Explanation
from agent.pipeline import Explainer
from extraction import InputError

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

PROMPTS = [
    "What is the capital of Japan?",
    "Anna has 5 pencils and gives away 2. How many pencils does she have left?",
    "Write a four-word slogan for a bakery.",
    "Why is the sun in the Atlantic Ocean?",
]


@pytest.fixture(scope="module")
def explainer(vllm_backend):
    return Explainer("smollm2-135m", vllm_backend, max_llm_clusters=4)


def assert_contract(data: dict, prompt: str):
    assert {"model", "prompt", "answer", "tokens", "graph", "clusters", "scores", "timings_s"} <= set(data)
    assert data["prompt"] == prompt and data["answer"]
    assert [t["index"] for t in data["tokens"]] == list(range(len(data["tokens"])))
    assert {t["role"] for t in data["tokens"]} == {"prompt", "answer"}
    assert set(data["graph"]) >= {"threshold", "resolution", "modularity", "edges"}
    importances = [c["importance"] for c in data["clusters"]]
    assert importances == sorted(importances, reverse=True) and data["clusters"]
    texts = [t["text"] for t in data["tokens"]]
    for c in data["clusters"]:
        own = {texts[i] for i in c["token_indices"]}
        assert set(c["evidence_tokens"]) <= own, (c["evidence_tokens"], own)  # cited tokens are the cluster's
        assert c["label"] and c["rationale"] and c["source"] in ("llm", "template")
        for key in ("importance", "comprehensiveness", "sufficiency"):
            assert isinstance(c[key], float)
    assert set(data["scores"]) >= {"comprehensiveness", "sufficiency", "random_comprehensiveness", "grounding"}
    assert set(data["timings_s"]) == {"generate", "extract", "cluster", "agent", "evaluate"}


@pytest.mark.parametrize("prompt", PROMPTS)
def test_explain_contract(explainer, prompt):
    assert_contract(explainer.explain(prompt, max_new_tokens=16).to_json(), prompt)


def test_explanation_saves_and_reloads(explainer, tmp_path):
    explanation = explainer.explain(PROMPTS[0], max_new_tokens=8)
    loaded = Explanation.load(explanation.save(tmp_path / "e"))
    assert loaded.to_json() == json.loads(json.dumps(explanation.to_json()))


def test_encoder_and_empty_prompt_are_refused(explainer):
    with pytest.raises(InputError, match="empty"):
        explainer.explain("   ")
    with pytest.raises(InputError, match="encoder"):
        Explainer("minilm-l6", explainer.backend)


def test_cli_prints_exactly_one_json_object():
    attnlens = str(Path(sys.executable).with_name("attnlens"))
    proc = subprocess.run(
        [attnlens, "explain", "--prompt", PROMPTS[0], "--max-new-tokens", "8", "--json"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_contract(json.loads(proc.stdout), PROMPTS[0])  # nothing else on stdout: vLLM's logs go to stderr
