"""Clustering: pruned token graphs from attention, the modularity sweep, Leiden communities and cluster statistics."""
