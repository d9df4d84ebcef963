"""`attnlens evaluate` end to end: real explanations (SmolLM2 + the vLLM agent), the suites, the
report, resuming, failures recorded, the annotator's Parquet layout, and bad input at the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from attnlens.errors import InputError
from attnlens.evaluation.suite import SOURCES, SuiteConfig
from attnlens.pipeline.explainer import Explainer
from attnlens.reports.report import CASES_FILE, discover, evaluate

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
ATTNLENS = str(Path(sys.executable).with_name("attnlens"))

PROMPTS = {
    "capital": ("What is the capital of France?", ["France"]),
    "sum": ("Tom has 3 apples and buys 4 more. How many apples does he have?", ["3", "4", "more"]),
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, vllm_backend):
    run = tmp_path_factory.mktemp("run")
    explainer = Explainer("smollm2-135m", vllm_backend, max_llm_clusters=2, max_rounds=1)
    for name, (prompt, evidence) in PROMPTS.items():
        explanation = explainer.explain(prompt, max_new_tokens=8)
        explanation.info["case"] = {"id": name, "category": name, "subcategory": name, "evidence": evidence,
                                    "correct": name == "capital"}  # fmt: skip
        explanation.save(run / name)
    broken = run / "broken"
    broken.mkdir()
    (broken / "explanation.json").write_text(json.dumps({"info": {"case": {"id": "broken"}}}))
    return run


@pytest.fixture(scope="module")
def evaluated(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    evaluate(run_dir, out, SuiteConfig(random_draws=1), grounding_limit=2, backend="vllm")
    return out


def test_report_metrics_and_plots_are_written(evaluated):
    metrics = json.loads((evaluated / "metrics.json").read_text())
    assert metrics["cases"] == 3 and metrics["scored"] == 2
    assert [e["key"] for e in metrics["errors"]] == ["broken"]  # recorded, and the suite went on
    for ablation in ("deletion", "knockout"):
        table = metrics["faithfulness"][ablation]
        assert set(table) == set(SOURCES)
        assert table["attnlens"]["aopc_comprehensiveness_eraser"]["n"] == 2
        assert table["loo"]["tau_loo"]["mean"] == pytest.approx(1.0)
        assert len(metrics["versus_attnlens"][ablation]) == (len(SOURCES) - 1) * 3
        assert all(t["p_holm"] >= t["p"] or t["p"] != t["p"] for t in metrics["versus_attnlens"][ablation])
    assert metrics["plausibility"]["cases"] == 2
    assert metrics["grounding"]["rationales"] == 2
    sig = metrics["signatures"]["smollm2-135m"]
    assert len(sig["heads"]["entropy"]) == 30 and len(sig["induction"]) == 30
    assert metrics["correct_vs_incorrect"]["smollm2-135m"]["correct"] == 1
    report = (evaluated / "report.md").read_text()
    for heading in ("## Faithfulness by explanation source", "## Plausibility", "## Grounding", "## Attention signatures",
                    "## Correct against incorrect", "## Failures"):  # fmt: skip
        assert heading in report
    for figure in ("faithfulness_deletion", "curves_knockout", "signatures_smollm2-135m"):
        assert (evaluated / f"{figure}.png").stat().st_size > 10_000
        html = (evaluated / f"{figure}.html").read_text()
        assert "plotly.min.js" in html and f"({figure}.png)" in report
    assert (evaluated / "plotly.min.js").exists()  # one local copy: the HTML opens offline


def test_rerun_resumes_without_recomputing(run_dir, evaluated):
    before = (evaluated / CASES_FILE).read_text()
    evaluate(run_dir, evaluated, SuiteConfig(random_draws=1), grounding_limit=2, backend="vllm")
    assert (evaluated / CASES_FILE).read_text() == before


def test_annotated_run_layout_is_read_from_parquet(run_dir):
    rows = [
        {"id": "capital", "model": "smollm2-135m", "category": "c", "subcategory": "s", "correct": True,
         "evidence": ["France"], "error": None, "explanation_dir": "capital"},
        {"id": "x", "model": "smollm2-135m", "category": "c", "subcategory": "s", "correct": None,
         "evidence": [], "error": "InputError: the model's answer is empty", "explanation_dir": None},
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), run_dir / "annotations.parquet")
    try:
        items, failed = discover(run_dir)
    finally:
        (run_dir / "annotations.parquet").unlink()
    assert [(i.key, i.meta["evidence"], i.meta["correct"]) for i in items] == [("capital", ["France"], True)]
    assert failed == [{"id": "x", "model": "smollm2-135m", "category": "c", "subcategory": "s", "prompt_frame": None,
                       "error": "InputError: the model's answer is empty"}]  # fmt: skip


def test_missing_or_empty_run_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        discover(tmp_path / "nope")
    with pytest.raises(InputError, match="nothing to evaluate"):
        discover(tmp_path)
    for args in (["--run", str(tmp_path / "nope")], ["--run", str(tmp_path)], ["--run", str(tmp_path), "--ablation", "x"]):
        done = subprocess.run([ATTNLENS, "evaluate", *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done
        assert "Traceback" not in done.stderr and done.stderr.strip(), done.stderr


def test_a_run_finds_its_dataset_from_another_checkout(tmp_path):
    """A run kept in a repository names the dataset by the path it had where it was made; read from
    another checkout it falls back to the bundled dataset, but only when the prompts are the same."""
    from attnlens.evaluation.cases import DEFAULT_PATH
    from attnlens.pipeline.annotate import prompts_sha256, read_dataset
    from attnlens.reports.report import run_cases, run_dataset

    bundled = prompts_sha256(read_dataset(DEFAULT_PATH)[0])
    run = tmp_path / "run"
    run.mkdir()
    assert run_dataset(run) is None  # no run.json
    for recorded, sha, expected in [
        (str(DEFAULT_PATH), "other", DEFAULT_PATH),  # the named file exists: it is the one
        ("/elsewhere/cases.jsonl", bundled, DEFAULT_PATH),  # gone, and the bundled prompts match
        ("/elsewhere/cases.jsonl", "other", None),  # gone, and the bundled file is another dataset
    ]:
        (run / "run.json").write_text(json.dumps({"dataset": {"path": recorded, "prompts_sha256": sha}}))
        assert run_dataset(run) == expected
    assert run_cases(run) == []
