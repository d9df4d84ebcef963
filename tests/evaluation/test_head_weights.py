"""Learning head weights: the split by case id, the ablations, the ridge fit on planted data, LDS, and
a real (small) training run on smollm2."""

import numpy as np
import pytest

from attnlens.clustering.scores import HeadWeights
from attnlens.evaluation.cases import load_cases
from attnlens.evaluation.head_weights import (
    AblationSample,
    collect,
    fit,
    lds,
    random_masks,
    split_cases,
    train_scorer,
)
from attnlens.extraction.words import Word


def test_the_split_is_by_case_id_and_stable():
    cases = load_cases()
    train, test = split_cases(cases)
    assert not {c.id for c in train} & {c.id for c in test} and len(train) + len(test) == len(cases)
    assert 200 < len(test) < 300  # about half
    fewer_train, fewer_test = split_cases(cases[::3])  # a case's side depends on its id alone
    assert {c.id for c in fewer_test} == {c.id for c in test} & {c.id for c in cases[::3]}
    assert split_cases(cases, seed=1)[1] != test


def test_random_masks_drop_about_half_and_never_none_or_all():
    masks = random_masks(10, 200, np.random.default_rng(0))
    assert masks.shape == (200, 10) and 0.4 < masks.mean() < 0.6
    assert (masks.sum(1) > 0).all() and (masks.sum(1) < 10).all()


def planted_samples(theta: np.ndarray, cases: int, seed: int = 0) -> list[AblationSample]:
    """Effects made by a known linear model of the features, plus noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(cases):
        n = int(rng.integers(4, 12))
        features = rng.random((n, *theta.shape)) * 0.2
        removed = random_masks(n, 32, rng)
        effects = -(removed @ np.einsum("wlh,lh->w", features, theta)) * rng.uniform(0.5, 2) + rng.normal(0, 0.02, 32)
        words = [Word(j, (j,), f"w{j}", j, j + 1) for j in range(n)]
        out.append(AblationSample(f"c-{i:03d}", words, features, removed, effects))
    return out


def test_ridge_recovers_planted_head_weights():
    theta = np.zeros((3, 4))
    theta[1, 2], theta[2, 0] = 1.0, 0.5  # two heads carry the effect
    learned = fit(planted_samples(theta, 60), alpha=1.0)
    # per-case scaling leaves the weights' scale free: compare directions
    cosine = (learned * theta).sum() / np.linalg.norm(learned) / np.linalg.norm(theta)
    assert cosine > 0.95
    held = planted_samples(theta, 20, seed=1)
    assert np.mean([lds(s, np.einsum("wlh,lh->w", s.features, learned)) for s in held]) > 0.8


def test_lds_by_hand():
    words = [Word(j, (j,), f"w{j}", j, j + 1) for j in range(3)]
    removed = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=bool)
    sample = AblationSample("c", words, np.zeros((3, 1, 1)), removed, np.array([-1.0, -0.1, -0.5, -1.2]))
    assert lds(sample, np.array([1.0, 0.1, 0.5])) == pytest.approx(1.0)  # same order as the effects
    assert lds(sample, np.array([-1.0, -0.1, -0.5])) == pytest.approx(-1.0)
    assert np.isnan(lds(sample, np.zeros(3)))  # a constant prediction has no rank correlation


@pytest.mark.slow
def test_a_small_real_training_run(smollm, tmp_path):
    cases = load_cases()
    progress = []
    weights = train_scorer(
        smollm, cases, ablations=8, train_cases=4, held_out_cases=2, max_new_tokens=4,
        progress=lambda stage, done, total: progress.append((stage, done, total)),
    )  # fmt: skip
    assert weights.model == "smollm2-135m" and weights.checksum == smollm.spec.checksum()
    assert np.asarray(weights.weights).shape == (30, 9)
    assert weights.trained["cases"] == {"train": 4, "held_out": 2, "skipped": 0}
    assert set(weights.trained["held_out_lds"]) == {"learned", "uniform", "last_layer"}
    assert progress[0] == ("train", 0, 4) and progress[-1] == ("held_out", 2, 2)
    assert HeadWeights.load(weights.save(tmp_path / "w.json")) == weights
    # reproducible: the same case and seed measure the same ablations
    train, _ = split_cases(cases)
    first, again = collect(smollm, train[0], ablations=8, max_new_tokens=4), collect(smollm, train[0], ablations=8, max_new_tokens=4)
    assert (first.removed == again.removed).all()
    np.testing.assert_allclose(first.effects, again.effects, atol=1e-5)
