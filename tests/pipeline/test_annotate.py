"""`attnlens annotate`: case selection, bad input, a real kill -9 and resume, and the batched agent on vLLM."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from attnlens.evaluation.cases import CATEGORIES, DEFAULT_PATH, load_cases
from attnlens.pipeline.annotate import (
    prompts_sha256,
    recheck,
    InputError,
    RunStore,
    annotate,
    check_models,
    read_dataset,
    select_cases,
    stratified_sample,
)
from attnlens.pipeline.explanation import Explanation

ATTNLENS = str(Path(sys.executable).with_name("attnlens"))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
# Short prompts with short answers, and one prompt too long for any bundled model (gemma reads 32768 tokens).
IDS = ("fact-simple-001", "reason-arith-001", "instruct-task-001", "ambig-context-001", "bait-nonexist-001")
LONG = {
    "id": "test-long-001", "category": "factual_recall", "subcategory": "simple_facts",
    "prompt": "Paris " * 33000 + "Which city?", "check": {"type": "accepted", "answers": ["Paris"]},
    "evidence": ["Paris"], "answer_hint": "Paris", "source": "handwritten",
}


def write_cases(path: Path, ids=IDS, long_case: bool = True) -> Path:
    lines = {json.loads(line)["id"]: line for line in DEFAULT_PATH.read_text().splitlines() if line.strip()}
    text = "".join(lines[i] + "\n" for i in ids) + (json.dumps(LONG) + "\n" if long_case else "")
    path.write_text(text)
    return path


def rows(run: Path) -> list[dict]:
    return pq.read_table(run / "annotations.parquet").to_pylist()


def wait_for_rows(proc: subprocess.Popen, run: Path, n: int, timeout: float) -> None:
    """Until the running `proc` has written at least n rows; fails if it ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if (run / "annotations.parquet").exists() and len(rows(run)) >= n:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"


# --------------------------------------------------------------------------- selection and bad input


def test_stratified_sample_is_even_and_deterministic():
    cases = load_cases()
    groups = {(c, s) for c, subs in CATEGORIES.items() for s in subs}
    for n in (6, 20, 60):
        picked = stratified_sample(cases, n)
        assert len(picked) == n and len({c.id for c in picked}) == n
        assert [c.id for c in picked] == [c.id for c in stratified_sample(cases, n)]
        assert [c.id for c in picked] == [c.id for c in cases if c in picked]  # file order
        per_group = Counter((c.category, c.subcategory) for c in picked)
        if n >= len(groups):
            assert set(per_group) == groups and max(per_group.values()) - min(per_group.values()) <= 1
        else:
            assert len({c.category for c in picked}) == min(n, len(CATEGORIES))
    assert len(stratified_sample(cases, 10_000)) == len(cases)
    assert [c.id for c in select_cases(cases, limit=3)] == [c.id for c in cases[:3]]
    with pytest.raises(InputError, match="not both"):
        select_cases(cases, limit=3, sample=3)
    train, held_back = select_cases(cases, split="train"), select_cases(cases, split="held-back")
    assert {c.id for c in train}.isdisjoint(c.id for c in held_back) and len(train) + len(held_back) == len(cases)
    assert {c.id for c in select_cases(cases, sample=20, split="held-back")} <= {c.id for c in held_back}
    with pytest.raises(InputError, match="unknown split"):
        select_cases(cases, split="test")


