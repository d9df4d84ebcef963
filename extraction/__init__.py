"""Extraction: model loading (bundled + any HF id), generation, attention capture, the record format.

Names load on first use (like `import attnlens`): `attnlens.extraction.models`, the registry the
CLI reads for `--help`, stays free of torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_LAZY = {
    "CaptureConfig": "attention", "capture": "attention", "capture_ids": "attention",
    "encode": "generation", "generate": "generation", "generate_batch": "generation", "Frame": "generation",
    "FRAMES": "generation", "PLAIN_FRAME": "generation",
    "LoadedModel": "loading", "load_model": "loading", "wrap": "loading",
    "BUNDLED": "models", "DEFAULT_MODEL": "models", "ModelSpec": "models", "cache_root": "models", "fetch": "models",
    "resolve_model": "models",
    "ARRAYS": "record", "ArchitectureInfo": "record", "AttentionRecord": "record", "Generation": "record", "Token": "record",
}  # fmt: skip

__all__ = [
    "ARRAYS",
    "ArchitectureInfo",
    "AttentionRecord",
    "BUNDLED",
    "CaptureConfig",
    "DEFAULT_MODEL",
    "FRAMES",
    "Frame",
    "Generation",
    "LoadedModel",
    "ModelSpec",
    "PLAIN_FRAME",
    "Token",
    "cache_root",
    "capture",
    "capture_ids",
    "encode",
    "fetch",
    "generate",
    "generate_batch",
    "load_model",
    "resolve_model",
    "wrap",
]

if TYPE_CHECKING:
    from attnlens.extraction.attention import CaptureConfig, capture, capture_ids
    from attnlens.extraction.generation import FRAMES, PLAIN_FRAME, Frame, encode, generate, generate_batch
    from attnlens.extraction.loading import LoadedModel, load_model, wrap
    from attnlens.extraction.models import BUNDLED, DEFAULT_MODEL, ModelSpec, cache_root, fetch, resolve_model
    from attnlens.extraction.record import ARRAYS, ArchitectureInfo, AttentionRecord, Generation, Token


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'attnlens.extraction' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"attnlens.extraction.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
