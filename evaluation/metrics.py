"""Every evaluation metric attnlens reports, with its range and direction (ferret-style).

A report never prints a bare number: `METRICS[name]` says what the number measures, the range
it can take and whether higher is better, so a reader can tell a good score from a bad one
without opening the code. docs/metrics.md has the formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INF = math.inf


@dataclass(frozen=True)
class Metric:
    name: str
    range: tuple[float, float]  # (lo, hi); math.inf where unbounded
    higher_is_better: bool
    description: str
    family: str = "faithfulness"  # faithfulness | plausibility | complexity | target

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    def label(self) -> str:
        """`name ↑ [lo, hi]`: what a report prints beside the number."""
        lo, hi = (_fmt(v) for v in self.range)
        return f"{self.name} {self.arrow} [{lo}, {hi}]"

    def in_range(self, value: float, tol: float = 1e-9) -> bool:
        if value is None or math.isnan(value):
            return True  # undefined values (e.g. tau of a constant vector) are reported as nan
        lo, hi = self.range
        return lo - tol <= value <= hi + tol


def _fmt(v: float) -> str:
    if v == INF:
        return "inf"
    if v == -INF:
        return "-inf"
    return f"{v:g}"


_ALL = [
    # -- target -------------------------------------------------------------------------------
    Metric("answer_probability", (0.0, 1.0), True,
           "f(x) = exp(mean_t log p(a_t | x, a_<t)): geometric-mean probability of the model's own answer "
           "tokens, teacher-forced (the score every faithfulness metric differences)", "target"),
    Metric("answer_logprob", (-INF, 0.0), True,
           "sum_t log p(a_t | x, a_<t) of the model's own answer, teacher-forced (nats)", "target"),
    # -- faithfulness ---------------------------------------------------------------------------
    Metric("comprehensiveness", (-1.0, 1.0), True,
           "f(x) - f(x without r): how much the answer score drops when the rationale r is ablated"),
    Metric("sufficiency", (-1.0, 1.0), False,
           "f(x) - f(only r): how much the answer score drops when only r (plus the chat template) is kept"),
    Metric("aopc_comprehensiveness_eraser", (-1.0, 1.0), True,
           "mean comprehensiveness of the top-k user tokens over ERASER's bins k in {1, 5, 10, 20, 50}% "
           "(k = max(1, ceil(p U)))"),
    Metric("aopc_sufficiency_eraser", (-1.0, 1.0), False,
           "mean sufficiency of the top-k user tokens over ERASER's bins {1, 5, 10, 20, 50}%"),
    Metric("aopc_comprehensiveness_ferret", (-1.0, 1.0), True,
           "mean comprehensiveness over ferret's bins 10, 20, ..., 100% (k = floor(p U), bins with k = 0 "
           "and repeated top-k sets skipped, as ferret)"),
    Metric("aopc_sufficiency_ferret", (-1.0, 1.0), False,
           "mean sufficiency over ferret's bins 10, 20, ..., 100%"),
    Metric("deletion_auc", (0.0, INF), False,
           "FAD-style: area under f(x without the top p of the user tokens) / f(x), p = 0, 10, ..., 100% "
           "(trapezoid over p in [0, 1]); a faithful ranking makes the curve fall fast"),
    Metric("insertion_auc", (0.0, INF), True,
           "area under f(x with only the top p of the user tokens) / f(x), p = 0, 10, ..., 100% "
           "(trapezoid over p in [0, 1]); a faithful ranking makes the curve rise fast"),
    Metric("tau_loo", (-1.0, 1.0), True,
           "Kendall tau-b between the importance vector and leave-one-out drops in f over the user tokens"),
    Metric("top_k_drop", (-1.0, 1.0), True,
           "comprehensiveness of the source's k highest-ranked user tokens, k = the tokens of the first "
           "attnlens cluster: every source judged at the size of the explanation the user reads"),
    Metric("lds", (-1.0, 1.0), True,
           "linear datamodeling score (ContextCite): Spearman correlation between the effects a source "
           "predicts for random deletions of about half the user's words (minus the sum of the deleted "
           "words' scores) and the measured change in the answer's mean log-probability"),
    # -- plausibility ---------------------------------------------------------------------------
    Metric("token_precision", (0.0, 1.0), True,
           "|predicted and evidence tokens| / |predicted tokens|", "plausibility"),
    Metric("token_recall", (0.0, 1.0), True,
           "|predicted and evidence tokens| / |evidence tokens|", "plausibility"),
    Metric("token_f1", (0.0, 1.0), True,
           "harmonic mean of token precision and recall (ERASER token-level F1, one instance)", "plausibility"),
    Metric("iou_f1", (0.0, 1.0), True,
           "F1 of span matches: a predicted span and an evidence span match when their token IoU >= 0.5 "
           "(ERASER)", "plausibility"),
    Metric("auprc", (0.0, 1.0), True,
           "area under the precision-recall curve of the importance scores against the evidence mask "
           "(trapezoid over recall, as ERASER's and ferret's auc(recall, precision))", "plausibility"),
    Metric("average_precision", (0.0, 1.0), True,
           "step-wise area: sum_k (R_k - R_k-1) P_k (sklearn's average_precision_score)", "plausibility"),
    # -- complexity -----------------------------------------------------------------------------
    Metric("entropy", (0.0, INF), False,
           "Shannon entropy (nats) of p_i = |s_i| / sum_j |s_j| over the U user tokens; at most log U",
           "complexity"),
    Metric("gini", (0.0, 1.0), True,
           "Gini index of p over the U user tokens (sparseness); at most 1 - 1/U", "complexity"),
]

METRICS: dict[str, Metric] = {m.name: m for m in _ALL}


def describe(name: str) -> Metric:
    """The metric called `name`; a KeyError lists the known names."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None
