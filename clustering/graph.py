"""From an attention record to a pruned, weighted token graph (`AttentionGraph`).

Steps, each explicit because each changes what a cluster means:
1. pick the source matrix (layer/head mean, rollout, one layer, or answer co-attention);
2. measure the attention sinks' share of the mass, then drop them: token 0 holds about a third
   of all attention in smollm2, and left in it would pull every token into its cluster;
3. remove self-loops (a token attending to itself says nothing about which tokens go together);
4. renormalise each query row to sum to 1, so early queries (few keys, large weights) do not
   dominate late ones (many keys, small weights);
5. symmetrise, w_ij = (p_ij + p_ji) / 2 (default), or keep the query -> key direction;
6. prune: keep edges >= a threshold, or each token's top-k edges.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import igraph as ig
import networkx as nx
import numpy as np
import torch

from attnlens.clustering.config import ClusterConfig
from attnlens.extraction.record import AttentionRecord


def kept_layers(record: AttentionRecord) -> list[int]:
    """Layers whose head mean is in `layer_mean`; capture records them in info["config"]."""
    layers = record.info.get("keep_layers", record.info.get("config", {}).get("keep_layers", ()))
    return [int(layer) for layer in layers]


def has_answer_rows(record: AttentionRecord) -> bool:
    """Whether the record holds the query rows that produced each answer token."""
    wanted = {t - 1 for t in record.generation.answer_indices}
    return bool(wanted) and "rows" in record and wanted <= set(record["row_positions"].tolist())


def answer_attention(record: AttentionRecord) -> np.ndarray:
    """Float[A n]: each answer token's producing query row, averaged over layers and heads."""
    return record.answer_rows().double().mean(dim=(0, 1)).numpy()


def source_matrix(record: AttentionRecord, config: ClusterConfig) -> np.ndarray:
    """The Float[n n] matrix the graph is built from (query rows, key columns), in float32:
    at 4096 tokens every n x n copy in float64 costs 134 MB and a noticeable share of the time."""
    if config.source == "mean":
        matrix = record["mean"]
    elif config.source == "rollout":
        if "rollout" not in record:
            raise ValueError(f"this record has no rollout ({record.info.get('rollout', 'not captured')})")
        matrix = record["rollout"]
    elif config.source == "layer":
        layers = kept_layers(record)
        if config.layer not in layers or "layer_mean" not in record:
            raise ValueError(f"layer {config.layer} was not kept; kept layers: {layers} (CaptureConfig.keep_layers)")
        matrix = record["layer_mean"][layers.index(config.layer)]
    else:
        if not has_answer_rows(record):
            raise ValueError('source="answer" needs a record with answer tokens and their captured rows')
        # Co-attention: w_ij = mean over answer rows a of p_ai * p_aj, how much the answer
        # attends to both i and j. Rows sum to 1, so the total mass stays 1 and the sinks'
        # share is the answer's mean attention on them.
        rows = answer_attention(record)
        return (rows.T @ rows / len(rows)).astype(np.float32)
    n = record.n_tokens
    matrix = matrix.float().numpy()
    if matrix.shape != (n, n):
        raise ValueError(f"{config.source} has shape {tuple(matrix.shape)}, expected ({n}, {n})")
    return matrix


@dataclass(frozen=True)
class Normalised:
    """The dense, renormalised weights over the graph's tokens, before pruning."""

    nodes: np.ndarray  # Int[N]: token index of each vertex
    matrix: np.ndarray  # Float[N N]: zero diagonal, rows renormalised, symmetrised unless directed
    sink_share: float  # share of the source matrix's total mass that the sinks receive
    sinks: tuple[int, ...]  # the sinks dropped (empty when they are kept)


def normalise(
    weights: np.ndarray, *, sinks: tuple[int, ...] = (0,), drop_sinks: bool = True, directed: bool = False
) -> Normalised:
    """Steps 2-5 of the module docstring on a plain Float[n n] matrix (computed in float32)."""
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim != 2 or weights.shape[0] != weights.shape[1]:
        raise ValueError(f"attention weights must be a square matrix, got shape {weights.shape}")
    total = weights.sum(dtype=np.float64)
    if weights.size and not (np.isfinite(total) and weights.min() >= 0):  # min() is NaN when any entry is
        raise ValueError("attention weights must be finite and non-negative")
    n = len(weights)
    sinks = tuple(sorted({s for s in sinks if 0 <= s < n}))
    dropped = sinks if drop_sinks else ()
    nodes = np.setdiff1d(np.arange(n), dropped)
    matrix = weights[np.ix_(nodes, nodes)] if dropped else weights.copy()
    np.fill_diagonal(matrix, 0.0)
    row_sums = matrix.sum(axis=1, keepdims=True)
    np.divide(matrix, row_sums, out=matrix, where=row_sums > 0)
    if not directed:  # torch's transposed add is about 3x numpy's on a 3000 x 3000 matrix
        square = torch.from_numpy(matrix)
        matrix = (square + square.T).mul_(0.5).numpy()
    return Normalised(nodes, matrix, sink_share(weights, sinks), dropped)


