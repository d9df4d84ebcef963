"""The LLM backends, with real engines and the real bundled model (no mocks).

Engines are expensive here (vLLM: ~5 GB and ~30 s each, on 2 cores), so each is built once and
never two at once: the server (class-scoped) is started and stopped first, then the in-process
engine is the session's (`vllm_backend` in tests/conftest.py), which the agent's tests reuse. Every batch mixes different schemas in ONE generate() call, and an enum answer to a
question whose real answer is outside the enum proves the constraint is really applied.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from outlines.types.dsl import to_regex

from attnlens.agent import backends
from attnlens.agent.backends import (
    DEFAULT_AGENT_MODEL,
    StructuredRequest,
    StructuredResult,
    TransformersBackend,
    VLLMBackend,
    VLLMServerBackend,
    engine_settings,
    get_backend,
    parse_result,
    schema_error,
    vllm_env,
)
from attnlens.agent.backends import vllm as vllm_module
from attnlens.agent.facts import ClusterFacts
from attnlens.agent.grammar import draft_grammar, parse_draft
from attnlens.agent.graph import RationaleAgent, _shots
from attnlens.errors import BackendError, ModelError
from attnlens.prompts import examples, messages

ROOT = Path(__file__).resolve().parents[2]

ENUM = {
    "type": "object",
    "properties": {"answer": {"enum": ["zebra", "quokka"]}},
    "required": ["answer"],
    "additionalProperties": False,
}
ODD_TOKENS = [" Japan", ",", "?", "\\", '"']
TOKENS = {
    "type": "object",
    "properties": {"tokens": {"type": "array", "items": {"enum": ODD_TOKENS}, "maxItems": 4}},
    "required": ["tokens"],
    "additionalProperties": False,
}
BOUNDED = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "maxLength": 40},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["summary", "confidence"],
    "additionalProperties": False,
}
NESTED = {
    "type": "object",
    "properties": {
        "verdict": {"enum": ["accept", "revise"]},
        "cluster": {"type": "integer", "minimum": 0, "maximum": 9},
        "issues": {"type": "array", "items": {"type": "string", "maxLength": 30}, "maxItems": 2},
    },
    "required": ["verdict", "cluster", "issues"],
    "additionalProperties": False,
}


def example_facts(index: int = 0) -> ClusterFacts:
    """A real cluster: one the few-shot examples were written for (facts from a real explanation)."""
    return ClusterFacts.from_dict(examples().items[index]["facts"])


def draft_request(index: int = 0) -> StructuredRequest:
    """What the agent sends for a cluster: its draft messages and its regex grammar."""
    f = example_facts(index)
    shots = _shots("question")
    return StructuredRequest(messages("draft", f.slots(), shots), draft_grammar(f), 72)


def mixed_requests() -> list[StructuredRequest]:
    """Five requests, four JSON schemas and the agent's regex grammar: what one agent step sends in one call."""
    return [
        StructuredRequest([{"role": "user", "content": "What is the capital of France?"}], ENUM, max_tokens=40),
        StructuredRequest(
            [
                {"role": "system", "content": "You pick the tokens that matter most."},
                {"role": "user", "content": 'Which tokens of "Is Tokyo in Japan, or not?" matter most?'},
            ],
            TOKENS,
            max_tokens=60,
        ),
        StructuredRequest(
            [
                {"role": "system", "content": 'Reply in JSON like {"summary": "a cat sat", "confidence": 0.8}.'},
                {"role": "user", "content": "Summarise in a few words: the cat sat on the mat all day."},
            ],
            BOUNDED,
            max_tokens=100,
        ),
        StructuredRequest(
            [
                {"role": "system", "content": "You review rationales."},
                {"role": "user", "content": "Cluster 3 rationale: 'the model copied the year'. Accept or revise?"},
            ],
            NESTED,
            max_tokens=100,
        ),
        draft_request(),
    ]


