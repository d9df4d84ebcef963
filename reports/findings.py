"""`attnlens findings`: what annotated runs say about the models' attention, as one Markdown report.

Three sources, each cached in its run so a re-run recomputes nothing:
  profiles   every annotated case: attention signatures (mean and per head) and cluster structure
             (`evaluation.suite.profile`; cheap, no ablations) -> RUN/profiles.jsonl
  suites     a stratified sample of N cases per model: every explanation source under the full
             faithfulness suite (`reports.report.run_suites`) -> RUN/evaluation/cases.jsonl,
             the same file `attnlens evaluate` writes, so either command reuses the other's work
  encoder    an encoder's signatures on the same prompts (no answer: the five captured
             signatures only) -> OUT_DIR/encoder-<model>.jsonl

The report's sentences are written from the numbers (`reports.findings_writeup`): every claim
carries its interval or its test, corrected by Holm within its table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from attnlens.errors import InputError
from attnlens.evaluation import stats
from attnlens.evaluation.signatures import head_signatures, summary
from attnlens.evaluation.suite import SuiteConfig, profile
from attnlens.extraction import capture, generate, load_model
from attnlens.pipeline.annotate import stratified_sample
from attnlens.pipeline.explainer import EMPTY_ANSWER
from attnlens.pipeline.explanation import Explanation
from attnlens.reports import controls, findings_writeup
from attnlens.reports.report import (
    RunItem,
    append_jsonl,
    best_source,
    category_tests,
    compare_groups,
    current_verdicts,
    discover,
    estimate,
    induction,
    model_tests,
    run_cases,
    read_jsonl,
    run_suites,
    signature_profiles,
    values,
)

PROFILE_FILE = "profiles.jsonl"
SUITE_DIR = "evaluation"
# Cluster structure and confidence: what the answer-side comparisons test besides the signatures.
STRUCTURE = ("answer_probability", "modularity", "clusters", "top_cluster_importance", "cluster_comprehensiveness")
KEY_SIGNATURES = ("entropy", "distance", "topk_mass", "gini", "sink", "prev", "share_number", "share_entity")
# Head roles, by thresholds on a head's mean over cases (stated in the report).
ROLES = {"previous-token": ("prev", 0.4), "sink": ("sink", 0.7), "induction": ("induction", 0.3)}

Progress = Callable[[str, int, int], None]


def profile_run(run: Path, items: list[RunItem], progress: Progress | None = None) -> list[dict]:
    """Profiles of a run's explanations (`discover(run)`'s items), cached in RUN/profiles.jsonl."""
    path = Path(run) / PROFILE_FILE
    done = {r["key"]: r for r in read_jsonl(path) if "prompt_tokens" in r or r.get("error")}  # older rows: redo
    todo = [it for it in items if it.key not in done]
    for j, item in enumerate(todo):
        if progress:
            progress(f"profiling {item.key}", j, len(todo))
        row = {"key": item.key, **{k: item.meta.get(k) for k in ("id", "model", "category", "subcategory", "correct")}}
        try:
            explanation = Explanation.load(item.path)
            clusters = explanation.faithfulness.clusters
            row.update(profile(explanation.record, explanation.clustering))
            row["model"] = row["model"] or explanation.generation.model
            row["answer_probability"] = explanation.faithfulness.answer_probability
            row["cluster_comprehensiveness"] = clusters[0].comprehensiveness if clusters else None
            row["answer_tokens"] = len(explanation.generation.answer_indices)
            row["prompt_tokens"] = explanation.generation.answer_start
        except Exception as exc:  # noqa: BLE001 - recorded; the others go on
            row["error"] = f"{type(exc).__name__}: {exc}"
        append_jsonl(path, row)
        done[item.key] = row
    # the verdict comes from the item (the checks as they are now), not from the cache; the
    # condition is the model in its frame, the unit every table compares
    out = []
    for it in items:
        if it.key in done:
            row = {**done[it.key], "correct": it.meta.get("correct"), "frame": controls.frame_of(it.meta.get("prompt_frame"))}
            row["base_model"] = row["model"]
            row["condition"] = row["model"] = controls.condition(row["base_model"], row["frame"])
            out.append(row)
    return out


def suite_sample(run: Path, items: list[RunItem], n: int) -> list[RunItem]:
    """Per model, the N cases `attnlens annotate --sample N` would pick from the run's dataset."""
    cases = run_cases(run)
    if not cases:
        raise InputError(f"{run}: the dataset its run.json names is gone, so its suite sample is unknown")
    chosen = {c.id for c in stratified_sample(cases, n)}
    return [it for it in items if it.meta.get("id") in chosen]


