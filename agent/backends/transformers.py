"""`TransformersBackend`: outlines over a transformers model (float32), the light fallback without vLLM.

Requests sharing a grammar and token limit go through one `Generator.batch` (one grammar per outlines
batch); different grammars run in turn.
"""

from __future__ import annotations

import gc
import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from attnlens.agent.backends.base import (
    DEFAULT_AGENT_MODEL,
    BackendStats,
    StructuredRequest,
    StructuredResult,
    parse_result,
)
from attnlens.errors import BackendError
from attnlens.extraction.models import ModelSpec, resolve_model


class TransformersBackend:
    """outlines over a transformers model (float32). Requests sharing a grammar and token limit go
    through one `Generator.batch` (one grammar per outlines batch); different grammars run in turn."""

    name = "transformers"

    def __init__(self, spec: ModelSpec, *, cache_size: int = 32):
        import outlines  # deferred: heavy, and only this backend needs them here
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        start = time.perf_counter()
        path = spec.path
        self.path = str(path)
        self.model = spec.name
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
        self._generators: OrderedDict[str, Any] = OrderedDict()  # grammar key -> Generator
        self._cache_size = cache_size
        self.stats = BackendStats()
        self.stats.startup_seconds = time.perf_counter() - start

    @classmethod
    def from_transformers(cls, model: str | ModelSpec = DEFAULT_AGENT_MODEL) -> TransformersBackend:
        return cls(resolve_model(model))

    def _generator(self, key: str, request: StructuredRequest):
        import outlines
        from outlines.types import JsonSchema

        gen = self._generators.get(key)
        if gen is None:
            # llguidance: compiles in well under a second and enforces numeric bounds (outlines_core,
            # outlines' default, took minutes for a maxLength-40 string and let "score": 54 through a
            # maximum of 1). For JSON, whitespace_flexible=False is its disable_any_whitespace: with
            # free whitespace the 135M model pads JSON with newlines until max_tokens.
            term = request.output_type
            if isinstance(term, JsonSchema):
                schema = json.loads(term.schema)
                schema["x-guidance"] = {**schema.get("x-guidance", {}), "whitespace_flexible": False}
                term = JsonSchema(schema)
            gen = outlines.Generator(self._outlines, term, backend="llguidance")
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
            groups.setdefault((_grammar_key(r), r.max_tokens), []).append(i)
        sampling: dict[str, Any] = {"do_sample": False} if temperature <= 0 else {
            "do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0,
        }
        texts: list[str] = [""] * len(requests)
        for (key, max_tokens), indices in groups.items():
            gen = self._generator(key, requests[indices[0]])
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
            parsed = parse_result(text, r.grammar, min(n + 1, r.max_tokens), n >= r.max_tokens)
            results.append(parsed)
        self.stats.record(results, time.perf_counter() - start)
        return results

    def outlines_model(self):
        """The outlines model this backend generates with: for the ragas judge."""
        return self._outlines

    def outlines_options(self, max_tokens: int) -> dict:
        return {"max_new_tokens": max_tokens, "do_sample": False}

    def close(self) -> None:
        self._generators.clear()
        self._outlines = None
        gc.collect()

    def __enter__(self) -> TransformersBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _grammar_key(request: StructuredRequest) -> str:
    """Requests with equal keys share one outlines Generator (and one batch)."""
    from outlines.types import JsonSchema
    from outlines.types.dsl import to_regex

    term = request.output_type
    if isinstance(term, JsonSchema):
        return "json:" + json.dumps(json.loads(term.schema), sort_keys=True)
    return "regex:" + to_regex(term)


def _grammar_key(request: StructuredRequest) -> str:
    """Requests with equal keys share one outlines Generator (and one batch)."""
    from outlines.types import JsonSchema
    from outlines.types.dsl import to_regex

    term = request.output_type
    if isinstance(term, JsonSchema):
        return "json:" + json.dumps(json.loads(term.schema), sort_keys=True)
    return "regex:" + to_regex(term)


def from_transformers(model: str | ModelSpec = DEFAULT_AGENT_MODEL) -> TransformersBackend:
    return TransformersBackend.from_transformers(model)


