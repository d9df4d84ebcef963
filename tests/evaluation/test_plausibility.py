"""Plausibility and complexity on hand-computed examples, and evidence words mapped to real tokens."""

import math

import numpy as np
import pytest

from attnlens.evaluation.cases import load_cases
from attnlens.evaluation.faithfulness import user_indices
from attnlens.evaluation.metrics import METRICS, Metric, describe
from attnlens.evaluation.plausibility import (
    auprc,
    average_precision,
    complexity,
    contiguous_spans,
    distribution,
    entropy,
    evidence_mask,
    evidence_spans,
    evidence_tokens,
    gini,
    iou,
    iou_f1,
    plausibility,
    precision_recall_curve,
    token_f1,
    token_prf,
    top_k_tokens,
)
from attnlens.extraction import generate

# --------------------------------------------------------------------------- the registry


def test_every_metric_declares_range_and_direction():
    assert {"comprehensiveness", "sufficiency", "aopc_comprehensiveness_eraser", "aopc_sufficiency_eraser",
            "aopc_comprehensiveness_ferret", "aopc_sufficiency_ferret", "deletion_auc", "tau_loo",
            "token_f1", "iou_f1", "auprc", "entropy", "gini"} <= set(METRICS)  # fmt: skip
    for name, m in METRICS.items():
        assert isinstance(m, Metric) and m.name == name
        assert m.range[0] < m.range[1] and m.description
    assert METRICS["comprehensiveness"].higher_is_better and not METRICS["sufficiency"].higher_is_better
    assert METRICS["sufficiency"].label() == "sufficiency ↓ [-1, 1]"
    assert METRICS["entropy"].label() == "entropy ↓ [0, inf]"
    assert not METRICS["auprc"].in_range(1.5) and METRICS["tau_loo"].in_range(float("nan"))
    with pytest.raises(KeyError, match="known"):
        describe("accuracy")


# --------------------------------------------------------------------------- hard rationales


def test_token_f1_by_hand():
    assert token_prf({1, 2, 3, 4}, {3, 4, 5}) == pytest.approx((0.5, 2 / 3, 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3)))
    assert token_f1({1}, {1}) == 1.0
    assert token_f1({1}, {2}) == 0.0
    assert token_prf(set(), {2})[0] == 0.0
    assert math.isnan(token_f1({1}, set()))


def test_iou_f1_by_hand():
    assert iou({1, 2, 3}, {2, 3, 4}) == pytest.approx(0.5)
    gold = [{10, 11}, {20}]
    # {10, 11, 12}: IoU 2/3 with the first span -> hit; {30}: no hit. P = 1/2; R = 1/2 -> F1 = 1/2
    assert iou_f1([{10, 11, 12}, {30}], gold) == pytest.approx(0.5)
    # {10, 11, 12, 13}: IoU 1/2 exactly counts (>= 0.5); {20} hits the second: P = R = 1
    assert iou_f1([{10, 11, 12, 13}, {20}], gold) == pytest.approx(1.0)
    # IoU 2/5 < 0.5: no hit anywhere
    assert iou_f1([{10, 11, 12, 13, 14}], gold) == 0.0
    assert iou_f1([], gold) == 0.0 and math.isnan(iou_f1([{1}], []))
    assert contiguous_spans([7, 3, 4, 9, 8]) == [{3, 4}, {7, 8, 9}]


def test_top_k_tokens_breaks_ties_by_position():
    assert top_k_tokens([0.2, 0.9, 0.2, 0.5], [10, 11, 12, 13], 3) == {11, 13, 10}


# --------------------------------------------------------------------------- soft scores


def test_auprc_and_average_precision_by_hand():
    scores, truth = [0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0]
    precision, recall = precision_recall_curve(scores, truth)
    assert precision.tolist() == pytest.approx([1, 1, 0.5, 2 / 3, 0.5])
    assert recall.tolist() == pytest.approx([0, 0.5, 0.5, 1, 1])
    # trapezoid: 0.5 * (1 + 1) / 2 + 0 + 0.5 * (0.5 + 2/3) / 2 + 0
    assert auprc(scores, truth) == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    # step: 0.5 * 1 + 0.5 * 2/3
    assert average_precision(scores, truth) == pytest.approx(0.5 + 1 / 3)
    assert auprc([3, 2, 1, 0], [1, 1, 0, 0]) == pytest.approx(1.0)
    assert average_precision([3, 2, 1, 0], [1, 1, 0, 0]) == pytest.approx(1.0)
    assert math.isnan(auprc([1, 2], [0, 0]))


