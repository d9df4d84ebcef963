"""Cluster statistics on a hand-made record, importance without an answer, and serialisation."""

import igraph as ig
import numpy as np
import pytest

from attnlens.clustering import ClusterConfig, Clustering, build_graph, cluster, token_type
from attnlens.clustering.stats import attention_of, describe, spans

TEXTS = ["<s>", "Explain", " 12", " apples", " Paris"]
# Causal attention over 5 tokens. By hand, after dropping token 0, removing the diagonal and
# renormalising rows: token 2 -> {1: 1}; token 3 -> {1: .5, 2: .5}; token 4 -> {2: 1/7, 3: 6/7};
# symmetrised: (1,2) .5, (1,3) .25, (2,3) .25, (2,4) 1/14, (3,4) 3/7.
MEAN = np.array(
    [
        [1.0, 0.0, 0.0, 0.0, 0.0],
        [0.5, 0.5, 0.0, 0.0, 0.0],
        [0.4, 0.5, 0.1, 0.0, 0.0],
        [0.3, 0.1, 0.1, 0.5, 0.0],
        [0.2, 0.0, 0.1, 0.6, 0.1],
    ]
)
# One answer token (4), produced by query 3; one layer, two heads.
ROWS = np.array([[[[0.5, 0.25, 0.25, 0.0, 0.0]], [[0.2, 0.0, 0.2, 0.6, 0.0]]]])


@pytest.fixture
def record(make_record):
    return make_record(MEAN, texts=TEXTS, answer_start=4, rows=ROWS)


def test_answer_importance_and_head_shares(record):
    attention = attention_of(record, (0,))
    assert attention.source == "answer"
    # Heads averaged: [.35, .125, .225, .3, 0]; without the sink, renormalised over .65.
    np.testing.assert_allclose(attention.importance, [0, 0.125 / 0.65, 0.225 / 0.65, 0.3 / 0.65, 0], atol=1e-7)
    # Each head renormalised without the sink: head 0 [0, .5, .5, 0, 0], head 1 [0, 0, .25, .75, 0].
    np.testing.assert_allclose(attention.per_head[0], [[0, 0.5, 0.5, 0, 0], [0, 0, 0.25, 0.75, 0]], atol=1e-7)


def test_cluster_statistics_by_hand(record):
    graph = build_graph(record)  # no pruning: all five edges
    clusters = describe(graph, [0, 0, 1, 1], record, attention_of(record, (0,)), (0,), top_heads=2)
    first, second = clusters
    assert (first.id, first.tokens, first.spans, first.texts) == (0, [1, 2], [(1, 3)], ["Explain", " 12"])
    assert (second.id, second.tokens, second.spans) == (1, [3, 4], [(3, 5)])
    assert first.importance == pytest.approx(0.35 / 0.65) and second.importance == pytest.approx(0.3 / 0.65)
    assert first.internal_weight == pytest.approx(0.5) and second.internal_weight == pytest.approx(3 / 7)
    # Cut 0.25 + 0.25 + 1/14 = 4/7; volumes 11/7 and 10/7; conductance = (4/7) / (10/7).
    assert first.conductance == pytest.approx(0.4) and second.conductance == pytest.approx(0.4)
    assert first.top_heads == [(0, 0, pytest.approx(1.0)), (0, 1, pytest.approx(0.25))]
    assert first.top_layers == [(0, pytest.approx(0.625))]
    assert second.top_heads[0] == (0, 1, pytest.approx(0.75))
    assert first.roles == {"prompt": 2} and second.roles == {"prompt": 1, "answer": 1}
    assert second.segments == {"user": 1, "answer": 1}
    assert first.token_types == {"instruction": 1, "number": 1}
    assert second.token_types == {"word": 1, "capitalised": 1}
    assert not first.has_sink and not second.has_sink


