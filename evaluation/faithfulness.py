"""Faithfulness of token-level explanations on the subject model itself (decoder LLMs).

Target. f(x) = exp(mean_t log p(a_t | x, a_<t)): the geometric-mean probability of the model's
own answer tokens a_1..a_A, teacher-forced. The product of the token probabilities (the
probability of the whole answer) vanishes for long answers (32 tokens at 0.8 each is 8e-4), so
differences of it say more about answer length than about the explanation; the geometric mean
stays on ERASER's probability scale ([0, 1], differences in [-1, 1]) whatever the length. The
summed log-probability, sum_t log p(a_t | ...), is reported beside it.

Ablations only ever remove USER prompt tokens (Token.segment == "user"): the chat template and
the answer are always kept, since removing the template puts the model out of distribution.
  - "deletion": the removed tokens' characters are deleted from the prompt's text and the user's
    text is tokenised again (`TextDeletion`), as if the user had typed the prompt without them;
    template and answer keep their ids and the input has contiguous positions 0..m-1. Where the
    tokenizer does not reproduce the user's tokens from their text, the removed ids are dropped
    instead (ferret's remove_tokens), with a warning.
  - "knockout": nothing is removed from the input, but the answer's query positions
    (answer_start-1 .. n-1) may not attend to the removed positions in any layer or head: a
    4-D attention mask, which tests the attention claim itself. Positions before
    answer_start-1 still read the removed tokens (information can flow through them); only the
    answer's own rows are cut.

Every ablation of one case goes through `score_inputs`, which runs them as one left-padded batch
(chunked by `max_batch`) with explicit position ids and a 4-D boolean mask per row. With
`reuse_prefix` the keys/values of the positions every row of a chunk shares (the template before
the first removed token; for the knockout everything before answer_start-1) are computed once and
reused through the model's KV cache, which is exact: a causal model's states at a position depend
only on the tokens before it.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import numpy as np
import torch

from attnlens.errors import InputError
from attnlens.extraction.loading import LoadedModel
from attnlens.extraction.record import Generation
from attnlens.extraction.words import Word

Ablation = Literal["deletion", "knockout"]
ABLATIONS: tuple[str, ...] = ("deletion", "knockout")

ERASER_BINS: tuple[int, ...] = (1, 5, 10, 20, 50)  # percent of the user tokens
FERRET_BINS: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
CURVE_POINTS: tuple[int, ...] = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
DEFAULT_DRAWS = 10
DEFAULT_MAX_BATCH = 16


# --------------------------------------------------------------------------- tokens and sets


def user_indices(generation: Generation) -> list[int]:
    """Indices of the user's prompt tokens: the only tokens any ablation removes."""
    return [t.index for t in generation.tokens if t.segment == "user"]


def _check_generation(generation: Generation) -> None:
    if generation.answer_start >= len(generation.tokens):
        raise InputError("the generation has no answer tokens to score")
    if generation.answer_start < 1:
        raise InputError("the answer starts at token 0: there is no input to explain it")
    if not user_indices(generation):
        raise InputError("the generation has no user tokens (Token.segment == 'user') to ablate")


def _as_removed(generation: Generation, variant: Iterable[int], user: frozenset[int]) -> frozenset[int]:
    removed = frozenset(int(i) for i in variant)
    bad = sorted(removed - user)
    if bad:
        raise InputError(
            f"only user tokens may be removed; {bad[:8]} are template or answer tokens (or out of range)"
        )
    return removed


def kept_positions(generation: Generation, removed: Iterable[int]) -> list[int]:
    """Token indices of the deletion input for one variant: everything but `removed` (user tokens)."""
    removed = _as_removed(generation, removed, frozenset(user_indices(generation)))
    return [t.index for t in generation.tokens if t.index not in removed]


def as_user_vector(generation: Generation, importance) -> np.ndarray:
    """An importance vector over the user tokens (in token order), from one over them or over all tokens."""
    values = np.asarray(importance.detach().cpu() if isinstance(importance, torch.Tensor) else importance, dtype=float)
    user = user_indices(generation)
    if values.ndim != 1:
        raise ValueError(f"importance must be a 1-D vector, got shape {values.shape}")
    if len(values) == len(user):
        return values
    if len(values) == len(generation.tokens):
        return values[user]
    raise ValueError(
        f"importance has {len(values)} entries; expected one per user token ({len(user)}) or per token "
        f"({len(generation.tokens)})"
    )


def ranking(importance: np.ndarray, user: Sequence[int]) -> list[int]:
    """User token indices, most important first; ties keep token order (a stable sort)."""
    order = np.argsort(-np.asarray(importance, dtype=float), kind="stable")
    return [user[i] for i in order]


