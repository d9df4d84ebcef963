"""The entry point: `cluster(record, config) -> Clustering`, and `build_graph` for the graph alone.

The graph's vertices are the user's words (extraction.words): template, system prompt, BOS and
other sink tokens and answer tokens never enter it, though the answer's attention to the words is
what scores them. A word's pieces are one vertex. Edge weights are the attention among the words
(config.source), scaled by the words' score ranks so pruning keeps the high-scoring words' edges.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import igraph as ig
import leidenalg
import numpy as np
import torch
from scipy.stats import rankdata

from attnlens.clustering.config import ClusterConfig
from attnlens.clustering.graph import (
    AttentionGraph,
    Normalised,
    degree_thresholds,
    has_answer_rows,
    normalise,
    prune,
    sink_share,
    source_matrix,
)
from attnlens.clustering.leiden import (
    SweepPoint,
    build_igraph,
    choose,
    consensus,
    coverage,
    leiden,
    modularity,
)
from attnlens.clustering.result import Clustering
from attnlens.clustering.scores import SCORE_NOTES, WordScores, head_features, score_words
from attnlens.clustering.stats import IMPORTANCE_NOTES, attention_of, describe
from attnlens.extraction.record import AttentionRecord
from attnlens.extraction.words import Word, sum_over_words, user_words


def _word_matrix(record: AttentionRecord, words: list[Word], config: ClusterConfig) -> tuple[np.ndarray, float]:
    """Float[W W] attention among the words (summed over their tokens), and the sinks' share of all attention."""
    matrix = source_matrix(record, config)
    by_row = sum_over_words(words, torch.from_numpy(matrix), 0)  # W n: each word's rows summed
    return sum_over_words(words, by_row, 1).numpy(), sink_share(matrix, config.sinks)


def _normalised(record: AttentionRecord, words: list[Word], scores: WordScores, config: ClusterConfig) -> Normalised:
    """Rows renormalised and symmetrised (graph.normalise), then each edge scaled by (1 - a) + a times
    the mean score rank of its two words (a = config.score_edges, 1/2 by default: factors in
    (1/2, 1]): among equally co-attending pairs the high-scoring words' edge survives pruning."""
    matrix, share = _word_matrix(record, words, config)
    plain = normalise(matrix, sinks=(), drop_sinks=False, directed=config.directed)
    rank = (rankdata(scores.values) / max(len(words), 1)).astype(np.float32)  # ties share their mean rank
    a = config.score_edges
    scale = np.add.outer(rank, rank)  # float32, W x W, scaled in place (at 4096 tokens W is about 3000)
    scale *= a / 2
    scale += 1 - a
    weighted = plain.matrix  # normalise's own copy
    weighted *= scale
    nodes = np.asarray([w.tokens[0] for w in words], dtype=np.int64)  # a vertex is named by its word's first token
    return Normalised(nodes, weighted, share, tuple(config.sinks))


def _scores(record: AttentionRecord, words: list[Word], config: ClusterConfig) -> WordScores:
    features = head_features(record, words) if has_answer_rows(record) else None
    return score_words(record, words, features, use_learned=config.scores == "learned")


def _labels(record: AttentionRecord, words: list[Word]) -> list[str]:
    """Per token: its word's text at the word's first token (the vertex), the token's own text elsewhere."""
    labels = [t.text for t in record.generation.tokens]
    for w in words:
        labels[w.tokens[0]] = w.text
    return labels


def build_graph(record: AttentionRecord, config: ClusterConfig = ClusterConfig()) -> AttentionGraph:
    """The word graph pruned at `config.threshold` / `config.top_k`, without a sweep (neither set: every positive edge)."""
    words = user_words(record.generation)
    normalised = _normalised(record, words, _scores(record, words, config), config)
    edges, weights = prune(normalised.matrix, threshold=config.threshold, top_k=config.top_k, directed=config.directed)
    return AttentionGraph.from_arrays(
        normalised,
        edges,
        weights,
        labels=_labels(record, words),
        directed=config.directed,
        source=config.source,
        threshold=config.threshold,
        top_k=config.top_k,
    )


@dataclass
class _Grid:
    """The sweep's cells, and what the chosen one needs again."""

    thresholds: list[float | None]
    resolutions: list[float]
    edges: np.ndarray  # Int[m 2] vertex pairs surviving the densest threshold (or top-k)
    weights: np.ndarray  # Float[m]
    kept: list[np.ndarray]  # per threshold: which of `edges` it keeps
    graphs: list[ig.Graph]  # per threshold
    points: list[SweepPoint]


