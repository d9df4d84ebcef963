"""Importance vectors over the user tokens, from every explanation source attnlens compares.

Every function returns Float[U]: one value per user prompt token (Token.segment == "user"), in
token order (`faithfulness.user_indices`), higher = more important. Attention sources read an
AttentionRecord captured over prompt + answer (`extraction.capture(lm, generation,
CaptureConfig())`); the answer token at index t is produced by the query at t - 1, so "the
answer's rows" are the queries answer_start-1 .. n-2 (record.answer_rows()).

  last_layer   mean over heads and answer rows of the last layer's attention
  mean         mean over layers, heads and answer rows
  rollout      mean over the answer's query rows of record["rollout"] (Abnar & Zuidema 2020)
  loo          leave-one-out: f(x) - f(x without token i) (evaluation.faithfulness)
  grad_x_input gradient of the answer's summed log-probability w.r.t. the input embeddings, times
               the embeddings, summed over the hidden dimension (signed; reduce="l2" gives the
               unsigned L2 norm of the product instead)
  random       seeded uniform noise: the floor every other source must beat
  clusters     token-index sets with one value each, spread evenly over the cluster's tokens
  head_weights the learned head weights alone (clustering.scores): each token gets its word's score
  context_cite ContextCite (Cohen-Wang et al. 2024) over the user's words: a Lasso of the answer's
               mean log-probability on 32 random word-keep masks; each token gets its word's weight
  ranked_clusters  the attnlens clusters as a ranking: clusters in their order (measured effect),
               words by score inside a cluster

Raw attention values are not renormalised over the user tokens: only their order matters for
AOPC and tau, and complexity normalises them itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import torch

from attnlens.clustering import Clustering
from attnlens.clustering.scores import head_features, score_words
from attnlens.evaluation.faithfulness import Ablation, _check_generation, leave_one_out, score_inputs, user_indices
from attnlens.extraction.loading import LoadedModel
from attnlens.extraction.record import AttentionRecord, Generation
from attnlens.extraction.words import Word, user_words

SOURCES: tuple[str, ...] = ("last_layer", "mean", "rollout", "loo", "grad_x_input", "random", "clusters")


def _answer_queries(generation: Generation) -> list[int]:
    return [t - 1 for t in generation.answer_indices]


def _require_answer(generation: Generation) -> None:
    if generation.answer_start >= len(generation.tokens):
        raise ValueError("the generation has no answer: importance for an answer needs one")


def last_layer_attention(record: AttentionRecord) -> torch.Tensor:
    """Float[U]: last layer, mean over heads and the answer's query rows."""
    _require_answer(record.generation)
    rows = record.answer_rows()[-1]  # [H A n]
    return rows.mean((0, 1))[user_indices(record.generation)].float()


def mean_attention(record: AttentionRecord) -> torch.Tensor:
    """Float[U]: mean over layers, heads and the answer's query rows."""
    _require_answer(record.generation)
    return record.answer_rows().mean((0, 1, 2))[user_indices(record.generation)].float()


def rollout_attention(record: AttentionRecord) -> torch.Tensor:
    """Float[U]: rollout rows of the answer's query positions, averaged. KeyError when rollout was skipped."""
    _require_answer(record.generation)
    if "rollout" not in record:
        raise KeyError(f"this record has no rollout ({record.info.get('rollout', 'not captured')})")
    rows = record["rollout"][_answer_queries(record.generation)]
    return rows.mean(0)[user_indices(record.generation)].float()


def leave_one_out_importance(
    lm: LoadedModel, generation: Generation, *, ablation: Ablation = "deletion", max_batch: int = 16
) -> torch.Tensor:
    """Float[U]: the drop in f when each user token alone is ablated (one batched pass)."""
    return leave_one_out(lm, generation, ablation=ablation, max_batch=max_batch)


def gradient_x_input(
    lm: LoadedModel, generation: Generation, *, reduce: Literal["sum", "l2"] = "sum"
) -> torch.Tensor:
    """Float[U]: (d sum_t log p(a_t | x, a_<t) / d e_i) . e_i for every user token embedding e_i.

    Plain autograd on the input embeddings of the teacher-forced answer (one forward, one
    backward; no parameter gradients are kept). reduce="sum" is the signed dot product (Denil et
    al. 2014; Kindermans et al.), reduce="l2" the L2 norm of the elementwise product over the
    hidden dimension (unsigned, as several toolkits aggregate).
    """
    _check_generation(generation)
    if reduce not in ("sum", "l2"):
        raise ValueError(f"reduce must be 'sum' or 'l2', got {reduce!r}")
    model = lm.model
    n, a0 = len(generation.tokens), generation.answer_start
    ids = torch.tensor([generation.token_ids])
    with torch.no_grad():
        embeds = model.get_input_embeddings()(ids[:, : n - 1])
    embeds = embeds.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(inputs_embeds=embeds, use_cache=False, logits_to_keep=n - a0).logits.float()[0]
        target = ids[0, a0:]
        logprob = (logits.gather(-1, target[:, None])[:, 0] - torch.logsumexp(logits, -1)).sum()
        (grad,) = torch.autograd.grad(logprob, embeds)
    product = (grad * embeds.detach())[0].float()  # [n-1 d]
    scores = product.sum(-1) if reduce == "sum" else product.norm(dim=-1)
    return scores[user_indices(generation)]


