"""The explanation is about the user's words and its first cluster is the one the answer needs most:
the planted case, the segment rule on a chat model and a base model, the ranking, determinism."""

import pytest

from attnlens.extraction.words import user_words
from attnlens.pipeline.explainer import Explainer

pytestmark = pytest.mark.slow

PLANTED = "The secret code is 4729. Ignore the weather, which is sunny and warm today. What is the secret code?"


@pytest.fixture(scope="module")
def smollm_explainer():
    return Explainer("smollm2-135m", backend=None, max_llm_clusters=0)


def assert_only_user_words(explanation):
    gen = explanation.generation
    words = user_words(gen)
    in_words = {t for w in words for t in w.tokens}
    owner = {t: c.id for c in explanation.clustering.clusters for t in c.tokens}
    assert set(owner) == in_words  # every word in one cluster, nothing else in any
    assert all(gen.tokens[t].segment == "user" for t in owner)  # no template, BOS/sink or answer token
    assert all(len({owner[t] for t in w.tokens}) == 1 for w in words)  # a word's pieces stay together


def test_the_deciding_word_is_in_the_first_cluster(smollm_explainer):
    explanation = smollm_explainer.explain(PLANTED, max_new_tokens=16)
    assert "4729" in explanation.generation.answer
    first = explanation.clustering.clusters[0]
    assert "4729" in first.words and "weather" not in first.words
    assert explanation.clustering.info["scores"].startswith("learned head weights")
    effects = [c.comprehensiveness for c in explanation.faithfulness.clusters]
    assert effects[0] == max(effects)  # cluster 0: the largest measured effect
    assert effects == sorted(effects, reverse=True)
    top = explanation.faithfulness.clusters[0]
    assert top.comprehensiveness > top.random_comprehensiveness + top.random_comprehensiveness_sd
    scores = explanation.to_dict()["scores"]
    assert scores["cluster_id"] == 0 and scores["comprehensiveness"] == top.comprehensiveness
    assert scores["random_draws"] == 8
    assert_only_user_words(explanation)


def test_same_prompt_same_explanation(smollm_explainer):
    first = smollm_explainer.explain("What is the capital of Japan?", max_new_tokens=8)
    again = smollm_explainer.explain("What is the capital of Japan?", max_new_tokens=8)
    assert [c.tokens for c in first.clustering.clusters] == [c.tokens for c in again.clustering.clusters]
    assert [c.comprehensiveness for c in first.faithfulness.clusters] == pytest.approx(
        [c.comprehensiveness for c in again.faithfulness.clusters], abs=1e-6
    )


def test_base_model_clusters_the_whole_prompt_but_not_its_bos():
    explainer = Explainer("gemma3-270m", backend=None, max_llm_clusters=0)
    explanation = explainer.explain("The capital of France is", max_new_tokens=4)
    gen = explanation.generation
    assert not gen.params["chat_template"] and gen.tokens[0].segment == "template"  # BOS
    assert [w.text for w in user_words(gen)] == ["The", "capital", "of", "France", "is"]
    assert_only_user_words(explanation)


def test_a_model_without_learned_weights_falls_back_with_a_warning(smollm, tmp_path):
    """The same model from a folder has another checksum: the shipped weights do not apply to it."""
    from attnlens.clustering import cluster
    from attnlens.extraction import capture, generate, load_model

    folder = tmp_path / "my-model"
    folder.mkdir()
    for f in smollm.spec.path.iterdir():
        if f.name != "attnlens-model.json":
            (folder / f.name).symlink_to(f)
    lm = load_model(str(folder))
    record = capture(lm, generate(lm, "What is the capital of Japan?", max_new_tokens=4))
    with pytest.warns(UserWarning, match="no learned head weights for my-model"):
        fallback = cluster(record)
    assert fallback.info["scores"].startswith("no learned weights") and fallback.info["head_weights"] is None
    learned = cluster(capture(smollm, generate(smollm, "What is the capital of Japan?", max_new_tokens=4)))
    assert learned.info["head_weights"]["model"] == "smollm2-135m"
