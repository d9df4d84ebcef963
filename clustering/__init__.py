"""Clustering: pruned token graphs from attention, the modularity sweep, Leiden communities and cluster statistics.

    from clustering import cluster, ClusterConfig
    result = cluster(record)            # a Clustering; result.clusters sorted by importance
    result.save("clustering.json"); result.graph.write_graphml("graph.graphml")
"""

from clustering.config import ClusterConfig
from clustering.graph import AttentionGraph, Normalised, normalise, prune, source_matrix
from clustering.leiden import Stability, SweepPoint
from clustering.pipeline import build_graph, cluster
from clustering.result import Clustering
from clustering.stats import Cluster, token_type

__all__ = [
    "AttentionGraph", "Cluster", "ClusterConfig", "Clustering", "Normalised", "Stability", "SweepPoint",
    "build_graph", "cluster", "normalise", "prune", "source_matrix", "token_type",
]
