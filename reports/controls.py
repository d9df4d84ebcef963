"""The findings' confounders, measured and controlled: prompt length, frame, category, scale.

Small models' attention signatures move with sequence length (entropy grows with log n, a
longer prompt puts more distance between the answer and what it reads), and the chat frame adds
dozens of template tokens. So every contrast the findings draw is given twice: raw (Mann-Whitney,
rank-biserial r) and adjusted (ordinary least squares of the signature on the group indicator
with log prompt tokens and log answer tokens as covariates, HC3 robust errors; for correct vs
incorrect and for the frame contrast the category too). A finding *survives* when
both are significant after Holm correction within their table and point the same way.

Rows are profile rows of `reports.findings` with `condition` ("<model> (<frame>)"), `frame`,
`base_model`, `prompt_tokens` and `answer_tokens` set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from attnlens.evaluation import stats
from attnlens.evaluation.cases import pronoun_pairs
from attnlens.reports.writeup import ALPHA

# The signatures and structure the controlled tables test (docs/metrics.md defines them).
CONTROLLED = ("entropy", "distance", "topk_mass", "gini", "sink", "prev", "share_number", "share_entity",
              "answer_probability", "modularity", "clusters")  # fmt: skip


def frame_of(prompt_frame: str | None) -> str:
    """'chat' for rows put through the model's chat template, else 'plain' (the Q:/A: frame)."""
    return "chat" if prompt_frame == "chat_template" else "plain"


def condition(model: str, frame: str) -> str:
    return f"{model} ({frame})"


def value(r: dict, name: str) -> float:
    for part in ("signatures", "graph"):
        if name in r.get(part, {}):
            return float(r[part][name])
    v = r.get(name)
    return math.nan if v is None else float(v)


def length(r: dict) -> list[float]:
    """The covariates: log prompt tokens and log answer tokens."""
    return [math.log(max(r["prompt_tokens"], 1)), math.log(max(r["answer_tokens"], 1))]


def contrast(groups: list[tuple[str, list[dict], list[dict]]], names: tuple[str, ...] = CONTROLLED,
             extra: Callable[[list[dict]], np.ndarray] | None = None) -> list[dict]:  # fmt: skip
    """Each (label, a, b) and metric: the raw test and the length-adjusted difference a - b, each
    Holm-corrected within this table, and whether the finding survives the control."""
    raw, adjusted, labels = [], [], []
    for label, a, b in groups:
        rows = a + b
        covariates = np.array([length(r) for r in rows])
        if extra is not None:
            covariates = np.column_stack([covariates, extra(rows)])
        indicator = [1.0] * len(a) + [0.0] * len(b)
        for name in names:
            ys = [value(r, name) for r in rows]
            raw.append(stats.mann_whitney(ys[: len(a)], ys[len(a) :]))
            adjusted.append(stats.adjusted_difference(ys, indicator, covariates))
            labels.append((label, name))
    return [_row(label, name, r, a) for (label, name), r, a in zip(labels, stats.correct(raw), stats.correct(adjusted))]


def _row(label: str, name: str, raw: stats.Comparison, adjusted: stats.Comparison) -> dict:
    significant = [c.p_holm < ALPHA for c in (raw, adjusted)]
    same_sign = np.sign(raw.effect) == np.sign(adjusted.effect)
    return {
        "group": label, "metric": name, "n1": raw.n1, "n2": raw.n2,
        "r": raw.effect, "p_holm": raw.p_holm,
        "adjusted": adjusted.difference.__dict__ if adjusted.difference else None, "p_holm_adjusted": adjusted.p_holm,
        "raw_significant": bool(significant[0]), "survives": bool(all(significant) and same_sign),
    }  # fmt: skip