def encoder_profiles(model: str, prompts: list[dict], out: Path, progress: Progress | None = None) -> list[dict]:
    """The encoder's captured signatures on every prompt (cached in OUT/encoder-<model>.jsonl)."""
    path = out / f"encoder-{model}.jsonl"
    done = {r["id"]: r for r in read_jsonl(path)}
    todo = [p for p in prompts if p["id"] not in done]
    lm = load_model(model) if todo else None
    for j, case in enumerate(todo):
        if progress:
            progress(f"{model} {case['id']}", j, len(todo))
        row = {"key": case["id"], "model": model, **{k: case[k] for k in ("id", "category", "subcategory")}, "correct": None}
        try:
            heads = head_signatures(capture(lm, generate(lm, case["prompt"], truncate=True)))
            row.update(signatures=summary(heads), head_signatures={k: np.round(v, 5).tolist() for k, v in heads.items()})
        except Exception as exc:  # noqa: BLE001
            row["error"] = f"{type(exc).__name__}: {exc}"
        append_jsonl(path, row)
        done[case["id"]] = row
    return [done[p["id"]] for p in prompts]


# --------------------------------------------------------------------------- analysis


def _tests(groups: list[tuple[str, list[dict], list[dict]]], names: tuple[str, ...]) -> list[dict]:
    return compare_groups(groups, names, controls.value)


def _rate(rows: list[dict]) -> dict:
    return estimate([float(r["correct"]) for r in rows if r.get("correct") is not None])


def layer_profile(heads: dict) -> dict:
    """Per layer: the mean over heads of each signature (depth trends: where attention goes local)."""
    return {name: np.asarray(v).mean(-1).round(4).tolist() for name, v in heads.items()}


def head_roles(heads: dict, induction_scores: list) -> dict:
    """How many heads take each role (ROLES thresholds on the head's mean over cases), and which."""
    table = {**heads, "induction": induction_scores}
    out = {}
    for role, (name, threshold) in ROLES.items():
        grid = np.asarray(table.get(name, []))
        where = np.argwhere(grid >= threshold) if grid.size else []
        out[role] = {"signature": name, "threshold": threshold, "heads": [f"{int(l)}.{int(h)}" for l, h in where],
                     "of": int(grid.size)}  # fmt: skip
    return out


def accuracy(ok: list[dict], models: list[str]) -> dict:
    out = {}
    for model in models:
        rs = [r for r in ok if r["model"] == model]
        cats = sorted({r["category"] for r in rs})
        subs = sorted({(r["category"], r["subcategory"]) for r in rs})
        out[model] = {
            "all": _rate(rs),
            "by_category": {c: _rate([r for r in rs if r["category"] == c]) for c in cats},
            "by_subcategory": {f"{c}/{s}": _rate([r for r in rs if (r["category"], r["subcategory"]) == (c, s)]) for c, s in subs},
        }  # fmt: skip
    return out


def correct_vs_incorrect(ok: list[dict], models: list[str]) -> list[dict]:
    """Per model, all categories pooled: signatures and cluster structure, correct against incorrect."""
    groups = []
    for model in models:
        rs = [r for r in ok if r["model"] == model and r.get("correct") is not None]
        groups.append((model, [r for r in rs if r["correct"]], [r for r in rs if not r["correct"]]))
    return _tests([g for g in groups if g[1] and g[2]], (*KEY_SIGNATURES, *STRUCTURE))