def _sweep(normalised: Normalised, config: ClusterConfig) -> _Grid:
    """Prune at every threshold, run Leiden (first seed, config.sweep_iterations) at every resolution,
    record every cell."""
    if config.threshold is not None or config.top_k is not None:
        thresholds: list[float | None] = [config.threshold]
    else:
        thresholds = degree_thresholds(normalised.matrix, config.directed, config.sweep_degrees) or [None]
    # Candidates are pruned once, at the densest threshold; each threshold then filters them.
    densest = min((t for t in thresholds if t is not None), default=None)
    edges, weights = prune(normalised.matrix, threshold=densest, top_k=config.top_k, directed=config.directed)
    if config.resolution is not None:
        resolutions = [config.resolution]
    elif len(edges) == 0:
        resolutions = [1.0]  # no edge to split or join: one run says all there is to say
    else:
        resolutions = list(config.resolutions)

    positive = normalised.matrix > 0
    active = int(np.count_nonzero(positive.any(axis=0) | positive.any(axis=1)))
    n = len(normalised.nodes)
    dense = build_igraph(n, edges, weights, config.directed)
    grid = _Grid(thresholds, resolutions, edges, weights, [], [], [])
    for t in thresholds:
        keep = weights >= t if t is not None else np.ones(len(weights), dtype=bool)
        g = dense.subgraph_edges(np.flatnonzero(keep).tolist(), delete_vertices=False)
        grid.kept.append(keep)
        grid.graphs.append(g)
        share = coverage(g, config.min_component, active)
        for r in resolutions:
            membership = leiden(g, r, config.seeds[0], config.engine, config.sweep_iterations)
            largest = int(np.bincount(membership).max()) if membership else 0
            concise = n < config.concise_from or largest <= config.max_cluster_share * n
            grid.points.append(
                SweepPoint(
                    threshold=t,
                    resolution=r,
                    edges=g.ecount(),
                    coverage=share,
                    clusters=len(set(membership)),
                    modularity=modularity(g, membership),
                    eligible=share >= config.min_coverage and concise,
                    score=None,
                )
            )
    return grid


def cluster(record: AttentionRecord, config: ClusterConfig = ClusterConfig()) -> Clustering:
    """Score the user's words, build their graph, sweep threshold x resolution, run Leiden with
    every seed, describe the clusters (highest score first). Same record and config (seeds and
    engine included) give the same clusters."""
    started = time.perf_counter()
    words = user_words(record.generation)
    scores = _scores(record, words, config)
    normalised = _normalised(record, words, scores, config)
    grid = _sweep(normalised, config)
    chosen = choose(grid.points, len(grid.thresholds), len(grid.resolutions))
    swept = time.perf_counter()

    t_index, r_index = divmod(chosen, len(grid.resolutions))
    g, threshold, resolution = grid.graphs[t_index], grid.thresholds[t_index], grid.resolutions[r_index]
    memberships = [leiden(g, resolution, seed, config.engine) for seed in config.seeds]
    final, agreement = consensus(g, memberships, list(config.seeds))
    found = time.perf_counter()

    keep = grid.kept[t_index]
    graph = AttentionGraph.from_arrays(
        normalised,
        grid.edges[keep],
        grid.weights[keep],
        labels=_labels(record, words),
        directed=config.directed,
        source=config.source,
        threshold=threshold,
        top_k=config.top_k,
    )
    attention = attention_of(record, config.sinks)
    clusters = describe(graph, final, words, scores.values, record, attention, config.top_heads)
    finished = time.perf_counter()

    notes = []
    if not any(p.eligible for p in grid.points) and len(grid.edges):
        notes.append("every pruned graph of the sweep is fragmented: chose among all of them")
    if not graph.nodes:
        notes.append("the prompt has no words of the user's: no clusters")
    elif g.ecount() == 0:
        notes.append("no edge survives pruning: every token is its own cluster, modularity 0")
    elif len(clusters) == 1:
        notes.append("no split beats keeping every token together: one cluster, modularity 0")
    info = {
        "config": config.to_dict(),
        "engine": config.engine,
        "source": config.source,
        "importance": IMPORTANCE_NOTES[attention.source],
        "scores": SCORE_NOTES[scores.source],
        "head_weights": None if scores.weights is None else {"model": scores.weights.model, **scores.weights.trained},
        "words": len(words),
        "modularity": "standard (resolution 1) weighted modularity on the pruned graph",
        "tokens": record.n_tokens,
        "vertices": len(graph.nodes),
        "notes": notes,
        "versions": {"leidenalg": leidenalg.__version__, "igraph": ig.__version__},
        "seconds": {
            "graph_and_sweep": swept - started,
            "leiden": found - swept,
            "statistics": finished - found,
            "total": finished - started,
        },
    }
    return Clustering(
        clusters=clusters,
        graph=graph,
        modularity=modularity(g, final),
        resolution=resolution,
        threshold=threshold,
        stability=agreement,
        sweep=grid.points,
        importance_source=attention.source,
        info=info,
    )