def test_tied_scores_share_one_threshold():
    # all tied: one point at (recall 1, precision 1/2); trapezoid from (0, 1): (1 + 0.5) / 2
    assert auprc([1, 1, 1, 1], [1, 0, 1, 0]) == pytest.approx(0.75)
    assert average_precision([1, 1, 1, 1], [1, 0, 1, 0]) == pytest.approx(0.5)


# --------------------------------------------------------------------------- complexity


def test_entropy_and_gini_by_hand():
    assert entropy([1, 1, 1, 1]) == pytest.approx(math.log(4))
    assert entropy([0, 5, 0, 0]) == pytest.approx(0.0)
    assert gini([1, 1, 1, 1]) == pytest.approx(0.0)
    assert gini([0, 5, 0, 0]) == pytest.approx(1 - 1 / 4)
    # p = (0.1, 0.2, 0.3, 0.4): G = 1 - 2/4 * (0.1*3.5 + 0.2*2.5 + 0.3*1.5 + 0.4*0.5) = 0.25
    assert gini([0.4, 0.1, 0.3, 0.2]) == pytest.approx(0.25)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    assert entropy([4, 1, 3, 2]) == pytest.approx(-(p * np.log(p)).sum())
    # signs do not matter: the distribution is |s| / sum |s|
    assert distribution([-1, 3]).tolist() == pytest.approx([0.25, 0.75])
    assert distribution([0, 0]).tolist() == [0.5, 0.5]
    assert complexity([1, 1]) == {"entropy": pytest.approx(math.log(2)), "gini": pytest.approx(0.0)}


# --------------------------------------------------------------------------- evidence -> tokens


@pytest.fixture(scope="module")
def france(smollm):
    case = next(c for c in load_cases() if c.id == "fact-simple-001")
    return case, generate(smollm, case.prompt, max_new_tokens=2)


def test_evidence_words_map_to_their_tokens(france):
    case, g = france
    assert case.evidence == ["capital", "France"]
    spans = evidence_spans(g, case.evidence)
    texts = [[g.tokens[i].text for i in sorted(s)] for s in spans]
    assert texts == [[" capital"], [" France"]]
    assert all(g.tokens[i].segment == "user" for s in spans for i in s)
    assert evidence_tokens(g, case.evidence) == spans[0] | spans[1]
    mask = evidence_mask(g, evidence_tokens(g, case.evidence))
    assert mask.sum() == 2 and len(mask) == len(user_indices(g))
    with pytest.raises(ValueError, match="not in the prompt"):
        evidence_tokens(g, ["Germany"])


def test_evidence_occurrences_and_partial_tokens(smollm):
    g = generate(smollm, "The secret code is 4729. What is the secret code?", max_new_tokens=2)
    both = evidence_spans(g, ["secret code"])
    assert len(both) == 2 and all(len(s) == 2 for s in both)
    assert len(evidence_spans(g, ["secret code"], occurrences="first")) == 1
    digits = evidence_tokens(g, ["4729"])
    assert "".join(g.tokens[i].text for i in sorted(digits)).strip() == "4729"
    part = evidence_tokens(g, ["ecre"])  # a substring inside a token selects that token
    assert sorted(g.tokens[i].text for i in part) == [" secret", " secret"]


def test_plausibility_of_an_importance_vector(france):
    case, g = france
    user = user_indices(g)
    evidence = evidence_tokens(g, case.evidence)
    perfect = [1.0 if i in evidence else 0.0 for i in user]
    got = plausibility(g, perfect, evidence)
    assert got["token_f1"] == 1.0 and got["iou_f1"] == 1.0 and got["auprc"] == pytest.approx(1.0)
    backwards = [0.0 if i in evidence else 1.0 for i in user]
    bad = plausibility(g, backwards, evidence)
    assert bad["token_f1"] == 0.0 and bad["iou_f1"] == 0.0 and bad["auprc"] < 0.6
    for name, value in {**got, **bad}.items():
        assert METRICS[name].in_range(value), name