def assert_all_valid(results: list[StructuredResult], requests: list[StructuredRequest]) -> None:
    assert len(results) == len(requests)
    for result, request in zip(results, requests):
        assert result.error is None, (result.error, result.text)
        assert 0 < result.tokens <= request.max_tokens
        if isinstance(request.grammar, dict):
            assert result.data == json.loads(result.text)
            assert schema_error(result.data, request.grammar) is None
        else:  # the agent's regex: the whole text matches, and it reads as a draft of that cluster
            assert result.data == result.text and re.fullmatch(to_regex(request.grammar), result.text)
            draft = parse_draft(result.text)
            f = example_facts()
            assert draft.label in f.allowed_labels and set(draft.evidence_tokens) <= set(f.words)
    # The proof that the schema is applied: the true answer, Paris, is not allowed.
    assert results[0].data["answer"] in {"zebra", "quokka"}
    assert set(results[1].data["tokens"]) <= set(ODD_TOKENS) and len(results[1].data["tokens"]) <= 4
    assert len(results[2].data["summary"]) <= 40 and 0 <= results[2].data["confidence"] <= 1
    assert results[3].data["verdict"] in {"accept", "revise"} and 0 <= results[3].data["cluster"] <= 9


def one_call_for_the_batch(backend, requests, **kwargs) -> list[StructuredResult]:
    before = dataclasses.replace(backend.stats)
    start = time.perf_counter()
    results = backend.generate(requests, **kwargs)
    seconds = time.perf_counter() - start
    assert backend.stats.calls == before.calls + 1
    assert backend.stats.requests == before.requests + len(requests)
    tokens = sum(r.tokens for r in results)
    assert backend.stats.tokens == before.tokens + tokens
    print(f"\n[{backend.name}] {len(requests)} requests, {tokens} tokens in {seconds:.2f} s: {tokens / seconds:.1f} tok/s")
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def engine_cores() -> list:
    """The in-process engine's EngineCore subprocesses still running."""
    import psutil

    running = []
    for p in psutil.Process().children(recursive=True):
        try:  # a killed core not yet reaped is a zombie: it has exited
            if p.status() != psutil.STATUS_ZOMBIE and "EngineCore" in " ".join(p.cmdline() or [p.name()]):
                running.append(p)
        except psutil.NoSuchProcess:  # gone meanwhile (ZombieProcess is one too)
            continue
    return running


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# ------------------------------------------------------------------------------------------
# No engine needed
# ------------------------------------------------------------------------------------------


def test_schema_check_covers_the_agent_schemas():
    """jsonschema does the checking; schema_error names where the first violation is."""
    assert schema_error({"answer": "zebra"}, ENUM) is None
    assert schema_error({"answer": "Paris"}, ENUM) == "$.answer: 'Paris' is not one of ['zebra', 'quokka']"
    assert "Additional properties" in schema_error({"answer": "zebra", "x": 1}, ENUM)
    assert "'tokens' is a required property" in schema_error({}, TOKENS)
    assert "is too long" in schema_error({"tokens": [","] * 5}, TOKENS)
    assert schema_error({"tokens": ["\\", '"', " Japan"]}, TOKENS) is None
    assert schema_error({"summary": "x" * 41, "confidence": 0.5}, BOUNDED).startswith("$.summary: ")
    assert "greater than the maximum" in schema_error({"summary": "x", "confidence": 54}, BOUNDED)
    assert "is not of type 'number'" in schema_error({"summary": "x", "confidence": True}, BOUNDED)
    assert "is not of type 'integer'" in schema_error({"verdict": "accept", "cluster": 1.5, "issues": []}, NESTED)
    assert schema_error({"verdict": "accept", "cluster": 2, "issues": ["a"]}, NESTED) is None
    # pydantic-style $defs / $ref and anyOf (Optional[...])
    ref = {
        "$defs": {"Item": {"type": "object", "properties": {"k": {"type": "string", "maxLength": 2}}}},
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
                       "note": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
    }
    assert schema_error({"items": [{"k": "ab"}], "note": None}, ref) is None
    assert schema_error({"items": [{"k": "abc"}]}, ref).startswith("$.items[0].k: 'abc' is too long")
    assert "is not valid under any of the given schemas" in schema_error({"note": 3}, ref)


def test_a_bad_output_is_a_result_not_an_exception():
    cut = parse_result('{"summary":"The cat sat on the mat.","confidence":0.00000000000', BOUNDED, 100, truncated=True)
    assert cut.data is None and cut.error.startswith("invalid JSON") and "max_tokens" in cut.error
    assert cut.tokens == 100 and not cut.ok
    wrong = parse_result('{"answer":"Paris"}', ENUM, 5)
    assert wrong.data is None and wrong.error.startswith("schema:") and wrong.text == '{"answer":"Paris"}'
    assert parse_result("[1]", {"type": "array"}, 2).error.startswith("schema: expected an object")
    good = parse_result('{"answer":"zebra"}', ENUM, 5)
    assert good.ok and good.data == {"answer": "zebra"}