def frame_effect(rows: list[dict], names: tuple[str, ...] = CONTROLLED) -> list[dict]:
    """Chat against plain frame for each model annotated in both, paired on the case: the Wilcoxon
    signed-rank test of the per-case difference, and the difference adjusted for length and
    category (what the frame does beyond the tokens it adds, against the length slope measured
    across cases; within one case the two cannot be told apart, the template adds a fixed length)."""
    out_raw, out_adj, labels, overlaps = [], [], [], {}
    for model in sorted({r["base_model"] for r in rows}):
        by_frame = {f: {r["id"]: r for r in rows if r["base_model"] == model and r["frame"] == f} for f in ("chat", "plain")}
        shared = sorted(set(by_frame["chat"]) & set(by_frame["plain"]))
        if len(shared) < 8:
            continue
        chat, plain = [by_frame["chat"][i] for i in shared], [by_frame["plain"][i] for i in shared]
        overlaps[f"{model}: chat vs plain"] = length_overlap(chat, plain)
        stacked = chat + plain
        covariates = np.column_stack([np.array([length(r) for r in stacked]), stats.dummies([r["category"] for r in stacked])])
        for name in names:
            out_raw.append(stats.paired([value(r, name) for r in chat], [value(r, name) for r in plain]))
            out_adj.append(stats.adjusted_difference([value(r, name) for r in stacked], [1.0] * len(chat) + [0.0] * len(plain),
                                                     covariates))  # fmt: skip
            labels.append((f"{model}: chat vs plain", name))
    out = []
    for (label, name), r, a in zip(labels, stats.correct(out_raw), stats.correct(out_adj)):
        row = _row(label, name, r, a)
        row["difference"] = r.difference.__dict__ if r.difference else None  # paired: the raw mean difference
        row["length_overlap"] = overlaps[label]
        out.append(row)
    return out


def length_overlap(a: list[dict], b: list[dict]) -> float:
    """The share of cases of both groups whose total length lies inside the other group's range:
    where it is small, an adjusted difference rests on the length slope carried across the gap."""
    ta = [r["prompt_tokens"] + r["answer_tokens"] for r in a]
    tb = [r["prompt_tokens"] + r["answer_tokens"] for r in b]
    inside = sum(min(tb) <= t <= max(tb) for t in ta) + sum(min(ta) <= t <= max(ta) for t in tb)
    return inside / (len(ta) + len(tb))


def models_within_frame(rows: list[dict]) -> list[dict]:
    """Every pair of models seen in the same frame, on the cases both answered."""
    groups = []
    for frame in sorted({r["frame"] for r in rows}):
        models = sorted({r["base_model"] for r in rows if r["frame"] == frame})
        for i, a in enumerate(models):
            for b in models[i + 1 :]:
                ra = {r["id"]: r for r in rows if r["frame"] == frame and r["base_model"] == a}
                rb = {r["id"]: r for r in rows if r["frame"] == frame and r["base_model"] == b}
                shared = sorted(set(ra) & set(rb))
                groups.append((f"{a} vs {b} ({frame})", [ra[i] for i in shared], [rb[i] for i in shared]))
    return contrast([g for g in groups if len(g[1]) >= 8])


def categories(rows: list[dict]) -> list[dict]:
    """Each category against the rest, per condition, raw and adjusted for length."""
    groups = []
    for cond in sorted({r["condition"] for r in rows}):
        rs = [r for r in rows if r["condition"] == cond]
        for cat in sorted({r["category"] for r in rs}):
            groups.append((f"{cond}: {cat}", [r for r in rs if r["category"] == cat], [r for r in rs if r["category"] != cat]))
    return contrast(groups, ("entropy", "distance", "sink", "prev", "share_number", "topk_mass"))


def correctness(rows: list[dict]) -> list[dict]:
    """Correct against incorrect per condition, adjusted for length and category (Simpson's paradox:
    both accuracy and attention differ by category)."""
    groups = []
    for cond in sorted({r["condition"] for r in rows}):
        rs = [r for r in rows if r["condition"] == cond and r.get("correct") is not None]
        right, wrong = [r for r in rs if r["correct"]], [r for r in rs if not r["correct"]]
        if len(right) >= 8 and len(wrong) >= 8:
            groups.append((cond, right, wrong))
    return contrast(groups, extra=lambda rs: stats.dummies([r["category"] for r in rs]))


def _mean(xs: list[float]) -> float:
    finite = [x for x in xs if math.isfinite(x)]
    return float(np.mean(finite)) if finite else math.nan


