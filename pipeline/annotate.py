"""`attnlens annotate`: explain every (case, model) of a case file into a resumable run directory.

    RUN/run.json                    dataset path + sha256 (+ of its prompts), models, settings, prompt versions, created
    RUN/explanations/<model>/<id>/  Explanation.save() (explanation.json + record/), info["case"] set
    RUN/annotations.parquet         one row per finished (id, model), rewritten atomically per batch

Cases run in batches: the deterministic stages per case, then one agent run over the clusters of
the whole batch (every LLM step is one engine call for all of them). A row is finished when its
explanation directory and its Parquet row both exist; re-running the same command skips finished
rows and recomputes the rest, so a kill at any moment loses at most the batch in flight. A case
that fails (an empty answer, an over-long prompt) becomes a row with `error` set; the batch goes on.

With `ray` the batches go to Ray actors (pipeline.distributed), each keeping the subject model and
the writer loaded. A worker saves its explanations and writes its rows as a Parquet part
(RUN/parts/); the driver folds each part into annotations.parquet as it arrives, and a part left
by a killed driver is folded in by the next run, so the table ends the same as a single-process
run's (the stages are deterministic) and resumes the same way.

`frame` is how the cases are put to the models: "chat" (a chat model through its chat template,
a base model in the plain question/answer frame) or "plain" (every model in the plain frame, so
chat and base models read the same text; `prompt_frame` in each row says which).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

from attnlens.agent.backends import DEFAULT_AGENT_MODEL, Backend, get_backend
from attnlens.agent.backends.base import one_line
from attnlens.agent.graph import prompt_versions
from attnlens.errors import InputError
from attnlens.evaluation.cases import Case, check_answer, load_cases
from attnlens.evaluation.head_weights import split_cases
from attnlens.extraction.generation import PLAIN_FRAME
from attnlens.extraction.models import BUNDLED
from attnlens.pipeline import distributed
from attnlens.pipeline.distributed import DEFAULT_BATCH_SIZE, RayConfig
from attnlens.pipeline.explainer import Explainer
from attnlens.pipeline.explanation import Explanation

RUN_FILE = "run.json"
TABLE_FILE = "annotations.parquet"
PARTS_DIR = "parts"  # rows written by Ray workers, not yet folded into the table
RunFrame = Literal["chat", "plain"]
RUN_FRAMES: tuple[str, ...] = ("chat", "plain")
SCORES = ("comprehensiveness", "sufficiency", "random_comprehensiveness", "grounding", "answer_probability")
STAGES = ("generate", "extract", "cluster", "evaluate", "agent", "save")
# Means over layers and heads of the record's per-head statistics (extraction.ARRAYS).
ATTENTION_STATS = {
    "attn_sink_share": "head_sink",
    "attn_entropy": "head_entropy",
    "attn_distance": "head_distance",
    "attn_prev_token": "head_prev",
    "attn_topk_mass": "head_topk_mass",
}
# Settings that change what a row contains: a resumed run must use the same ones.
RESUME_KEYS = ("max_new_tokens", "backend", "agent_model", "max_llm_clusters", "frame", "plain_frame")

ROW_SCHEMA = pa.schema(
    [
        ("id", pa.string()), ("model", pa.string()), ("category", pa.string()), ("subcategory", pa.string()),
        ("prompt", pa.string()), ("prompt_frame", pa.string()), ("answer", pa.string()),
        ("correct", pa.bool_()), ("check_detail", pa.string()), ("evidence", pa.list_(pa.string())),
        ("n_prompt_tokens", pa.int32()), ("n_user_tokens", pa.int32()), ("n_answer_tokens", pa.int32()),
        *((name, pa.float64()) for name in ATTENTION_STATS),
        ("graph_sink_share", pa.float64()), ("graph_threshold", pa.float64()), ("graph_resolution", pa.float64()),
        ("graph_modularity", pa.float64()), ("graph_edges", pa.int32()), ("n_clusters", pa.int32()),
        ("clusters", pa.string()),
        *((f"score_{name}", pa.float64()) for name in SCORES),
        ("score_cluster_id", pa.int32()),
        ("llm_calls", pa.int32()), ("llm_tokens", pa.int32()), ("template_rationales", pa.int32()),
        *((f"timings_{stage}", pa.float64()) for stage in STAGES),
        ("timings_total", pa.float64()),
        ("prompt_versions", pa.string()), ("error", pa.string()), ("explanation_dir", pa.string()),
        ("finished_at", pa.timestamp("ms", tz="UTC")),
    ]
)


# --------------------------------------------------------------------------- cases


def read_dataset(path: str | Path) -> tuple[list[Case], str]:
    """The validated cases and the file's sha256; a missing or malformed file is one InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"dataset {str(path)!r} does not exist or is not a file")
    try:
        cases = load_cases(path)
    except InputError as exc:
        raise InputError(str(exc).splitlines()[0]) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text: {exc}") from None
    if not cases:
        raise InputError(f"dataset {str(path)!r} holds no cases")
    return cases, hashlib.sha256(path.read_bytes()).hexdigest()