@pytest.mark.parametrize("name", ["auto", "vllm", "vllm-server", "transformers"])
def test_a_missing_model_folder_is_one_clear_line(tmp_path, name):
    """The model is resolved by the registry before any backend starts: a ModelError, one line."""
    with pytest.raises(ModelError) as err:
        get_backend(name, model=str(tmp_path / "nowhere"))
    message = str(err.value)
    assert "\n" not in message and "not a local folder" in message and "nowhere" in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json") as err:
        get_backend(name, model=str(tmp_path / "empty"))
    assert "\n" not in str(err.value)


def test_unknown_backend_and_misused_url():
    with pytest.raises(BackendError, match="unknown backend 'llama'"):
        get_backend("llama")
    with pytest.raises(BackendError, match="takes no url"):
        get_backend("vllm", url="http://127.0.0.1:1")


def test_no_server_at_the_url_is_one_clear_line():
    port = free_port()
    start = time.perf_counter()
    with pytest.raises(BackendError, match=f"no OpenAI-compatible server answers at http://127.0.0.1:{port}/v1") as err:
        get_backend("vllm-server", url=f"http://127.0.0.1:{port}")
    assert "\n" not in str(err.value) and time.perf_counter() - start < 15


def test_engine_settings_follow_the_machine():
    cpu = vllm_env(cuda=False)
    assert cpu["VLLM_NO_USAGE_STATS"] == "1" and cpu["DO_NOT_TRACK"] == "1"
    assert cpu["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert cpu["VLLM_CACHE_ROOT"].endswith("vllm")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) == 2:  # the project's machines: bind both cores (vLLM's default idles one)
        assert cpu["VLLM_CPU_OMP_THREADS_BIND"] == f"{cpus[0]}-{cpus[1]}"
    elif len(cpus) > 2:
        assert "VLLM_CPU_OMP_THREADS_BIND" not in cpu
    gpu = vllm_env(cuda=True)
    assert not any(key.startswith("VLLM_CPU_") for key in gpu)
    assert engine_settings(cuda=False)["dtype"] == "float32"
    assert engine_settings(cuda=True)["dtype"] == "auto"
    # CPU: the smallest KV block vllm-cpu's attention takes, so prefix caching reuses the shared prompt
    assert engine_settings(cuda=False)["block_size"] == 32 and "block_size" not in engine_settings(cuda=True)
    for settings in (engine_settings(cuda=False), engine_settings(cuda=True)):
        assert settings["max_model_len"] == 4096
        assert settings["structured_outputs_config"] == {"backend": "guidance", "disable_any_whitespace": True}
    # telemetry is off as soon as the module is imported, before anything imports vllm
    assert os.environ["VLLM_NO_USAGE_STATS"] == "1" and os.environ["DO_NOT_TRACK"] == "1"


# ------------------------------------------------------------------------------------------
# The OpenAI-compatible server, started by the test, stopped at the end
# ------------------------------------------------------------------------------------------


@pytest.mark.vllm
@pytest.mark.slow
def test_a_server_that_cannot_start_says_why():
    start = time.perf_counter()
    with pytest.raises(BackendError) as err:
        VLLMServerBackend.from_vllm_server(model="smollm2-135m", extra_args=["--no-such-flag"], timeout=120)
    message = str(err.value)
    assert "\n" not in message and "exited with code 2" in message
    assert "unrecognized arguments: --no-such-flag" in message and "full log:" in message
    print(f"\n[vllm-server] failed start reported in {time.perf_counter() - start:.1f} s: {message[:160]}")


@pytest.fixture(scope="class")
def vllm_server():
    """Started once for the class, with no in-process engine alive; stopped at its end."""
    # an earlier module's session engine: free its ~5 GB first (it restarts on use)
    backends.shutdown_engines()
    assert not engine_cores()
    start = time.perf_counter()
    server = get_backend("vllm-server", model="smollm2-135m")
    print(f"\n[vllm-server] up in {time.perf_counter() - start:.1f} s at {server.base_url}")
    yield server
    server.close()
    assert not group_alive(server.process.pid)


@pytest.mark.vllm
@pytest.mark.slow
class TestVLLMServer:
    @pytest.fixture
    def server(self, vllm_server):
        return vllm_server

    def test_constraint_applies_over_http(self, server):
        assert isinstance(server, VLLMServerBackend) and server.process is not None
        assert server.base_url.startswith("http://127.0.0.1:")
        requests = mixed_requests()
        assert_all_valid(one_call_for_the_batch(server, requests), requests)

    def test_connect_to_a_running_server_by_url(self, server):
        url = server.base_url.removesuffix("/v1")
        client = get_backend("auto", model="whatever-name", url=url)  # "auto" with a url -> that server
        assert isinstance(client, VLLMServerBackend) and client.process is None
        assert client.model == "smollm2-135m"  # the only model it serves
        requests = mixed_requests()[:2]
        assert_all_valid(client.generate(requests) + server.generate(mixed_requests()[2:]), mixed_requests())
        client.close()  # not ours: the server keeps running
        assert server.process.poll() is None

    def test_one_bad_request_does_not_sink_the_batch(self, server):
        too_long = StructuredRequest([{"role": "user", "content": "word " * 5000}], ENUM, max_tokens=20)
        results = server.generate([too_long, mixed_requests()[0]])
        assert results[0].data is None and results[0].error.startswith("request failed: BadRequestError")
        print(f"\n[vllm-server] over-long prompt: {results[0].error[:200]}")
        assert results[1].data["answer"] in {"zebra", "quokka"}

    def test_the_agent_runs_over_http(self, server):
        facts = [example_facts(i) for i in (0, 3)]  # two clusters of one real case
        assert len({f.id for f in facts}) == 2 and facts[0].prompt == facts[1].prompt
        agent = RationaleAgent(server, max_rounds=1)
        result = agent.run(facts)
        assert set(result.rationales) == {f.id for f in facts}
        assert result.info["backend"] == "vllm-server" and 1 <= result.llm_calls <= agent.max_calls

    def test_generate_works_inside_a_running_event_loop(self, server):
        import asyncio

        async def agent_step():
            return server.generate(mixed_requests()[:1])

        assert asyncio.run(agent_step())[0].data["answer"] in {"zebra", "quokka"}

    def test_close_stops_the_server(self, server):
        pid = server.process.pid
        server.close()
        assert server.process.returncode is not None
        assert not group_alive(pid)  # the API server and its engine core are gone
        with pytest.raises(BackendError, match="closed"):
            server.generate(mixed_requests()[:1])


# ------------------------------------------------------------------------------------------
# In-process vLLM: the session's engine (tests/conftest.py `vllm_backend`), which the agent's
# tests reuse after this file; started here, after the server above is gone.
# ------------------------------------------------------------------------------------------


@pytest.mark.vllm
@pytest.mark.slow
class TestVLLM:
    @pytest.fixture
    def backend(self, vllm_backend):
        # the server class above shuts the session engine down when an earlier module started it
        # (to free its memory); an open backend restarts it on use, as here
        vllm_backend._live_engine()
        return vllm_backend

    def test_auto_picks_vllm_and_shares_the_engine(self, backend):
        print(f"\n[vllm] engine start (LLM()) {backend.stats.startup_seconds:.1f} s")
        assert isinstance(backend, VLLMBackend) and backend.name == "vllm" and backend.model == "smollm2-135m"
        auto = get_backend("auto", model=backend.model)  # vllm imports here, so "auto" must pick it
        assert isinstance(auto, VLLMBackend) and auto._engine is backend._engine  # one engine per process
        assert auto.stats.calls == 0
        auto.close()  # not the last user: the engine stays up
        assert backend._engine.llm is not None and vllm_module._ENGINES[backend.path] is backend._engine
        with pytest.raises(BackendError, match="closed"):
            auto.generate(mixed_requests()[:1])

    def test_mixed_schemas_in_one_call(self, backend):
        requests = mixed_requests()
        assert_all_valid(one_call_for_the_batch(backend, requests), requests)

    def test_sampling_stays_valid_and_is_seeded(self, backend):
        n = len(mixed_requests())
        requests = mixed_requests() * 2
        first = one_call_for_the_batch(backend, requests, temperature=1.2, seed=7)
        assert_all_valid(first[:n], requests[:n])
        assert_all_valid(first[n:], requests[n:])
        again = backend.generate(requests, temperature=1.2, seed=7)
        assert [r.text for r in again] == [r.text for r in first]  # a request's output depends on its seed only
        assert backend.stats.tokens_per_second > 0

    def test_one_bad_request_does_not_sink_the_batch(self, backend):
        too_long = StructuredRequest([{"role": "user", "content": "word " * 5000}], ENUM, max_tokens=20)
        results = backend.generate([mixed_requests()[0], too_long])
        assert results[0].data["answer"] in {"zebra", "quokka"}
        assert results[1].data is None and results[1].error.startswith("request failed: ")
        assert "\n" not in results[1].error and "4096" in results[1].error  # names the limit
        print(f"\n[vllm] over-long prompt: {results[1].error[:200]}")

    def test_empty_batch(self, backend):
        calls = backend.stats.calls
        assert backend.generate([]) == [] and backend.stats.calls == calls


# ------------------------------------------------------------------------------------------
# transformers + outlines
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="class")
def transformers_backend():
    backend = get_backend("transformers")  # the default writer
    print(f"\n[transformers] loaded in {backend.stats.startup_seconds:.1f} s")
    yield backend
    backend.close()


