"""Leiden on a pruned token graph: the threshold x resolution sweep, seeds, stability, consensus.

Both engines optimise the same quality function, modularity with a resolution parameter
(leidenalg's RBConfigurationVertexPartition), and iterate until an iteration no longer improves it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from itertools import combinations

import igraph as ig
import leidenalg
import numpy as np

from attnlens.clustering.config import Engine


def build_igraph(n: int, edges: np.ndarray, weights: np.ndarray, directed: bool) -> ig.Graph:
    """An igraph Graph over vertex indices 0..n-1, straight from numpy arrays."""
    g = ig.Graph(n=n, edges=edges, directed=directed)
    g.es["weight"] = weights.tolist()
    return g


def leiden(g: ig.Graph, resolution: float, seed: int, engine: Engine, iterations: int = -1) -> list[int]:
    """One Leiden run, to convergence (iterations=-1) or for that many iterations; the same graph,
    resolution, seed and iterations give the same membership.

    The igraph engine swaps igraph's process-wide random generator for the run: not safe while
    another thread uses igraph's randomness.
    """
    if g.ecount() == 0:
        return list(range(g.vcount()))  # nothing to join: every vertex alone
    if engine == "leidenalg":
        partition = leidenalg.find_partition(
            g,
            leidenalg.RBConfigurationVertexPartition,
            weights="weight",
            resolution_parameter=resolution,
            n_iterations=iterations,
            seed=seed,
        )
        return list(partition.membership)
    # igraph draws from a Python generator: seed a private one, then give back the default.
    ig.set_random_number_generator(random.Random(seed))
    try:
        result = g.community_leiden(
            objective_function="modularity", weights="weight", resolution=resolution, n_iterations=iterations
        )
    finally:
        ig.set_random_number_generator(random)
    return list(result.membership)


def modularity(g: ig.Graph, membership: list[int]) -> float:
    """Standard (resolution 1) weighted modularity; 0 for a graph without edges."""
    if g.ecount() == 0:
        return 0.0
    return float(g.modularity(membership, weights="weight", directed=g.is_directed()))


def coverage(g: ig.Graph, min_component: float, active: int) -> float:
    """Share of the `active` vertices (those with an edge before pruning) that lie in connected
    components holding at least `min_component` of them (and at least 2)."""
    if active == 0:
        return 0.0
    least = max(2, math.ceil(min_component * active))
    sizes = g.connected_components(mode="weak").sizes()
    return sum(s for s in sizes if s >= least) / active


@dataclass
class SweepPoint:
    """One cell of the sweep: prune at `threshold`, run Leiden (first seed) at `resolution`."""

    threshold: float | None
    resolution: float
    edges: int
    coverage: float
    clusters: int
    modularity: float  # standard modularity of the partition found, on this pruned graph
    eligible: bool  # not fragmented (see ClusterConfig.min_coverage)
    score: float | None  # plateau score: the lowest modularity among this cell and its eligible neighbours


def choose(points: list[SweepPoint], n_thresholds: int, n_resolutions: int) -> int:
    """Index of the chosen cell in the threshold-major grid; fills in each point's score.

    A cell's score is the lowest modularity over itself and its eligible neighbours (one step
    along either axis), so a lone spike scores low and a wide plateau scores high. The best
    score wins; ties go to the higher modularity, then to the sparser, lower-resolution cell.
    When every cell is fragmented, all count as eligible.
    """
    q = np.array([p.modularity for p in points]).reshape(n_thresholds, n_resolutions)
    eligible = np.array([p.eligible for p in points]).reshape(n_thresholds, n_resolutions)
    if not eligible.any():
        eligible[:] = True
    best, best_key = 0, None
    for t in range(n_thresholds):
        for r in range(n_resolutions):
            if not eligible[t, r]:
                continue
            cells = [(t, r), (t - 1, r), (t + 1, r), (t, r - 1), (t, r + 1)]
            score = min(
                q[a, b] for a, b in cells if 0 <= a < n_thresholds and 0 <= b < n_resolutions and eligible[a, b]
            )
            index = t * n_resolutions + r
            points[index].score = float(score)
            key = (score, q[t, r])
            if best_key is None or key > best_key:
                best, best_key = index, key
    return best


@dataclass
class Stability:
    """Agreement between the seeds' partitions of the chosen graph."""

    ari: float  # mean pairwise adjusted Rand index (1: identical partitions)
    nmi: float  # mean pairwise normalised mutual information
    seeds: list[int]
    modularities: list[float]  # each seed's partition
    consensus_seed: int  # the seed whose partition is the consensus


def canonical(membership: list[int]) -> list[int]:
    """Relabel communities 0, 1, ... in order of first appearance."""
    labels: dict[int, int] = {}
    return [labels.setdefault(m, len(labels)) for m in membership]


def _compare(a: list[int], b: list[int], method: str) -> float:
    if canonical(a) == canonical(b):
        return 1.0  # also where the index is 0/0 (both partitions trivial)
    return float(ig.compare_communities(a, b, method=method))


def consensus(g: ig.Graph, memberships: list[list[int]], seeds: list[int]) -> tuple[list[int], Stability]:
    """The medoid partition and the seeds' agreement.

    The consensus is the seed run that agrees most with the others (highest mean ARI; ties: higher
    modularity, then the earlier seed). Unlike a vote over co-memberships it stays a real Leiden
    result: its modularity is a seed's, and its communities are connected.
    """
    k = len(memberships)
    ari, nmi = np.ones((k, k)), np.ones((k, k))
    for a, b in combinations(range(k), 2):
        ari[a, b] = ari[b, a] = _compare(memberships[a], memberships[b], "adjusted_rand")
        nmi[a, b] = nmi[b, a] = _compare(memberships[a], memberships[b], "nmi")
    pairs = k * (k - 1)
    quality = [modularity(g, m) for m in memberships]
    centrality = (ari.sum(axis=1) - 1) / (k - 1) if k > 1 else np.ones(1)
    best = max(range(k), key=lambda i: (centrality[i], quality[i], -i))
    summary = Stability(
        ari=float((ari.sum() - k) / pairs) if pairs else 1.0,
        nmi=float((nmi.sum() - k) / pairs) if pairs else 1.0,
        seeds=list(seeds),
        modularities=quality,
        consensus_seed=seeds[best],
    )
    return canonical(memberships[best]), summary
