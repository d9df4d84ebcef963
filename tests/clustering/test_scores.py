"""Word scores from head weights: the features by hand, the learned weights' round trip, the fallback."""

import numpy as np
import pytest

from attnlens.clustering import scores
from attnlens.clustering.scores import HeadWeights, find_head_weights, head_features, score_words
from attnlens.extraction.words import user_words

# One answer token (index 4, produced by query 3); one layer, two heads; words are tokens 1, 2, 3.
MEAN = np.tril(np.ones((5, 5))) / np.arange(1, 6)[:, None]
ROWS = np.array([[[[0.5, 0.25, 0.25, 0.0, 0.0]], [[0.2, 0.0, 0.2, 0.6, 0.0]]]])


@pytest.fixture
def record(make_record):
    return make_record(MEAN, texts=["<s>", " a", " b", " c", " d"], answer_start=4, rows=ROWS, info={"model_checksum": "abc"})


def test_features_are_the_answers_attention_per_head(record):
    features = head_features(record, user_words(record.generation))
    np.testing.assert_allclose(features[:, 0], [[0.25, 0.0], [0.25, 0.2], [0.0, 0.6]])


def test_learned_weights_round_trip_and_apply_only_to_their_model(record, tmp_path, monkeypatch):
    weights = HeadWeights("test", "abc", [[2.0, -1.0]], {"alpha": 10.0})
    path = weights.save(tmp_path / "test.json")
    assert HeadWeights.load(path) == weights
    monkeypatch.setattr(scores, "SHIPPED", tmp_path)
    assert find_head_weights("test", "abc", (1, 2)) == weights
    assert find_head_weights("test", "other model", (1, 2)) is None  # another checksum
    assert find_head_weights("test", "abc", (2, 2)) is None  # another layout
    words = user_words(record.generation)
    learned = score_words(record, words, head_features(record, words))
    assert learned.source == "learned" and learned.weights == weights
    np.testing.assert_allclose(learned.values, [0.5, 0.3, -0.6])  # 2 * head 0 - head 1


def test_without_weights_every_head_counts_equally_and_a_warning_says_so(record, tmp_path, monkeypatch):
    monkeypatch.setattr(scores, "SHIPPED", tmp_path)  # nothing there
    words = user_words(record.generation)
    with pytest.warns(UserWarning, match="no learned head weights for test"):
        fallback = score_words(record, words, head_features(record, words))
    assert fallback.source == "uniform" and fallback.weights is None
    np.testing.assert_allclose(fallback.values, [0.125, 0.225, 0.3])


def test_an_unreadable_weights_file_is_ignored_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(scores, "SHIPPED", tmp_path)
    (tmp_path / "test.json").write_text("{not json")
    with pytest.warns(UserWarning, match="ignoring unreadable head weights"):
        assert find_head_weights("test", "abc", (1, 2)) is None


def test_shipped_weights_match_the_bundled_models():
    from attnlens.extraction.models import bundled

    for path in sorted(scores.SHIPPED.glob("*.json")):
        weights = HeadWeights.load(path)
        spec = bundled(weights.model)
        assert weights.checksum == spec.sha256, path
        assert weights.trained["held_out_lds"]["learned"] > weights.trained["held_out_lds"]["uniform"]
