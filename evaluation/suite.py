"""The evaluation suite of one explanation: every explanation source scored on the same case.

`score_explanation(lm, explanation)` returns one JSON-able `CaseResult`: faithfulness of each
source under both ablations (one batched `faithfulness.compare` call per ablation, so every
source is judged on the same random permutations and leave-one-out drops), the scored cluster
against random token sets of its size, plausibility against the case's human evidence,
complexity, and the attention signature summary. Reports (`reports.report`) aggregate these.

Sources, each an importance vector over the user tokens (evaluation.importance):
  attnlens      the clusters as a ranking: in their order (by measured effect), words by score inside
  head_weights  the learned head weights alone (AT2-style word scores)
  context_cite  ContextCite with 32 random word ablations
  last_layer, mean, rollout, grad_x_input   the baselines of evaluation.importance
  loo, random   the leave-one-out and random-ranking columns every faithfulness report carries
Beside AOPC: LDS (ContextCite's linear datamodeling score: the Spearman correlation between a
source's predicted and the measured effects of `lds_ablations` fresh random word deletions) and
top-k drop (the fall when the source's top k tokens are deleted, k = the first cluster's tokens).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from attnlens.clustering import Clustering
from attnlens.evaluation import signatures
from attnlens.evaluation.faithfulness import ABLATIONS, compare, ranking, user_indices
from attnlens.evaluation.head_weights import AblationSample, lds, measure, random_masks
from attnlens.evaluation.importance import (
    context_cite,
    gradient_x_input,
    head_weight_importance,
    last_layer_attention,
    mean_attention,
    random_importance,
    ranked_cluster_importance,
    rollout_attention,
)
from attnlens.evaluation.plausibility import complexity, evidence_tokens, plausibility
from attnlens.extraction.loading import LoadedModel
from attnlens.extraction.record import AttentionRecord
from attnlens.extraction.words import user_words

VECTOR_SOURCES = ("attnlens", "head_weights", "context_cite", "last_layer", "mean", "rollout", "grad_x_input")
SOURCES = (*VECTOR_SOURCES, "loo", "random")
FAITHFULNESS = (
    "aopc_comprehensiveness_eraser", "aopc_sufficiency_eraser", "aopc_comprehensiveness_ferret",
    "aopc_sufficiency_ferret", "deletion_auc", "insertion_auc", "tau_loo",
)  # fmt: skip


@dataclass(frozen=True)
class SuiteConfig:
    ablations: tuple[str, ...] = ABLATIONS
    # Random rankings per case. Each draw adds about as many variants as one source; the random
    # column is a per-case mean that the report averages again over cases, so 3 draws keep its
    # interval over 40+ cases narrow while the whole suite stays within the 10-minute goal.
    random_draws: int = 3
    max_batch: int = 32
    reuse_prefix: bool = True  # False with max_batch=1: the unbatched reference (benchmarks)
    seed: int = 0
    context_cite_ablations: int = 32
    lds_ablations: int = 32  # fresh random word deletions the LDS is measured on (0: no LDS)

    def __post_init__(self) -> None:
        unknown = set(self.ablations) - set(ABLATIONS)
        if not self.ablations or unknown:
            raise ValueError(f"ablations must be a non-empty subset of {ABLATIONS}, got {self.ablations}")
        if self.random_draws < 1:
            raise ValueError("random_draws must be at least 1")


@dataclass
class CaseResult:
    key: str  # the explanation directory, relative to the run
    model: str
    id: str | None = None
    category: str = "unknown"
    subcategory: str = "unknown"
    correct: bool | None = None
    user_tokens: int = 0
    answer_tokens: int = 0
    answer_probability: float = math.nan
    faithfulness: dict = field(default_factory=dict)  # ablation -> source -> metric -> value
    curves: dict = field(default_factory=dict)  # ablation -> source -> deletion curve (f / f(x))
    insertion: dict = field(default_factory=dict)  # ablation -> source -> insertion curve (f / f(x))
    cluster: dict = field(default_factory=dict)  # ablation -> comprehensiveness, sufficiency, random_*
    plausibility: dict = field(default_factory=dict)  # source -> metric -> value (cases with evidence)
    complexity: dict = field(default_factory=dict)  # source -> entropy, gini
    signatures: dict = field(default_factory=dict)  # name -> mean over layers and heads
    head_signatures: dict = field(default_factory=dict)  # name -> [L][H]
    graph: dict = field(default_factory=dict)  # modularity, clusters, sink share
    grounding: list = field(default_factory=list)
    lds: dict = field(default_factory=dict)  # source -> LDS on fresh random word deletions (deletion)
    variants: dict = field(default_factory=dict)  # ablation -> distinct ablated inputs scored
    seconds: dict = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _finite(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def importance_vectors(
    lm: LoadedModel, record: AttentionRecord, clustering: Clustering, config: SuiteConfig = SuiteConfig(),
    seconds: dict | None = None,
) -> dict[str, np.ndarray]:
    """Float[U] per vector source; rollout is left out when the record has none (long inputs).
    `seconds`, when given, receives each source's own cost."""
    gen = record.generation
    vectors: dict[str, np.ndarray] = {}
    makers = {
        "head_weights": lambda: head_weight_importance(record),
        # ranks the words inside each cluster by the head-weight scores just computed
        "attnlens": lambda: ranked_cluster_importance(gen, clustering, vectors["head_weights"]),
        "context_cite": lambda: context_cite(
            lm, gen, ablations=config.context_cite_ablations, seed=config.seed, max_batch=config.max_batch
        ),
        "last_layer": lambda: last_layer_attention(record),
        "mean": lambda: mean_attention(record),
        "grad_x_input": lambda: gradient_x_input(lm, gen),
    }
    if "rollout" in record:
        makers["rollout"] = lambda: rollout_attention(record)
    for name, make in makers.items():
        started = time.perf_counter()
        vectors[name] = np.asarray(make(), dtype=float)
        if seconds is not None:
            seconds[name] = time.perf_counter() - started
    return vectors


