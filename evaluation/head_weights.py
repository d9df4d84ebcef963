"""Learning the head weights of clustering.scores (AT2-style), and judging them on held-back cases.

For each training case: generate the model's answer, capture the answer's attention rows, and
measure `ablations` random deletions, each dropping every user word with probability 1/2 (effect
= change in the answer's mean log-probability, measured by score_inputs). Scores are linear in
the weights: the predicted effect of deleting the words R is -sum_{w in R} sum_{l,h} theta_lh
X[w,l,h], so theta is a ridge regression of the effects on the per-head feature sums, after
centring and scaling each case (a case's offset and scale say nothing about which heads matter).
The ridge strength is chosen by grouped cross-validation over training cases on the linear
datamodeling score (LDS, ContextCite's definition: the Spearman correlation between predicted
and measured effects on random ablations). The figures `train_scorer` reports are on held-back
cases, with fresh ablations.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from attnlens.clustering.scores import HeadWeights, head_features
from attnlens.evaluation.cases import Case
from attnlens.evaluation.faithfulness import score_inputs
from attnlens.extraction import CaptureConfig, capture, generate
from attnlens.extraction.loading import LoadedModel
from attnlens.extraction.words import Word, user_words

ALPHAS: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


def split_cases(cases: Sequence[Case], held_out: float = 0.5, seed: int = 0) -> tuple[list[Case], list[Case]]:
    """(train, held-back), by case id: a case's side depends only on its id and the seed, never on
    which other cases are present, so a grown dataset keeps every old case on its side."""

    def side(case: Case) -> float:
        digest = hashlib.sha256(f"{seed}:{case.id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    train = [c for c in cases if side(c) >= held_out]
    test = [c for c in cases if side(c) < held_out]
    return train, test


@dataclass
class AblationSample:
    """One case's measured ablations and the head features they are explained by."""

    case_id: str
    words: list[Word]
    features: np.ndarray  # Float[W L H]
    removed: np.ndarray  # Bool[K W]: the words each ablation deleted
    effects: np.ndarray  # Float[K]: mean log-probability of the answer after the deletion, minus before


