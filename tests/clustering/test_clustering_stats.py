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


UNIFORM = ClusterConfig(scores="uniform")


def _describe(record, membership):
    from attnlens.clustering.pipeline import _scores
    from attnlens.extraction.words import user_words

    words = user_words(record.generation)
    scores = _scores(record, words, UNIFORM).values
    return describe(build_graph(record, UNIFORM), membership, words, scores, record, attention_of(record, (0,)), 2)


def test_cluster_statistics_by_hand(record):
    # Words: "Explain" (1), "12" (2), "apples" (3); the answer token 4 and the sink 0 are no vertices.
    # Among the words, rows without sink and diagonal: 2 -> {1: 1}, 3 -> {1: .5, 2: .5}; symmetrised
    # (1,2) .5, (1,3) .25, (2,3) .25. Uniform scores (head means of ROWS) .125, .225, .3 give ranks
    # 1/3, 2/3, 1, so the edges become .5 * 3/4, .25 * 5/6 and .25 * 11/12.
    first, second = _describe(record, [0, 0, 1])
    assert (first.id, first.tokens, first.spans, first.texts) == (0, [1, 2], [(1, 3)], ["Explain", " 12"])
    assert first.words == ["Explain", "12"] and second.words == ["apples"]
    assert first.score == pytest.approx(0.35) and second.score == pytest.approx(0.3)  # sorted by score
    assert first.importance == pytest.approx(0.35 / 0.65) and second.importance == pytest.approx(0.3 / 0.65)
    assert first.internal_weight == pytest.approx(0.375) and second.internal_weight == 0.0
    assert first.conductance == pytest.approx(1.0) and second.conductance == pytest.approx(1.0)  # all of 3's edges leave
    assert first.top_heads == [(0, 0, pytest.approx(1.0)), (0, 1, pytest.approx(0.25))]
    assert first.top_layers == [(0, pytest.approx(0.625))]
    assert second.top_heads[0] == (0, 1, pytest.approx(0.75))
    assert first.roles == {"prompt": 2} and second.roles == {"prompt": 1} and second.segments == {"user": 1}
    assert first.token_types == {"instruction": 1, "number": 1} and second.token_types == {"word": 1}


def test_clusters_are_sorted_by_score(record):
    # Listed in the other order, the higher-scoring cluster still comes first with id 0.
    clusters = _describe(record, [1, 1, 0])
    assert [c.tokens for c in clusters] == [[1, 2], [3]] and [c.id for c in clusters] == [0, 1]


def test_sequence_importance_without_answer(make_record):
    record = make_record(MEAN, texts=TEXTS)
    attention = attention_of(record, (0,))
    assert attention.source == "sequence" and attention.per_head is None
    # Rows 2-4 renormalised without sink and diagonal: {1: 1}, {1: .5, 2: .5}, {2: 1/7, 3: 6/7}.
    np.testing.assert_allclose(attention.importance, [0, 1.5 / 3, (0.5 + 1 / 7) / 3, (6 / 7) / 3, 0], atol=1e-7)
    result = cluster(record, UNIFORM)
    assert result.importance_source == "sequence" and "no answer rows" in result.info["importance"]
    assert "no answer rows" in result.info["scores"]
    assert all(c.top_layers == [] and c.top_heads == [] for c in result.clusters)
    assert sum(c.importance for c in result.clusters) == pytest.approx(1.0)


def test_only_the_users_words_are_nodes(record):
    result = cluster(record, UNIFORM)
    assert result.importance_source == "answer" and "every head weighted equally" in result.info["scores"]
    assert sorted(t for c in result.clusters for t in c.tokens) == [1, 2, 3]  # not the sink 0, not the answer 4
    assert all(c.roles == {"prompt": c.size} for c in result.clusters)
    scores = [c.score for c in result.clusters]
    assert scores == sorted(scores, reverse=True)


def test_clustering_round_trips(record, tmp_path):
    config = ClusterConfig(seeds=(0, 1), scores="uniform")
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
    from attnlens.extraction.words import user_words

    generation = generate(smollm, "What is 12 times 7?", max_new_tokens=4, seed=0)
    record = capture(smollm, generation, CaptureConfig(keep_layers=(20,)))
    words = user_words(generation)
    assert [w.text for w in words] == ["What", "is", "12", "times", "7", "?"]
    in_words = sorted(t for w in words for t in w.tokens)
    assert all(generation.tokens[t].segment == "user" for t in in_words)
    assert 0.2 < cluster(record).graph.sink_share < 0.9  # token 0 is a real sink in smollm2
    for config in (ClusterConfig(), ClusterConfig(source="answer"), ClusterConfig(source="layer", layer=20)):
        result = cluster(record, config)
        assert result.importance_source == "answer"
        assert result.info["scores"].startswith("learned head weights")  # shipped for smollm2-135m
        assert sorted(t for c in result.clusters for t in c.tokens) == in_words  # no template, sink or answer token
        assert all(set(c.segments) == {"user"} for c in result.clusters)
        owner = {t: c.id for c in result.clusters for t in c.tokens}
        assert all(len({owner[t] for t in w.tokens}) == 1 for w in words)  # a word's pieces stay together
        assert result.clusters[0].top_heads and result.stability.seeds == [0, 1, 2, 3, 4]
        assert Clustering.from_dict(result.to_dict()) == result