def lds_scores(lm: LoadedModel, record: AttentionRecord, vectors: dict[str, np.ndarray], config: SuiteConfig) -> dict:
    """LDS of every source on `config.lds_ablations` fresh random word deletions (a seed no source saw)."""
    gen = record.generation
    words = user_words(gen)
    if config.lds_ablations <= 0 or len(words) < 2:
        return {}
    removed = random_masks(len(words), config.lds_ablations, np.random.default_rng([config.seed, 11]))
    sample = AblationSample("", words, np.zeros((len(words), 1, 1)), removed, measure(lm, gen, words, removed, max_batch=config.max_batch))
    position = {t: j for j, t in enumerate(user_indices(gen))}
    out = {}
    for name, v in vectors.items():
        per_word = np.array([sum(v[position[t]] for t in w.tokens) for w in words])
        out[name] = _finite(lds(sample, per_word))
    return out


def score_explanation(
    lm: LoadedModel, explanation, config: SuiteConfig = SuiteConfig(), evidence: list[str] | None = None,
    key: str = "", meta: dict | None = None,
) -> CaseResult:
    """Every suite of one saved explanation on its subject model `lm`."""
    return score_case(
        lm, explanation.record, explanation.clustering, 0, config, evidence, key=key, meta=meta,
    )  # fmt: skip


