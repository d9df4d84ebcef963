"""`ClusterConfig`: every parameter of graph building, the sweep and Leiden, in one place.

The result's `info` repeats it, so a saved clustering says exactly how it was made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Source = Literal["mean", "rollout", "layer", "answer"]
Engine = Literal["igraph", "leidenalg"]


@dataclass(frozen=True)
class ClusterConfig:
    # Graph source: "mean" (layer/head average), "rollout", "layer" (one kept layer's head mean,
    # see `layer`) or "answer" (co-attention of the answer rows: how much they attend to both tokens).
    source: Source = "mean"
    layer: int | None = None
    # Attention sinks: tokens that soak up attention without meaning (token 0 in causal LMs). They
    # are never in the graph (only the user's words are); their share of the attention is reported,
    # and the per-head shares of a cluster leave them out.
    sinks: tuple[int, ...] = (0,)
    directed: bool = False  # keep the query -> key direction instead of symmetrising
    # Pruning. A fixed `threshold` or `top_k` skips the threshold sweep.
    threshold: float | None = None
    top_k: int | None = None  # keep each token's k strongest edges (an edge survives if either end keeps it)
    # The sweep: thresholds are the edge-weight quantiles that leave these mean degrees.
    sweep_degrees: tuple[float, ...] = (4, 6, 8, 12, 16, 24, 32)
    resolutions: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5, 2.0)
    resolution: float | None = None  # a fixed resolution skips the resolution sweep
    # A pruned graph counts as fragmented (and is not chosen) when fewer than `min_coverage`
    # of its tokens lie in components holding at least `min_component` of the tokens:
    # modularity rises trivially as a graph falls apart into small pieces.
    min_coverage: float = 0.9
    min_component: float = 0.05
    # Concise clusters: with `concise_from` or more words, a cell whose largest cluster holds more
    # than `max_cluster_share` of the words is not chosen (unless no cell avoids it).
    concise_from: int = 6
    max_cluster_share: float = 0.5
    # How much the words' score ranks shape the edges: each edge is scaled by
    # (1 - score_edges) + score_edges * (rank_i + rank_j) / 2, ranks in (0, 1].
    score_edges: float = 0.5
    # Word scores: "learned" head weights (clustering.scores; the uniform default, with a warning,
    # for a model without them) or "uniform" (every head weighted equally, no warning).
    scores: Literal["learned", "uniform"] = "learned"
    # Leiden: "igraph" (igraph's C implementation, 10-30x faster here) or "leidenalg"
    # (RBConfigurationVertexPartition); both optimise modularity with a resolution, to convergence.
    engine: Engine = "igraph"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    # Iterations of each sweep cell's Leiden run (seed 0): 2, igraph's default, measured at 4096
    # tokens: 0.53 s for the 35 cells instead of 1.22 s to convergence, mean modularity 0.7763 vs
    # 0.7772, the best cell's the same. The chosen cell's runs (every seed) go to convergence.
    sweep_iterations: int = 2
    top_heads: int = 3  # layers and heads reported per cluster

    def __post_init__(self) -> None:
        if self.source not in ("mean", "rollout", "layer", "answer"):
            raise ValueError(f"unknown graph source {self.source!r}")
        if self.source == "layer" and self.layer is None:
            raise ValueError('source="layer" needs `layer`')
        if self.engine not in ("igraph", "leidenalg"):
            raise ValueError(f"unknown Leiden engine {self.engine!r}")
        if not self.seeds:
            raise ValueError("at least one seed is needed")
        if self.sweep_iterations == 0 or self.sweep_iterations < -1:
            raise ValueError("sweep_iterations must be -1 (to convergence) or at least 1")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError("top_k must be at least 1")
        if self.threshold is not None and self.threshold < 0:
            raise ValueError("threshold must be >= 0")
        if self.scores not in ("learned", "uniform"):
            raise ValueError(f"unknown word scores {self.scores!r}")
        if not 0 <= self.score_edges <= 1:
            raise ValueError("score_edges must be in [0, 1]")
        if not 0 < self.max_cluster_share <= 1:
            raise ValueError("max_cluster_share must be in (0, 1]")
        if not self.sweep_degrees or not self.resolutions:
            raise ValueError("the sweep needs at least one degree and one resolution")

    def to_dict(self) -> dict:
        """JSON-native (tuples as lists), so a saved result reloads equal."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "ClusterConfig":
        tuples = ("sinks", "sweep_degrees", "resolutions", "seeds")
        return cls(**{k: tuple(v) if k in tuples else v for k, v in data.items()})
