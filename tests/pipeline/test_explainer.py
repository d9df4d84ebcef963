"""`attnlens explain` end to end: the JSON contract, on the real models and the real engine."""

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from rich.console import Console

from attnlens.errors import InputError
from attnlens.pipeline.explainer import Explainer
from attnlens.pipeline.explanation import Explanation

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
    effects = [c["comprehensiveness"] for c in data["clusters"]]
    assert effects == sorted(effects, reverse=True) and data["clusters"]  # ranked by measured effect
    texts = [t["text"] for t in data["tokens"]]
    segments = {t["index"]: t["segment"] for t in data["tokens"]}
    assert all(segments[i] == "user" for c in data["clusters"] for i in c["token_indices"])
    for c in data["clusters"]:
        joined = "".join(texts[i] for i in sorted(c["token_indices"]))
        assert all(w in joined for w in c["words"]), (c["words"], joined)  # words made of the cluster's tokens
        assert set(c["evidence_tokens"]) <= set(c["words"]), (c["evidence_tokens"], c["words"])  # cited words are the cluster's
        assert c["label"] and c["rationale"] and c["source"] in ("llm", "template")
        for key in ("importance", "score", "comprehensiveness", "random_comprehensiveness", "sufficiency"):
            assert isinstance(c[key], float)
        assert c["words"] and c["random_comprehensiveness_sd"] >= 0
    assert set(data["scores"]) >= {"comprehensiveness", "sufficiency", "random_comprehensiveness", "grounding"}
    assert set(data["timings_s"]) == {"generate", "extract", "cluster", "agent", "evaluate"}


@pytest.mark.parametrize("prompt", PROMPTS)
def test_explain_contract(explainer, prompt):
    explanation = explainer.explain(prompt, max_new_tokens=16)
    assert_contract(explanation.to_dict(), prompt)
    assert json.loads(explanation.to_json()) == json.loads(json.dumps(explanation.to_dict()))


def test_explanation_saves_and_reloads_equal(explainer, tmp_path):
    explanation = explainer.explain(PROMPTS[0], max_new_tokens=8)
    loaded = Explanation.load(explanation.save(tmp_path / "e"))
    assert loaded == explanation
    assert loaded.to_json() == explanation.to_json()
    assert loaded.record == explanation.record and loaded.faithfulness == explanation.faithfulness
    assert loaded.agent.rationales == explanation.agent.rationales and loaded.agent.history == explanation.agent.history
    # a changed detail is not equal
    loaded.agent.rationales[0].rationale += " (edited)"
    assert loaded != explanation


def test_views_escape_what_the_model_and_user_wrote(explainer):
    hostile = "Is <script>alert(1)</script> & <b>bold</b> safe? Say [red]yes[/red]."
    explanation = explainer.explain(hostile, max_new_tokens=8)
    page = explanation._repr_html_()
    assert page.startswith("<style>") and "<script" not in page and "<b>bold</b>" not in page
    assert "\n" not in page.split("</style>", 1)[1]
    # Parsed as a browser would: only the view's own tags, and the user's text intact as text
    # (token by token it may sit in separate coloured spans).
    tags, text = set(), []
    parser = HTMLParser(convert_charrefs=True)
    parser.handle_starttag = lambda tag, attrs: tags.add(tag)
    parser.handle_data = text.append
    parser.feed(page.split("</style>", 1)[1])
    assert tags <= {"div", "b", "span", "br", "ol", "li"}, tags
    assert "Is <script>alert(1)</script> & <b>bold</b> safe?" in "".join(text)
    assert all('class="al-swatch"' in page for _ in explanation.clustering.clusters[:1])
    console = Console(record=True, width=200, color_system=None)
    explanation.show(console)
    shown = console.export_text()
    assert "why did the model say this?" in shown and "[red]yes[/red]" in shown  # rich markup printed as text
    for row in explanation.cluster_rows():
        assert row["label"] in shown


def test_encoder_and_empty_prompt_are_refused(explainer):
    with pytest.raises(InputError, match="empty"):
        explainer.explain("   ")
    with pytest.raises(InputError, match="encoder"):
        Explainer("minilm-l6", explainer.backend)


def test_cli_reads_stdin_and_prints_exactly_one_json_object():
    """`printf 'What is 2+2?' | attnlens explain --prompt-file - --json`: one JSON object on stdout,
    and no third-party INFO line (vLLM's engine included) on stderr."""
    attnlens = str(Path(sys.executable).with_name("attnlens"))
    proc = subprocess.run(
        [attnlens, "explain", "--prompt-file", "-", "--max-new-tokens", "8", "--json"], input="What is 2+2?",
        capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_contract(json.loads(proc.stdout), "What is 2+2?")  # json.loads fails on anything beside the object
    assert not [line for line in proc.stderr.splitlines() if " INFO " in line or line.startswith("INFO")], proc.stderr[-3000:]


def test_the_front_door_explains_in_one_call(vllm_backend):
    import attnlens

    e = attnlens.explain("The capital of France is", backend=vllm_backend, max_new_tokens=8)
    assert isinstance(e, attnlens.Explanation)
    assert json.loads(e.to_json())["prompt"] == "The capital of France is"
    assert vllm_backend.generate([]) == []  # a backend passed in is the caller's: explain() left it open
