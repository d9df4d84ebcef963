"""`attnlens evaluate`: run the suites over an annotated run (or a folder of explanations) and
write `report.md`, `metrics.json` and plots (PNG + interactive HTML).

A run is either the annotator's folder (`annotations.parquet` naming each explanation directory
and the case behind it) or any folder holding `explanation.json` files saved by `attnlens
explain --out` (case metadata then comes from `info["case"]` where present). Per-case results
go to `cases.jsonl` in the output folder as they finish, so an interrupted evaluation resumes
where it stopped; a case that fails is recorded with its error and the suite goes on.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from attnlens.agent.backends import get_backend
from attnlens.agent.backends.base import one_line
from attnlens.agent.checks import check
from attnlens.agent.facts import build_facts
from attnlens.errors import InputError
from attnlens.evaluation import stats
from attnlens.evaluation.cases import DEFAULT_PATH, Case
from attnlens.evaluation.metrics import METRICS
from attnlens.evaluation.signatures import induction_scores
from attnlens.evaluation.suite import FAITHFULNESS, SOURCES, CaseResult, SuiteConfig, score_explanation
from attnlens.extraction import load_model
from attnlens.pipeline import distributed
from attnlens.pipeline.annotate import prompts_sha256, read_dataset, recheck
from attnlens.pipeline.distributed import RayConfig
from attnlens.pipeline.explanation import Explanation
from attnlens.pipeline.study import summarise
from attnlens.reports import plots, writeup

CASES_FILE = "cases.jsonl"
GROUNDING_FILE = "grounding.jsonl"
HEADLINE = ("aopc_comprehensiveness_eraser", "aopc_sufficiency_eraser", "tau_loo")
SIGNATURE_TESTS = ("entropy", "distance", "topk_mass", "gini", "sink", "prev", "share_number", "share_instruction")
CASE_TESTS = ("answer_probability", "modularity", "clusters", "top_cluster_importance", "attnlens_comprehensiveness")


@dataclass
class RunItem:
    key: str  # explanation directory relative to the run
    path: Path
    meta: dict = field(default_factory=dict)  # id, category, subcategory, correct, evidence


def discover(run: Path) -> tuple[list[RunItem], list[dict]]:
    """The explanations of a run and the annotation rows that failed (with their errors)."""
    run = Path(run)
    if not run.is_dir():
        raise InputError(f"run folder {run} does not exist")
    table = run / "annotations.parquet"
    failed: list[dict] = []
    items: list[RunItem] = []
    if table.exists():
        try:
            rows = pq.read_table(table).to_pylist()
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
            raise InputError(f"cannot read {table}: {exc}") from None
        for row in current_verdicts(run, rows):
            if row.get("error") or not row.get("explanation_dir"):
                failed.append({k: row.get(k) for k in ("id", "model", "category", "subcategory", "prompt_frame", "error")})
                continue
            meta = {k: row.get(k) for k in ("id", "model", "category", "subcategory", "correct", "evidence", "prompt_frame")}
            items.append(RunItem(row["explanation_dir"], run / row["explanation_dir"], meta))
    else:
        for found in sorted(run.rglob("explanation.json")):
            try:
                info = json.loads(found.read_text()).get("info", {})
            except (OSError, ValueError) as exc:
                failed.append({"id": str(found.parent.relative_to(run)), "error": f"unreadable explanation: {exc}"})
                continue
            case = info.get("case", {})
            items.append(RunItem(str(found.parent.relative_to(run)), found.parent, dict(case)))
    if not items and not failed:
        raise InputError(f"{run} holds no annotations.parquet and no explanation.json: nothing to evaluate")
    return interleave(items), failed


def run_dataset(run: Path) -> Path | None:
    """The dataset file an annotated run was made from: the path its run.json names or, when that
    is gone (a run kept in a repository, read from another checkout), the bundled dataset if its
    ids and prompts are the run's. None without a run.json or such a file."""
    meta_path = Path(run) / "run.json"
    if not meta_path.exists():
        return None
    recorded = json.loads(meta_path.read_text()).get("dataset", {})
    path = Path(recorded.get("path", ""))
    if path.is_file():
        return path
    if DEFAULT_PATH.is_file() and recorded.get("prompts_sha256") == prompts_sha256(read_dataset(DEFAULT_PATH)[0]):
        return DEFAULT_PATH
    return None


