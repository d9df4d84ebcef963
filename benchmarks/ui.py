"""The UI under load: concurrent `/explain` requests through gradio_client, one engine shared.

Runs `attnlens serve` (its own process, its own writer engine, started by the first question) on
a free port of 127.0.0.1, then N clients ask at once, each its own question. Every client's job
is watched: the queue position Gradio sends a waiting client is recorded. At the end the server's
vLLM engine-core processes are counted. Targets: every request answered with its own
explanation, none an error, a waiting client told its place in the queue, one engine for all.

    attnlens bench ui [--clients 4] [--backend vllm] [--agent-model M] [--max-new-tokens 16] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from attnlens import runtime
from attnlens.benchmarks.targets import Target, render

PROMPTS = (
    "What is the capital of Japan?",
    "Name a colour of the sky.",
    "What is 3 + 4?",
    "Which animal says moo?",
    "Who wrote Romeo and Juliet?",
    "What do bees make?",
    "How many legs does a spider have?",
    "What is the opposite of hot?",
)


def _client(url: str, prompt: str, max_new_tokens: int, out: dict) -> None:
    """One user: submit, watch the job's status until it ends, keep what it was told."""
    from gradio_client import Client
    from gradio_client.utils import Status

    started = time.perf_counter()
    ranks: list[int] = []
    try:
        job = Client(url, verbose=False).submit(prompt, max_new_tokens=max_new_tokens, api_name="/explain")
        while not job.done():
            status = job.status()
            if status.code == Status.IN_QUEUE and status.rank is not None:
                ranks.append(status.rank)
            time.sleep(0.1)
        data = job.result()
        out.update(ok=data.get("prompt") == prompt and bool(data.get("clusters")), answer=data.get("answer"))
    except Exception as exc:  # noqa: BLE001 - counted and shown, never raised
        out.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
    out.update(prompt=prompt, seconds=time.perf_counter() - started, queue_ranks=sorted(set(ranks)))


def engines(pid: int) -> int:
    """vLLM engine-core processes under the server (one per engine started)."""
    import psutil

    return sum("EngineCore" in " ".join(p.cmdline() or [p.name()]) for p in psutil.Process(pid).children(recursive=True))


def run(clients: int = 4, backend: str = "vllm", agent_model: str | None = None, max_new_tokens: int = 16,
        model: str = "smollm2-135m", progress=None) -> dict:
    from attnlens.agent.backends import DEFAULT_AGENT_MODEL

    agent_model = agent_model or DEFAULT_AGENT_MODEL
    port = runtime.free_port()
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory(prefix="attnlens-bench-ui-") as data_dir, open(os.devnull, "w") as quiet:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("attnlens")), "serve", "--port", str(port), "--model", model,
             "--backend", backend, "--agent-model", agent_model, "--data-dir", data_dir],
            stdout=quiet, stderr=quiet, start_new_session=True,
        )  # fmt: skip
        try:
            failure = runtime.wait_for_url(url, server, timeout=180)
            if failure:
                raise RuntimeError(f"attnlens serve {failure}")
            if progress:
                progress("cold start: the first question starts the subject model and the writer's engine")
            warm: dict = {}
            _client(url, "What is the capital of France?", max_new_tokens, warm)
            if progress:
                progress(f"{clients} clients at once")
            results = [dict() for _ in range(clients)]
            threads = [
                threading.Thread(target=_client, args=(url, PROMPTS[i % len(PROMPTS)], max_new_tokens, results[i]))
                for i in range(clients)
            ]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - started
            started_engines = engines(server.pid)
        finally:
            runtime.stop_process_group(server)  # serve ends as on Ctrl-C: its engine shuts down
    answered = sum(bool(r.get("ok")) for r in results)
    told = sum(bool(r["queue_ranks"]) for r in results)
    targets = [
        Target("answered", answered, clients, "at_least"),
        Target("errors", sum("error" in r for r in results), 0, "at_most"),
        Target("waiting_clients_told_their_place", told, 1, "at_least"),
        Target("engines_started", started_engines, 1, "exactly"),
    ]
    return {
        "clients": clients, "backend": backend, "agent_model": agent_model, "model": model,
        "max_new_tokens": max_new_tokens, "cold_start_s": warm["seconds"], "cold_start_ok": bool(warm.get("ok")),
        "wall_s": wall, "median_s": statistics.median(r["seconds"] for r in results),
        "results": results, "targets": [t.to_dict() for t in targets],
    }  # fmt: skip


def table(result: dict) -> str:
    lines = ["| client | prompt | answered | seconds | queue positions seen | error |", "|---|---|---|---|---|---|"]
    for i, r in enumerate(result["results"]):
        lines.append(
            f"| {i + 1} | {r['prompt']} | {'yes' if r.get('ok') else 'no'} | {r['seconds']:.1f} | "
            f"{', '.join(map(str, r['queue_ranks'])) or '-'} | {r.get('error', '')} |"
        )
    summary = (
        f"{result['clients']} clients at once: all done in {result['wall_s']:.1f} s (median {result['median_s']:.1f} s "
        f"per client); cold start (first question: subject model + {result['agent_model']} on {result['backend']}): "
        f"{result['cold_start_s']:.1f} s; answers of at most {result['max_new_tokens']} tokens"
    )
    return "\n\n".join(["\n".join(lines), summary, render(result["targets"])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnlens bench ui", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent /explain requests")
    parser.add_argument("--backend", default="vllm", help="vllm | vllm-server | transformers")
    parser.add_argument("--agent-model", default=None, help="the writer (default: the default writer)")
    parser.add_argument("--model", default="smollm2-135m", help="the subject model")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 64:
        parser.error("--clients must be between 1 and 64 (the queue holds 64)")
    with runtime.stdout_to_stderr():  # the table or JSON alone goes to stdout
        result = run(args.clients, args.backend, args.agent_model, args.max_new_tokens, args.model,
                     progress=lambda p: print(f"... {p}", file=sys.stderr, flush=True))
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
