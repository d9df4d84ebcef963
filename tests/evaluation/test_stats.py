"""Statistics on hand-computed examples."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from attnlens.evaluation import stats


def test_mean_ci_brackets_the_mean_and_is_seeded():
    values = np.random.default_rng(1).normal(2.0, 1.0, 200)
    e = stats.mean_ci(values)
    assert e.n == 200 and e.low < e.mean < e.high
    assert e.mean == pytest.approx(values.mean())
    # the percentile interval of a mean of 200 N(2, 1) draws is about +-1.96/sqrt(200) = +-0.14 wide
    assert 0.2 < e.high - e.low < 0.35
    assert stats.mean_ci(values) == e


def test_mean_ci_degenerate_inputs():
    assert stats.mean_ci([]).n == 0 and math.isnan(stats.mean_ci([]).mean)
    assert stats.mean_ci([math.nan, 3.0]) == stats.Estimate(3.0, 3.0, 3.0, 1)
    assert stats.mean_ci([0.5] * 5) == stats.Estimate(0.5, 0.5, 0.5, 5)
    assert str(stats.mean_ci([])) == "n/a"


def test_mann_whitney_by_hand():
    # a = [3, 4, 5], b = [1, 2]: every a beats every b, U = 6 = n1 n2, so r = 1
    c = stats.mann_whitney([3, 4, 5], [1, 2])
    assert c.statistic == 6 and c.effect == pytest.approx(1.0)
    assert c.p == pytest.approx(sps.mannwhitneyu([3, 4, 5], [1, 2]).pvalue)
    # a tie-free half overlap: a = [1, 4], b = [2, 3]: pairs a > b are (4, 2), (4, 3): U = 2, r = 0
    assert stats.mann_whitney([1, 4], [2, 3]).effect == pytest.approx(0.0)
    assert math.isnan(stats.mann_whitney([], [1.0]).p)


def test_paired_wilcoxon_and_mean_difference():
    a = [0.5, 0.6, 0.7, 0.9, 0.4, 0.8]
    b = [0.1, 0.2, 0.3, 0.4, 0.2, 0.3]
    c = stats.paired(a, b)
    assert c.effect == pytest.approx(np.mean(np.subtract(a, b)))
    assert c.p == pytest.approx(sps.wilcoxon(np.subtract(a, b)).pvalue)
    assert c.difference.low <= c.effect <= c.difference.high
    assert stats.paired([1, 2], [1, 2]).p == 1.0  # no difference at all
    with pytest.raises(ValueError, match="differ in length"):
        stats.paired([1, 2], [1])


def test_holm_by_hand():
    # sorted p: 0.01 (x3 = 0.03), 0.02 (x2 = 0.04), 0.04 (x1 = 0.04, monotone)
    assert stats.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    out = stats.holm([0.3, math.nan, 0.01])  # nan is outside the family: m = 2
    assert out[0] == pytest.approx(0.3) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)
    assert stats.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])


def test_benjamini_hochberg_by_hand():
    # p sorted 0.01, 0.02, 0.03, 0.5 with m = 4: 0.04, 0.04, 0.04, 0.5
    assert stats.benjamini_hochberg([0.02, 0.5, 0.01, 0.03]) == pytest.approx([0.04, 0.5, 0.04, 0.04])


def test_correct_fills_both_corrections():
    raw = [stats.mann_whitney([3, 4, 5, 6], [1, 2, 0, -1]), stats.mann_whitney([1, 2], [1, 2])]
    done = stats.correct(raw)
    assert [c.p for c in done] == [c.p for c in raw]
    assert done[0].p_holm == pytest.approx(min(1, 2 * min(c.p for c in raw))) or done[0].p_holm >= done[0].p
    assert all(c.p_bh >= c.p for c in done)


def test_adjusted_difference_holds_the_covariate_fixed():
    rng = np.random.default_rng(3)
    length = rng.uniform(1, 5, 300)
    group = (length + rng.normal(0, 0.5, 300) > 3).astype(float)  # the group is the long inputs, mostly
    y = 2 * length + rng.normal(0, 0.2, 300)  # y follows length only
    assert stats.mann_whitney(y[group == 1], y[group == 0]).effect > 0.8
    only_length = stats.adjusted_difference(y, group, length[:, None])
    assert only_length.difference.low < 0 < only_length.difference.high and only_length.p > 0.01
    real = stats.adjusted_difference(y + 0.3 * group, group, np.column_stack([length, np.ones(300)]))  # a constant column is dropped
    assert real.difference.low < 0.3 < real.difference.high and real.p < 1e-6 and real.n1 + real.n2 == 300
    assert math.isnan(stats.adjusted_difference([1.0, 2.0, 3.0], [1.0, 0.0, 0.0], np.zeros((3, 1))).p)  # one in a group


def test_adjusted_means_compare_groups_at_the_same_covariate():
    x = np.concatenate([np.linspace(0, 1, 50), np.linspace(2, 3, 50)])
    y = 3 * x + np.concatenate([np.zeros(50), np.full(50, 0.5)])  # b is 0.5 higher at any x
    labels = ["a"] * 50 + ["b"] * 50
    means = stats.adjusted_means(y, labels, np.column_stack([x, np.ones(100)]))
    assert means["b"].mean - means["a"].mean == pytest.approx(0.5, abs=1e-6)
    assert means["a"].mean == pytest.approx(3 * x.mean(), abs=1e-6) and means["a"].n == 50