def run_cases(run: Path) -> list[Case]:
    """The cases of the dataset an annotated run was made from ([] when run_dataset finds none)."""
    dataset = run_dataset(run)
    return read_dataset(dataset)[0] if dataset else []


def current_verdicts(run: Path, rows: list[dict]) -> list[dict]:
    """An annotated run's rows with `correct` from its dataset's checks as they are now (a checker
    fixed after the run counts), or as stored when the dataset file is gone."""
    cases = run_cases(run)
    return recheck(rows, cases) if cases else rows


def interleave(items: list[RunItem]) -> list[RunItem]:
    """Round-robin over (category, model) groups, each in key order: any prefix of the result (an
    evaluation cut short, or `--limit`) is as varied as the run allows."""
    groups: dict[tuple, list[RunItem]] = defaultdict(list)
    for item in sorted(items, key=lambda it: it.key):
        groups[(str(item.meta.get("category")), str(item.meta.get("model", "")))].append(item)
    queues = [groups[k] for k in sorted(groups)]
    out = []
    for depth in range(max((len(q) for q in queues), default=0)):
        out += [q[depth] for q in queues if depth < len(q)]
    return out


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # a line cut by a kill: the case is simply recomputed
            continue
    return out


def append_jsonl(path: Path, row: dict) -> None:
    with path.open("a") as fh:
        fh.write(json.dumps(row, default=float) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def error_result(item: RunItem, error: str) -> CaseResult:
    """The row of a case that could not be scored: its error and what the run knows of the case."""
    result = CaseResult(key=item.key, model=str(item.meta.get("model", "?")), error=error)
    for k in ("id", "category", "subcategory", "correct"):
        if item.meta.get(k) is not None:
            setattr(result, k, item.meta[k])
    return result


def score_item(item: RunItem, config: SuiteConfig, models: dict) -> dict:
    """One explanation's suite results as a row (a failure becomes a row with its error).
    `models` caches the subject model: one in memory at a time (interleaved runs reload)."""
    started = time.perf_counter()
    try:
        explanation = Explanation.load(item.path)
        name = explanation.generation.model
        if name not in models:
            models.clear()
            models[name] = load_model(name)
        result = score_explanation(
            models[name], explanation, config, item.meta.get("evidence") or None, key=item.key, meta=item.meta
        )
    except Exception as exc:  # noqa: BLE001 - recorded in the case's row; the suite goes on
        result = error_result(item, f"{type(exc).__name__}: {exc}")
    result.seconds["total"] = time.perf_counter() - started
    return result.to_dict()


class EvaluateWorker:
    """One Ray actor's state for `evaluate --ray`: the suite settings and the loaded subject model."""

    def __init__(self, config: SuiteConfig):
        distributed.prepare_worker()
        self.config, self.models = config, {}

    def run(self, item: RunItem) -> dict:
        return score_item(item, self.config, self.models)


def run_suites(
    items: list[RunItem], out: Path, config: SuiteConfig = SuiteConfig(),
    progress: Callable[[str, int, int], None] | None = None, ray: RayConfig | None = None,
) -> list[dict]:
    """Score every item not yet in out/cases.jsonl (here, or on Ray workers); returns all per-case results."""
    path = out / CASES_FILE
    done = {r["key"]: r for r in read_jsonl(path)}
    todo = [it for it in items if it.key not in done]

    def finished(item: RunItem, row: dict) -> None:
        append_jsonl(path, row)
        done[item.key] = row

    if ray is None:
        models: dict = {}
        for j, item in enumerate(todo):
            if progress:
                progress(item.key, j, len(todo))
            finished(item, score_item(item, config, models))
    else:
        with distributed.connect(ray) as session:
            results = distributed.map_unordered(session, EvaluateWorker, (config,), [(it,) for it in todo], ray)
            for j, (index, row) in enumerate(results):
                item = todo[index]
                if isinstance(row, BaseException):  # the worker died on every try
                    row = error_result(item, one_line(row)).to_dict()
                finished(item, row)
                if progress:
                    progress(item.key, j + 1, len(todo))
    if progress:
        progress("", len(todo), len(todo))
    keys = {it.key for it in items}
    return [r for k, r in done.items() if k in keys]


def ground_explanation(judge, explanation: Explanation, limit: int | None = None) -> list:
    """ragas grounding of every rationale of an explanation that was sent to the LLM (at most
    `limit`), the LLM's own rationales first (templates restate the evidence by construction),
    each beside the agent's deterministic check."""
    from attnlens.evaluation.grounding import Grounding  # deferred: ragas is heavy

    facts = {f.id: f for f in build_facts(explanation.record, explanation.clustering, explanation.faithfulness)}
    out = []
    ordered = sorted(explanation.agent.rationales.items(), key=lambda kv: kv[1].source != "llm")
    for cid, rationale in ordered:
        if not rationale.sent_to_llm or cid not in facts:
            continue
        if limit is not None and len(out) >= limit:
            break
        started = time.perf_counter()
        value, error = judge.score(explanation.generation.prompt, rationale.rationale, facts[cid].context())
        passes = not check(facts[cid], rationale.draft())
        out.append(Grounding(cid, rationale.source, passes, value, error, time.perf_counter() - started))
    return out


def run_grounding(items: list[RunItem], out: Path, backend: Callable[[], object], limit: int) -> list[dict]:
    """ragas grounding of up to `limit` rationales (in run order), resumable like the suites.
    `backend` makes the judge's LLM backend, called only if a rationale is left to judge."""
    from attnlens.evaluation.grounding import GroundingJudge  # deferred: ragas is heavy

    path = out / GROUNDING_FILE
    rows = read_jsonl(path)
    seen = {r["key"] for r in rows}
    judge = None
    for item in items:
        if len(rows) >= limit:
            break
        if item.key in seen:
            continue
        judge = judge or GroundingJudge(backend())
        try:
            grounded = ground_explanation(judge, Explanation.load(item.path), limit=limit - len(rows))
        except Exception as exc:  # noqa: BLE001
            grounded = []
            append_jsonl(path, {"key": item.key, "error": f"{type(exc).__name__}: {exc}"})
        for g in grounded:
            row = {"key": item.key, **g.__dict__}
            rows.append(row)
            append_jsonl(path, row)
        if not grounded:
            append_jsonl(path, {"key": item.key, "error": "no rationale was sent to the LLM"})
    return [r for r in rows if "cluster_id" in r]


def induction(model_names: list[str], out: Path) -> dict[str, list]:
    """Induction scores per model ([L][H]), computed once and cached in the output folder."""
    path = out / "induction.json"
    cached = json.loads(path.read_text()) if path.exists() else {}
    for name in model_names:
        if name not in cached:
            lm = load_model(name)
            cached[name] = np.round(induction_scores(lm), 5).tolist()
            del lm
    path.write_text(json.dumps(cached))
    return {k: cached[k] for k in model_names}


# --------------------------------------------------------------------------- aggregation


def values(rows: list[dict], get: Callable[[dict], float | None]) -> list[float]:
    out = []
    for r in rows:
        try:
            v = get(r)
        except (KeyError, TypeError, IndexError):
            v = None
        out.append(math.nan if v is None else float(v))
    return out


def estimate(xs: list[float]) -> dict:
    e = stats.mean_ci(xs)
    return {"mean": e.mean, "low": e.low, "high": e.high, "n": e.n}


def _faith(ablation: str, source: str, metric: str):
    return lambda r: r["faithfulness"][ablation][source][metric]


def aggregate(rows: list[dict], grounding: list[dict], induction_scores: dict, failed: list[dict], study: dict | None) -> dict:
    ok = [r for r in rows if not r.get("error")]
    models = sorted({r["model"] for r in ok})
    ablations = [a for a in ("deletion", "knockout") if any(a in r["faithfulness"] for r in ok)]
    m: dict = {
        "cases": len(rows), "scored": len(ok), "errors": [{"key": r["key"], "error": r["error"]} for r in rows if r.get("error")],
        "annotation_errors": failed, "models": models,
        "categories": sorted({r["category"] for r in ok}),
        "metric_definitions": {k: {"range": list(v.range), "higher_is_better": v.higher_is_better} for k, v in METRICS.items()},
    }  # fmt: skip
    # faithfulness per source, and attnlens against every other source (paired, one family per ablation)
    m["faithfulness"] = {}
    m["versus_attnlens"] = {}
    for ablation in ablations:
        table = {}
        for source in SOURCES:
            table[source] = {metric: estimate(values(ok, _faith(ablation, source, metric))) for metric in FAITHFULNESS}
        m["faithfulness"][ablation] = table
        tests, labels = [], []
        for source in SOURCES[1:]:
            for metric in HEADLINE:
                a = values(ok, _faith(ablation, "attnlens", metric))
                b = values(ok, _faith(ablation, source, metric))
                tests.append(stats.paired(a, b))
                labels.append((source, metric))
        m["versus_attnlens"][ablation] = [
            {"source": s, "metric": metric, **c.to_dict()} for (s, metric), c in zip(labels, stats.correct(tests))
        ]
    # the scored cluster against random sets of its size
    m["cluster"] = {}
    for ablation in ablations:
        comp = values(ok, lambda r: r["cluster"][ablation]["comprehensiveness"])
        rnd = values(ok, lambda r: r["cluster"][ablation]["random_comprehensiveness"])
        suff = values(ok, lambda r: r["cluster"][ablation]["sufficiency"])
        rsuff = values(ok, lambda r: r["cluster"][ablation]["random_sufficiency"])
        m["cluster"][ablation] = {
            "comprehensiveness": estimate(comp), "random_comprehensiveness": estimate(rnd),
            "sufficiency": estimate(suff), "random_sufficiency": estimate(rsuff),
            "comprehensiveness_vs_random": stats.paired(comp, rnd).to_dict(),
            "sufficiency_vs_random": stats.paired(suff, rsuff).to_dict(),
        }  # fmt: skip
    with_evidence = [r for r in ok if r["plausibility"]]
    m["plausibility"] = {
        "cases": len(with_evidence),
        "by_source": {
            s: {k: estimate(values(with_evidence, lambda r, s=s, k=k: r["plausibility"][s][k])) for k in ("token_f1", "iou_f1", "auprc")}
            for s in SOURCES
        },
    }  # fmt: skip
    m["complexity"] = {
        s: {k: estimate(values(ok, lambda r, s=s, k=k: r["complexity"][s][k])) for k in ("entropy", "gini")}
        for s in SOURCES
    }
    m["grounding"] = _grounding_summary(grounding)
    m["signatures"] = signature_profiles(ok, models, induction_scores)
    m["correct_vs_incorrect"] = correct_vs_incorrect(ok, models)
    m["categories_tests"] = category_tests(ok, models)
    m["models_tests"] = model_tests(ok, models)
    m["best_source_by_category"] = best_source(ok, ablations)
    m["timing"] = {
        k: estimate(values(ok, lambda r, k=k: r["seconds"].get(k))) for k in ("importance", *ablations, "total")
    }
    m["study"] = study
    return m


def _case_value(r: dict, name: str) -> float | None:
    if name in r["signatures"]:
        return r["signatures"][name]
    if name in r["graph"]:
        return r["graph"][name]
    if name == "answer_probability":
        return r["answer_probability"]
    if name == "attnlens_comprehensiveness":
        return r["faithfulness"]["deletion"]["attnlens"]["aopc_comprehensiveness_eraser"]
    return None


def _grounding_summary(grounding: list[dict]) -> dict:
    by_source = defaultdict(list)
    for g in grounding:
        by_source[g["source"]].append(g)
    return {
        "rationales": len(grounding),
        "judge_failures": sum(1 for g in grounding if g.get("error")),
        "deterministic_pass": estimate([float(g["deterministic"]) for g in grounding]),
        "ragas_faithfulness": estimate([g["ragas_faithfulness"] for g in grounding]),
        "by_source": {
            s: {"n": len(gs), "deterministic_pass": estimate([float(g["deterministic"]) for g in gs]),
                "ragas_faithfulness": estimate([g["ragas_faithfulness"] for g in gs])}
            for s, gs in sorted(by_source.items())
        },
        "seconds_per_rationale": estimate([g["seconds"] for g in grounding]),
    }  # fmt: skip


def signature_profiles(ok: list[dict], models: list[str], induction_scores: dict) -> dict:
    out = {}
    for model in models:
        rs = [r for r in ok if r["model"] == model]
        names = sorted({k for r in rs for k in r["signatures"]})
        heads = {}
        for name in names:
            arrays = [np.asarray(r["head_signatures"][name]) for r in rs if name in r["head_signatures"]]
            heads[name] = np.mean(arrays, axis=0).round(5).tolist()
        ind = np.asarray(induction_scores.get(model, []))
        by_category = {
            cat: {n: estimate(values([r for r in rs if r["category"] == cat], lambda r, n=n: r["signatures"].get(n))) for n in names}
            for cat in sorted({r["category"] for r in rs})
        }  # fmt: skip
        out[model] = {
            "cases": len(rs),
            "mean": {n: estimate(values(rs, lambda r, n=n: r["signatures"].get(n))) for n in names},
            "by_category": by_category,
            "heads": heads,
            "induction": ind.tolist(),
            "induction_heads": [
                {"layer": int(i // ind.shape[1]), "head": int(i % ind.shape[1]), "score": float(ind.flat[i])}
                for i in np.argsort(-ind, axis=None)[:5]
            ] if ind.size else [],
            # head specialisation: how unequal the heads are (std over heads of the per-head means)
            "head_spread": {n: float(np.std(heads[n])) for n in names},
        }  # fmt: skip
    return out


def compare_groups(
    groups: list[tuple[str, list[dict], list[dict]]], names: tuple[str, ...],
    value: Callable[[dict, str], float | None] = _case_value,
) -> list[dict]:
    """Mann-Whitney of every (group, metric) pair, corrected as one family."""
    tests, labels = [], []
    for label, a, b in groups:
        for name in names:
            tests.append(stats.mann_whitney(values(a, lambda r: value(r, name)), values(b, lambda r: value(r, name))))
            labels.append((label, name))
    return [{"group": g, "metric": n, **c.to_dict()} for (g, n), c in zip(labels, stats.correct(tests))]


def correct_vs_incorrect(ok: list[dict], models: list[str]) -> dict:
    out = {}
    for model in models:
        rs = [r for r in ok if r["model"] == model and r["correct"] is not None]
        right = [r for r in rs if r["correct"]]
        wrong = [r for r in rs if not r["correct"]]
        out[model] = {
            "correct": len(right), "incorrect": len(wrong),
            "tests": compare_groups([(model, right, wrong)], SIGNATURE_TESTS + CASE_TESTS) if right and wrong else [],
        }  # fmt: skip
    return out


def category_tests(ok: list[dict], models: list[str]) -> dict:
    """Each category against the rest, per model; Kruskal-Wallis over all categories per metric."""
    from scipy.stats import kruskal

    out = {}
    for model in models:
        rs = [r for r in ok if r["model"] == model]
        cats = sorted({r["category"] for r in rs})
        if len(cats) < 2:
            continue
        groups = [(c, [r for r in rs if r["category"] == c], [r for r in rs if r["category"] != c]) for c in cats]
        kw = {}
        for name in SIGNATURE_TESTS + CASE_TESTS:
            samples = [[v for v in values(g, lambda r: _case_value(r, name)) if math.isfinite(v)] for _, g, _ in groups]
            samples = [s for s in samples if s]
            if len(samples) >= 2 and len({v for s in samples for v in s}) > 1:
                res = kruskal(*samples)
                kw[name] = {"H": float(res.statistic), "p": float(res.pvalue)}
        ps = stats.holm([v["p"] for v in kw.values()])
        for (name, v), p in zip(kw.items(), ps):
            v["p_holm"] = p
        out[model] = {"kruskal": kw, "one_vs_rest": compare_groups(groups, SIGNATURE_TESTS + CASE_TESTS)}
    return out


def model_tests(ok: list[dict], models: list[str]) -> list[dict]:
    if len(models) < 2:
        return []
    pairs = [(f"{a} vs {b}", [r for r in ok if r["model"] == a], [r for r in ok if r["model"] == b])
             for i, a in enumerate(models) for b in models[i + 1:]]  # fmt: skip
    return compare_groups(pairs, SIGNATURE_TESTS + CASE_TESTS)


def best_source(ok: list[dict], ablations: list[str]) -> dict:
    """Per model, category and ablation: mean AOPC comprehensiveness (ERASER bins) of every source,
    and the best one other than leave-one-out."""
    out: dict = {}
    for model in sorted({r["model"] for r in ok}):
        for cat in sorted({r["category"] for r in ok if r["model"] == model}):
            rs = [r for r in ok if r["model"] == model and r["category"] == cat]
            for ablation in ablations:
                means = {s: estimate(values(rs, _faith(ablation, s, "aopc_comprehensiveness_eraser"))) for s in SOURCES}
                # LOO ranks by the very drops comprehensiveness measures: the reference, not a contender
                ranked = sorted((s for s in means if means[s]["n"] and s != "loo"), key=lambda s: -means[s]["mean"])
                out.setdefault(model, {}).setdefault(cat, {})[ablation] = {"best": ranked[0] if ranked else None, "means": means}
    return out


# --------------------------------------------------------------------------- the command


def evaluate(
    run: Path, out: Path | None = None, config: SuiteConfig = SuiteConfig(), *, grounding_limit: int = 0,
    backend: str = "auto", study_db: Path | None = None, limit: int | None = None,
    progress: Callable[[str, int, int], None] | None = None, ray: RayConfig | None = None,
) -> Path:
    """Everything `attnlens evaluate` does; returns the output folder."""
    run = Path(run)
    out = Path(out) if out else run / "evaluation"
    items, failed = discover(run)
    items = items[:limit] if limit else items
    out.mkdir(parents=True, exist_ok=True)
    rows = run_suites(items, out, config, progress, ray)
    grounding = []
    if grounding_limit > 0:
        started: list = []

        def judge_backend():
            started.append(get_backend(backend, model="smollm2-135m"))
            return started[0]

        try:
            grounding = run_grounding(items, out, judge_backend, grounding_limit)
        finally:
            for b in started:
                b.close()
    models = sorted({r["model"] for r in rows if not r.get("error")})
    ind = induction(models, out)
    study = None
    if study_db is not None and Path(study_db).exists():
        study = summarise(study_db)
    metrics = aggregate(rows, grounding, ind, failed, study)
    metrics["config"] = {"run": str(run), **config.__dict__, "grounding_limit": grounding_limit, "limit": limit}
    figures = plots.write_all(metrics, rows, out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float))
    (out / "report.md").write_text(writeup.report(metrics, figures))
    return out
