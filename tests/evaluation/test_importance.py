"""Importance vectors from every explanation source, on the real SmolLM2 and its captured attention."""

import numpy as np
import pytest
import torch

from attnlens.evaluation.faithfulness import leave_one_out, score_inputs, user_indices
from attnlens.evaluation.importance import (
    SOURCES,
    cluster_importance,
    gradient_x_input,
    importance,
    last_layer_attention,
    mean_attention,
    random_importance,
    rollout_attention,
)
from attnlens.extraction import CaptureConfig, capture, generate
from tests.evaluation.conftest import PLANTED as PROMPT


@pytest.fixture(scope="module")
def case(smollm):
    g = generate(smollm, PROMPT, max_new_tokens=16)
    assert "4729" in g.answer
    return g, capture(smollm, g, CaptureConfig())


def test_attention_sources_read_the_answer_rows(case):
    g, record = case
    user = user_indices(g)
    rows = record["rows"]  # [L H R n], R = the answer's query rows answer_start-1 .. n-2
    assert record["row_positions"].tolist() == list(range(g.answer_start - 1, len(g.tokens) - 1))
    last = last_layer_attention(record)
    mean = mean_attention(record)
    assert last.shape == mean.shape == (len(user),)
    assert torch.allclose(last, rows[-1].mean((0, 1))[user], atol=1e-6)
    assert torch.allclose(mean, rows.mean((0, 1, 2))[user], atol=1e-6)
    assert (last >= 0).all() and (mean >= 0).all()
    assert mean.sum() < 1  # the rest of the mass is on the template and the answer so far
    roll = rollout_attention(record)
    answer_queries = [t - 1 for t in g.answer_indices]
    assert torch.allclose(roll, record["rollout"][answer_queries].mean(0)[user])
    assert roll.shape == (len(user),) and (roll >= 0).all()


def test_rollout_missing_is_said(smollm, case):
    g, _ = case
    record = capture(smollm, g, CaptureConfig(rollout_max_tokens=8))
    with pytest.raises(KeyError, match="rollout"):
        rollout_attention(record)


def test_gradient_x_input_is_the_directional_derivative(smollm, case):
    """(grad . e_i) is d/de log p(answer | e_i scaled by 1 + eps) at eps = 0: check by central differences."""
    g, _ = case
    gxi = gradient_x_input(smollm, g)
    user = user_indices(g)
    assert gxi.shape == (len(user),)
    n, a0 = len(g.tokens), g.answer_start
    ids = torch.tensor([g.token_ids])
    target = ids[0, a0:]
    with torch.no_grad():
        base = smollm.model.get_input_embeddings()(ids[:, : n - 1])

    def logprob(embeds):
        with torch.inference_mode():
            logits = smollm.model(inputs_embeds=embeds, use_cache=False, logits_to_keep=n - a0).logits.double()[0]
        return (logits.gather(-1, target[:, None])[:, 0] - torch.logsumexp(logits, -1)).sum().item()

    biggest = int(gxi.abs().argmax())
    for j in {biggest, 0}:
        eps = 1e-2
        up, down = base.clone(), base.clone()
        up[0, user[j]] *= 1 + eps
        down[0, user[j]] *= 1 - eps
        numeric = (logprob(up) - logprob(down)) / (2 * eps)
        assert numeric == pytest.approx(gxi[j].item(), rel=0.1, abs=0.02), j
    l2 = gradient_x_input(smollm, g, reduce="l2")
    assert (l2 >= 0).all() and (l2 >= gxi.abs() / np.sqrt(base.shape[-1]) - 1e-6).all()


def test_leave_one_out_is_the_drop_of_each_singleton(smollm, case):
    g, _ = case
    user = user_indices(g)
    loo = leave_one_out(smollm, g, ablation="knockout")
    f = score_inputs(smollm, g, [(), (user[5],)], ablation="knockout", max_batch=1, reuse_prefix=False).mean(-1).exp()
    assert loo.shape == (len(user),)
    assert loo[5].item() == pytest.approx((f[0] - f[1]).item(), abs=1e-4)
    assert torch.equal(importance("loo", lm=smollm, generation=g, ablation="knockout"), loo)


def test_random_is_seeded():
    from attnlens.extraction.record import Generation, Token

    tokens = [Token(i, i, "x", "prompt", "user", i, i + 1) for i in range(6)]
    g = Generation("m", "xxxxxx", "xxxxxx", "", tokens, 6)
    assert torch.equal(random_importance(g, 3), random_importance(g, 3))
    assert not torch.equal(random_importance(g, 3), random_importance(g, 4))
    assert random_importance(g).shape == (6,)


def test_cluster_importance_spreads_each_value_over_its_tokens():
    from attnlens.extraction.record import Generation, Token

    segments = ["template", "user", "user", "user", "user", "template", "answer"]
    tokens = [Token(i, i, "x", "answer" if s == "answer" else "prompt", s, i, i + 1) for i, s in enumerate(segments)]
    g = Generation("m", "xxxx", "xxxxxx", "x", tokens, 6)
    # user tokens are 1..4; cluster {0, 1} has a template token: its share is dropped, not moved
    got = cluster_importance(g, [[1, 2], [0, 1], [4]], [2.0, 1.0, 0.5])
    assert got.tolist() == pytest.approx([1.0 + 0.5, 1.0, 0.0, 0.5])
    # default values: len(clusters) .. 1, most important cluster first
    assert cluster_importance(g, [[3], [2, 4]]).tolist() == pytest.approx([0.0, 0.5, 2.0, 0.5])
    with pytest.raises(ValueError):
        cluster_importance(g, [[1]], [1.0, 2.0])


def test_dispatcher_knows_every_source(case):
    g, record = case
    assert set(SOURCES) == {"last_layer", "mean", "rollout", "loo", "grad_x_input", "random", "clusters"}
    assert torch.equal(importance("mean", record=record), mean_attention(record))
    assert torch.equal(importance("random", generation=g, seed=1), random_importance(g, 1))
    with pytest.raises(ValueError, match="unknown"):
        importance("saliency", generation=g)