def random_importance(generation: Generation, seed: int = 0) -> torch.Tensor:
    """Float[U]: seeded uniform noise in [0, 1)."""
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.random(len(user_indices(generation))), dtype=torch.float32)


def cluster_importance(
    generation: Generation, clusters: Sequence[Iterable[int]], values: Sequence[float] | None = None
) -> torch.Tensor:
    """Float[U]: each cluster's value spread evenly over its tokens (value / cluster size per token).

    The share of template or answer tokens in a cluster is dropped, not moved onto its user
    tokens; a token in several clusters sums its shares. values=None gives the first cluster the
    most weight: len(clusters), len(clusters) - 1, ..., 1.
    """
    clusters = [sorted({int(i) for i in c}) for c in clusters]
    if values is None:
        values = list(range(len(clusters), 0, -1))
    if len(values) != len(clusters):
        raise ValueError(f"{len(values)} values for {len(clusters)} clusters")
    user = user_indices(generation)
    position = {t: j for j, t in enumerate(user)}
    out = torch.zeros(len(user))
    for tokens, value in zip(clusters, values):
        if not tokens:
            continue
        share = float(value) / len(tokens)
        for t in tokens:
            if t in position:
                out[position[t]] += share
    return out


def word_vector(generation: Generation, words: Sequence[Word], values: Sequence[float]) -> np.ndarray:
    """Float[U]: each user token gets its word's value (0 for whitespace-only tokens)."""
    position = {t: j for j, t in enumerate(user_indices(generation))}
    out = np.zeros(len(position))
    for w, value in zip(words, values):
        for t in w.tokens:
            out[position[t]] = value
    return out


def head_weight_importance(record: AttentionRecord, use_learned: bool = True) -> np.ndarray:
    """Float[U]: the word scores of clustering.scores (learned head weights where the model has them)."""
    _require_answer(record.generation)
    words = user_words(record.generation)
    scores = score_words(record, words, head_features(record, words), use_learned=use_learned)
    return word_vector(record.generation, words, scores.values)


def context_cite(
    lm: LoadedModel, generation: Generation, *, ablations: int = 32, seed: int = 0, alpha: float = 0.01,
    max_batch: int = 32,
) -> np.ndarray:
    """Float[U]: ContextCite's surrogate weights over the user's words (each word kept with
    probability 1/2 in each of `ablations` masks; sklearn's Lasso, as the paper's default, on the
    answer's mean log-probability), each token given its word's weight. `ablations` forward rows."""
    from sklearn.linear_model import Lasso

    _require_answer(generation)
    words = user_words(generation)
    rng = np.random.default_rng([seed, 7])
    keep = rng.random((ablations, len(words))) < 0.5
    variants = [tuple(t for w, kept in zip(words, row) if not kept for t in w.tokens) for row in keep]
    target = score_inputs(lm, generation, variants, max_batch=max_batch).mean(-1).numpy()
    if len(words) == 0 or np.ptp(target) == 0:
        return word_vector(generation, words, np.zeros(len(words)))
    weights = Lasso(alpha=alpha).fit(keep.astype(float), target).coef_
    return word_vector(generation, words, weights)


def ranked_cluster_importance(generation: Generation, clustering: Clustering, scores: np.ndarray) -> np.ndarray:
    """Float[U]: cluster 0's words first, then cluster 1's, ...; inside a cluster by `scores`
    (Float[U], one value per user token such as head_weight_importance's; a word's is its first token's)."""
    words = user_words(generation)
    position = {t: j for j, t in enumerate(user_indices(generation))}
    values = np.zeros(len(words))
    count = len(clustering.clusters)
    for c, members in zip(clustering.clusters, clustering.word_members(words)):
        own = [scores[position[words[w].tokens[0]]] for w in members]
        order = np.argsort(np.argsort(own, kind="stable"), kind="stable")
        for w, rank in zip(members, order):
            values[w] = (count - c.id) + (rank + 1) / (len(members) + 1)  # in (count - id, count - id + 1)
    return word_vector(generation, words, values)


def importance(
    source: str,
    *,
    record: AttentionRecord | None = None,
    lm: LoadedModel | None = None,
    generation: Generation | None = None,
    seed: int = 0,
    clusters: Sequence[Iterable[int]] | None = None,
    values: Sequence[float] | None = None,
    ablation: Ablation = "deletion",
) -> torch.Tensor:
    """One entry point over SOURCES, for benchmarks that loop over them."""
    generation = generation if generation is not None else (record.generation if record is not None else None)
    if source in ("last_layer", "mean", "rollout"):
        if record is None:
            raise ValueError(f"source {source!r} needs an attention record")
        return {"last_layer": last_layer_attention, "mean": mean_attention, "rollout": rollout_attention}[source](record)
    if generation is None:
        raise ValueError(f"source {source!r} needs a generation (or a record)")
    if source == "loo":
        return leave_one_out_importance(lm, generation, ablation=ablation)
    if source == "grad_x_input":
        return gradient_x_input(lm, generation)
    if source == "random":
        return random_importance(generation, seed)
    if source == "clusters":
        if clusters is None:
            raise ValueError("source 'clusters' needs clusters")
        return cluster_importance(generation, clusters, values)
    raise ValueError(f"unknown importance source {source!r}; known: {', '.join(SOURCES)}")
