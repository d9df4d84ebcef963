"""Attention signatures: hand examples, and the real model's induction heads."""

import numpy as np
import pytest
import torch

from attnlens.evaluation import signatures
from attnlens.evaluation.plausibility import gini
from attnlens.extraction import CaptureConfig, capture, generate
from attnlens.extraction.record import Generation, Token


def test_row_gini_matches_the_scalar_gini_over_causal_keys():
    rows = torch.rand(4, 7)
    positions = torch.tensor([0, 2, 5, 6])
    got = signatures.row_gini(rows, positions)
    want = [gini(rows[i, : p + 1].numpy()) for i, p in enumerate(positions.tolist())]
    assert got.numpy() == pytest.approx(want, abs=1e-6)
    one_hot = torch.zeros(1, 5)
    one_hot[0, 2] = 1
    assert signatures.row_gini(one_hot, torch.tensor([4])).item() == pytest.approx(1 - 1 / 5)


def _generation(words: list[str]) -> Generation:
    tokens, offset = [], 0
    for i, w in enumerate(words):
        tokens.append(Token(i, i, w, "prompt", "template" if i == 0 else "user", offset, offset + len(w)))
        offset += len(w)
    return Generation("hand", "".join(words[1:]), "".join(words), "", tokens, len(words))


def test_token_types_by_hand():
    gen = _generation(["<s>", "Alice", " met", " Bob", " in", " Paris", ".", " What", " is", " 12", "?", "\n", "Then", " Rome"])
    types = signatures.token_types(gen)
    text = {k: [gen.tokens[i].text for i in v] for k, v in types.items()}
    # "Alice" opens the prompt and "Then" follows a newline: sentence starts, not entities
    assert text == {"number": [" 12"], "punctuation": [".", "?"], "instruction": [" What"], "entity": [" Bob", " Paris", " Rome"]}


@pytest.fixture(scope="module")
def record(smollm):
    gen = generate(smollm, "Alice lives in Paris. What is 12 x 7? Answer, please.", max_new_tokens=6)
    return capture(smollm, gen, CaptureConfig())


def test_head_signatures_shapes_and_ranges(record, smollm):
    sig = signatures.head_signatures(record)
    L, H = smollm.architecture.layers, smollm.architecture.heads
    assert set(sig) == set(signatures.SIGNATURES)
    assert all(v.shape == (L, H) for v in sig.values())
    for name in ("sink", "prev", "topk_mass", "gini", *(f"share_{t}" for t in signatures.TOKEN_TYPES)):
        assert (sig[name] >= -1e-6).all() and (sig[name] <= 1 + 1e-6).all(), name
    rows = record.answer_rows()
    shares = sum(sig[f"share_{t}"] for t in signatures.TOKEN_TYPES)
    answer_sink = rows[..., 0].mean(-1).numpy()
    assert (shares + answer_sink <= 1 + 1e-5).all()  # disjoint token sets of one distribution
    assert sig["entropy"].min() >= 0
    # the shares are the answer rows' mass on those tokens, recomputed here directly
    numbers = signatures.token_types(record.generation)["number"]
    assert sig["share_number"] == pytest.approx(rows[..., numbers].sum(-1).mean(-1).numpy(), abs=1e-5)
    summary = signatures.summary(sig)
    assert summary["sink"] == pytest.approx(float(sig["sink"].mean()))


def test_smollm_has_a_few_induction_heads(smollm):
    scores = signatures.induction_scores(smollm)
    assert scores.shape == (smollm.architecture.layers, smollm.architecture.heads)
    # a handful of heads copy by content (score > 0.5); most heads do not (mean well below)
    assert (scores > 0.5).sum() >= 2
    assert scores.mean() < 0.15
    assert np.array_equal(scores, signatures.induction_scores(smollm))  # seeded probe


def test_encoder_record_has_no_answer_signatures(minilm):
    gen = generate(minilm, "The Eiffel Tower is in Paris.")
    sig = signatures.head_signatures(capture(minilm, gen, CaptureConfig()))
    assert "entropy" in sig and "gini" not in sig