def eraser_sizes(n_user: int) -> list[int]:
    """k per ERASER bin {1, 5, 10, 20, 50}%: max(1, ceil(p U)). Repeats are kept (ERASER averages every bin)."""
    return [max(1, -(-p * n_user // 100)) for p in ERASER_BINS]


def ferret_sizes(n_user: int) -> list[int]:
    """k per ferret bin 10..100%: floor(p U) as ferret's int(); k = 0 and repeated top-k sets are skipped."""
    sizes: list[int] = []
    for p in FERRET_BINS:
        k = p * n_user // 100
        if k > 0 and (not sizes or sizes[-1] != k):
            sizes.append(k)
    return sizes


def curve_sizes(n_user: int) -> list[int]:
    """Tokens removed at each point of the deletion curve (0, 10, ..., 100%): floor(p U)."""
    return [p * n_user // 100 for p in CURVE_POINTS]


# --------------------------------------------------------------------------- deletion from the text

NEW = -2  # token_index of a position whose token came from tokenising the edited text again


@dataclass(frozen=True)
class TextDeletion:
    """Deleting user tokens from the prompt's text and tokenising the user's text again.

    The user's text (first to last user token) is cut out of the input: the tokens before it
    (template, BOS) and after it (template, answer) keep their ids; the removed tokens' characters
    are deleted from it, a space left doubled where a word went is dropped, and the rest is
    tokenised afresh, so the model sees the prompt a user would have typed without those words.
    `of` returns None where the untouched user text does not tokenise back to its own ids (a
    tokenizer that depends on context, e.g. one that adds a prefix space): deletion then drops the
    removed tokens' ids instead.
    """

    tokenizer: object
    head: tuple[int, ...]  # ids before the user's text
    tail: tuple[int, ...]  # ids after it, the answer included
    pieces: tuple[tuple[int, str], ...]  # (token index, its characters up to the next token's)

    @classmethod
    def of(cls, tokenizer, generation: Generation) -> "TextDeletion | None":
        user = user_indices(generation)
        if tokenizer is None or not user:
            return None
        first, last = user[0], user[-1]
        tokens, text = generation.tokens, generation.text
        ends = [tokens[i + 1].start for i in range(first, last)] + [tokens[last].end]
        pieces = tuple((i, text[tokens[i].start : max(tokens[i].start, end)]) for i, end in zip(range(first, last + 1), ends))
        ids = generation.token_ids
        if _tokenise(tokenizer, "".join(p for _, p in pieces)) != ids[first : last + 1]:
            return None
        return cls(tokenizer, tuple(ids[:first]), tuple(ids[last + 1 :]), pieces)

    def edited_text(self, removed: frozenset[int]) -> str:
        """The user's text without the removed tokens' characters."""
        out, gap = "", False
        for index, piece in self.pieces:
            if index in removed:
                gap = True
                continue
            if gap and (not out or out[-1].isspace()):
                piece = piece.lstrip()  # no doubled (or leading) space where a word went
            out, gap = out + piece, False
        return out.rstrip() if gap else out

    def ids(self, removed: frozenset[int]) -> list[int]:
        """Every input id of the variant: head, the edited user text tokenised, tail."""
        return [*self.head, *_tokenise(self.tokenizer, self.edited_text(removed)), *self.tail]


def _tokenise(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


# --------------------------------------------------------------------------- the scoring core


@dataclass
class ModelInputs:
    """One chunk of variants as the model sees it (left-padded after a shared prefix of `prefix` tokens)."""

    input_ids: torch.Tensor  # Long[B S]
    position_ids: torch.Tensor  # Long[B S]
    mask: torch.Tensor  # Bool[B 1 S P+S]: True = may attend (causal, padding, knockout)
    window_mask: torch.Tensor | None  # the same with the sliding window, for sliding layers
    token_index: torch.Tensor  # Long[B S]: original token index of each position; -1 padding, NEW re-tokenised
    prefix: int


def variant_rows(
    generation: Generation, variants: Sequence[Iterable[int]], ablation: Ablation = "deletion",
    deletion: TextDeletion | None = None,
) -> list[tuple[list[int], list[int]]]:
    """(ids, token_index) of each variant's input, the last answer token left out (nothing it
    predicts is scored). Deletion edits the text (`deletion`) or, without one, drops the removed
    tokens' ids; the knockout keeps every token (its mask does the removing)."""
    if ablation not in ABLATIONS:
        raise ValueError(f"ablation must be one of {ABLATIONS}, got {ablation!r}")
    n = len(generation.tokens)
    user = frozenset(user_indices(generation))
    ids = generation.token_ids
    rows = []
    for variant in variants:
        removed = _as_removed(generation, variant, user)
        if ablation == "deletion" and removed and deletion is not None:
            row = deletion.ids(removed)[:-1]
            head, tail = len(deletion.head), len(deletion.tail)
            index = list(range(head)) + [NEW] * (len(row) + 1 - head - tail) + list(range(n - tail, n - 1))
            rows.append((row, index))
        else:
            kept = [i for i in range(n - 1) if ablation == "knockout" or i not in removed]
            rows.append(([ids[i] for i in kept], kept))
    return rows


def build_inputs(
    generation: Generation,
    variants: Sequence[Iterable[int]],
    ablation: Ablation = "deletion",
    *,
    deletion: TextDeletion | None = None,
    prefix: int = 0,
    sliding_window: int | None = None,
    pad_id: int | None = None,
) -> ModelInputs:
    """Input ids, positions and 4-D masks of a batch of variants (sets of removed user-token indices).

    The last A input positions of every row are the queries answer_start-1 .. n-2 that predict the
    answer tokens. With `prefix` P the first P tokens (identical in every row) are left out: they
    come from the KV cache.
    """
    return _pad(generation, variant_rows(generation, variants, ablation, deletion), variants, ablation, prefix, sliding_window, pad_id)


def _pad(generation, rows, variants, ablation, prefix, sliding_window, pad_id) -> ModelInputs:
    a0 = generation.answer_start
    ids = generation.token_ids
    if prefix > a0 - 1:
        raise ValueError(f"prefix {prefix} would cover the answer's first query (token {a0 - 1})")
    for row, _ in rows:
        if row[:prefix] != ids[:prefix]:
            raise ValueError(f"prefix {prefix} covers a token this variant changes")
    B = len(rows)
    S = max(len(r) for r, _ in rows) - prefix
    P = prefix
    pad = ids[0] if pad_id is None else pad_id
    input_ids = torch.full((B, S), pad, dtype=torch.long)
    position_ids = torch.full((B, S), P, dtype=torch.long)
    token_index = torch.full((B, S), -1, dtype=torch.long)
    for b, (row, index) in enumerate(rows):
        suffix = row[P:]
        off = S - len(suffix)
        input_ids[b, off:] = torch.tensor(suffix)
        position_ids[b, off:] = torch.arange(P, P + len(suffix))
        token_index[b, off:] = torch.tensor(index[P:])
    # keys: the prefix (positions 0..P-1, always valid), then this chunk's inputs
    k_index = torch.cat([torch.arange(P).expand(B, P), token_index], 1)  # [B K]
    k_pos = torch.cat([torch.arange(P).expand(B, P), position_ids], 1)
    k_valid = k_index != -1
    q_valid = token_index != -1
    mask = k_valid[:, None, :] & (k_pos[:, None, :] <= position_ids[:, :, None])
    if ablation == "knockout":
        user = frozenset(user_indices(generation))
        removed_key = torch.zeros(B, P + S, dtype=torch.bool)
        for b, variant in enumerate(variants):
            removed = _as_removed(generation, variant, user)
            if removed:
                removed_key[b] = torch.isin(k_index[b], torch.tensor(sorted(removed)))
        answer_query = token_index >= a0 - 1  # the queries that predict (and are) answer tokens
        mask &= ~(answer_query[:, :, None] & removed_key[:, None, :])
    diagonal = torch.zeros(S, P + S, dtype=torch.bool)
    diagonal[torch.arange(S), P + torch.arange(S)] = True
    # a padding query attends to itself only, so no row of the softmax is empty (no NaN anywhere)
    mask = torch.where(q_valid[:, :, None], mask, diagonal)
    window_mask = None
    if sliding_window:
        inside = k_pos[:, None, :] > position_ids[:, :, None] - sliding_window
        window_mask = torch.where(q_valid[:, :, None], mask & inside, diagonal)[:, None]
    return ModelInputs(input_ids, position_ids, mask[:, None], window_mask, token_index, P)


def _attention_mask_argument(lm: LoadedModel, inputs: ModelInputs):
    """The 4-D mask(s) in the form the model's attention implementation wants.

    transformers 5 passes a 4-D mask through unchanged (masking_utils._preprocess_mask_arguments),
    so we build it ourselves: boolean for SDPA (and attnlens' capture), additive float for eager
    (eager adds the mask to the scores). Models mixing full and sliding-window layers take a dict
    keyed by layer type; a model whose every layer slides takes the windowed mask.
    """
    impl = lm.model.config._attn_implementation
    if impl and "flash" in impl:
        raise InputError(f"custom 4-D masks are not supported by {impl!r}; load the model with sdpa")

    def fmt(m: torch.Tensor) -> torch.Tensor:
        if impl == "eager":
            dtype = lm.model.dtype
            return torch.zeros(m.shape, dtype=dtype).masked_fill_(~m, torch.finfo(dtype).min)
        return m

    arch = lm.architecture
    if not arch.sliding_layers:
        return fmt(inputs.mask)
    if inputs.window_mask is None:
        raise ValueError("a sliding-window model needs the window mask")
    if len(arch.sliding_layers) == arch.layers:
        return fmt(inputs.window_mask)
    text = lm.model.config.get_text_config() if hasattr(lm.model.config, "get_text_config") else lm.model.config
    types = set(getattr(text, "layer_types", None) or ())
    if not types <= {"full_attention", "sliding_attention"}:
        raise InputError(f"layer types {sorted(types)} are not supported by the ablation masks")
    return {"full_attention": fmt(inputs.mask), "sliding_attention": fmt(inputs.window_mask)}


def _prefix_cache(lm: LoadedModel, generation: Generation, length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Keys and values of the first `length` tokens, every layer: Float[1 KV length D] each."""
    from transformers import DynamicCache

    window = lm.architecture.sliding_window
    inputs = build_inputs(generation, [()], "deletion", sliding_window=window)
    cache = DynamicCache()  # plain full layers: the sliding window is in our mask, never in the cache
    lm.model(
        input_ids=inputs.input_ids[:, :length],
        position_ids=inputs.position_ids[:, :length],
        attention_mask=_attention_mask_argument(lm, _truncate(inputs, length)),
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    return [(layer.keys, layer.values) for layer in cache.layers]


def _truncate(inputs: ModelInputs, length: int) -> ModelInputs:
    w = None if inputs.window_mask is None else inputs.window_mask[:, :, :length, :length]
    return ModelInputs(
        inputs.input_ids[:, :length], inputs.position_ids[:, :length], inputs.mask[:, :, :length, :length], w,
        inputs.token_index[:, :length], 0,
    )


@dataclass
class ScoreStats:
    """What one `score_inputs` call did: for benchmarks and reports."""

    variants: int = 0  # distinct variants scored
    forwards: int = 0  # model calls (chunks, plus the shared-prefix pass)
    rows: int = 0  # batch rows run
    tokens: int = 0  # input positions run, padding included
    seconds: float = 0.0


def score_inputs(
    lm: LoadedModel,
    generation: Generation,
    variants: Sequence[Iterable[int]],
    *,
    ablation: Ablation = "deletion",
    max_batch: int = DEFAULT_MAX_BATCH,
    reuse_prefix: bool = True,
    retokenise: bool = True,
    stats: ScoreStats | None = None,
) -> torch.Tensor:
    """Float[V A]: log p(a_t | variant, a_<t) of every answer token, for every variant.

    A variant is the set of removed USER token indices (() is the unablated input). Duplicate
    variants are scored once. Deletion edits the prompt's text and tokenises it again
    (`TextDeletion`); `retokenise=False`, or a tokenizer that does not reproduce the user's tokens
    (a warning), drops the removed tokens' ids instead. `max_batch=1, reuse_prefix=False` is the
    plain reference: one full forward per variant.
    """
    _check_generation(generation)
    if max_batch < 1:
        raise ValueError("max_batch must be at least 1")
    started = time.perf_counter()
    user = frozenset(user_indices(generation))
    sets = [_as_removed(generation, v, user) for v in variants]
    unique = list(dict.fromkeys(sets))
    n, a0 = len(generation.tokens), generation.answer_start
    A = n - a0
    target = torch.tensor(generation.token_ids[a0:])
    window = lm.architecture.sliding_window
    deletion = None
    if ablation == "deletion" and retokenise and any(unique):
        deletion = TextDeletion.of(lm.tokenizer, generation)
        if deletion is None and lm.tokenizer is not None:  # a tokenizer-less test model has no text to edit
            warnings.warn(
                "the user's text does not tokenise back to its own tokens: deletion drops the removed "
                "tokens' ids instead of editing the text",
                stacklevel=2,
            )
    rows = variant_rows(generation, unique, ablation, deletion)
    ids = generation.token_ids

    def shared(row: list[int]) -> int:  # leading tokens this variant shares with the full input
        same = next((i for i, (a, b) in enumerate(zip(row, ids)) if a != b), min(len(row), len(ids)))
        return min(same, a0 - 1)

    if reuse_prefix:
        order = sorted(range(len(unique)), key=lambda i: (-shared(rows[i][0]), len(rows[i][0])))
    else:
        order = list(range(len(unique)))
    chunks = [order[i : i + max_batch] for i in range(0, len(order), max_batch)]
    out = torch.empty(len(unique), A)
    st = stats if stats is not None else ScoreStats()
    model = lm.model
    with torch.inference_mode():
        prefix_kv = None
        if reuse_prefix:
            longest = max(min(shared(rows[i][0]) for i in chunk) for chunk in chunks)
            if longest > 0:
                prefix_kv = _prefix_cache(lm, generation, longest)
                st.forwards += 1
                st.rows += 1
                st.tokens += longest
        for chunk in chunks:
            P = min(shared(rows[i][0]) for i in chunk) if prefix_kv is not None else 0
            inputs = _pad(generation, [rows[i] for i in chunk], [unique[i] for i in chunk], ablation, P, window, None)
            B = len(chunk)
            kwargs = {}
            if P:
                from transformers import DynamicCache

                kwargs["past_key_values"] = DynamicCache(
                    ddp_cache_data=[
                        (k[:, :, :P].expand(B, -1, -1, -1), v[:, :, :P].expand(B, -1, -1, -1)) for k, v in prefix_kv
                    ]
                )
                kwargs["use_cache"] = True
            else:
                kwargs["use_cache"] = False
            logits = model(
                input_ids=inputs.input_ids,
                position_ids=inputs.position_ids,
                attention_mask=_attention_mask_argument(lm, inputs),
                logits_to_keep=A,
                **kwargs,
            ).logits.float()
            picked = logits.gather(-1, target.expand(B, A)[..., None])[..., 0]
            out[chunk] = picked - torch.logsumexp(logits, -1)
            st.forwards += 1
            st.rows += B
            st.tokens += inputs.input_ids.numel()
    st.variants += len(unique)
    st.seconds += time.perf_counter() - started
    index = {s: i for i, s in enumerate(unique)}
    return out[[index[s] for s in sets]]


def answer_probability(logprobs: torch.Tensor) -> torch.Tensor:
    """f = exp(mean_t log p(a_t | ...)) per row of Float[V A] (the geometric-mean token probability)."""
    return logprobs.mean(-1).exp()


def answer_logprob(logprobs: torch.Tensor) -> torch.Tensor:
    """sum_t log p(a_t | ...) per row of Float[V A]."""
    return logprobs.sum(-1)


# --------------------------------------------------------------------------- pure metric arithmetic


def aopc(f_full: float, f_ablated: Sequence[float]) -> float:
    """Area over the perturbation curve: mean over bins of f(x) - f(x ablated at that bin)."""
    if not len(f_ablated):
        return math.nan
    return float(np.mean([f_full - v for v in f_ablated]))


def curve_auc(scores: Sequence[float], fractions: Sequence[float] | None = None, full: float | None = None) -> float:
    """Trapezoid area of scores / f(x) over the fraction in [0, 1]; f(x) is `full`, or scores[0]
    (the deletion curve starts at the full input; the insertion curve ends there)."""
    scores = np.asarray(scores, dtype=float)
    x = np.asarray(fractions if fractions is not None else np.linspace(0, 1, len(scores)), dtype=float)
    full = scores[0] if full is None else full
    if full <= 0:
        return math.nan
    y = scores / full
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """scipy's Kendall tau-b; nan when either vector is constant."""
    from scipy.stats import kendalltau

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tau = kendalltau(np.asarray(a, dtype=float), np.asarray(b, dtype=float)).statistic
    return float(tau)


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Scored:
    """A number with its baselines: the same number for random token sets of equal size, and for LOO importance."""

    value: float
    random: float | None = None
    loo: float | None = None


@dataclass(frozen=True)
class ClusterFaithfulness:
    tokens: tuple[int, ...]  # the user tokens ablated (non-user indices of the cluster are never removed)
    comprehensiveness: float
    sufficiency: float
    random_comprehensiveness: float | None = None  # mean over the draws, random user sets of the same size
    random_sufficiency: float | None = None
    ignored: tuple[int, ...] = ()  # indices of the cluster that are not user tokens
    random_comprehensiveness_sd: float | None = None  # spread (standard deviation) over the draws
    words: int = 0  # user words ablated (verify_clusters; 0 where the sets are token sets)


@dataclass(frozen=True)
class Curve:
    """f as a ranking's top tokens are deleted (deletion: from the full input) or restored
    (insertion: from the input with none of the user's tokens)."""

    fractions: tuple[float, ...]
    tokens: tuple[int, ...]  # top tokens deleted (or restored) at each point
    scores: tuple[float, ...]  # f at each point
    auc: float  # curve_auc: the area of f / f(x)


@dataclass
class FaithfulnessReport:
    ablation: str
    answer_probability: float  # f(x)
    answer_logprob: float  # sum_t log p(a_t | x, a_<t)
    answer_tokens: int
    user_tokens: tuple[int, ...]
    clusters: list[ClusterFaithfulness] = field(default_factory=list)
    aopc: dict[str, Scored] = field(default_factory=dict)
    deletion_auc: Scored | None = None
    insertion_auc: Scored | None = None
    tau_loo: Scored | None = None
    curve: Curve | None = None  # deletion
    random_curve: Curve | None = None  # mean over the draws
    loo_curve: Curve | None = None
    insertion: Curve | None = None
    random_insertion: Curve | None = None
    loo_insertion: Curve | None = None
    loo: tuple[float, ...] | None = None  # f(x) - f(x without token i), per user token
    random_draws: int = 0
    seed: int = 0
    stats: ScoreStats = field(default_factory=ScoreStats)
    seconds: float = 0.0

    def metrics(self) -> dict[str, Scored]:
        """Every reported number under its evaluation.metrics.METRICS name."""
        out = {
            "answer_probability": Scored(self.answer_probability),
            "answer_logprob": Scored(self.answer_logprob),
        }
        out.update(self.aopc)
        if self.deletion_auc is not None:
            out["deletion_auc"] = self.deletion_auc
        if self.insertion_auc is not None:
            out["insertion_auc"] = self.insertion_auc
        if self.tau_loo is not None:
            out["tau_loo"] = self.tau_loo
        if self.clusters:
            top = self.clusters[0]
            out["comprehensiveness"] = Scored(top.comprehensiveness, top.random_comprehensiveness)
            out["sufficiency"] = Scored(top.sufficiency, top.random_sufficiency)
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FaithfulnessReport":
        def curve(d: dict | None) -> Curve | None:
            return None if d is None else Curve(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

        def scored(d: dict | None) -> Scored | None:
            return None if d is None else Scored(**d)

        return cls(
            **{k: data[k] for k in ("ablation", "answer_probability", "answer_logprob", "answer_tokens", "random_draws", "seed", "seconds")},
            user_tokens=tuple(data["user_tokens"]),
            clusters=[
                ClusterFaithfulness(**{**c, "tokens": tuple(c["tokens"]), "ignored": tuple(c["ignored"])})
                for c in data["clusters"]
            ],
            aopc={k: Scored(**v) for k, v in data["aopc"].items()},
            **{k: scored(data.get(k)) for k in ("deletion_auc", "insertion_auc", "tau_loo")},
            **{k: curve(data.get(k)) for k in ("curve", "random_curve", "loo_curve", "insertion", "random_insertion", "loo_insertion")},
            loo=None if data["loo"] is None else tuple(data["loo"]),
            stats=ScoreStats(**data["stats"]),
        )


# --------------------------------------------------------------------------- the entry point


class _Plan:
    """Collects every variant a report needs, so they all run in one batched pass."""

    def __init__(self, user: list[int]):
        self.user = user
        self.all = frozenset(user)
        self.sets: dict[frozenset[int], None] = {frozenset(): None}

    def remove(self, tokens: Iterable[int]) -> frozenset[int]:
        s = frozenset(tokens)
        self.sets.setdefault(s, None)
        return s

    def keep(self, tokens: Iterable[int]) -> frozenset[int]:
        return self.remove(self.all - frozenset(tokens))


def _ranking_sets(plan: _Plan, order: list[int], comp_sizes, suff_sizes) -> None:
    for k in comp_sizes:
        plan.remove(order[:k])
    for k in suff_sizes:
        plan.keep(order[:k])


def _ranking_numbers(order: list[int], f, f0: float, user: frozenset[int], suff_order: list[int] | None = None):
    """AOPC numbers, the deletion curve and the insertion curve of one ranking; f maps a removed
    set to the answer score. The insertion curve keeps the top k of `suff_order` (the same keep-sets
    as sufficiency, so it costs no variant more)."""
    U = len(order)
    suff_order = order if suff_order is None else suff_order

    def comp(k):
        return f(frozenset(order[:k]))

    def suff(k):
        return f(user - frozenset(suff_order[:k]))

    numbers = {
        "aopc_comprehensiveness_eraser": aopc(f0, [comp(k) for k in eraser_sizes(U)]),
        "aopc_sufficiency_eraser": aopc(f0, [suff(k) for k in eraser_sizes(U)]),
        "aopc_comprehensiveness_ferret": aopc(f0, [comp(k) for k in ferret_sizes(U)]),
        "aopc_sufficiency_ferret": aopc(f0, [suff(k) for k in ferret_sizes(U)]),
    }
    deletion = [comp(k) for k in curve_sizes(U)]
    insertion = [suff(k) for k in curve_sizes(U)]
    return numbers, deletion, insertion


def _curve(scores: Sequence[float], U: int, f0: float | None = None) -> Curve:
    """The deletion curve (f0 None: it starts at f(x)) or the insertion curve (normalised by f0 = f(x))."""
    fractions = tuple(p / 100 for p in CURVE_POINTS)
    return Curve(fractions, tuple(curve_sizes(U)), tuple(float(s) for s in scores), curve_auc(scores, fractions, f0))


def faithfulness(
    lm: LoadedModel,
    generation: Generation,
    importance: torch.Tensor | Sequence[float] | None = None,
    clusters: Sequence[Iterable[int]] | None = None,
    **options,
) -> FaithfulnessReport:
    """Faithfulness of an importance vector and/or clusters of tokens, with random and LOO baselines.

    importance: one value per user token (or per token; non-user entries are ignored). With it the
    report has the AOPC numbers (ERASER and ferret bins), the deletion curve and tau_loo.
    clusters: token-index sets, most important first; each gets comprehensiveness and sufficiency,
    and (cluster_baseline) the mean over `random_draws` random user-token sets of the same size.
    Options as `compare`, which this is with one source.
    """
    sources = {"importance": importance} if importance is not None else {}
    base, reports = _score(lm, generation, sources, clusters, **options)
    return reports["importance"] if reports else base


def compare(
    lm: LoadedModel,
    generation: Generation,
    sources: Mapping[str, torch.Tensor | Sequence[float]],
    clusters: Sequence[Iterable[int]] | None = None,
    **options,
) -> dict[str, FaithfulnessReport]:
    """One report per importance source, all scored in one batched pass on the same random
    permutations and leave-one-out drops (their random and LOO columns are therefore identical).

    Options: ablation ("deletion" | "knockout"), seed, random_draws, baselines (subset of
    ("random", "loo"): the random and LOO columns; tau_loo needs the LOO drops whatever this says),
    cluster_baseline ("all" | "top" | "none": which clusters get the random baseline of their
    size), max_batch, reuse_prefix (see `score_inputs`).
    """
    if not sources:
        raise ValueError("compare needs at least one importance source")
    return _score(lm, generation, sources, clusters, **options)[1]


def _score(
    lm: LoadedModel,
    generation: Generation,
    sources: Mapping[str, torch.Tensor | Sequence[float]],
    clusters: Sequence[Iterable[int]] | None = None,
    *,
    ablation: Ablation = "deletion",
    seed: int = 0,
    random_draws: int = DEFAULT_DRAWS,
    baselines: Sequence[str] = ("random", "loo"),
    cluster_baseline: Literal["all", "top", "none"] = "all",
    max_batch: int = DEFAULT_MAX_BATCH,
    reuse_prefix: bool = True,
) -> tuple[FaithfulnessReport, dict[str, FaithfulnessReport]]:
    """The cluster-only report and one report per source. Every variant any of them needs is
    collected first and scored in one `score_inputs` call; only the LOO ranking's top-k sets, known
    after the LOO drops, need a second (small) call."""
    started = time.perf_counter()
    _check_generation(generation)
    if ablation not in ABLATIONS:
        raise ValueError(f"ablation must be one of {ABLATIONS}, got {ablation!r}")
    unknown = set(baselines) - {"random", "loo"}
    if unknown:
        raise ValueError(f"unknown baselines {sorted(unknown)}; known: random, loo")
    user = user_indices(generation)
    U = len(user)
    all_user = frozenset(user)
    plan = _Plan(user)
    values = {name: as_user_vector(generation, v) for name, v in sources.items()}
    want_random = "random" in baselines and random_draws > 0
    rng = np.random.default_rng(seed)
    perms = [list(np.asarray(user)[rng.permutation(U)]) for _ in range(random_draws)] if want_random else []
    perms = [[int(i) for i in p] for p in perms]

    # clusters
    cluster_sets = []
    for c in clusters or []:
        c = [int(i) for i in c]
        tokens = tuple(sorted(set(c) & all_user))
        cluster_sets.append((tokens, tuple(sorted(set(c) - all_user))))
        plan.remove(tokens)
        plan.keep(tokens)
    baseline_sizes = set()
    if cluster_sets and want_random and cluster_baseline != "none":
        chosen = cluster_sets[:1] if cluster_baseline == "top" else cluster_sets
        baseline_sizes = {len(t) for t, _ in chosen}
        for p in perms:
            for k in baseline_sizes:  # comp: remove p[:k]; suff: keep p[U-k:], i.e. remove p[:U-k]
                plan.remove(p[:k])
                plan.remove(p[: U - k])

    # importance rankings (the insertion curve's keep-sets are ferret's sufficiency sets and the empty input)
    comp_sizes = sorted(set(eraser_sizes(U)) | set(ferret_sizes(U)) | set(curve_sizes(U)))
    suff_sizes = sorted(set(eraser_sizes(U)) | set(ferret_sizes(U)) | set(curve_sizes(U)))
    orders = {name: ranking(v, user) for name, v in values.items()}
    for order in orders.values():
        _ranking_sets(plan, order, comp_sizes, suff_sizes)
    if values:
        for i in user:
            plan.remove([i])
        if want_random:
            for p in perms:  # random ranking p for comprehensiveness, reversed(p) for sufficiency
                _ranking_sets(plan, p, comp_sizes, [])
                _ranking_sets(plan, list(reversed(p)), [], suff_sizes)

    stats = ScoreStats()
    variants = list(plan.sets)
    logprobs = score_inputs(
        lm, generation, variants, ablation=ablation, max_batch=max_batch, reuse_prefix=reuse_prefix, stats=stats
    )
    table = dict(zip(variants, answer_probability(logprobs).tolist()))
    table_lp = dict(zip(variants, answer_logprob(logprobs).tolist()))

    def f(removed: frozenset[int]) -> float:
        return table[removed]

    f0 = f(frozenset())
    base = FaithfulnessReport(
        ablation=ablation, answer_probability=f0, answer_logprob=table_lp[frozenset()],
        answer_tokens=len(generation.tokens) - generation.answer_start, user_tokens=tuple(user),
        random_draws=len(perms), seed=seed, stats=stats,
    )  # fmt: skip

    for rank_, (tokens, ignored) in enumerate(cluster_sets):
        k = len(tokens)
        rc = rs = None
        if k in baseline_sizes and (cluster_baseline == "all" or rank_ == 0):
            rc = float(np.mean([f0 - f(frozenset(p[:k])) for p in perms]))
            rs = float(np.mean([f0 - f(frozenset(p[: U - k])) for p in perms]))
        base.clusters.append(
            ClusterFaithfulness(tokens, f0 - f(frozenset(tokens)), f0 - f(all_user - frozenset(tokens)), rc, rs, ignored)
        )
    if not values:
        base.seconds = time.perf_counter() - started
        return base, {}

    # the baselines every source is compared with: computed once
    loo = np.array([f0 - f(frozenset([i])) for i in user])
    base.loo = tuple(float(x) for x in loo)
    rnd_numbers = loo_numbers = {}
    rnd_curve = loo_curve = rnd_insertion = loo_insertion = None
    rnd_tau = None
    if want_random:
        per_draw = [_ranking_numbers(p, f, f0, all_user, list(reversed(p))) for p in perms]
        rnd_numbers = {name: float(np.mean([d[0][name] for d in per_draw])) for name in per_draw[0][0]}
        rnd_curve = _curve(np.mean([d[1] for d in per_draw], axis=0), U)
        rnd_insertion = _curve(np.mean([d[2] for d in per_draw], axis=0), U, f0)
        taus = []
        for p in perms:
            r = np.empty(U)
            r[[user.index(i) for i in p]] = np.arange(U, 0, -1)
            taus.append(kendall_tau(r, loo))
        rnd_tau = float(np.nanmean(taus)) if not all(math.isnan(t) for t in taus) else math.nan
    if "loo" in baselines:
        loo_order = ranking(loo, user)
        _ranking_sets(plan, loo_order, comp_sizes, suff_sizes)
        missing = [s for s in plan.sets if s not in table]
        if missing:  # the LOO ranking needs sets only known after the LOO pass
            extra = score_inputs(
                lm, generation, missing, ablation=ablation, max_batch=max_batch, reuse_prefix=reuse_prefix,
                stats=stats,
            )  # fmt: skip
            table.update(zip(missing, answer_probability(extra).tolist()))
        loo_numbers, loo_deletion, loo_raw_insertion = _ranking_numbers(loo_order, f, f0, all_user)
        loo_curve, loo_insertion = _curve(loo_deletion, U), _curve(loo_raw_insertion, U, f0)

    reports = {}
    for name, order in orders.items():
        numbers, deletion, insertion = _ranking_numbers(order, f, f0, all_user)
        report = replace(base, clusters=list(base.clusters))
        report.aopc = {k: Scored(v, rnd_numbers.get(k), loo_numbers.get(k)) for k, v in numbers.items()}
        report.curve, report.random_curve, report.loo_curve = _curve(deletion, U), rnd_curve, loo_curve
        report.insertion, report.random_insertion, report.loo_insertion = _curve(insertion, U, f0), rnd_insertion, loo_insertion
        report.deletion_auc = Scored(
            report.curve.auc, rnd_curve.auc if rnd_curve else None, loo_curve.auc if loo_curve else None
        )
        report.insertion_auc = Scored(
            report.insertion.auc, rnd_insertion.auc if rnd_insertion else None, loo_insertion.auc if loo_insertion else None
        )
        report.tau_loo = Scored(kendall_tau(values[name], loo), rnd_tau, 1.0)
        reports[name] = report
    seconds = time.perf_counter() - started
    for report in (base, *reports.values()):
        report.seconds = seconds
    return base, reports


def verify_clusters(
    lm: LoadedModel,
    generation: Generation,
    words: Sequence[Word],
    clusters: Sequence[Sequence[int]],
    *,
    random_draws: int = 8,
    seed: int = 0,
    ablation: Ablation = "deletion",
    max_batch: int = DEFAULT_MAX_BATCH,
) -> FaithfulnessReport:
    """Each cluster (a list of word indices) deleted from the prompt (comprehensiveness, beside the
    mean and spread over `random_draws` random sets of as many of the user's words) and kept alone
    (sufficiency): every variant in one batched `score_inputs` call. Clusters of one size share
    their random draws. 1 + 2 clusters + draws x distinct sizes variants."""
    started = time.perf_counter()
    _check_generation(generation)
    if random_draws < 1:
        raise ValueError("random_draws must be at least 1")
    W = len(words)
    user = frozenset(user_indices(generation))
    all_words = frozenset(t for w in words for t in w.tokens)

    def tokens_of(indices) -> frozenset[int]:
        return frozenset(t for i in indices for t in words[i].tokens)

    draws: dict[int, list[frozenset[int]]] = {}
    for size in sorted({len(c) for c in clusters}):
        rng = np.random.default_rng([seed, size])  # a size's draws do not depend on the other clusters
        draws[size] = [tokens_of(rng.choice(W, size, replace=False)) for _ in range(random_draws)]
    plan = _Plan(sorted(user))
    for c in clusters:
        plan.remove(tokens_of(c))
        plan.remove(all_words - tokens_of(c))
    for sets in draws.values():
        for removed in sets:
            plan.remove(removed)
    stats = ScoreStats()
    variants = list(plan.sets)
    logprobs = score_inputs(lm, generation, variants, ablation=ablation, max_batch=max_batch, stats=stats)
    f = dict(zip(variants, answer_probability(logprobs).tolist()))
    f0 = f[frozenset()]
    report = FaithfulnessReport(
        ablation=ablation, answer_probability=f0, answer_logprob=float(answer_logprob(logprobs[:1])[0]),  # the plan starts with the full input
        answer_tokens=len(generation.tokens) - generation.answer_start, user_tokens=tuple(sorted(user)),
        random_draws=random_draws, seed=seed, stats=stats,
    )  # fmt: skip
    for c in clusters:
        removed = tokens_of(c)
        comp = [f0 - f[r] for r in draws[len(c)]]
        report.clusters.append(
            ClusterFaithfulness(
                tokens=tuple(sorted(removed)), comprehensiveness=f0 - f[removed],
                sufficiency=f0 - f[all_words - removed], random_comprehensiveness=float(np.mean(comp)),
                random_comprehensiveness_sd=float(np.std(comp)),
                words=len(c),
            )
        )  # fmt: skip
    report.seconds = time.perf_counter() - started
    return report


def leave_one_out(
    lm: LoadedModel,
    generation: Generation,
    *,
    ablation: Ablation = "deletion",
    max_batch: int = DEFAULT_MAX_BATCH,
    reuse_prefix: bool = True,
) -> torch.Tensor:
    """Float[U]: f(x) - f(x without user token i), each user token removed alone (in token order)."""
    _check_generation(generation)
    variants = [()] + [(i,) for i in user_indices(generation)]
    f = answer_probability(
        score_inputs(lm, generation, variants, ablation=ablation, max_batch=max_batch, reuse_prefix=reuse_prefix)
    )
    return f[0] - f[1:]
