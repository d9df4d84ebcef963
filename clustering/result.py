"""`Clustering`: the communities of one record, how they were chosen, and how stable they are."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from attnlens.clustering.graph import AttentionGraph
from attnlens.clustering.leiden import Stability, SweepPoint
from attnlens.clustering.stats import Cluster, ImportanceSource
from attnlens.extraction.words import Word


@dataclass
class Clustering:
    clusters: list[Cluster]  # by measured effect once verified (`ranked`), by score before
    graph: AttentionGraph  # the pruned graph the clusters partition
    modularity: float  # standard modularity of `clusters` on `graph` (0 when it has no edges)
    resolution: float  # the Leiden resolution chosen
    threshold: float | None  # the pruning threshold chosen (None: not pruned by threshold)
    stability: Stability
    sweep: list[SweepPoint]  # every (threshold, resolution) cell tried, threshold-major
    importance_source: ImportanceSource
    info: dict  # every parameter (ClusterConfig), the engine, library versions, timings, notes

    @property
    def membership(self) -> list[int]:
        """Cluster id of every token of the record; -1 for tokens in no cluster (template, sinks, answer, spaces)."""
        labels = [-1] * self.graph.n_tokens
        for c in self.clusters:
            for t in c.tokens:
                labels[t] = c.id
        return labels

    def word_members(self, words: list[Word]) -> list[list[int]]:
        """Per cluster: the indices of its words (`words` = user_words of the clustered generation)."""
        first = {w.tokens[0]: w.index for w in words}
        return [[first[t] for t in c.tokens if t in first] for c in self.clusters]

    def ranked(self, order: list[int]) -> "Clustering":
        """The same clustering with its clusters in `order` (current ids, first = rank 0), renumbered."""
        if sorted(order) != list(range(len(self.clusters))):
            raise ValueError(f"{order} is not an order of the {len(self.clusters)} clusters")
        clusters = [replace(self.clusters[i], id=rank) for rank, i in enumerate(order)]
        return replace(self, clusters=clusters)

    def write_graphml(self, path: str | Path) -> Path:
        """The pruned graph with each vertex's `cluster` id."""
        labels = self.membership
        return self.graph.write_graphml(path, [labels[t] for t in self.graph.nodes])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Clustering":
        return cls(
            clusters=[Cluster.from_dict(c) for c in data["clusters"]],
            graph=AttentionGraph.from_dict(data["graph"]),
            modularity=data["modularity"],
            resolution=data["resolution"],
            threshold=data["threshold"],
            stability=Stability(**data["stability"]),
            sweep=[SweepPoint(**p) for p in data["sweep"]],
            importance_source=data["importance_source"],
            info=data["info"],
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Clustering":
        return cls.from_dict(json.loads(Path(path).read_text()))
