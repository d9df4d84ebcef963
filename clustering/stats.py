"""What each cluster is: its words, tokens and spans, how tight it is, and how much the answer uses it."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from attnlens.clustering.graph import AttentionGraph, has_answer_rows
from attnlens.extraction.record import AttentionRecord
from attnlens.extraction.words import Word

ImportanceSource = Literal["answer", "sequence"]

IMPORTANCE_NOTES = {
    "answer": "share of the answer tokens' attention (their producing query rows, averaged over "
    "layers and heads, sinks excluded, each row renormalised, then averaged over the answer)",
    "sequence": "no answer rows: mean attention the whole sequence pays each token (record['mean'], "
    "sinks and self-attention excluded, each row renormalised, then averaged over rows); "
    "no per-layer or per-head shares",
}

# Words that ask the model to do something: the prompt's instruction, not its material.
INSTRUCTION_WORDS = frozenset(
    "answer explain describe list write summarize summarise translate give name tell calculate compute "
    "solve choose select classify compare define identify find what why how which who when where whom "
    "please question respond reply complete rewrite show state determine evaluate count sort".split()
)
_NUMBER = re.compile(r"^[+-]?[\d.,:/%]*\d[\d.,:/%]*$")


def token_type(text: str) -> str:
    """One of: space, number, punctuation, instruction, capitalised, word."""
    word = text.strip()
    if not word:
        return "space"
    if _NUMBER.match(word):
        return "number"
    if not any(ch.isalnum() for ch in word):
        return "punctuation"
    if word.lower() in INSTRUCTION_WORDS:
        return "instruction"
    if word[0].isupper():
        return "capitalised"
    return "word"


def spans(tokens: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive token indices as half-open (start, stop) pairs."""
    runs: list[tuple[int, int]] = []
    for t in sorted(tokens):
        if runs and runs[-1][1] == t:
            runs[-1] = (runs[-1][0], t + 1)
        else:
            runs.append((t, t + 1))
    return runs


@dataclass(frozen=True)
class Attention:
    """What the importance statistics read from a record."""

    importance: np.ndarray  # Float[n]: share of attention each token receives; 0 on sinks; sums to 1
    per_head: np.ndarray | None  # Float[L H n]: each head's share of its non-sink answer attention per token
    source: ImportanceSource


def _renormalise_rows(rows: torch.Tensor, sinks: list[int]) -> torch.Tensor:
    """Zero the sink columns and make each row sum to 1 (all-zero rows stay zero)."""
    rows = rows.clone()
    rows[..., sinks] = 0
    total = rows.sum(-1, keepdim=True)
    return rows / torch.where(total > 0, total, torch.ones_like(total))


def attention_of(record: AttentionRecord, sinks: tuple[int, ...]) -> Attention:
    """Each token's importance (see IMPORTANCE_NOTES), and each head's share where answer rows exist."""
    n = record.n_tokens
    sinks = [s for s in sinks if 0 <= s < n]
    if has_answer_rows(record):
        rows = record.answer_rows()  # L H A n
        importance = _renormalise_rows(rows.mean(dim=(0, 1), dtype=torch.float64), sinks).mean(0)
        # Layer by layer: all layers in float64 at once would be a large temporary.
        per_head = torch.stack([_renormalise_rows(layer.double(), sinks).mean(1) for layer in rows])
        return Attention(importance.numpy(), per_head.numpy(), "answer")
    # Column means of record["mean"] with sinks and the diagonal zeroed and each row renormalised,
    # computed with one matrix-vector product instead of an n x n temporary.
    mean = record["mean"].double()
    own = mean.diagonal().clone()
    own[sinks] = 0
    kept = mean.sum(1) - mean[:, sinks].sum(1) - own  # each row's mass on other, non-sink tokens
    used = kept > 0
    scale = torch.where(used, 1 / torch.where(used, kept, torch.ones_like(kept)), torch.zeros_like(kept))
    importance = (mean.T @ scale - own * scale) / max(int(used.sum()), 1)
    importance[sinks] = 0
    return Attention(importance.numpy(), None, "sequence")