def test_clusters_are_sorted_by_importance(record):
    # Listed in the other order, the more important cluster still comes first with id 0.
    graph = build_graph(record)
    clusters = describe(graph, [1, 1, 0, 0], record, attention_of(record, (0,)), (0,), top_heads=1)
    assert [c.tokens for c in clusters] == [[1, 2], [3, 4]] and [c.id for c in clusters] == [0, 1]


def test_sequence_importance_without_answer(make_record):
    record = make_record(MEAN, texts=TEXTS)
    attention = attention_of(record, (0,))
    assert attention.source == "sequence" and attention.per_head is None
    # Rows 2-4 renormalised without sink and diagonal: {1: 1}, {1: .5, 2: .5}, {2: 1/7, 3: 6/7}.
    np.testing.assert_allclose(attention.importance, [0, 1.5 / 3, (0.5 + 1 / 7) / 3, (6 / 7) / 3, 0], atol=1e-7)
    result = cluster(record)
    assert result.importance_source == "sequence" and "no answer rows" in result.info["importance"]
    assert all(c.top_layers == [] and c.top_heads == [] for c in result.clusters)
    assert sum(c.importance for c in result.clusters) == pytest.approx(1.0)


def test_answer_tokens_are_nodes(record):
    result = cluster(record)
    assert result.importance_source == "answer"
    assert sorted(t for c in result.clusters for t in c.tokens) == [1, 2, 3, 4]
    assert sum(c.roles.get("answer", 0) for c in result.clusters) == 1
    importances = [c.importance for c in result.clusters]
    assert importances == sorted(importances, reverse=True) and sum(importances) == pytest.approx(1.0)


def test_clustering_round_trips(record, tmp_path):
    config = ClusterConfig(seeds=(0, 1))
    result = cluster(record, config)
    assert Clustering.from_dict(result.to_dict()) == result
    assert ClusterConfig.from_dict(result.info["config"]) == config
    assert Clustering.load(result.save(tmp_path / "clustering.json")) == result
    assert result.info["config"]["seeds"] == [0, 1] and result.info["config"]["source"] == "mean"
    assert result.membership[0] == -1
    g = ig.Graph.Read_GraphML(str(result.write_graphml(tmp_path / "clusters.graphml")))
    assert g.vs["cluster"] == [result.membership[t] for t in result.graph.nodes]


@pytest.mark.parametrize(
    "text, kind",
    [
        ("", "space"), ("\n", "space"), ("12", "number"), (" 3.5", "number"), ("1,000", "number"),
        ("?", "punctuation"), ("**", "punctuation"), (" What", "instruction"), ("explain", "instruction"),
        ("Paris", "capitalised"), (" the", "word"), ("x2", "word"),
    ],
)
def test_token_types(text, kind):
    assert token_type(text) == kind


def test_spans():
    assert spans([5, 1, 2, 3, 9, 10]) == [(1, 4), (5, 6), (9, 11)]
    assert spans([]) == []


@pytest.mark.slow
def test_real_smollm_answer(smollm):
    from attnlens.extraction import CaptureConfig, capture, generate

    generation = generate(smollm, "What is 12 times 7?", max_new_tokens=4, seed=0)
    record = capture(smollm, generation, CaptureConfig(keep_layers=(20,)))
    assert 0.2 < cluster(record).graph.sink_share < 0.9  # token 0 is a real sink in smollm2
    for config in (ClusterConfig(), ClusterConfig(source="answer"), ClusterConfig(source="layer", layer=20)):
        result = cluster(record, config)
        assert result.importance_source == "answer"
        assert sorted(t for c in result.clusters for t in c.tokens) == list(range(1, record.n_tokens))
        assert sum(c.importance for c in result.clusters) == pytest.approx(1.0)
        assert sum(c.roles.get("answer", 0) for c in result.clusters) == len(generation.answer_indices)
        assert result.clusters[0].top_heads and result.stability.seeds == [0, 1, 2, 3, 4]
        assert Clustering.from_dict(result.to_dict()) == result
