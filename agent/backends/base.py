"""What every backend shares: the request and result types, the Backend protocol, output checking.

A backend turns a batch of `StructuredRequest`s (chat messages plus the grammar the answer must
match) into `StructuredResult`s in one call. The grammar is an outlines term (`Regex`, `JsonSchema`,
`CFG`, or any term of outlines' DSL; a plain dict is taken as a JSON schema): each backend hands it
on through outlines' own adapter for that engine, so the same term constrains every backend. A
bad output never raises: it comes back with `data=None` and `error` set. Setting a backend up
does raise a `BackendError`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import jsonschema

if TYPE_CHECKING:  # outlines loads transformers: imported where a grammar is used, so the CLI starts fast
    from outlines.types.dsl import Term

# The model that writes the rationales unless told otherwise (`--agent-model`).
DEFAULT_AGENT_MODEL = "qwen2.5-0.5b"  # the writer; smollm2-135m is the fast choice (--agent-model)
BACKENDS = ("vllm", "vllm-server", "transformers")


@dataclass(frozen=True)
class StructuredRequest:
    messages: list[dict]  # chat messages [{"role": "system" | "user" | "assistant", "content": str}]
    grammar: Term | dict  # an outlines term, or a JSON schema; bound every string and list (maxLength, maxItems, enum)
    max_tokens: int = 160

    @property
    def output_type(self) -> Term:
        """The grammar as an outlines term (a dict becomes `JsonSchema`)."""
        from outlines.types import JsonSchema

        return JsonSchema(self.grammar) if isinstance(self.grammar, dict) else self.grammar


@dataclass
class StructuredResult:
    data: Any  # a JSON grammar: the parsed object, valid against the schema; any other: the matching text; None when not
    text: str  # the raw output
    error: str | None  # why data is None ("invalid JSON: ...", "schema: ...", "request failed: ...")
    tokens: int  # generated tokens

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class BackendStats:
    """Cumulative over a backend's life."""

    calls: int = 0  # generate() calls
    requests: int = 0
    tokens: int = 0  # generated tokens
    seconds: float = 0.0  # inside generate()
    errors: int = 0  # results without valid data
    startup_seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def record(self, results: list[StructuredResult], seconds: float) -> None:
        self.calls += 1
        self.requests += len(results)
        self.tokens += sum(r.tokens for r in results)
        self.errors += sum(r.error is not None for r in results)
        self.seconds += seconds


@runtime_checkable
class Backend(Protocol):
    name: str  # "vllm" | "vllm-server" | "transformers"
    model: str  # the served model's name
    stats: BackendStats

    def generate(
        self, requests: list[StructuredRequest], *, temperature: float = 0.0, seed: int = 0
    ) -> list[StructuredResult]: ...

    def close(self) -> None: ...


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def schema_error(value: object, schema: dict) -> str | None:
    """The first way `value` breaks `schema` (JSON Schema 2020-12, checked by jsonschema), or None."""
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    if error is None:
        return None
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"{where}: {error.message}"


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def parse_result(text: str, grammar: Term | dict, tokens: int, truncated: bool = False) -> StructuredResult:
    """Parse one raw output and check it against its grammar; never raises. A JSON grammar gives the
    parsed object; any other gives the text, when the whole of it matches the grammar's regex."""
    from outlines.types import JsonSchema
    from outlines.types.dsl import to_regex

    if not isinstance(grammar, (dict, JsonSchema)):
        if _compiled(to_regex(grammar)).fullmatch(text):
            return StructuredResult(text, text, None, tokens)
        why = "does not match the grammar"
        if truncated:
            why += " (cut off at max_tokens: raise max_tokens or bound the grammar)"
        return StructuredResult(None, text, why, tokens)
    schema = grammar if isinstance(grammar, dict) else json.loads(grammar.schema)
    try:
        data = json.loads(text)
    except ValueError as exc:
        why = f"invalid JSON: {exc}"
        if truncated:
            why += " (cut off at max_tokens: bound the schema's strings and lists, or raise max_tokens)"
        return StructuredResult(None, text, why, tokens)
    if isinstance(data, float) and not math.isfinite(data):
        return StructuredResult(None, text, "invalid JSON: non-finite number", tokens)
    if err := schema_error(data, schema):
        return StructuredResult(None, text, f"schema: {err}", tokens)
    if not isinstance(data, dict):
        return StructuredResult(None, text, f"schema: expected an object, got {type(data).__name__}", tokens)
    return StructuredResult(data, text, None, tokens)
