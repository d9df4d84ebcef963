"""Statistics for reports: bootstrap intervals, rank tests with effect sizes, multiple comparisons.

Every mean a report prints carries a percentile bootstrap interval (scipy.stats.bootstrap,
seeded). Two independent groups (correct vs incorrect answers, two models, one category vs the
rest) are compared with the two-sided Mann-Whitney U test and the rank-biserial correlation
r = 2 U / (n1 n2) - 1 (in [-1, 1]; > 0 when the first group tends to be larger). Two sources
scored on the same cases are paired: the Wilcoxon signed-rank test and the mean paired
difference with its bootstrap interval. A difference that a covariate (prompt length) may explain
is also estimated with the covariate held fixed (`adjusted_difference`: OLS, HC3 errors). p-values
of one family are corrected with Holm's step-down method (family-wise error) and
Benjamini-Hochberg (false discovery rate) both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

RESAMPLES = 2000
LEVEL = 0.95


def _finite(values: Sequence[float]) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return a[np.isfinite(a)]


@dataclass(frozen=True)
class Estimate:
    """A mean with its bootstrap interval over n finite values (nan when n = 0; the interval is
    the point itself when every value is equal or n = 1)."""

    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if self.n == 0:
            return "n/a"
        return f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def mean_ci(values: Sequence[float], *, seed: int = 0, level: float = LEVEL) -> Estimate:
    a = _finite(values)
    if len(a) == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    m = float(a.mean())
    if len(a) == 1 or np.all(a == a[0]):
        return Estimate(m, m, m, len(a))
    res = stats.bootstrap(
        (a,), np.mean, n_resamples=RESAMPLES, confidence_level=level, method="percentile",
        random_state=np.random.default_rng(seed),
    )  # fmt: skip
    return Estimate(m, float(res.confidence_interval.low), float(res.confidence_interval.high), len(a))


@dataclass(frozen=True)
class Comparison:
    """A two-group or paired test: statistic, p-value (raw and corrected) and effect size."""

    test: str
    n1: int
    n2: int
    statistic: float
    p: float
    effect: float  # rank-biserial r (Mann-Whitney) or mean paired difference (Wilcoxon)
    effect_name: str
    p_holm: float = math.nan
    p_bh: float = math.nan
    difference: Estimate | None = None  # paired: the mean difference with its interval

    def to_dict(self) -> dict:
        return asdict(self)


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Two-sided Mann-Whitney U of independent groups a and b, with the rank-biserial r of a over b."""
    x, y = _finite(a), _finite(b)
    if len(x) == 0 or len(y) == 0:
        return Comparison("mann-whitney", len(x), len(y), math.nan, math.nan, math.nan, "rank-biserial r")
    res = stats.mannwhitneyu(x, y, alternative="two-sided")
    r = 2 * float(res.statistic) / (len(x) * len(y)) - 1
    return Comparison("mann-whitney", len(x), len(y), float(res.statistic), float(res.pvalue), r, "rank-biserial r")


