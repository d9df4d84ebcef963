"""Graph construction against small matrices computed by hand."""

import igraph as ig
import numpy as np
import pytest

from attnlens.clustering import AttentionGraph, ClusterConfig, build_graph, normalise, prune, source_matrix
from attnlens.clustering.graph import degree_thresholds

# Causal attention over 4 tokens; every row sums to 1; token 0 is the sink.
CAUSAL = np.array(
    [
        [1.0, 0.0, 0.0, 0.0],
        [0.5, 0.5, 0.0, 0.0],
        [0.4, 0.2, 0.4, 0.0],
        [0.3, 0.3, 0.2, 0.2],
    ]
)
# By hand: drop token 0 -> [[.5,0,0],[.2,.4,0],[.3,.2,.2]]; no diagonal -> [[0,0,0],[.2,0,0],[.3,.2,0]];
# rows renormalised -> [[0,0,0],[1,0,0],[.6,.4,0]] (token 1 attends only to the sink and itself).
DIRECTED = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.6, 0.4, 0.0]])
SYMMETRIC = np.array([[0.0, 0.5, 0.3], [0.5, 0.0, 0.2], [0.3, 0.2, 0.0]])


def test_sink_removal_renormalisation_symmetrisation():
    result = normalise(CAUSAL)
    assert result.nodes.tolist() == [1, 2, 3]
    assert result.sinks == (0,)
    assert result.sink_share == pytest.approx(2.2 / 4)  # column 0 over the total mass
    np.testing.assert_allclose(result.matrix, SYMMETRIC)


def test_directed_keeps_query_to_key():
    np.testing.assert_allclose(normalise(CAUSAL, directed=True).matrix, DIRECTED)


def test_kept_sink_is_a_node_and_still_measured():
    result = normalise(CAUSAL, drop_sinks=False, directed=True)
    assert result.nodes.tolist() == [0, 1, 2, 3]
    assert result.sinks == ()
    assert result.sink_share == pytest.approx(0.55)
    expected = [[0, 0, 0, 0], [1, 0, 0, 0], [0.4 / 0.6, 0.2 / 0.6, 0, 0], [0.375, 0.375, 0.25, 0]]
    np.testing.assert_allclose(result.matrix, expected)


def test_threshold_pruning_is_inclusive():
    edges, weights = prune(SYMMETRIC, threshold=0.3)
    assert edges.tolist() == [[0, 1], [0, 2]]
    np.testing.assert_allclose(weights, [0.5, 0.3])
    edges, _ = prune(SYMMETRIC)  # no pruning: every positive pair once
    assert edges.tolist() == [[0, 1], [0, 2], [1, 2]]


def test_top_k_pruning():
    # Each vertex's strongest edge: 0 -> 1 (.5), 1 -> 0 (.5), 2 -> 0 (.3); kept if either end keeps it.
    edges, _ = prune(SYMMETRIC, top_k=1)
    assert edges.tolist() == [[0, 1], [0, 2]]
    edges, weights = prune(DIRECTED, top_k=1, directed=True)  # vertex 0 has no out-edge at all
    assert edges.tolist() == [[1, 0], [2, 0]]
    np.testing.assert_allclose(weights, [1.0, 0.6])
    edges, _ = prune(SYMMETRIC, top_k=1, threshold=0.4)  # both: the intersection
    assert edges.tolist() == [[0, 1]]


def test_degree_thresholds_are_weight_quantiles():
    # Three vertices: mean degree 2/3 is one undirected edge, 2 is all three.
    assert degree_thresholds(SYMMETRIC, False, (2 / 3, 2, 10)) == [0.5, 0.2]
    assert degree_thresholds(np.zeros((3, 3)), False, (4,)) == []


def test_bad_weights_are_rejected():
    with pytest.raises(ValueError, match="square"):
        normalise(np.ones((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        normalise(np.array([[0.0, np.nan], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        normalise(np.array([[0.0, -1.0], [1.0, 0.0]]))


def test_sources(make_record):
    layer = np.eye(4)[::-1]
    record = make_record(CAUSAL, extra={"layer_mean": [layer]}, info={"config": {"keep_layers": [7]}})
    np.testing.assert_allclose(source_matrix(record, ClusterConfig()), CAUSAL, atol=1e-7)
    np.testing.assert_allclose(source_matrix(record, ClusterConfig(source="layer", layer=7)), layer)
    with pytest.raises(ValueError, match="layer 3 was not kept"):
        source_matrix(record, ClusterConfig(source="layer", layer=3))
    with pytest.raises(ValueError, match="no rollout"):
        source_matrix(record, ClusterConfig(source="rollout"))
    with pytest.raises(ValueError, match="answer"):
        source_matrix(record, ClusterConfig(source="answer"))


def test_answer_co_attention(make_record):
    # Two answer tokens (3, 4), produced by queries 2 and 3; one layer, two heads.
    rows = np.zeros((1, 2, 2, 5))
    rows[0, 0] = [[0.5, 0.5, 0, 0, 0], [0.2, 0.4, 0.2, 0.2, 0]]
    rows[0, 1] = [[0.5, 0.1, 0.4, 0, 0], [0.2, 0.0, 0.4, 0.4, 0]]
    record = make_record(np.eye(5), answer_start=3, rows=rows)
    mean = rows[0].mean(axis=0)  # [[.5,.3,.2,0,0],[.2,.2,.3,.3,0]]
    expected = mean.T @ mean / 2  # w_ij = mean over answer rows of p_ai * p_aj
    matrix = source_matrix(record, ClusterConfig(source="answer"))
    np.testing.assert_allclose(matrix, expected, atol=1e-7)
    assert matrix[1, 2] == pytest.approx((0.3 * 0.2 + 0.2 * 0.3) / 2)
    assert matrix.sum() == pytest.approx(1.0)


def test_build_graph_and_round_trips(make_record, tmp_path):
    record = make_record(CAUSAL, texts=["<s>", " A", " b", "."])
    # Word scores (no answer rows: column means) .25, .15, .05 give ranks 1, 2/3, 1/3; each edge of
    # SYMMETRIC is scaled by 1/2 + (rank_i + rank_j) / 4: (1,2) .5 * 11/12, (1,3) .3 * 5/6, (2,3) .2 * 3/4.
    graph = build_graph(record, ClusterConfig(threshold=0.2, scores="uniform"))
    assert graph.nodes == [1, 2, 3] and graph.labels == ["A", "b", "."]  # vertices are words
    assert graph.edges == [(1, 2), (1, 3)]  # token indices
    assert graph.edge_count == 2
    assert graph.threshold == 0.2 and graph.source == "mean" and graph.sinks == [0]
    assert graph.sink_share == pytest.approx(0.55)
    assert AttentionGraph.from_dict(graph.to_dict()) == graph
    assert AttentionGraph.load(graph.save(tmp_path / "graph.json")) == graph

    reread = ig.Graph.Read_GraphML(str(graph.write_graphml(tmp_path / "graph.graphml", [0, 0, 1])))
    assert reread.vcount() == 3 and reread.ecount() == 2
    assert reread.vs["token"] == [1, 2, 3] and reread.vs["cluster"] == [0, 0, 1]
    np.testing.assert_allclose(reread.es["weight"], graph.weights)
    nxg = graph.to_networkx()
    assert sorted(nxg.edges(data="weight")) == [(1, 2, pytest.approx(0.5 * 11 / 12)), (1, 3, pytest.approx(0.25))]
