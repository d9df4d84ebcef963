"""The typed objects extraction hands downstream: `Generation` and `AttentionRecord`.

Both save to disk and reload unchanged: arrays in one safetensors file, everything else in one
JSON document beside it. Array names are stable (TransformerLens-style) and documented in
`ARRAYS` with their shapes, so every later stage refers to them the same way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import load_file, save_file

from attnlens.errors import InputError

SCHEMA_VERSION = 1

Role = Literal["prompt", "answer"]
Segment = Literal["user", "template", "answer"]

# name -> (shape, meaning). L layers, H query heads, R captured query rows, n tokens, k top-k.
ARRAYS: dict[str, tuple[str, str]] = {
    "rows": ("L H R n", "attention of the captured query rows (row_positions), every layer and head"),
    "row_positions": ("R", "token index of each captured query row"),
    "mean": ("n n", "attention averaged over all layers and heads"),
    "max": ("n n", "attention maximum over all layers and heads"),
    "rollout": ("n n", "attention rollout (Abnar & Zuidema 2020), residual-mixed 0.5/0.5"),
    "layer_mean": ("Lk n n", "head-averaged attention of the layers in info['keep_layers']"),
    "full": ("L H n n", "every weight: opt-in debug view only"),
    "head_entropy": ("L H", "mean over query rows of the row's entropy (nats)"),
    "head_distance": ("L H", "mean over query rows of sum_j p_ij |i - j| (tokens)"),
    "head_sink": ("L H", "mean over query rows of the mass on token 0 (the attention sink)"),
    "head_prev": ("L H", "mean over query rows of the mass on the previous token"),
    "head_topk_mass": ("L H", "mean over query rows of the mass in the row's top-k keys"),
    "topk_values": ("L H n k", "the k largest weights of every query row of every head"),
    "topk_indices": ("L H n k", "their key indices"),
}


@dataclass(frozen=True)
class Token:
    index: int
    id: int
    text: str
    role: Role
    segment: Segment  # "template" marks chat-template scaffolding, not the user's words
    start: int  # character offsets into Generation.text
    end: int


@dataclass(frozen=True)
class Generation:
    """A prompt, the model's answer, and every token with its role and text offsets."""

    model: str
    prompt: str
    input_text: str  # the prompt as the model saw it (chat template applied where there is one)
    answer: str
    tokens: list[Token]
    answer_start: int  # index of the first answer token (== len(tokens) when there is no answer)
    params: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.input_text + self.answer

    @property
    def token_ids(self) -> list[int]:
        return [t.id for t in self.tokens]

    @property
    def answer_indices(self) -> list[int]:
        return list(range(self.answer_start, len(self.tokens)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Generation":
        tokens = [Token(**t) for t in data["tokens"]]
        return cls(**{**data, "tokens": tokens})


@dataclass(frozen=True)
class ArchitectureInfo:
    """What the capture needs to know, and reports, about a model's attention layout."""

    family: str  # config.model_type
    kind: Literal["causal", "encoder"]
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    context_length: int
    sliding_window: int | None
    sliding_layers: list[int]  # layers whose attention is limited to sliding_window keys

    @property
    def heads_per_kv_group(self) -> int:
        return self.heads // self.kv_heads

    def kv_groups(self) -> list[list[int]]:
        """Query heads that share each KV head (GQA): group g holds heads g*G .. g*G+G-1."""
        g = self.heads_per_kv_group
        return [list(range(i * g, (i + 1) * g)) for i in range(self.kv_heads)]


@dataclass(eq=False)
class AttentionRecord:
    """Everything captured from one forward pass over prompt + answer."""

    generation: Generation
    architecture: ArchitectureInfo
    arrays: dict[str, torch.Tensor]
    info: dict  # every parameter used, library versions, timings
    schema_version: int = SCHEMA_VERSION

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.arrays:
            raise KeyError(f"{name!r} was not captured; captured: {sorted(self.arrays)}")
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def __eq__(self, other: object) -> bool:
        """Same generation, layout, info and arrays (every array equal in shape, dtype and values)."""
        if not isinstance(other, AttentionRecord):
            return NotImplemented
        return (
            self.generation == other.generation
            and self.architecture == other.architecture
            and json.dumps(self.info, sort_keys=True, default=str) == json.dumps(other.info, sort_keys=True, default=str)
            and self.arrays.keys() == other.arrays.keys()
            and all(
                self.arrays[k].dtype == other.arrays[k].dtype and torch.equal(self.arrays[k], other.arrays[k])
                for k in self.arrays
            )
        )

    @property
    def n_tokens(self) -> int:
        return len(self.generation.tokens)

    def answer_rows(self) -> torch.Tensor:
        """Float[L H A n]: rows of the queries that produced each answer token.

        The answer token at index t is predicted by the query at t - 1, so its row is t - 1's.
        """
        wanted = [t - 1 for t in self.generation.answer_indices]
        positions = self["row_positions"].tolist()
        missing = [p for p in wanted if p not in positions]
        if missing:
            raise KeyError(f"rows for query positions {missing[:5]} were not captured")
        return self["rows"][:, :, [positions.index(p) for p in wanted], :]

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tmp_arrays = directory / "attention.safetensors.tmp"
        save_file({k: v.contiguous() for k, v in self.arrays.items()}, str(tmp_arrays))
        meta = {
            "schema_version": self.schema_version,
            "generation": self.generation.to_dict(),
            "architecture": asdict(self.architecture),
            "info": self.info,
            "arrays": {k: list(v.shape) for k, v in self.arrays.items()},
        }
        tmp_meta = directory / "record.json.tmp"
        tmp_meta.write_text(json.dumps(meta, indent=1))
        tmp_arrays.replace(directory / "attention.safetensors")
        tmp_meta.replace(directory / "record.json")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "AttentionRecord":
        directory = Path(directory)
        try:
            meta = json.loads((directory / "record.json").read_text())
            arrays = load_file(str(directory / "attention.safetensors"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read an attention record from {directory}: {exc}") from exc
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise InputError(
                f"{directory} has schema version {meta.get('schema_version')}, this attnlens reads {SCHEMA_VERSION}"
            )
        return cls(
            generation=Generation.from_dict(meta["generation"]),
            architecture=ArchitectureInfo(**meta["architecture"]),
            arrays=arrays,
            info=meta["info"],
        )