def paired(a: Sequence[float], b: Sequence[float], *, seed: int = 0) -> Comparison:
    """Wilcoxon signed-rank test of a - b over pairs where both are finite, with the mean difference."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {len(x)} and {len(y)}")
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    diff = mean_ci(d, seed=seed)
    if len(d) == 0 or np.all(d == 0):
        return Comparison("wilcoxon", len(d), len(d), math.nan, math.nan if len(d) == 0 else 1.0, diff.mean,
                          "mean difference", difference=diff)  # fmt: skip
    res = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    return Comparison("wilcoxon", len(d), len(d), float(res.statistic), float(res.pvalue), diff.mean,
                      "mean difference", difference=diff)  # fmt: skip


def adjusted_difference(y: Sequence[float], group: Sequence[float], covariates: np.ndarray) -> Comparison:
    """The difference between group 1 and group 0 with the covariates held fixed: the group's
    coefficient in the least-squares fit y ~ 1 + group + covariates (statsmodels OLS, HC3 robust
    errors), its 95% interval and p-value. Rows with a non-finite value are left out."""
    import statsmodels.api as sm

    ys, g = np.asarray(y, dtype=float), np.asarray(group, dtype=float)
    x = np.column_stack([g, np.asarray(covariates, dtype=float).reshape(len(g), -1)])
    keep = np.isfinite(ys) & np.isfinite(x).all(axis=1)
    ys, x = ys[keep], x[keep]
    n1, n2 = int(x[:, 0].sum()), int((1 - x[:, 0]).sum())
    if n1 < 2 or n2 < 2 or np.ptp(ys) == 0:
        return Comparison("ols-hc3", n1, n2, math.nan, math.nan, math.nan, "adjusted difference")
    design, _ = _widen(np.column_stack([np.ones(len(ys)), x[:, 0]]), x[:, 1:])
    fit = sm.OLS(ys, design).fit(cov_type="HC3")
    low, high = (float(v) for v in fit.conf_int(alpha=1 - LEVEL)[1])
    coef = float(fit.params[1])
    return Comparison("ols-hc3", n1, n2, float(fit.tvalues[1]), float(fit.pvalues[1]), coef, "adjusted difference",
                      difference=Estimate(coef, low, high, n1 + n2))  # fmt: skip


def _widen(design: np.ndarray, covariates: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The design with each covariate column that adds rank (a constant or a column the others
    already span adds nothing and would make the fit singular), and which columns were kept."""
    kept = []
    for j, column in enumerate(covariates.T):
        wider = np.column_stack([design, column])
        if np.linalg.matrix_rank(wider) == wider.shape[1]:
            design, kept = wider, [*kept, j]
    return design, kept


def dummies(labels: Sequence[str]) -> np.ndarray:
    """One-hot columns of the labels without the first level (sorted): a regression's constant
    stands for that level."""
    levels = sorted(set(labels))[1:]
    return np.array([[float(label == level) for level in levels] for label in labels]).reshape(len(labels), len(levels))


def adjusted_means(y: Sequence[float], labels: Sequence[str], covariates: np.ndarray) -> dict[str, Estimate]:
    """Each label's mean of y predicted at the covariates' overall mean (OLS of y on the labels
    and the covariates, HC3 errors, 95% intervals): groups compared as if they were alike in the
    covariates. Rows with a non-finite value are left out."""
    import statsmodels.api as sm

    ys, names = np.asarray(y, dtype=float), list(labels)
    cov = np.asarray(covariates, dtype=float).reshape(len(ys), -1)
    keep = np.isfinite(ys) & np.isfinite(cov).all(axis=1)
    ys, cov, names = ys[keep], cov[keep], [n for n, k in zip(names, keep) if k]
    levels = sorted(set(names))
    design, kept = _widen(np.column_stack([np.ones(len(ys)), dummies(names)]), cov)
    fit = sm.OLS(ys, design).fit(cov_type="HC3")
    at = cov[:, kept].mean(axis=0)
    grid = np.array([[1.0, *(float(level == other) for other in levels[1:]), *at] for level in levels])
    frame = fit.get_prediction(grid).summary_frame(alpha=1 - LEVEL)
    return {level: Estimate(float(row["mean"]), float(row["mean_ci_lower"]), float(row["mean_ci_upper"]), names.count(level))
            for level, (_, row) in zip(levels, frame.iterrows())}  # fmt: skip


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (nan stays nan and is not counted in the family)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (scipy's false_discovery_control), nan kept."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    if len(idx):
        out[idx] = stats.false_discovery_control(p[idx], method="bh")
    return out.tolist()


def correct(comparisons: list[Comparison]) -> list[Comparison]:
    """The same comparisons with p_holm and p_bh filled in, as one family."""
    raw = [c.p for c in comparisons]
    return [
        Comparison(**{**c.to_dict(), "difference": c.difference, "p_holm": h, "p_bh": b})
        for c, h, b in zip(comparisons, holm(raw), benjamini_hochberg(raw))
    ]