def within_category(ok: list[dict], models: list[str], minimum: int = 8) -> list[dict]:
    """Correct vs incorrect inside each category with at least `minimum` of each: the pooled test
    mixes categories whose accuracy and attention both differ (Simpson); this one does not."""
    groups = []
    for model in models:
        for cat in sorted({r["category"] for r in ok if r["model"] == model}):
            rs = [r for r in ok if r["model"] == model and r["category"] == cat and r.get("correct") is not None]
            right, wrong = [r for r in rs if r["correct"]], [r for r in rs if not r["correct"]]
            if len(right) >= minimum and len(wrong) >= minimum:
                groups.append((f"{model} {cat}", right, wrong))
    return _tests(groups, ("entropy", "topk_mass", "sink", "share_number", *STRUCTURE[:4]))


def failures(ok: list[dict], models: list[str]) -> dict:
    """Hallucination-bait failures against reasoning failures, and each against its own successes."""
    out = {}
    names = (*KEY_SIGNATURES, *STRUCTURE[:4])
    for model in models:
        rs = [r for r in ok if r["model"] == model and r.get("correct") is not None]
        bait = [r for r in rs if r["category"] == "hallucination_bait"]
        reasoning = [r for r in rs if r["category"] == "reasoning"]
        wrong = lambda group: [r for r in group if not r["correct"]]  # noqa: E731
        right = lambda group: [r for r in group if r["correct"]]  # noqa: E731
        groups = [("bait failures vs reasoning failures", wrong(bait), wrong(reasoning)),
                  ("bait failures vs bait successes", wrong(bait), right(bait)),
                  ("reasoning failures vs reasoning successes", wrong(reasoning), right(reasoning))]  # fmt: skip
        out[model] = _tests([g for g in groups if g[1] and g[2]], names)
    return out


def faithfulness_by_task(suite_rows: list[dict]) -> dict:
    """Per model and category: each source's AOPC comprehensiveness (deletion, ERASER bins), the
    best one other than leave-one-out, and the paired test of the best against attnlens."""
    ok = [r for r in suite_rows if not r.get("error") and "deletion" in r.get("faithfulness", {})]
    best = best_source(ok, ["deletion"])
    metric = "aopc_comprehensiveness_eraser"
    for model, cats in best.items():
        for cat, by_ablation in cats.items():
            entry = by_ablation["deletion"]
            rs = [r for r in ok if r["model"] == model and r["category"] == cat]
            if entry["best"] and entry["best"] != "attnlens":
                a = values(rs, lambda r: r["faithfulness"]["deletion"][entry["best"]][metric])
                b = values(rs, lambda r: r["faithfulness"]["deletion"]["attnlens"][metric])
                entry["best_vs_attnlens"] = stats.paired(a, b).to_dict()
    overall = {}
    for model in best:
        rs = [r for r in ok if r["model"] == model]
        overall[model] = best_source([{**r, "category": "all"} for r in rs], ["deletion"])[model]["all"]["deletion"]
    return {"by_category": best, "overall": overall, "cases": {m: sum(r["model"] == m for r in ok) for m in best}}


def answered_nothing(failed: list[dict]) -> list[dict]:
    """The failed rows whose answer was empty, as incorrect answers: the model gave none, which
    counts against its accuracy even though there is no attention to profile."""
    return [{**f, "correct": False} for f in failed if EMPTY_ANSWER in (f.get("error") or "")]


def analyse(profiles: list[dict], failed: list[dict], suite_rows: list[dict], encoder_rows: list[dict],
            induction_scores: dict) -> dict:  # fmt: skip
    ok = [r for r in profiles if not r.get("error")]
    models = sorted({r["model"] for r in ok})
    sig = signature_profiles(ok, models, induction_scores)
    for model in models:
        sig[model]["layers"] = layer_profile(sig[model]["heads"])
        sig[model]["roles"] = head_roles(sig[model]["heads"], sig[model]["induction"])
    enc_ok = [r for r in encoder_rows if not r.get("error")]
    enc_models = sorted({r["model"] for r in enc_ok})
    return {
        "models": models,
        "cases": {m: sum(r["model"] == m for r in profiles) for m in models},
        "errors": [r for r in profiles if r.get("error")] + failed,
        "accuracy": accuracy(ok + answered_nothing(failed), models),
        "signatures": sig,
        "categories": category_tests(ok, models),
        "models_tests": model_tests(ok, models),
        "correct_vs_incorrect": correct_vs_incorrect(ok, models),
        "within_category": within_category(ok, models),
        "failures": failures(ok, models),
        "faithfulness": faithfulness_by_task(suite_rows),
        "encoder": {
            "signatures": signature_profiles(enc_ok, enc_models, {}),
            "categories": category_tests(enc_ok, enc_models),
        },
    }


