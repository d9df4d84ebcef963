"""Extraction: model loading (bundled + any HF id), generation, attention capture, the record format."""

from extraction.capture import CaptureConfig, CaptureError, capture, capture_ids
from extraction.generation import InputError, encode, generate
from extraction.loading import LoadedModel, load_model, wrap
from extraction.models import BUNDLED, DEFAULT_MODEL, ModelError, cache_root, fetch
from extraction.record import ARRAYS, ArchitectureInfo, AttentionRecord, Generation, RecordError, Token

__all__ = [
    "ARRAYS", "ArchitectureInfo", "AttentionRecord", "BUNDLED", "CaptureConfig", "CaptureError", "DEFAULT_MODEL",
    "Generation", "InputError", "LoadedModel", "ModelError", "RecordError", "Token", "cache_root", "capture",
    "capture_ids", "encode", "fetch", "generate", "load_model", "wrap",
]