def random_masks(n_words: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Bool[count W]: each word deleted with probability 1/2; never none, never all (when W > 1)."""
    masks = np.zeros((count, n_words), dtype=bool)
    for k in range(count):
        while True:
            mask = rng.random(n_words) < 0.5
            if n_words == 1 or 0 < mask.sum() < n_words:
                break
        masks[k] = mask
    return masks


def measure(
    lm: LoadedModel, generation, words: list[Word], removed: np.ndarray, *, max_batch: int = 32
) -> np.ndarray:
    """Float[K]: the effect of each deletion (rows of `removed`) on the answer's mean log-probability."""
    variants = [()] + [tuple(t for w, drop in zip(words, row) if drop for t in w.tokens) for row in removed]
    mean_logprob = score_inputs(lm, generation, variants, max_batch=max_batch).mean(-1).numpy()
    return mean_logprob[1:] - mean_logprob[0]


def collect(
    lm: LoadedModel, case: Case, *, ablations: int = 32, seed: int = 0, max_new_tokens: int = 32
) -> AblationSample | None:
    """Generate, capture and ablate one case; None when there is nothing to learn from (no answer,
    fewer than two words)."""
    generation = generate(lm, case.prompt, max_new_tokens=max_new_tokens)
    words = user_words(generation)
    if not generation.answer.strip() or len(words) < 2:
        return None
    record = capture(lm, generation, CaptureConfig(rows="answer", rollout_max_tokens=0))
    digest = hashlib.sha256(f"{seed}:{case.id}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    removed = random_masks(len(words), ablations, rng)
    effects = measure(lm, generation, words, removed)
    return AblationSample(case.id, words, head_features(record, words), removed, effects)


def predicted_effects(sample: AblationSample, scores: np.ndarray) -> np.ndarray:
    """Float[K]: the linear surrogate's effect of each ablation: minus the deleted words' scores."""
    return -(sample.removed.astype(float) @ scores)


def lds(sample: AblationSample, scores: np.ndarray) -> float:
    """Spearman correlation of predicted and measured effects (NaN when either is constant)."""
    predicted = predicted_effects(sample, scores)
    if np.ptp(predicted) == 0 or np.ptp(sample.effects) == 0:
        return float("nan")
    return float(spearmanr(predicted, sample.effects).statistic)


def _design(samples: Sequence[AblationSample]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-case centred and scaled rows: X Float[sum K, L*H], y Float[sum K], group of each row."""
    xs, ys, groups = [], [], []
    for g, s in enumerate(samples):
        z = -np.einsum("kw,wf->kf", s.removed.astype(float), s.features.reshape(len(s.words), -1))
        y = s.effects - s.effects.mean()
        scale = y.std() + 1e-3
        xs.append((z - z.mean(0)) / scale)
        ys.append(y / scale)
        groups.append(np.full(len(y), g))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(groups)


def fit(samples: Sequence[AblationSample], alpha: float) -> np.ndarray:
    """Float[L H]: the ridge weights at one strength (features standardised, weights mapped back)."""
    from sklearn.linear_model import Ridge

    X, y, _ = _design(samples)
    std = X.std(0)
    std[std == 0] = 1.0
    model = Ridge(alpha=alpha, fit_intercept=False).fit(X / std, y)
    return (model.coef_ / std).reshape(samples[0].features.shape[1:])


def mean_lds(samples: Sequence[AblationSample], scores_of: Callable[[AblationSample], np.ndarray]) -> float:
    values = [lds(s, scores_of(s)) for s in samples]
    return float(np.nanmean(values)) if not all(np.isnan(values)) else float("nan")


def choose_alpha(samples: Sequence[AblationSample], alphas: Sequence[float] = ALPHAS, folds: int = 5) -> dict[float, float]:
    """Mean validation LDS of each ridge strength, over `folds` folds of whole cases."""
    from sklearn.model_selection import GroupKFold

    index = np.arange(len(samples))
    result = {}
    for alpha in alphas:
        values = []
        for train, valid in GroupKFold(n_splits=min(folds, len(samples))).split(index, groups=index):
            theta = fit([samples[i] for i in train], alpha)
            values.append(mean_lds([samples[i] for i in valid], lambda s: np.einsum("wlh,lh->w", s.features, theta)))
        result[alpha] = float(np.nanmean(values))
    return result


def uniform_scores(sample: AblationSample) -> np.ndarray:
    """The default without learned weights: every head weighted equally."""
    return sample.features.mean(axis=(1, 2))


def last_layer_scores(sample: AblationSample) -> np.ndarray:
    """The last layer's head mean: the attention baseline most tools show."""
    return sample.features[:, -1].mean(axis=1)


def train_scorer(
    lm: LoadedModel,
    cases: Sequence[Case],
    *,
    ablations: int = 32,
    held_out: float = 0.5,
    train_cases: int | None = None,
    held_out_cases: int | None = 100,
    seed: int = 0,
    max_new_tokens: int = 32,
    progress: Callable[[str, int, int], None] | None = None,
) -> HeadWeights:
    """Learn the model's head weights on the training split (its first `train_cases`, all by default);
    report LDS on the first `held_out_cases` of the held-back split, with fresh ablations."""
    if lm.spec is None:
        raise ValueError("train_scorer needs a model loaded by name or folder (its checksum versions the weights)")
    started = time.perf_counter()
    train, test = split_cases(cases, held_out, seed)
    train = train[:train_cases] if train_cases is not None else train
    test = test[:held_out_cases] if held_out_cases is not None else test
    step = progress or (lambda stage, done, total: None)
    samples: dict[str, list[AblationSample]] = {"train": [], "held_out": []}
    skipped = 0
    for split, chosen, split_seed in (("train", train, seed), ("held_out", test, seed + 1)):
        for i, case in enumerate(chosen):
            step(split, i, len(chosen))
            sample = collect(lm, case, ablations=ablations, seed=split_seed, max_new_tokens=max_new_tokens)
            if sample is None:
                skipped += 1
            else:
                samples[split].append(sample)
        step(split, len(chosen), len(chosen))
    if len(samples["train"]) < 2:
        raise ValueError(f"too few usable training cases ({len(samples['train'])}) to learn head weights")
    cv = choose_alpha(samples["train"])
    alpha = max(cv, key=lambda a: (np.nan_to_num(cv[a], nan=-np.inf), -a))
    theta = fit(samples["train"], alpha)
    held = samples["held_out"]
    figures = {
        "learned": mean_lds(held, lambda s: np.einsum("wlh,lh->w", s.features, theta)),
        "uniform": mean_lds(held, uniform_scores),
        "last_layer": mean_lds(held, last_layer_scores),
    }
    trained = {
        "method": "ridge on random word deletions (AT2-style), per-case centred and scaled",
        "target": "change in the answer's mean log-probability",
        "split": {"held_out": held_out, "seed": seed, "by": "case id (sha256 of seed:id)"},
        "cases": {"train": len(samples["train"]), "held_out": len(held), "skipped": skipped},
        "ablations_per_case": ablations,
        "max_new_tokens": max_new_tokens,
        "alpha": alpha,
        "cv_lds": {str(a): v for a, v in cv.items()},
        "held_out_lds": figures,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return HeadWeights(lm.name, lm.spec.checksum(), np.round(theta, 6).tolist(), trained)