def test_bad_dataset_and_models_are_refused(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_dataset(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(DEFAULT_PATH.read_text().splitlines()[0] + "\n{not json\n")
    with pytest.raises(InputError, match=r"bad\.jsonl:2: invalid case"):
        read_dataset(bad)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="no cases"):
        read_dataset(tmp_path / "empty.jsonl")
    with pytest.raises(InputError, match="unknown model 'nope'"):
        check_models(["smollm2-135m", "nope"])
    with pytest.raises(InputError, match="encoder"):
        check_models(["minilm-l6"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "missing.jsonl"], "does not exist"),
        (["--dataset", "bad.jsonl"], "bad.jsonl:1: invalid case"),
        (["--dataset", "good.jsonl", "--model", "no-such-model"], "unknown model 'no-such-model'"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\n')
    write_cases(tmp_path / "good.jsonl")
    proc = subprocess.run(
        [ATTNLENS, "annotate", *args, "--out", "run"], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=ENV
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith("attnlens: error:") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "annotations.parquet").exists()


def test_resume_with_other_settings_is_refused(tmp_path):
    dataset = write_cases(tmp_path / "cases.jsonl")
    store = RunStore(tmp_path / "run")
    meta = {"dataset": {"sha256": "x"}, "models": ["smollm2-135m"], "created": "t",
            "settings": {"max_new_tokens": 8, "backend": "transformers", "agent_model": "smollm2-135m",
                         "max_llm_clusters": 0, "frame": "chat", "plain_frame": "Q: {prompt}\nA:"}}
    with store.locked():
        store.settle(meta)
    with pytest.raises(InputError, match="different dataset"):
        annotate(dataset, tmp_path / "run", max_new_tokens=8, backend="transformers", max_llm_clusters=0)
    with store.locked(), pytest.raises(InputError, match="another attnlens annotate is writing"):
        annotate(dataset, tmp_path / "run", backend="transformers")  # one writer per run directory


def test_a_run_resumes_across_a_changed_check_not_a_changed_prompt(tmp_path):
    """The annotation depends on the prompts; the verdict is re-read from the checks as they are now."""
    dataset = write_cases(tmp_path / "cases.jsonl", long_case=False)
    store = RunStore(tmp_path / "run")
    settings = {"max_new_tokens": 8, "backend": "transformers", "agent_model": "smollm2-135m",
                "max_llm_clusters": 0, "frame": "chat", "plain_frame": "Q: {prompt}\nA:"}

    def meta() -> dict:
        cases, sha = read_dataset(dataset)
        return {"dataset": {"sha256": sha, "prompts_sha256": prompts_sha256(cases)}, "models": ["smollm2-135m"],
                "created": "t", "settings": settings}

    with store.locked():
        store.settle(meta())
    stored = [{"id": "fact-simple-001", "answer": "Paris.", "correct": True, "check_detail": "old", "error": None},
              {"id": "fact-simple-002", "answer": None, "correct": None, "error": "boom"}]
    dataset.write_text(dataset.read_text().replace('"answers": ["Paris"]', '"answers": ["Lyon"]'))
    with store.locked():
        store.settle(meta())  # same prompts: resumes
    [now, failed] = recheck(stored, read_dataset(dataset)[0])
    assert now["correct"] is False and "Lyon" in now["check_detail"] and stored[0]["correct"] is True
    assert failed == stored[1]
    dataset.write_text(dataset.read_text().replace("the capital of France", "the capital city of France"))
    with store.locked(), pytest.raises(InputError, match="different dataset"):
        store.settle(meta())


@pytest.mark.slow
def test_the_plain_frame_run_and_its_resume(tmp_path):
    """frame="plain" puts a chat model to "Q: ...\\nA:" too; a run resumes only with its own frame."""
    from attnlens.extraction import PLAIN_FRAME

    dataset, run = write_cases(tmp_path / "cases.jsonl"), tmp_path / "run"
    with pytest.raises(InputError, match="unknown frame 'bogus'"):
        annotate(dataset, run, limit=1, backend="transformers", max_llm_clusters=0, frame="bogus")
    [summary] = annotate(dataset, run, limit=2, max_new_tokens=6, backend="transformers", max_llm_clusters=0,
                         frame="plain")
    assert summary.done == 2 and summary.errors == 0
    for row in rows(run):
        assert row["prompt_frame"] == PLAIN_FRAME
        saved = Explanation.load(run / row["explanation_dir"])
        assert saved.generation.input_text == PLAIN_FRAME.format(prompt=row["prompt"])
        assert saved.generation.params["frame"] == "plain"
    with pytest.raises(InputError, match="different frame"):
        annotate(dataset, run, limit=2, max_new_tokens=6, backend="transformers", max_llm_clusters=0, frame="chat")


# --------------------------------------------------------------------------- kill -9 and resume


def command(dataset: Path, run: Path) -> list[str]:
    return [
        ATTNLENS, "annotate", "--dataset", str(dataset), "--out", str(run), "--batch-size", "1",
        "--max-new-tokens", "4", "--backend", "transformers", "--max-llm-clusters", "0",
    ]


@pytest.mark.slow
def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path):
    """A real SIGKILL mid-run; the same command then finishes only what was left."""
    dataset, run = write_cases(tmp_path / "cases.jsonl"), tmp_path / "run"
    proc = subprocess.Popen(command(dataset, run), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    wait_for_rows(proc, run, 2, timeout=240)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = time.time()
    before = {r["id"]: r for r in rows(run)}  # a complete, readable file after the kill
    assert 2 <= len(before) < len(IDS) + 1
    mtimes = {i: (run / r["explanation_dir"] / "explanation.json").stat().st_mtime_ns for i, r in before.items()
              if r["explanation_dir"]}

    done = subprocess.run(command(dataset, run), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = rows(run)
    ids = [r["id"] for r in after]
    assert sorted(ids) == sorted([*IDS, LONG["id"]])  # every case exactly once
    by_id = {r["id"]: r for r in after}
    for i, row in before.items():  # finished rows are kept as they were, not recomputed
        assert by_id[i] == row
    for i, mtime in mtimes.items():
        assert (run / by_id[i]["explanation_dir"] / "explanation.json").stat().st_mtime_ns == mtime
    for i in set(ids) - set(before):  # the rest was computed by the second run
        assert by_id[i]["finished_at"].timestamp() >= killed_at - 1
    assert not list(run.glob("explanations/*/.*.partial"))

    long_row = by_id[LONG["id"]]  # a failing case is a row with its error; the batch went on
    assert "tokens" in long_row["error"] and long_row["correct"] is None and long_row["explanation_dir"] is None
    for i in IDS:
        row = by_id[i]
        assert row["error"] is None and row["answer"] and isinstance(row["correct"], bool)
        assert row["model"] == "smollm2-135m" and row["prompt_frame"] == "chat_template"
        saved = Explanation.load(run / row["explanation_dir"])
        assert saved.generation.answer == row["answer"]
        case = saved.info["case"]
        assert case["id"] == i and case["correct"] == row["correct"] and case["evidence"] == row["evidence"]
        assert json.loads(row["clusters"]) == saved.to_dict()["clusters"]

    # a row whose explanation directory is gone is not finished: only that case is redone
    shutil.rmtree(run / by_id[IDS[0]]["explanation_dir"])
    again = subprocess.run(command(dataset, run), env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "1 annotated now" in again.stdout, again.stdout
    redone = {r["id"]: r for r in rows(run)}
    assert len(redone) == len(after) and redone[IDS[0]]["finished_at"] > by_id[IDS[0]]["finished_at"]
    assert all(redone[i] == by_id[i] for i in by_id if i != IDS[0])

    import datasets

    loaded = datasets.load_dataset("parquet", data_files=str(run / "annotations.parquet"), split="train",
                                   cache_dir=str(tmp_path / "hf"))
    assert loaded.num_rows == len(IDS) + 1 and {"id", "model", "correct", "error"} <= set(loaded.column_names)


# --------------------------------------------------------------------------- the batched agent on vLLM


@pytest.mark.slow
@pytest.mark.vllm
def test_batches_share_agent_calls_on_vllm(vllm_backend, tmp_path):
    """Two models, one engine; every agent step is one engine call for the whole batch."""
    dataset, run = write_cases(tmp_path / "cases.jsonl", IDS[:3]), tmp_path / "run"
    calls = vllm_backend.stats.calls
    summaries = annotate(
        dataset, run, ["smollm2-135m", "gemma3-270m"], batch_size=4, max_new_tokens=8,
        backend=vllm_backend, max_llm_clusters=2,
    )
    # the over-long case fails on both; Gemma 3, in the plain frame, answers "Add 1467 and 953." with
    # a new "Q:" at once, and an answer cut at its stop sequence is empty: nothing to explain
    assert [(s.model, s.done, s.errors) for s in summaries] == [("smollm2-135m", 4, 1), ("gemma3-270m", 4, 2)]
    table = rows(run)
    [empty] = [r for r in table if r["model"] == "gemma3-270m" and r["id"] == "reason-arith-001"]
    assert "empty" in empty["error"]
    assert len({(r["id"], r["model"]) for r in table}) == len(table) == 8
    ok = [r for r in table if r["error"] is None]
    # one batch per model: at most draft + 3 critiques + 2 refines per agent run, and calls are
    # shared (one by one, the cases' own call counts would add up to the engine's)
    engine_calls = vllm_backend.stats.calls - calls
    assert 2 <= engine_calls <= 12 and sum(r["llm_calls"] for r in ok) > engine_calls
    assert all(r["llm_calls"] >= 1 and r["llm_tokens"] > 0 for r in ok)
    for r in ok:
        saved = json.loads((run / r["explanation_dir"] / "explanation.json").read_text())
        explained = sum(o["model"] == r["model"] for o in ok)  # the cases of the batch that reached the agent
        assert saved["agent"]["batch_cases"] == explained and saved["info"]["case"]["id"] == r["id"]
        sent = [c for c in saved["agent_trace"]["rationales"].values() if c["sent_to_llm"]]
        assert len(sent) == min(2, r["n_clusters"])
        assert {h["cluster"] for h in saved["agent_trace"]["history"]} <= {c["id"] for c in saved["clusters"]}
    gemma = [r for r in ok if r["model"] == "gemma3-270m"]
    assert all(r["prompt_frame"] == "Q: {prompt}\nA:" for r in gemma)
    meta = json.loads((run / "run.json").read_text())
    assert meta["models"] == ["smollm2-135m", "gemma3-270m"] and meta["settings"]["backend"] == "vllm"
    assert meta["dataset"]["sha256"] == read_dataset(dataset)[1] and meta["prompt_versions"]
