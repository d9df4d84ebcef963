"""The attnlens command, run as a user runs it: a real process, real models."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ATTNLENS = str(Path(sys.executable).with_name("attnlens"))


def run(*args, timeout=300):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([ATTNLENS, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_models_lists_three_ready_models():
    proc = run("models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == {"smollm2-135m", "gemma3-270m", "minilm-l6"}
    assert all(r["ready"] for r in rows.values())
    assert (rows["smollm2-135m"]["heads"], rows["smollm2-135m"]["kv_heads"]) == (9, 3)


@pytest.mark.parametrize(
    "args, message",
    [
        (["extract", "--prompt", "   ", "--out", "x"], "the prompt is empty"),
        (["extract", "--model", "nope", "--prompt", "hi", "--out", "x"], "smollm2-135m, gemma3-270m, minilm-l6"),
        (["extract", "--model", "minilm-l6", "--prompt", "word " * 700, "--out", "x"], "reads at most 512"),
        (["bench", "nope"], "unknown benchmark"),
        (["extract", "--prompt", "hi", "--out", "x", "--rows", "a,b"], "comma-separated"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(args, message, tmp_path):
    proc = run(*args)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_extract_writes_a_reloadable_record(tmp_path):
    proc = run("extract", "--prompt", "What is 2 + 2?", "--max-new-tokens", "6", "--out", str(tmp_path / "rec"))
    assert proc.returncode == 0, proc.stderr
    from extraction import AttentionRecord

    record = AttentionRecord.load(tmp_path / "rec")
    assert record.generation.prompt == "What is 2 + 2?" and record["rows"].shape[0] == 30
