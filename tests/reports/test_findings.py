"""`attnlens findings` end to end on a real annotated run (SmolLM2, template rationales), its
caches, the failures it records, and the analysis helpers on hand-made numbers."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from attnlens.errors import InputError
from attnlens.evaluation.suite import SOURCES
from attnlens.pipeline.annotate import annotate
from attnlens.reports.findings import (
    PROFILE_FILE, SUITE_DIR, accuracy, answered_nothing, findings, head_roles, publish, within_category,
)
from attnlens.reports.report import CASES_FILE

pytestmark = pytest.mark.slow
ATTNLENS = str(Path(sys.executable).with_name("attnlens"))
ROOT = Path(__file__).resolve().parents[2]
# two cases from each of three categories, taken from the curated dataset
PICK = ("fact-simple-001", "fact-simple-002", "reason-arith-001", "reason-arith-002", "bait-falsefact-001",
        "bait-falsefact-002")  # fmt: skip
M = "smollm2-135m (chat)"  # the tables' unit: a model in its frame


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("findings")
    cases = [json.loads(line) for line in (ROOT / "data/cases.jsonl").read_text().splitlines()]
    picked = [c for c in cases if c["id"] in PICK]
    assert len(picked) == len(PICK)
    dataset = base / "cases.jsonl"
    dataset.write_text("".join(json.dumps(c) + "\n" for c in picked))
    run = base / "run"
    annotate(dataset, run, ["smollm2-135m"], max_new_tokens=12, backend="transformers", max_llm_clusters=0)
    return run


@pytest.fixture(scope="module")
def report(run_dir):
    out = run_dir.parent / "docs" / "findings.md"
    return findings([run_dir], out, suite_cases=3, encoders=("minilm-l6",))


def test_findings_report_from_a_real_run(run_dir, report):
    data = json.loads((report.parent / "findings-data" / "findings.json").read_text())
    table = pq.read_table(run_dir / "annotations.parquet").to_pylist()
    assert data["cases"] == {M: len(PICK)} and not data["errors"]
    accuracy = data["accuracy"][M]
    assert accuracy["all"]["mean"] == pytest.approx(np.mean([r["correct"] for r in table]))
    assert set(accuracy["by_category"]) == {"factual_recall", "reasoning", "hallucination_bait"}
    sig = data["signatures"][M]
    assert np.asarray(sig["heads"]["entropy"]).shape == (30, 9)
    assert len(sig["layers"]["distance"]) == 30
    assert sig["layers"]["sink"][0] == pytest.approx(np.mean(sig["heads"]["sink"][0]), abs=1e-4)
    induction = np.asarray(sig["induction"])
    assert len(sig["roles"]["induction"]["heads"]) == int((induction >= 0.3).sum()) > 0  # SmolLM2 has induction heads
    # the suite scored the stratified sample with every source, cached where `attnlens evaluate` looks
    suite = [json.loads(line) for line in (run_dir / SUITE_DIR / CASES_FILE).read_text().splitlines()]
    assert len(suite) == 3 and {r["category"] for r in suite} == {"factual_recall", "reasoning", "hallucination_bait"}
    assert set(data["faithfulness"]["overall"][M]["means"]) == set(SOURCES)
    assert data["faithfulness"]["cases"] == {M: 3}
    enc = data["encoder"]["signatures"]["minilm-l6"]
    assert enc["cases"] == len(PICK) and np.asarray(enc["heads"]["entropy"]).shape == (6, 12)
    text = report.read_text()
    for heading in ("## 1.", "## 2. Attention signature profiles", "## 3.", "## 4.", "## 5.", "## 6.", "## 7.", "## 8."):
        assert heading in text
    assert "--run" in text and "--suite 3" in text and "--encoder minilm-l6" in text  # the command that rewrites it
    assert "are templates" in text  # the run used --max-llm-clusters 0, and the report says so
    for figure in ("layer-profiles", "length-confound", "accuracy"):
        assert (report.parent / "findings-data" / f"{figure}.png").stat().st_size > 10_000
        assert f"](findings-data/{figure}.png)" in text
    # one model, one frame: the length control runs, the frame and model contrasts have no pair
    controls = data["controls"]
    assert set(controls["length"]) == {M} and controls["frame"] == [] and controls["models"] == []
    assert controls["scale"] == {}  # scale is read in the plain frame, the one all models share


def test_a_templates_only_run_needs_no_llm_backend(run_dir):
    from attnlens.pipeline.explainer import Explainer
    from attnlens.pipeline.explanation import Explanation

    rows = pq.read_table(run_dir / "annotations.parquet").to_pylist()
    assert all(r["llm_calls"] == 0 and r["template_rationales"] == r["n_clusters"] for r in rows)
    explanation = Explanation.load(run_dir / rows[0]["explanation_dir"])
    assert explanation.agent.info["backend"] is None  # annotate started no engine
    with pytest.raises(ValueError, match="max_llm_clusters is 0"):
        Explainer("smollm2-135m", None, max_llm_clusters=1)


def test_rerun_recomputes_nothing(run_dir, report):
    caches = [run_dir / PROFILE_FILE, run_dir / SUITE_DIR / CASES_FILE, report.parent / "findings-data" / "encoder-minilm-l6.jsonl"]
    before = [p.read_text() for p in caches]
    findings([run_dir], report, suite_cases=3, encoders=("minilm-l6",))
    assert [p.read_text() for p in caches] == before


def test_a_broken_explanation_is_recorded_and_left_out(run_dir, report, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(PROFILE_FILE, SUITE_DIR))
    victim = sorted((copy / "explanations" / "smollm2-135m").iterdir())[0]
    shutil.rmtree(victim / "record")
    out = findings([copy], tmp_path / "f.md")
    data = json.loads((tmp_path / "f-data" / "findings.json").read_text())
    assert data["cases"][M] == len(PICK) and len(data["errors"]) == 1
    assert victim.name in data["errors"][0]["key"]
    assert "## Cases left out" in out.read_text()


def test_published_rows_load_with_datasets(run_dir, tmp_path):
    from datasets import load_dataset

    path = publish([run_dir], tmp_path / "annotations")
    rows = load_dataset("parquet", data_files=str(path), split="train")
    assert sorted(rows["id"]) == sorted(PICK) and set(rows["model"]) == {"smollm2-135m"}
    assert "explanation_dir" not in rows.column_names and "clusters" in rows.column_names


def test_one_model_in_two_runs_is_refused(run_dir, tmp_path):
    with pytest.raises(InputError, match="annotated in both"):
        findings([run_dir, run_dir], tmp_path / "f.md")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--run", "/nonexistent/run"], "does not exist"),
        (["--run", "{run}", "--out", "{tmp}/findings.txt"], "Markdown file"),
    ],
)
def test_cli_bad_input_is_one_line(run_dir, tmp_path, args, message):
    args = [a.format(run=run_dir, tmp=tmp_path) for a in args]
    done = subprocess.run([ATTNLENS, "findings", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_head_roles_use_their_thresholds():
    heads = {"prev": [[0.5, 0.1], [0.39, 0.4]], "sink": [[0.7, 0.9], [0.0, 0.69]]}
    roles = head_roles(heads, [[0.0, 0.31], [0.3, 0.29]])
    assert roles["previous-token"]["heads"] == ["0.0", "1.1"]
    assert roles["sink"]["heads"] == ["0.0", "0.1"]
    assert roles["induction"]["heads"] == ["0.1", "1.0"] and roles["induction"]["of"] == 4


def test_within_category_needs_enough_of_each_group():
    def row(cat, correct, entropy):
        return {"model": "m", "category": cat, "correct": correct, "signatures": {"entropy": entropy}, "graph": {}}

    rows = [row("a", True, 1.0 + i) for i in range(8)] + [row("a", False, 20.0 + i) for i in range(8)]
    rows += [row("b", True, 1.0) for _ in range(8)] + [row("b", False, 2.0) for _ in range(7)]  # 7 < 8: skipped
    tests = within_category(rows, ["m"])
    assert {t["group"] for t in tests} == {"m a"}
    entropy = next(t for t in tests if t["metric"] == "entropy")
    assert entropy["effect"] == pytest.approx(-1.0)  # every correct answer below every incorrect one


def test_an_empty_answer_counts_as_a_wrong_one():
    """A case the model answered with nothing has no attention to profile, but it is not left out of
    the accuracy; a case that failed for another reason is."""
    from attnlens.pipeline.explainer import EMPTY_ANSWER

    base = {"model": "m (plain)", "category": "c", "subcategory": "s"}
    failed = [{**base, "id": "empty", "error": f"InputError: {EMPTY_ANSWER}"},
              {**base, "id": "broken", "error": "RuntimeError: out of memory"}]  # fmt: skip
    assert [r["id"] for r in answered_nothing(failed)] == ["empty"]
    rows = [{**base, "id": "right", "correct": True}, *answered_nothing(failed)]
    assert accuracy(rows, ["m (plain)"])["m (plain)"]["all"]["mean"] == 0.5
    assert accuracy(rows[:1], ["m (plain)"])["m (plain)"]["all"]["mean"] == 1.0