def score_case(
    lm: LoadedModel, record: AttentionRecord, clustering: Clustering, scored: int = 0,
    config: SuiteConfig = SuiteConfig(), evidence: list[str] | None = None, *, key: str = "", meta: dict | None = None,
) -> CaseResult:
    """Every suite of one case: `scored` is the cluster scored against random sets of its size."""
    meta = meta or {}
    gen = record.generation
    result = CaseResult(key=key, model=gen.model, **{k: meta[k] for k in ("id", "category", "subcategory", "correct") if k in meta})
    started = time.perf_counter()
    cost: dict[str, float] = {}
    vectors = importance_vectors(lm, record, clustering, config, cost)
    result.seconds["importance"] = time.perf_counter() - started
    result.seconds.update({f"source:{k}": v for k, v in cost.items()})
    clusters = clustering.clusters
    user = user_indices(gen)
    top = [clusters[scored].tokens] if scored < len(clusters) else []
    k = len(set(top[0]) & set(user)) if top else 0
    # top-k drop: each source's k highest-ranked user tokens, deleted (k = the first cluster's tokens)
    top_k = {name: ranking(v, user)[:k] for name, v in vectors.items()} if k else {}
    loo = None  # leave-one-out drops under the first ablation: the LOO importance vector
    for ablation in config.ablations:
        started = time.perf_counter()
        reports = compare(
            lm, gen, vectors, top + list(top_k.values()), ablation=ablation, seed=config.seed, random_draws=config.random_draws,
            cluster_baseline="top", max_batch=config.max_batch, reuse_prefix=config.reuse_prefix,
        )  # fmt: skip
        per_source: dict[str, dict] = {}
        curves: dict[str, list] = {}
        insertion: dict[str, list] = {}
        for name, report in reports.items():
            per_source[name] = {m: _finite(report.metrics()[m].value) for m in FAITHFULNESS}
            if name in top_k:
                per_source[name]["top_k_drop"] = _finite(report.clusters[1 + list(top_k).index(name)].comprehensiveness)
            curves[name] = [s / report.answer_probability for s in report.curve.scores]
            insertion[name] = [s / report.answer_probability for s in report.insertion.scores]
        any_report = next(iter(reports.values()))
        for column in ("loo", "random"):
            per_source[column] = {m: _finite(getattr(any_report.metrics()[m], column)) for m in FAITHFULNESS}
            for into, curve in ((curves, getattr(any_report, f"{column}_curve")), (insertion, getattr(any_report, f"{column}_insertion"))):
                if curve is not None:
                    into[column] = [s / any_report.answer_probability for s in curve.scores]
        result.faithfulness[ablation] = per_source
        result.curves[ablation] = curves
        result.insertion[ablation] = insertion
        if any_report.clusters:
            c = any_report.clusters[0]
            result.cluster[ablation] = {
                "tokens": len(c.tokens), "comprehensiveness": c.comprehensiveness, "sufficiency": c.sufficiency,
                "random_comprehensiveness": _finite(c.random_comprehensiveness),
                "random_sufficiency": _finite(c.random_sufficiency),
            }  # fmt: skip
        result.answer_probability = any_report.answer_probability
        result.user_tokens = len(any_report.user_tokens)
        result.answer_tokens = any_report.answer_tokens
        result.variants[ablation] = any_report.stats.variants
        result.seconds[ablation] = time.perf_counter() - started
        if loo is None:
            loo = np.asarray(any_report.loo)
    started = time.perf_counter()
    result.lds = lds_scores(lm, record, {**vectors, "loo": loo, "random": random_importance(gen, config.seed).numpy()}, config)
    result.seconds["lds"] = time.perf_counter() - started
    everything = {**vectors, "loo": loo, "random": random_importance(gen, config.seed).numpy()}
    for name, v in everything.items():
        result.complexity[name] = {k: _finite(x) for k, x in complexity(v).items()}
    marked = sorted(evidence_tokens(gen, evidence)) if evidence else []
    if marked:
        for name, v in everything.items():
            result.plausibility[name] = {k: _finite(x) for k, x in plausibility(gen, v, marked).items()}
    for name, value in profile(record, clustering).items():
        setattr(result, name, value)
    return result


def profile(record: AttentionRecord, clustering: Clustering) -> dict:
    """The model-only part of a case (no ablations): attention signatures, mean and per head,
    and the cluster graph's structure. Cheap, so findings compute it for every annotated case."""
    heads = signatures.head_signatures(record)
    clusters = clustering.clusters
    graph = clustering.graph
    return {
        "signatures": signatures.summary(heads),
        "head_signatures": {k: np.round(v, 5).tolist() for k, v in heads.items()},
        "graph": {
            "modularity": float(clustering.modularity), "clusters": len(clusters),
            "sink_share": float(graph.sink_share), "edges": int(graph.edge_count),
            "top_cluster_size": clusters[0].size if clusters else 0,
            "top_cluster_importance": clusters[0].importance if clusters else 0.0,
        },
    }  # fmt: skip