@dataclass
class Cluster:
    """One community of co-attending user words and what it means for the answer."""

    id: int  # rank: by measured deletion effect once verified (pipeline), by score before
    tokens: list[int]  # token indices of its words (every piece), ascending
    spans: list[tuple[int, int]]  # runs of consecutive tokens, half-open (start, stop)
    texts: list[str]  # token texts, in token order
    words: list[str]  # its words, in prompt order
    score: float  # sum of its words' scores (clustering.scores; Clustering.info["scores"] says which)
    importance: float  # share of the answer's attention on these tokens (see Clustering.importance_source)
    internal_weight: float  # total weight of the pruned graph's edges inside the cluster
    conductance: float  # cut weight / min(volume inside, volume outside); 0 = nothing leaks out
    top_layers: list[tuple[int, float]]  # (layer, mean over heads of the share of its answer attention here)
    top_heads: list[tuple[int, int, float]]  # (layer, head, share of that head's answer attention here)
    roles: dict[str, int]  # tokens per role: prompt / answer
    segments: dict[str, int]  # tokens per segment: user / template / answer
    token_types: dict[str, int]  # tokens per type (see token_type)

    @property
    def size(self) -> int:
        return len(self.words)

    @classmethod
    def from_dict(cls, data: dict) -> "Cluster":
        return cls(
            **{
                **data,
                "spans": [tuple(s) for s in data["spans"]],
                "top_layers": [tuple(x) for x in data["top_layers"]],
                "top_heads": [tuple(x) for x in data["top_heads"]],
            }
        )


def _top(shares: np.ndarray, count: int) -> list[tuple[int, ...]]:
    """The `count` largest entries of an array as (index..., value), largest first, stable on ties."""
    flat = shares.ravel()
    order = np.argsort(-flat, kind="stable")[:count]
    return [(*map(int, np.unravel_index(i, shares.shape)), float(flat[i])) for i in order]


def describe(
    graph: AttentionGraph,
    membership: list[int],
    words: list[Word],
    scores: np.ndarray,
    record: AttentionRecord,
    attention: Attention,
    top_heads: int,
) -> list[Cluster]:
    """Statistics of every community of `membership` (one label per graph vertex, a vertex per
    word), sorted by score, highest first (ties: importance, then the earliest word); ids follow that order."""
    if not graph.nodes:
        return []
    labels = np.asarray(membership)
    count = int(labels.max()) + 1
    edges = graph.vertex_edges()
    weights = np.asarray(graph.weights, dtype=np.float64)
    ends = labels[edges] if len(edges) else np.zeros((0, 2), dtype=int)
    inside = ends[:, 0] == ends[:, 1]
    internal = np.bincount(ends[inside, 0], weights[inside], minlength=count)
    strength = np.bincount(edges.ravel(), np.repeat(weights, 2), minlength=len(graph.nodes))
    volume = np.bincount(labels, strength, minlength=count)
    total = volume.sum()
    cut = volume - 2 * internal
    tokens_info = record.generation.tokens
    clusters = []
    for c in range(count):
        members = [words[v] for v in np.flatnonzero(labels == c)]
        tokens = sorted(t for w in members for t in w.tokens)
        smaller = min(volume[c], total - volume[c])
        top_layers: list = []
        top_head_list: list = []
        if attention.per_head is not None:
            head_share = attention.per_head[:, :, tokens].sum(-1)  # L H
            top_layers = _top(head_share.mean(1), top_heads)
            top_head_list = _top(head_share, top_heads)
        clusters.append(
            Cluster(
                id=c,
                tokens=tokens,
                spans=spans(tokens),
                texts=[tokens_info[t].text for t in tokens],
                words=[w.text for w in members],
                score=float(sum(scores[w.index] for w in members)),
                importance=float(attention.importance[tokens].sum()),
                internal_weight=float(internal[c]),
                conductance=max(float(cut[c] / smaller), 0.0) if smaller > 0 else 0.0,
                top_layers=top_layers,
                top_heads=top_head_list,
                roles=dict(Counter(tokens_info[t].role for t in tokens)),
                segments=dict(Counter(tokens_info[t].segment for t in tokens)),
                token_types=dict(Counter(token_type(tokens_info[t].text) for t in tokens)),
            )
        )
    clusters.sort(key=lambda cl: (-cl.score, -cl.importance, cl.tokens[0]))
    for rank, cl in enumerate(clusters):
        cl.id = rank
    return clusters