def length_dependence(rows: list[dict], names: tuple[str, ...] = ("entropy", "distance", "sink", "prev", "topk_mass")) -> dict:
    """Per condition: Spearman's rho of each signature with log total tokens over cases, and over
    categories (category mean against category mean length): how much a category contrast can be
    a length contrast."""
    out = {}
    for cond in sorted({r["condition"] for r in rows}):
        rs = [r for r in rows if r["condition"] == cond]
        total = [math.log(r["prompt_tokens"] + r["answer_tokens"]) for r in rs]
        cats = sorted({r["category"] for r in rs})
        cat_len = [_mean([t for t, r in zip(total, rs) if r["category"] == c]) for c in cats]
        entry = {"cases": len(rs), "prompt_tokens": stats.mean_ci([r["prompt_tokens"] for r in rs]).__dict__}
        for name in names:
            ys = [value(r, name) for r in rs]
            cat_y = [_mean([y for y, r in zip(ys, rs) if r["category"] == c]) for c in cats]
            per_case = spearmanr(total, ys, nan_policy="omit")
            per_cat = spearmanr(cat_len, cat_y) if len(cats) >= 3 else None
            entry[name] = {"rho_cases": float(per_case.statistic), "p_cases": float(per_case.pvalue),
                           "rho_categories": float(per_cat.statistic) if per_cat is not None else math.nan}  # fmt: skip
        out[cond] = entry
    return out


def ambiguity(rows: list[dict], cases: dict) -> dict:
    """Per condition: how often both cases of a pronoun pair are right (chance 0.25 for a model
    that guesses each; an echo scores 0), and how often exactly one is."""
    out = {}
    pairs = [(a.id, b.id) for a, b in pronoun_pairs(list(cases.values()))]
    for cond in sorted({r["condition"] for r in rows}):
        verdict = {r["id"]: r["correct"] for r in rows if r["condition"] == cond and r.get("correct") is not None}
        answered = [(verdict[a], verdict[b]) for a, b in pairs if a in verdict and b in verdict]
        both = [float(x and y) for x, y in answered]
        either = [float(x != y) for x, y in answered]
        out[cond] = {"pairs": len(both), "both_right": stats.mean_ci(both).__dict__,
                     "one_right": stats.mean_ci(either).__dict__}  # fmt: skip
    return out


def parameters(model: str) -> int | None:
    """Parameters stored in a model's safetensors files (read from their headers, nothing loaded)."""
    from safetensors import safe_open

    from attnlens.extraction.models import resolve_model

    try:
        folder = Path(resolve_model(model).path)
    except Exception:  # noqa: BLE001 - a model no longer on this machine: its size is unknown
        return None
    total = 0
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            total += sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())
    return total or None


def scale(rows: list[dict]) -> dict:
    """Per model in the plain frame (the one all share): its parameters and each signature's mean."""
    plain = [r for r in rows if r["frame"] == "plain"]
    out = {}
    for model in sorted({r["base_model"] for r in plain}):
        rs = [r for r in plain if r["base_model"] == model]
        out[model] = {"parameters": parameters(model), "cases": len(rs),
                      "means": {n: stats.mean_ci([value(r, n) for r in rs]).__dict__ for n in CONTROLLED}}  # fmt: skip
    return out


def locality(rows: list[dict], names: tuple[str, ...] = ("distance", "prev", "entropy")) -> dict:
    """Which model attends locally and which globally, at equal length: per model in the plain
    frame, each signature's mean predicted at the pooled mean length (`stats.adjusted_means`)."""
    plain = [r for r in rows if r["frame"] == "plain"]
    if len({r["base_model"] for r in plain}) < 2:
        return {}
    out: dict = {}
    covariates = np.array([length(r) for r in plain])
    for name in names:
        means = stats.adjusted_means([value(r, name) for r in plain], [r["base_model"] for r in plain], covariates)
        for model, e in means.items():
            out.setdefault(model, {})[name] = e.__dict__
    return out


def analyse(rows: list[dict], cases: dict) -> dict:
    ok = [r for r in rows if not r.get("error")]
    return {
        "length": length_dependence(ok),
        "frame": frame_effect(ok),
        "models": models_within_frame(ok),
        "categories": categories(ok),
        "correctness": correctness(ok),
        "ambiguity": ambiguity(ok, cases),
        "scale": scale(ok),
        "locality": locality(ok),
    }
