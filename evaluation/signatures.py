"""Attention signatures: how a model's heads attend, per layer and head, from a captured record.

Every function returns Float[L H] arrays (one value per layer and head) so profiles can be
averaged over cases, compared across models and task categories, and drawn as layer x head maps.

  entropy       mean over query rows of the row's entropy (nats); low = focused
  distance      mean over query rows of sum_j p_ij |i - j| (tokens); low = local
  topk_mass     mean over query rows of the mass in the row's top-k keys (concentration)
  gini          mean over the answer's query rows of the Gini index of the row (concentration)
  sink          mean over query rows of the mass on token 0
  prev          mean over query rows of the mass on the previous token
  induction     mean attention from a repeated token to the token after its first occurrence,
                on a random token sequence repeated twice (Olsson et al. 2022); one probe per model
  share_<type>  mean over the answer's query rows of the mass on user tokens of that type:
                number, punctuation, instruction (clustering.stats.INSTRUCTION_WORDS), entity (a
                capitalised word that does not start a sentence)

The first five come straight from the capture (`extraction.record.ARRAYS`, over every query
row); gini and the type shares read the answer's rows (`record.answer_rows()`), so they need an
answer; induction runs the model once on its probe.
"""

from __future__ import annotations

import numpy as np
import torch

from attnlens.clustering.stats import token_type
from attnlens.extraction.attention import CaptureConfig, capture_ids
from attnlens.extraction.loading import LoadedModel
from attnlens.extraction.record import AttentionRecord, Generation

CAPTURED = {"entropy": "head_entropy", "distance": "head_distance", "topk_mass": "head_topk_mass",
            "sink": "head_sink", "prev": "head_prev"}  # fmt: skip
TOKEN_TYPES = ("number", "punctuation", "instruction", "entity")
SIGNATURES = (*CAPTURED, "gini", *(f"share_{t}" for t in TOKEN_TYPES))


def row_gini(rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Float[...]: the Gini index of every attention row over its causal keys 0..position.

    G = 1 - 2 sum_k p_(k) (m - k + 0.5) / m with p sorted ascending over the row's m = position + 1
    keys (the same formula as evaluation.plausibility.gini, vectorised; keys after the query are
    outside the row, not zeros of it).
    """
    n = rows.shape[-1]
    m = (positions + 1).to(rows.dtype)  # [R]
    inside = torch.arange(n)[None, :] <= positions[:, None]  # [R n]
    p = torch.where(inside, rows, torch.full_like(rows, float("inf"))).sort(-1).values  # outside keys sort last
    p = torch.where(torch.isinf(p), torch.zeros_like(p), p)
    p = p / p.sum(-1, keepdim=True).clamp_min(1e-30)
    k = torch.arange(1, n + 1, dtype=rows.dtype)
    weights = (m[:, None] - k[None, :] + 0.5).clamp_min(0)  # keys past m have p = 0 anyway
    return 1 - 2 * (p * weights).sum(-1) / m


def token_types(generation: Generation) -> dict[str, list[int]]:
    """User token indices by type; an entity is a capitalised word that does not open a sentence."""
    out: dict[str, list[int]] = {t: [] for t in TOKEN_TYPES}
    previous = "."  # the first user word opens a sentence
    for tok in generation.tokens:
        if tok.segment != "user":
            continue
        kind = token_type(tok.text)
        if kind == "capitalised":
            if not previous.endswith((".", "?", "!", ":")):
                out["entity"].append(tok.index)
        elif kind in out:
            out[kind].append(tok.index)
        if "\n" in tok.text:
            previous = "."
        elif tok.text.strip():
            previous = tok.text.strip()
    return out


def head_signatures(record: AttentionRecord) -> dict[str, np.ndarray]:
    """Float[L H] per signature name (SIGNATURES; induction is per model: `induction_scores`)."""
    out = {name: record[array].float().numpy() for name, array in CAPTURED.items() if array in record}
    gen = record.generation
    if gen.answer_start >= len(gen.tokens) or "rows" not in record:
        return out  # encoders and answerless records: no answer rows
    rows = record.answer_rows().float()  # [L H A n]
    queries = torch.tensor([t - 1 for t in gen.answer_indices])
    out["gini"] = row_gini(rows, queries).mean(-1).numpy()
    for kind, indices in token_types(gen).items():
        share = rows[..., indices].sum(-1).mean(-1) if indices else torch.zeros(rows.shape[:2])
        out[f"share_{kind}"] = share.numpy()
    return out


def induction_scores(lm: LoadedModel, length: int = 48, seed: int = 0) -> np.ndarray:
    """Float[L H]: attention from each token of the second copy of a random sequence to the token
    that followed its first copy (position i -> i - length + 1), averaged over the second copy.

    Random ids are drawn from the ordinary vocabulary (special tokens excluded) with a fixed seed,
    so a head scores high only if it copies by content, not by meaning. Encoders (bidirectional)
    get the same probe: a BERT head can look ahead, so a high score there means something else.
    """
    tokenizer = lm.tokenizer
    special = set(tokenizer.all_special_ids)
    vocab = [i for i in range(min(len(tokenizer), 32000)) if i not in special]
    rng = np.random.default_rng(seed)
    first = [int(i) for i in rng.choice(vocab, size=length, replace=False)]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    ids = bos + first + first
    start = len(bos) + length  # first position of the second copy
    queries = list(range(start, len(ids)))
    [(arrays, _)], _ = capture_ids(lm.model, lm.architecture, [ids], [queries], CaptureConfig(rows=tuple(queries)))
    rows = arrays["rows"].float()  # [L H R n]
    targets = torch.tensor([q - length + 1 for q in queries])
    picked = rows.gather(-1, targets.view(1, 1, -1, 1).expand(*rows.shape[:2], -1, 1))[..., 0]
    return picked.mean(-1).numpy()


def summary(signatures: dict[str, np.ndarray]) -> dict[str, float]:
    """One number per signature: the mean over layers and heads."""
    return {name: float(np.mean(values)) for name, values in signatures.items()}
