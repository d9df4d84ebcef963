"""The sweep, Leiden (both engines, for real), stability, consensus and the degenerate inputs."""

import igraph as ig
import numpy as np
import pytest

from attnlens.clustering import ClusterConfig, SweepPoint, cluster
from attnlens.clustering.leiden import build_igraph, choose, consensus

ENGINES = ["igraph", "leidenalg"]


def ari(a, b) -> float:
    return ig.compare_communities(list(a), list(b), method="adjusted_rand")


@pytest.mark.parametrize("engine", ENGINES)
def test_sweep_recovers_planted_communities(make_record, planted, engine):
    matrix, truth = planted()
    result = cluster(make_record(matrix), ClusterConfig(engine=engine))
    assert ari(result.membership[1:], truth) >= 0.9
    assert result.graph.sinks == [0] and result.membership[0] == -1
    assert result.graph.sink_share == pytest.approx(0.3, abs=1e-6)
    assert len(result.sweep) == len(set(p.threshold for p in result.sweep)) * 5
    chosen = [p for p in result.sweep if p.threshold == result.threshold and p.resolution == result.resolution]
    assert len(chosen) == 1 and chosen[0].eligible
    assert result.stability.ari == pytest.approx(1.0)
    assert result.modularity > 0.6
    assert result.info["engine"] == engine and result.info["config"]["engine"] == engine


def test_the_sink_never_enters_the_graph(make_record, planted):
    # 90% of every row on token 0 (a template token): it is no vertex, so it cannot swallow the words.
    matrix, truth = planted(sink=0.9)
    result = cluster(make_record(matrix))
    assert 0 not in result.graph.nodes and result.membership[0] == -1
    assert result.graph.sink_share == pytest.approx(0.9, abs=1e-6)
    assert ari(result.membership[1:], truth) == pytest.approx(1.0)
    assert all(c.segments == {"user": c.size} for c in result.clusters)


def test_concise_cells_are_preferred(make_record):
    # One clique of 5 of the 7 words: kept whole only when a cluster may hold more than half the words.
    matrix = np.zeros((8, 8))
    matrix[:, 0] = 0.5
    matrix[1:6, 1:6] = 0.1
    matrix[0, 0], matrix[6:, 0] = 1.0, 1.0
    whole = cluster(make_record(matrix), ClusterConfig(max_cluster_share=1.0))
    assert sorted(c.tokens for c in whole.clusters) == [[1, 2, 3, 4, 5], [6], [7]]
    concise = cluster(make_record(matrix))
    assert max(c.size for c in concise.clusters) <= 3.5


@pytest.mark.parametrize("engine", ENGINES)
def test_same_input_and_seed_give_the_same_result(make_record, planted, engine):
    matrix, _ = planted(noise=0.3, seed=3)  # noisy enough that seeds could disagree
    record = make_record(matrix)
    config = ClusterConfig(engine=engine, seeds=(4, 5, 6))
    first, second = cluster(record, config), cluster(record, config)
    assert [c.tokens for c in first.clusters] == [c.tokens for c in second.clusters]
    assert first.sweep == second.sweep and first.stability == second.stability
    assert first.modularity == second.modularity


@pytest.mark.parametrize("engine", ENGINES)
def test_directed_graphs(make_record, planted, engine):
    matrix, truth = planted()
    result = cluster(make_record(matrix), ClusterConfig(directed=True, engine=engine))
    assert result.graph.directed
    assert ari(result.membership[1:], truth) >= 0.9


def test_fixed_pruning_and_resolution_skip_the_sweep(make_record, planted):
    record = make_record(planted()[0])
    top_k = cluster(record, ClusterConfig(top_k=5))
    assert [p.threshold for p in top_k.sweep] == [None] * 5 and top_k.graph.top_k == 5
    fixed = cluster(record, ClusterConfig(threshold=0.01, resolution=1.0))
    assert len(fixed.sweep) == 1 and fixed.threshold == 0.01 and fixed.resolution == 1.0


