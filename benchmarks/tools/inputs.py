"""The same inputs for every tool: four models and token sequences of exactly 64..4096 tokens.

The bundled models are plain safetensors folders written by transformers 5, whose config keeps
RoPE settings under `rope_parameters`; transformers 4.x (what most tools pin) ignores that key
and would silently fall back to default RoPE bases. Each model therefore gets a folder under
the tools cache whose config also carries the legacy keys (the weights are symlinks). Its
tokenizer_config names the fast tokenizer by its 4.x name too (`TokenizersBackend` is 5.x's name
for `PreTrainedTokenizerFast`, the same class there; 4.x raises "Tokenizer class TokenizersBackend
does not exist"). The tiny GPT-2 is a random-weight config built here, with SmolLM2's tokenizer
and 4096 positions.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from attnlens.benchmarks.extraction import TEXT
from attnlens.extraction.models import BUNDLED, cache_root

MODELS = ("smollm2-135m", "gemma3-270m", "minilm-l6", "tiny-gpt2")
LENGTHS = (64, 256, 1024, 4096)
TINY_GPT2 = {"n_layer": 4, "n_head": 4, "n_embd": 128, "n_positions": 4096}


class ContextError(ValueError):
    """The input is longer than the model's positions: a compatibility finding, not a crash."""


def _legacy_config(config: dict) -> dict:
    """Add the pre-5.0 names of the RoPE settings next to `rope_parameters`."""
    legacy = dict(config)
    rope = config.get("rope_parameters") or {}
    if "rope_theta" in rope:
        legacy["rope_theta"] = rope["rope_theta"]
    elif {"full_attention", "sliding_attention"} <= rope.keys():  # Gemma 3: two RoPE bases
        legacy["rope_theta"] = rope["full_attention"]["rope_theta"]
        legacy["rope_local_base_freq"] = rope["sliding_attention"]["rope_theta"]
    if "_sliding_window_pattern" in config:
        legacy["sliding_window_pattern"] = config["_sliding_window_pattern"]
    legacy.setdefault("torch_dtype", config.get("dtype", "float32"))
    return legacy


LEGACY_TOKENIZER_CLASS = {"TokenizersBackend": "PreTrainedTokenizerFast"}  # 5.x name -> 4.x name of the same class


def _legacy_tokenizer(folder: Path) -> None:
    """Name the tokenizer class as transformers 4.x knows it (idempotent; a symlinked file is
    replaced by a copy, the bundled model is left alone)."""
    path = folder / "tokenizer_config.json"
    if not path.exists():
        return
    config = json.loads(path.read_text())
    legacy = LEGACY_TOKENIZER_CLASS.get(config.get("tokenizer_class"))
    if legacy:
        path.unlink()
        path.write_text(json.dumps(config | {"tokenizer_class": legacy}, indent=1))


def _build_tiny_gpt2(folder: Path) -> None:
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(BUNDLED["smollm2-135m"].folder())
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        torch_dtype="float32", **TINY_GPT2,
    )
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    GPT2LMHeadModel(config).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(folder)


def model_folder(name: str) -> Path:
    """The folder every tool loads `name` from (built once)."""
    folder = cache_root() / "tools" / "models" / name
    if not (folder / "config.json").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        if name == "tiny-gpt2":
            _build_tiny_gpt2(folder)
        else:
            _link_bundled(name, folder)
    _legacy_tokenizer(folder)
    return folder


def _link_bundled(name: str, folder: Path) -> None:
    """The bundled model's files as symlinks, its config.json with the legacy keys added."""
    source = BUNDLED[name].folder()
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for item in source.iterdir():
        if item.name != "config.json":
            (tmp / item.name).symlink_to(item)
    config = json.loads((source / "config.json").read_text())
    (tmp / "config.json").write_text(json.dumps(_legacy_config(config), indent=1))
    tmp.rename(folder)


def prepare(name: str, n: int, into: Path) -> Path:
    """Write the input of exactly n tokens for `name` (ids, the text they decode to) as JSON."""
    from transformers import AutoConfig, AutoTokenizer

    folder = model_folder(name)
    config = AutoConfig.from_pretrained(folder)
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions")
    if n > positions:
        raise ContextError(f"exceeds context: {n} tokens > {positions} positions")
    encoder = name == "minilm-l6"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    specials = tokenizer("")["input_ids"]  # what the tokenizer adds around any text
    prefix, suffix = (specials[:1], specials[1:]) if encoder else (specials, [])
    body_len = n - len(prefix) - len(suffix)
    body: list[int] = []
    repeats = 1
    while len(body) < body_len:
        repeats *= 2
        body = tokenizer(TEXT * repeats, add_special_tokens=False)["input_ids"]
    ids = prefix + body[:body_len] + suffix
    into.mkdir(parents=True, exist_ok=True)
    path = into / f"{name}-{n}.json"
    spec = {
        "model": name, "folder": str(folder), "kind": "encoder" if encoder else "causal", "tokens": n,
        "ids": ids, "text": tokenizer.decode(body[:body_len]),
    }
    path.write_text(json.dumps(spec))
    return path