# --------------------------------------------------------------------------- the command


def publish(runs: list[Path], directory: Path) -> Path:
    """The runs' annotation rows in one Parquet file (no arrays: those stay in each run's
    explanations/), small enough to ship with the repository and load with `datasets`."""
    tables = []
    for run in map(Path, runs):
        table = pq.read_table(run / "annotations.parquet")
        table = pa.Table.from_pylist(current_verdicts(run, table.to_pylist()), schema=table.schema)
        tables.append(table.drop_columns([c for c in ("explanation_dir",) if c in table.column_names]))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "annotations.parquet"
    pq.write_table(pa.concat_tables(tables, promote_options="default"), path, compression="zstd")
    return path


def findings(
    runs: list[Path], out: Path, *, suite_cases: int = 0, encoders: tuple[str, ...] = (),
    config: SuiteConfig = SuiteConfig(ablations=("deletion",)), publish_to: Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """Everything `attnlens findings` does; returns the report's path (findings.json beside it)."""
    out = Path(out)
    if out.suffix != ".md":
        raise InputError(f"--out must name a Markdown file (…/findings.md), got {out}")
    profiles, failed, suite_rows, prompts, seen, settings, dataset = [], [], [], {}, {}, {}, {}
    for run in map(Path, runs):
        items, bad = discover(run)
        rows = profile_run(run, items, progress)
        for model in {r["model"] for r in rows}:
            if model in seen:
                raise InputError(f"{model} is annotated in both {seen[model]} and {run}: give each model and frame's run once")
            seen[model] = run
        profiles += rows
        failed += [{**f, "model": controls.condition(f["model"], controls.frame_of(f.get("prompt_frame")))} for f in bad]
        if suite_cases:
            (run / SUITE_DIR).mkdir(exist_ok=True)
            frames = {it.key: controls.frame_of(it.meta.get("prompt_frame")) for it in items}
            suite_rows += [{**r, "model": controls.condition(r["model"], frames.get(r.get("key"), "plain"))}
                           for r in run_suites(suite_sample(run, items, suite_cases), run / SUITE_DIR, config, progress)]
        meta = json.loads((run / "run.json").read_text()) if (run / "run.json").exists() else {}
        settings[str(run)] = {**meta.get("settings", {}), "dataset_cases": meta.get("dataset", {}).get("cases")}
        cases = run_cases(run)
        dataset.update({c.id: c for c in cases})
        if encoders:
            prompts.update({c.id: {"id": c.id, "category": c.category, "subcategory": c.subcategory, "prompt": c.prompt}
                            for c in cases})  # fmt: skip
    if not profiles:
        raise InputError("the runs hold no explanation to profile")
    out.parent.mkdir(parents=True, exist_ok=True)
    cache = out.parent / (out.stem + "-data")
    cache.mkdir(exist_ok=True)
    encoder_rows = [row for model in encoders for row in encoder_profiles(model, list(prompts.values()), cache, progress)]
    ok = [r for r in profiles if not r.get("error")]
    base = {r["model"]: r["base_model"] for r in ok}
    scores = induction(sorted(set(base.values())), cache)
    result = analyse(profiles, failed, suite_rows, encoder_rows, {label: scores[model] for label, model in base.items()})
    result["controls"] = controls.analyse(ok, dataset)
    result["run_settings"] = settings
    result["config"] = {"runs": [str(r) for r in runs], "suite_cases": suite_cases, "suite": config.__dict__,
                        "encoders": list(encoders)}  # fmt: skip
    figures = {**findings_writeup.figures(result, cache), **findings_writeup.control_figures(result, ok, cache)}
    (cache / "findings.json").write_text(json.dumps(result, indent=1, default=float))
    out.write_text(findings_writeup.report(result, figures, out.parent))
    if publish_to is not None:
        publish(runs, publish_to)
    return out