def _points(q, eligible=None):
    eligible = np.ones_like(q, dtype=bool) if eligible is None else eligible
    return [
        SweepPoint(None, 1.0, 1, 1.0, 1, float(v), bool(e), None) for v, e in zip(np.ravel(q), np.ravel(eligible))
    ]


def test_choice_prefers_a_plateau_to_a_spike():
    # Threshold axis only: a spike at 0 (0.9 next to 0.3), a plateau at 3-5 (0.6).
    q = np.array([[0.9], [0.3], [0.4], [0.6], [0.61], [0.6]])
    points = _points(q)
    assert choose(points, 6, 1) == 4
    assert points[0].score == pytest.approx(0.3) and points[4].score == pytest.approx(0.6)


def test_choice_skips_fragmented_cells_unless_all_are():
    q = np.array([[0.9, 0.9], [0.5, 0.55], [0.5, 0.5]])
    eligible = np.array([[False, False], [True, True], [True, True]])
    assert choose(_points(q, eligible), 3, 2) == 3  # (1, 1): neighbours 0.5, 0.5; tie broken by its 0.55
    assert choose(_points(q, np.zeros_like(eligible)), 3, 2) == 1  # all count: (0, 1) scores 0.55


def test_consensus_is_the_medoid_and_stability_is_pairwise():
    g = build_igraph(4, np.array([[0, 1], [2, 3], [1, 2]]), np.array([1.0, 1.0, 0.1]), False)
    runs = [[0, 0, 1, 1], [1, 1, 0, 0], [0, 0, 0, 1]]  # the first two are the same partition
    membership, stability = consensus(g, runs, [7, 8, 9])
    assert membership == [0, 0, 1, 1] and stability.consensus_seed == 7
    other = ari(runs[0], runs[2])
    assert stability.ari == pytest.approx((1 + 2 * other) / 3)
    assert stability.seeds == [7, 8, 9] and len(stability.modularities) == 3
    single, alone = consensus(g, runs[:1], [0])
    assert single == [0, 0, 1, 1] and alone.ari == 1.0 and alone.nmi == 1.0


# Degenerate inputs: a documented result, never an exception.


def test_one_token(make_record):
    result = cluster(make_record(np.ones((1, 1))))
    assert result.clusters == [] and result.modularity == 0.0
    assert result.membership == [-1] and result.graph.edge_count == 0
    assert "no words" in result.info["notes"][0]


def test_one_token_besides_the_sink(make_record):
    result = cluster(make_record(np.array([[1.0, 0.0], [0.5, 0.5]])))
    assert [c.tokens for c in result.clusters] == [[1]] and result.modularity == 0.0


@pytest.mark.parametrize("engine", ENGINES)
def test_no_edge_survives_pruning(make_record, planted, engine):
    result = cluster(make_record(planted()[0]), ClusterConfig(threshold=2.0, engine=engine))
    assert result.graph.edge_count == 0
    assert [c.tokens for c in sorted(result.clusters, key=lambda c: c.tokens)] == [[t] for t in range(1, 61)]
    assert result.modularity == 0.0 and result.stability.ari == 1.0
    assert "every token is its own cluster" in result.info["notes"][0]


def test_no_attention_at_all(make_record):
    result = cluster(make_record(np.zeros((5, 5))))
    assert len(result.clusters) == 4 and result.modularity == 0.0
    assert [p.threshold for p in result.sweep] == [None]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("directed", [False, True])
def test_all_weights_equal_is_one_cluster(make_record, engine, directed):
    config = ClusterConfig(engine=engine, directed=directed, max_cluster_share=1.0)
    result = cluster(make_record(np.full((8, 8), 1 / 8)), config)
    assert [c.tokens for c in result.clusters] == [list(range(1, 8))]
    assert result.modularity == pytest.approx(0.0, abs=1e-12)
    assert result.clusters[0].conductance == 0.0
    assert "one cluster" in result.info["notes"][0]