def sink_share(weights: np.ndarray, sinks: tuple[int, ...]) -> float:
    """Share of a Float[n n] matrix's total mass in the sink columns (those inside the matrix)."""
    total = weights.sum(dtype=np.float64)
    inside = [s for s in sinks if 0 <= s < len(weights)]
    return float(weights[:, inside].sum(dtype=np.float64) / total) if total > 0 else 0.0


def candidate_mask(matrix: np.ndarray, directed: bool) -> np.ndarray:
    """Bool[N N]: the positive entries that can become edges (the upper triangle when undirected)."""
    mask = matrix > 0
    return mask if directed else np.triu(mask, 1)


def prune(
    matrix: np.ndarray, *, threshold: float | None = None, top_k: int | None = None, directed: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Edges (Int[m 2] vertex indices, undirected ones with i < j) and their weights.

    threshold keeps weights >= it; top_k keeps each vertex's k strongest edges (undirected:
    an edge survives if either end keeps it); both may be given; neither keeps every positive edge.
    """
    mask = candidate_mask(matrix, directed)
    if threshold is not None:
        mask &= matrix >= threshold
    if top_k is not None and len(matrix) > 1:
        k = min(top_k, len(matrix) - 1)
        best = np.argpartition(-matrix, k - 1, axis=1)[:, :k]
        keep = np.zeros_like(mask)
        np.put_along_axis(keep, best, True, axis=1)
        if not directed:
            keep |= keep.T
        mask &= keep
    rows, cols = np.nonzero(mask)
    return np.column_stack([rows, cols]), matrix[rows, cols]


def degree_thresholds(matrix: np.ndarray, directed: bool, degrees: tuple[float, ...]) -> list[float]:
    """The thresholds that leave about each mean degree (quantiles of the positive weights), sparse to dense."""
    values = matrix[candidate_mask(matrix, directed)]
    if values.size == 0:
        return []
    per_edge = 1 if directed else 2  # an undirected edge adds to two degrees
    counts = sorted({min(values.size, max(1, round(d * len(matrix) / per_edge))) for d in degrees})
    kth = [values.size - c for c in counts]
    ordered = np.partition(values, kth)
    return sorted({float(ordered[k]) for k in kth}, reverse=True)


@dataclass
class AttentionGraph:
    """A pruned, weighted token graph. Vertices are tokens; edges name token indices."""

    nodes: list[int]  # token index of each vertex, ascending
    labels: list[str]  # token text of each vertex
    edges: list[tuple[int, int]]  # token index pairs (query, key) when directed; i < j when not
    weights: list[float]
    directed: bool
    source: str
    threshold: float | None  # edges kept have weight >= threshold (None: not pruned by threshold)
    top_k: int | None
    sinks: list[int]  # sink tokens dropped from the graph
    sink_share: float  # share of all attention mass that the sinks receive
    n_tokens: int  # tokens in the record (vertices plus dropped sinks)

    @property
    def edge_count(self) -> int:
        return len(self.edges)

    @classmethod
    def from_arrays(
        cls,
        normalised: Normalised,
        edges: np.ndarray,
        weights: np.ndarray,
        *,
        labels: list[str],
        directed: bool,
        source: str,
        threshold: float | None,
        top_k: int | None,
    ) -> "AttentionGraph":
        """From `prune`'s vertex-index arrays; `labels` holds the text of every token of the record."""
        nodes = normalised.nodes
        token_edges = nodes[edges] if len(edges) else np.zeros((0, 2), dtype=int)
        return cls(
            nodes=nodes.tolist(),
            labels=[labels[i] for i in nodes],
            edges=[(int(a), int(b)) for a, b in token_edges],
            weights=np.asarray(weights, dtype=np.float64).tolist(),
            directed=directed,
            source=source,
            threshold=threshold,
            top_k=top_k,
            sinks=list(normalised.sinks),
            sink_share=normalised.sink_share,
            n_tokens=len(labels),
        )

    def vertex_edges(self) -> np.ndarray:
        """Int[m 2]: the edges as vertex indices."""
        if not self.edges:
            return np.zeros((0, 2), dtype=np.int64)
        return np.searchsorted(np.asarray(self.nodes), np.asarray(self.edges))

    def to_igraph(self, membership: list[int] | None = None) -> ig.Graph:
        """Vertex attributes `token`, `label` (and `cluster` when a membership is given); edge attribute `weight`."""
        g = ig.Graph(n=len(self.nodes), edges=self.vertex_edges().tolist(), directed=self.directed)
        g.vs["token"] = self.nodes
        g.vs["label"] = self.labels
        if membership is not None:
            g.vs["cluster"] = list(membership)
        g.es["weight"] = self.weights
        return g

    def to_networkx(self) -> nx.Graph:
        """Nodes are token indices, with a `label`; edges carry `weight`."""
        g = nx.DiGraph() if self.directed else nx.Graph()
        g.add_nodes_from((t, {"label": label}) for t, label in zip(self.nodes, self.labels))
        g.add_weighted_edges_from((a, b, w) for (a, b), w in zip(self.edges, self.weights))
        return g

    def write_graphml(self, path: str | Path, membership: list[int] | None = None) -> Path:
        path = Path(path)
        self.to_igraph(membership).write_graphml(str(path))
        return path

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AttentionGraph":
        return cls(**{**data, "edges": [tuple(e) for e in data["edges"]]})

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "AttentionGraph":
        return cls.from_dict(json.loads(Path(path).read_text()))
