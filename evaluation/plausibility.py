"""Plausibility (agreement with human evidence tokens) and complexity of importance vectors.

Evidence is a set of token indices (the prompt words a person would point to; data/cases.jsonl
gives them as exact substrings of the prompt, mapped to tokens by `evidence_tokens`). All
functions are plain numpy on small vectors; no sklearn.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from attnlens.extraction.record import Generation

# --------------------------------------------------------------------------- evidence -> tokens


def prompt_offset(generation: Generation) -> int:
    """Where the user's prompt starts inside Generation.text (after any chat-template prefix)."""
    at = generation.input_text.find(generation.prompt)
    if at < 0:
        raise ValueError("the prompt is not a substring of the model's input text (truncated?)")
    return at


def evidence_spans(generation: Generation, evidence: Sequence[str], *, occurrences: str = "all") -> list[set[int]]:
    """One token-index set per occurrence of each evidence string in the prompt.

    A user token belongs to a span when its character range overlaps the evidence's (a token
    " France" covers the evidence "France"). occurrences="first" keeps only each string's first
    occurrence. A string absent from the prompt raises ValueError.
    """
    if occurrences not in ("all", "first"):
        raise ValueError("occurrences must be 'all' or 'first'")
    base = prompt_offset(generation)
    user = [t for t in generation.tokens if t.segment == "user"]
    spans: list[set[int]] = []
    for item in evidence:
        if not item:
            raise ValueError("empty evidence string")
        starts, at = [], generation.prompt.find(item)
        while at >= 0:
            starts.append(at)
            if occurrences == "first":
                break
            at = generation.prompt.find(item, at + 1)
        if not starts:
            raise ValueError(f"evidence {item!r} is not in the prompt")
        for s in starts:
            lo, hi = base + s, base + s + len(item)
            span = {t.index for t in user if t.start < hi and t.end > lo}
            if span:
                spans.append(span)
    return spans


def evidence_tokens(generation: Generation, evidence: Sequence[str], *, occurrences: str = "all") -> set[int]:
    """The union of `evidence_spans`: every user token index covered by an evidence string."""
    out: set[int] = set()
    for span in evidence_spans(generation, evidence, occurrences=occurrences):
        out |= span
    return out


def evidence_mask(generation: Generation, evidence_indices: Iterable[int]) -> np.ndarray:
    """Bool[U]: the evidence as a mask over the user tokens (in token order)."""
    ev = set(evidence_indices)
    return np.array([t.index in ev for t in generation.tokens if t.segment == "user"], dtype=bool)


# --------------------------------------------------------------------------- hard rationales


def top_k_tokens(importance: Sequence[float], user: Sequence[int], k: int) -> set[int]:
    """The k most important user token indices (ties: earlier token first)."""
    order = np.argsort(-np.asarray(importance, dtype=float), kind="stable")[: max(0, k)]
    return {int(user[i]) for i in order}


def contiguous_spans(indices: Iterable[int]) -> list[set[int]]:
    """Split token indices into runs of consecutive indices: [3, 4, 7] -> [{3, 4}, {7}]."""
    spans: list[set[int]] = []
    for i in sorted(set(indices)):
        if spans and i - 1 in spans[-1]:
            spans[-1].add(i)
        else:
            spans.append({i})
    return spans


def token_prf(predicted: Iterable[int], evidence: Iterable[int]) -> tuple[float, float, float]:
    """(precision, recall, F1) of predicted token indices against evidence token indices.

    Empty predicted: precision 0; empty evidence: recall nan (nothing to recover), F1 nan.
    """
    p, e = set(predicted), set(evidence)
    hit = len(p & e)
    precision = hit / len(p) if p else 0.0
    if not e:
        return precision, math.nan, math.nan
    recall = hit / len(e)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def token_f1(predicted: Iterable[int], evidence: Iterable[int]) -> float:
    return token_prf(predicted, evidence)[2]


def iou(a: Iterable[int], b: Iterable[int]) -> float:
    a, b = set(a), set(b)
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def iou_f1(predicted_spans: Sequence[Iterable[int]], evidence_spans: Sequence[Iterable[int]], threshold: float = 0.5) -> float:
    """ERASER's IOU F1 for one instance.

    A predicted span is a hit when its best IoU with any evidence span is >= threshold
    (precision = hits / predicted spans); an evidence span is recovered when some predicted span
    reaches the threshold with it (recall = recovered / evidence spans).
    """
    pred = [set(s) for s in predicted_spans if set(s)]
    gold = [set(s) for s in evidence_spans if set(s)]
    if not gold:
        return math.nan
    if not pred:
        return 0.0
    hits = sum(1 for p in pred if max(iou(p, g) for g in gold) >= threshold)
    recovered = sum(1 for g in gold if max(iou(p, g) for p in pred) >= threshold)
    precision, recall = hits / len(pred), recovered / len(gold)
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