@pytest.mark.slow
class TestTransformers:
    @pytest.fixture
    def backend(self, transformers_backend):
        return transformers_backend

    def test_mixed_schemas_in_one_call(self, backend):
        assert isinstance(backend, TransformersBackend) and backend.model == DEFAULT_AGENT_MODEL == "qwen2.5-0.5b"
        requests = mixed_requests()
        assert_all_valid(one_call_for_the_batch(backend, requests), requests)

    def test_requests_sharing_a_schema_are_batched_and_seeded(self, backend):
        requests = [mixed_requests()[0]] * 3 + [mixed_requests()[1]]
        results = one_call_for_the_batch(backend, requests, temperature=1.0, seed=3)
        for result, request in zip(results, requests):
            assert result.ok and schema_error(result.data, request.grammar) is None
        again = backend.generate(requests, temperature=1.0, seed=3)
        assert [r.text for r in again] == [r.text for r in results]


@pytest.mark.slow
def test_auto_falls_back_to_transformers_without_vllm():
    """A real process in which `import vllm` fails: "auto" warns and uses transformers; asking
    for "vllm" explicitly is a one-line BackendError."""
    code = """
import sys, warnings
sys.modules["vllm"] = None  # makes every `import vllm` raise ImportError
from attnlens.agent.backends import get_backend, StructuredRequest
from attnlens.errors import BackendError
try:
    get_backend("vllm")
except BackendError as exc:
    print("EXPLICIT:", exc)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    backend = get_backend("auto")
print("WARN:", [str(w.message) for w in caught if "vLLM is not usable" in str(w.message)][0])
print("PICKED:", backend.name)
schema = {"type": "object", "properties": {"answer": {"enum": ["zebra", "quokka"]}}, "required": ["answer"]}
r = backend.generate([StructuredRequest([{"role": "user", "content": "What is the capital of France?"}], schema, 30)])
print("ANSWER:", r[0].data["answer"])
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert lines["EXPLICIT"].startswith("vllm is not importable here (") and "transformers" in lines["EXPLICIT"]
    assert "falling back to the transformers backend" in lines["WARN"]
    assert lines["PICKED"] == "transformers"
    assert lines["ANSWER"] in {"zebra", "quokka"}


@pytest.mark.slow
@pytest.mark.vllm
def test_the_default_writer_runs_on_vllm_with_the_same_batched_grammar():
    """Qwen2.5-0.5B on the real vllm-cpu engine: one call for a batch of mixed schemas, all valid."""
    backends.shutdown_engines()  # the session's SmolLM2 engine: free its memory (it restarts on use)
    backend = get_backend("vllm")
    try:
        assert isinstance(backend, VLLMBackend) and backend.model == "qwen2.5-0.5b"
        print(f"\n[vllm qwen2.5-0.5b] engine start {backend.stats.startup_seconds:.1f} s")
        requests = mixed_requests()
        assert_all_valid(one_call_for_the_batch(backend, requests), requests)
    finally:
        backend.close()
        backends.shutdown_engines()
    assert not engine_cores()