def prompts_sha256(cases: list[Case]) -> str:
    """What an annotation depends on: the ids and prompts. A run resumes across a change of the
    checks (its verdicts are re-read with `recheck`), not across a change of a prompt."""
    return hashlib.sha256(json.dumps([[c.id, c.prompt] for c in cases]).encode()).hexdigest()


def recheck(rows: list[dict], cases: list[Case]) -> list[dict]:
    """The rows with `correct` and `check_detail` from the dataset's checks as they are now, so a
    fixed checker needs no new annotation (rows with no answer, or of unknown cases, unchanged)."""
    by_id = {c.id: c for c in cases}
    out = []
    for row in rows:
        case = by_id.get(row.get("id"))
        if case is not None and row.get("answer") is not None and not row.get("error"):
            verdict = check_answer(case, row["answer"])
            row = {**row, "correct": verdict.passed, "check_detail": verdict.detail}
        out.append(row)
    return out


def stratified_sample(cases: Sequence[Case], n: int) -> list[Case]:
    """`n` cases spread evenly over the (category, subcategory) groups, evenly spaced inside each
    group, in file order. Deterministic: the same file and `n` always give the same cases."""
    by_group: dict[tuple[str, str], list[Case]] = {}
    for case in cases:
        by_group.setdefault((case.category, case.subcategory), []).append(case)
    # visit the groups interleaved across categories (each category's 1st subcategory, then its
    # 2nd, ...), so that a remainder, or an n below the number of groups, spreads over categories
    rank = {}
    for category, subcategory in by_group:
        rank[(category, subcategory)] = sum(c == category for c, _ in rank)
    categories = list(dict.fromkeys(c for c, _ in by_group))
    groups = {g: by_group[g] for g in sorted(by_group, key=lambda g: (rank[g], categories.index(g[0])))}
    quota = {g: 0 for g in groups}
    left = min(n, len(cases))
    while left:  # round-robin over the groups that still have cases to give
        for g, members in groups.items():
            if left and quota[g] < len(members):
                quota[g] += 1
                left -= 1
    chosen = set()
    for g, members in groups.items():
        k = quota[g]
        chosen.update(members[(2 * j + 1) * len(members) // (2 * k)].id for j in range(k))
    return [c for c in cases if c.id in chosen]


SPLITS = ("all", "train", "held-back")


def select_cases(
    cases: Sequence[Case], limit: int | None = None, sample: int | None = None, split: str = "all"
) -> list[Case]:
    """`split`: every case, or one side of the by-id split the head weights were trained on
    (evaluation.head_weights.split_cases), so a run can measure only prompts no step learned from;
    then `limit`: the first N cases; `sample`: N stratified cases (stratified_sample); neither: all."""
    if limit is not None and sample is not None:
        raise InputError("use --limit or --sample, not both")
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    if split != "all":
        cases = split_cases(cases)[SPLITS.index(split) - 1]
    if limit is not None:
        return list(cases[:limit])
    if sample is not None:
        return stratified_sample(cases, sample)
    return list(cases)


def model_name(model: str) -> str:
    """The name a model's rows and explanations are filed under (as `load_model` names it)."""
    return model if model in BUNDLED else os.path.basename(model.rstrip("/"))


def check_models(models: Sequence[str]) -> None:
    """Refuse unknown names and encoders before anything starts (an encoder has no answer to explain)."""
    if not models:
        raise InputError("no model given")
    for model in models:
        if model in BUNDLED:
            if BUNDLED[model].kind == "encoder":
                raise InputError(
                    f"{model} is an encoder: it gives no answer to explain, so annotate refuses it "
                    "(use `attnlens extract` for an encoder's attention)"
                )
        elif not Path(model).expanduser().is_dir():
            raise InputError(f"unknown model {model!r}: not a bundled model ({', '.join(BUNDLED)}), not a local folder")
    if len({model_name(m) for m in models}) < len(models):
        raise InputError(f"models {list(models)} repeat a name")


# --------------------------------------------------------------------------- the run directory


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, write: Callable[[object], None]) -> None:
    """Write through `write(file)` to a temporary file, fsync it, then os.replace it into place:
    a reader (or a kill) sees the old file or the new one, never a part."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@dataclass
class RunStore:
    """A run directory: its settings, its finished rows, and atomic writes of both."""

    root: Path
    table: pa.Table = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        path = self.root / TABLE_FILE
        self.table = pq.read_table(path, schema=ROW_SCHEMA) if path.exists() else ROW_SCHEMA.empty_table()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One annotate process per run directory (the lock dies with its process, even on kill -9)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(f"another attnlens annotate is writing {self.root}") from None
            yield

    def settle(self, meta: dict) -> dict:
        """Write run.json for a new run, or check a resumed run's dataset and settings against it
        (then add any new models). Returns the run.json now on disk."""
        path = self.root / RUN_FILE
        if path.exists():
            old = json.loads(path.read_text())
            clashes = [k for k in RESUME_KEYS if old["settings"].get(k) != meta["settings"].get(k)]
            key = "prompts_sha256" if "prompts_sha256" in old["dataset"] else "sha256"  # older runs: the file
            if old["dataset"][key] != meta["dataset"][key]:
                clashes.insert(0, "dataset (its cases or prompts)")
            if clashes:
                raise InputError(
                    f"{self.root} was annotated with a different {', '.join(clashes)}: "
                    "re-run with the same settings to resume, or use a new --out"
                )
            meta = {**old, "models": list(dict.fromkeys(old["models"] + meta["models"])), "updated": meta["created"]}
        body = json.dumps(meta, indent=1).encode()
        write_atomic(path, lambda fh: fh.write(body))
        return meta

    def write_part(self, rows: list[dict]) -> str:
        """A worker's rows as their own Parquet file (atomic); returns its path relative to RUN."""
        parts = self.root / PARTS_DIR
        parts.mkdir(exist_ok=True)
        table = pa.Table.from_pylist(rows, schema=ROW_SCHEMA)
        path = parts / f"{hashlib.sha256(str(sorted((r['model'], r['id']) for r in rows)).encode()).hexdigest()[:16]}-{os.getpid()}.parquet"
        write_atomic(path, lambda fh: pq.write_table(table, fh))
        return str(path.relative_to(self.root))

    def fold_parts(self, names: Sequence[str] | None = None) -> None:
        """Add the rows of the named parts (default: every part on disk) that the table does not
        hold yet, rewrite the table, then delete the parts."""
        parts = [self.root / n for n in names] if names is not None else sorted((self.root / PARTS_DIR).glob("*.parquet"))
        have = {(r["model"], r["id"]) for r in self.table.select(["model", "id"]).to_pylist()}
        rows = []
        for part in parts:
            for row in pq.read_table(part, schema=ROW_SCHEMA).to_pylist():
                if (row["model"], row["id"]) not in have:  # a part folded before its file was deleted
                    have.add((row["model"], row["id"]))
                    rows.append(row)
        self.add(rows)
        for part in parts:
            part.unlink(missing_ok=True)

    def finished(self, model: str, ids: set[str], retry_errors: bool = False) -> set[str]:
        """Which of `ids` have a finished row for `model`. Their rows whose explanation directory
        is gone (and, with `retry_errors`, their failed rows) are dropped, to be recomputed."""
        keep = []
        for row in self.table.select(["id", "model", "error", "explanation_dir"]).to_pylist():
            stale = row["model"] == model and row["id"] in ids and (
                row["error"] is not None and retry_errors
                or row["error"] is None and not (self.root / (row["explanation_dir"] or "") / "explanation.json").is_file()
            )
            keep.append(not stale)
        self.table = self.table.filter(pa.array(keep, pa.bool_()))
        return {r["id"] for r in self.table.select(["id", "model"]).to_pylist() if r["model"] == model} & ids

    def explanation_dir(self, model: str, case_id: str) -> Path:
        return self.root / "explanations" / model / case_id

    def save_explanation(self, explanation: Explanation, model: str, case_id: str) -> str:
        """Save into a scratch directory, then rename it into place; returns the path relative to RUN."""
        final = self.explanation_dir(model, case_id)
        scratch = final.with_name(f".{case_id}.{os.getpid()}.partial")  # a process of its own
        shutil.rmtree(scratch, ignore_errors=True)
        explanation.save(scratch)
        if final.exists():  # left by a run killed before its row was written: recomputed now
            shutil.rmtree(final)
        scratch.rename(final)
        return str(final.relative_to(self.root))

    def add(self, rows: list[dict]) -> None:
        """Append finished rows and rewrite annotations.parquet atomically."""
        if not rows:
            return
        self.table = pa.concat_tables([self.table, pa.Table.from_pylist(rows, schema=ROW_SCHEMA)])
        write_atomic(self.root / TABLE_FILE, lambda fh: pq.write_table(self.table, fh))


# --------------------------------------------------------------------------- rows


def _base_row(case: Case, model: str, frame: str) -> dict:
    return {
        "id": case.id, "model": model, "category": case.category, "subcategory": case.subcategory,
        "prompt": case.prompt, "prompt_frame": frame, "evidence": list(case.evidence),
        "prompt_versions": json.dumps(prompt_versions(), sort_keys=True),
        "finished_at": datetime.now(timezone.utc),
    }


def error_row(case: Case, model: str, frame: str, exc: BaseException) -> dict:
    return {**_base_row(case, model, frame), "error": one_line(exc)}


def explanation_row(
    case: Case, model: str, frame: str, explanation: Explanation, directory: str, save_seconds: float
) -> dict:
    """The explanation's JSON contract flattened, with the case's metadata and verdict."""
    timings = {**explanation.timings, "save": save_seconds}
    data = explanation.to_dict()
    record, case_info = explanation.record, explanation.info["case"]
    gen = explanation.generation
    graph = data["graph"]
    clusters = data["clusters"]
    return {
        **_base_row(case, model, frame),
        "answer": gen.answer,
        "correct": case_info["correct"],
        "check_detail": case_info["check_detail"],
        "n_prompt_tokens": gen.answer_start,
        "n_user_tokens": sum(t.segment == "user" for t in gen.tokens),
        "n_answer_tokens": len(gen.answer_indices),
        **{name: float(record[array].mean()) for name, array in ATTENTION_STATS.items() if array in record},
        "graph_sink_share": graph["sink_share"],
        "graph_threshold": graph["threshold"],
        "graph_resolution": graph["resolution"],
        "graph_modularity": graph["modularity"],
        "graph_edges": graph["edges"],
        "n_clusters": len(clusters),
        "clusters": json.dumps(clusters),
        **{f"score_{name}": float(data["scores"][name]) for name in SCORES},
        "score_cluster_id": data["scores"]["cluster_id"],
        "llm_calls": data["agent"]["llm_calls"],
        "llm_tokens": data["agent"]["generated_tokens"],
        "template_rationales": sum(c["source"] == "template" for c in clusters),
        **{f"timings_{stage}": timings.get(stage) for stage in STAGES},
        "timings_total": sum(timings.values()),
        "prompt_versions": json.dumps(data["agent"]["prompt_versions"], sort_keys=True),
        "error": None,
        "explanation_dir": directory,
    }


# --------------------------------------------------------------------------- the run


@dataclass
class ModelSummary:
    model: str
    cases: int  # selected
    skipped: int  # already finished before this process
    done: int  # finished by this process
    errors: int  # of those, rows with an error
    seconds: float  # wall time of this process on this model (model loading included)

    @property
    def seconds_per_case(self) -> float:
        return self.seconds / self.done if self.done else 0.0


def annotate(
    dataset: str | Path,
    out: str | Path,
    models: Sequence[str] = ("smollm2-135m",),
    *,
    limit: int | None = None,
    sample: int | None = None,
    split: str = "all",
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_new_tokens: int = 32,
    backend: str | Backend = "auto",
    agent_model: str = DEFAULT_AGENT_MODEL,
    max_llm_clusters: int = 4,
    retry_errors: bool = False,
    frame: RunFrame = "chat",
    ray: RayConfig | None = None,
    progress: Callable[[str, int, int, str], None] | None = None,
) -> list[ModelSummary]:
    """Annotate the selected cases on every model into `out` (see the module docstring), in this
    process or (`ray`) on Ray workers. `progress(model, finished, total, stage)` is called as work
    goes on."""
    if batch_size < 1:
        raise InputError("the batch size must be at least 1")
    if frame not in RUN_FRAMES:
        raise InputError(f"unknown frame {frame!r}; choose {' or '.join(RUN_FRAMES)}")
    if ray is not None and not isinstance(backend, str):
        raise InputError("with --ray each worker starts its own writer: give the backend by name")
    cases, sha = read_dataset(dataset)
    selected = select_cases(cases, limit, sample, split)
    check_models(models)
    store = RunStore(Path(out))
    backend_name = backend if isinstance(backend, str) else backend.name
    settings = {
        "max_new_tokens": max_new_tokens, "backend": backend_name, "agent_model": agent_model,
        "max_llm_clusters": max_llm_clusters, "batch_size": batch_size, "frame": frame,
        "plain_frame": PLAIN_FRAME,
    }
    meta = {
        "dataset": {"path": str(Path(dataset).resolve()), "sha256": sha, "prompts_sha256": prompts_sha256(cases),
                    "cases": len(cases)},
        "models": [model_name(m) for m in models],
        "settings": settings,
        "prompt_versions": prompt_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    report = progress or (lambda *args: None)
    summaries = []
    with store.locked():
        store.settle(meta)
        store.fold_parts()  # rows a killed --ray driver had not folded in yet
        ids = {c.id for c in selected}
        todo = {}
        for m in models:
            done_ids = store.finished(model_name(m), ids, retry_errors)
            todo[m] = [c for c in selected if c.id not in done_ids]
        if ray is not None:
            return _annotate_on_ray(store, models, todo, len(selected), settings, ray, report)
        agent_backend = None
        try:
            for model in models:
                name, pending = model_name(model), todo[model]
                skipped = len(selected) - len(pending)
                report(name, skipped, len(selected), "finished" if not pending else "loading")
                started = time.perf_counter()
                done = errors = 0
                if pending:
                    if agent_backend is None and max_llm_clusters > 0:  # only when there is LLM work:
                        # a finished run resumes at once, and a templates-only run never starts an engine
                        agent_backend = get_backend(backend, model=agent_model) if isinstance(backend, str) else backend
                    explainer = Explainer(model, agent_backend, agent_model=agent_model, max_llm_clusters=max_llm_clusters)
                    for i in range(0, len(pending), batch_size):
                        batch = pending[i : i + batch_size]
                        finished = skipped + done
                        rows = _run_batch(explainer, store, name, frame, batch, max_new_tokens,
                                          lambda stage: report(name, finished, len(selected), stage))
                        store.add(rows)
                        done += len(rows)
                        errors += sum(r["error"] is not None for r in rows)
                        report(name, skipped + done, len(selected), "batch written")
                    del explainer
                summaries.append(ModelSummary(name, len(selected), skipped, done, errors, time.perf_counter() - started))
        finally:
            if agent_backend is not None and isinstance(backend, str):
                agent_backend.close()
    return summaries


def _run_batch(
    explainer: Explainer, store: RunStore, model: str, run_frame: RunFrame, batch: list[Case], max_new_tokens: int,
    step: Callable[[str], None],
) -> list[dict]:
    """Explain one batch (one agent run for all of it), save each explanation, return the rows."""
    chat = run_frame == "chat" and explainer.lm.has_chat_template
    frame = "chat_template" if chat else PLAIN_FRAME  # the rows' prompt_frame
    results = explainer.explain_batch(
        [c.prompt for c in batch], max_new_tokens=max_new_tokens, frame="auto" if chat else "plain", progress=step
    )
    rows = []
    step("save")
    for case, result in zip(batch, results):
        if isinstance(result, Exception):
            rows.append(error_row(case, model, frame, result))
            continue
        started = time.perf_counter()
        verdict = check_answer(case, result.generation.answer)
        result.info["case"] = {
            "id": case.id, "category": case.category, "subcategory": case.subcategory,
            "evidence": list(case.evidence), "correct": verdict.passed, "check_detail": verdict.detail,
        }
        directory = store.save_explanation(result, model, case.id)
        rows.append(explanation_row(case, model, frame, result, directory, time.perf_counter() - started))
    return rows


class AnnotateWorker:
    """One Ray actor's state: a subject model (and a writer where there is LLM work) kept loaded."""

    def __init__(self, root: str, model: str, settings: dict):
        distributed.prepare_worker()
        self.store = RunStore(Path(root))
        self.settings = settings
        backend = None
        if settings["max_llm_clusters"] > 0:
            backend = get_backend(settings["backend"], model=settings["agent_model"])
        self.explainer = Explainer(
            model, backend, agent_model=settings["agent_model"], max_llm_clusters=settings["max_llm_clusters"]
        )
        self.name = model_name(model)

    def run(self, cases: list[dict]) -> tuple[str, int]:
        """Explain one batch, save its explanations, write its rows as a part: (the part, rows with errors)."""
        batch = [Case(**c) for c in cases]
        rows = _run_batch(
            self.explainer, self.store, self.name, self.settings["frame"], batch, self.settings["max_new_tokens"],
            lambda stage: None,
        )
        return self.store.write_part(rows), sum(r["error"] is not None for r in rows)

    def close(self) -> None:
        if self.explainer.backend is not None:
            self.explainer.backend.close()


def _annotate_on_ray(
    store: RunStore, models: Sequence[str], todo: dict[str, list[Case]], total: int, settings: dict,
    config: RayConfig, report: Callable[[str, int, int, str], None],
) -> list[ModelSummary]:
    """The pending batches of each model on `config.workers` actors; each part folded in as it lands."""
    summaries = []
    with distributed.connect(config) as ray:
        for model in models:
            name, pending = model_name(model), todo[model]
            skipped = total - len(pending)
            started = time.perf_counter()
            done = errors = 0
            report(name, skipped, total, "finished" if not pending else f"starting {config.workers} Ray workers")
            batches = [pending[i : i + settings["batch_size"]] for i in range(0, len(pending), settings["batch_size"])]
            calls = [([c.model_dump() for c in batch],) for batch in batches]
            init = (str(store.root), model, settings)
            for index, result in distributed.map_unordered(ray, AnnotateWorker, init, calls, config):
                if isinstance(result, BaseException):  # the worker died on every try: each case gets the error
                    store.add([error_row(c, name, "unknown", result) for c in batches[index]])
                    errors += len(batches[index])
                else:
                    part, failed = result
                    store.fold_parts([part])
                    errors += failed
                done += len(batches[index])
                report(name, skipped + done, total, f"on {config.workers} Ray workers")
            summaries.append(ModelSummary(name, total, skipped, done, errors, time.perf_counter() - started))
    return summaries
