"""Clustering: pruned token graphs from attention, the modularity sweep, Leiden communities and cluster statistics.

    from attnlens.clustering import cluster, ClusterConfig
    result = cluster(record)            # a Clustering; result.clusters sorted by importance
    result.save("clustering.json"); result.graph.write_graphml("graph.graphml")
"""

from attnlens.clustering.config import ClusterConfig
from attnlens.clustering.graph import AttentionGraph, Normalised, normalise, prune, source_matrix
from attnlens.clustering.leiden import Stability, SweepPoint
from attnlens.clustering.pipeline import build_graph, cluster
from attnlens.clustering.result import Clustering
from attnlens.clustering.stats import Cluster, token_type

__all__ = [
    "AttentionGraph", "Cluster", "ClusterConfig", "Clustering", "Normalised", "Stability", "SweepPoint",
    "build_graph", "cluster", "normalise", "prune", "source_matrix", "token_type",
]