# --------------------------------------------------------------------------- soft scores


def precision_recall_curve(scores: Sequence[float], truth: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) at every distinct score threshold, highest first, with (1, 0) prepended.

    The same points as sklearn.metrics.precision_recall_curve (ties share one threshold).
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(truth, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError("scores and truth must be 1-D and of equal length")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each distinct score
    tps = np.cumsum(y)[last].astype(float)
    fps = (last + 1) - tps
    precision = tps / (tps + fps)
    recall = tps / tps[-1] if tps[-1] > 0 else np.full_like(tps, math.nan)
    return np.r_[1.0, precision], np.r_[0.0, recall]


def auprc(scores: Sequence[float], truth: Sequence[bool]) -> float:
    """Trapezoid area under the precision-recall curve (ERASER's auc(recall, precision)); nan without positives."""
    if not np.any(np.asarray(truth, dtype=bool)):
        return math.nan
    precision, recall = precision_recall_curve(scores, truth)
    return float(np.sum((recall[1:] - recall[:-1]) * (precision[1:] + precision[:-1]) / 2))


def average_precision(scores: Sequence[float], truth: Sequence[bool]) -> float:
    """sum_k (R_k - R_k-1) P_k, as sklearn's average_precision_score; nan without positives."""
    if not np.any(np.asarray(truth, dtype=bool)):
        return math.nan
    precision, recall = precision_recall_curve(scores, truth)
    return float(np.sum((recall[1:] - recall[:-1]) * precision[1:]))


# --------------------------------------------------------------------------- complexity


def distribution(importance: Sequence[float]) -> np.ndarray:
    """p_i = |s_i| / sum_j |s_j| over the given (user) tokens; uniform when every score is 0."""
    a = np.abs(np.asarray(importance, dtype=float))
    if a.ndim != 1 or not len(a):
        raise ValueError("importance must be a non-empty 1-D vector")
    total = a.sum()
    return a / total if total > 0 else np.full(len(a), 1.0 / len(a))


def entropy(importance: Sequence[float]) -> float:
    """Shannon entropy (nats) of `distribution(importance)`: 0 (one token) .. log U (uniform).

    EvalxNLP's Complexity divides this by the sequence length as well and pads explanations of a
    batch with zeros; we do neither, so the number is the entropy itself.
    """
    p = distribution(importance)
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def gini(importance: Sequence[float]) -> float:
    """Gini index of `distribution(importance)`: 0 (uniform) .. 1 - 1/U (one token).

    G = 1 - 2 sum_k p_(k) (U - k + 0.5) / U with p sorted ascending, k = 1..U (Hurley & Rickard;
    Chalasani et al. 2020). EvalxNLP's Sparseness indexes k from 0 (weights U + 0.5 .. 1.5, which
    shifts every value by -2/U) and zero-pads; we do neither.
    """
    p = np.sort(distribution(importance))
    U = len(p)
    k = np.arange(1, U + 1)
    return float(1 - 2 * np.sum(p * (U - k + 0.5)) / U)


def complexity(importance: Sequence[float]) -> dict[str, float]:
    return {"entropy": entropy(importance), "gini": gini(importance)}


def plausibility(
    generation: Generation,
    importance: Sequence[float],
    evidence_indices: Iterable[int],
    *,
    k: int | None = None,
    predicted_spans: Sequence[Iterable[int]] | None = None,
    gold_spans: Sequence[Iterable[int]] | None = None,
) -> dict[str, float]:
    """token_precision/recall/f1 of the top-k user tokens (k = |evidence| by default), iou_f1,
    auprc and average_precision of the importance scores against the evidence.

    predicted_spans defaults to the contiguous runs of the top-k tokens; gold_spans to the
    contiguous runs of the evidence (pass evidence_spans(...) to keep one span per evidence string).
    """
    user = [t.index for t in generation.tokens if t.segment == "user"]
    scores = np.asarray(importance, dtype=float)
    if len(scores) == len(generation.tokens):
        scores = scores[user]
    if len(scores) != len(user):
        raise ValueError(f"importance has {len(scores)} entries; expected {len(user)} (one per user token)")
    evidence = set(evidence_indices) & set(user)
    k = len(evidence) if k is None else k
    top = top_k_tokens(scores, user, k)
    precision, recall, f1 = token_prf(top, evidence)
    truth = evidence_mask(generation, evidence)
    return {
        "token_precision": precision,
        "token_recall": recall,
        "token_f1": f1,
        "iou_f1": iou_f1(
            predicted_spans if predicted_spans is not None else contiguous_spans(top),
            gold_spans if gold_spans is not None else contiguous_spans(evidence),
        ),
        "auprc": auprc(scores, truth),
        "average_precision": average_precision(scores, truth),
    }
