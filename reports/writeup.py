"""report.md from the aggregated metrics: every number with its interval, test and correction."""

from __future__ import annotations

import math

from attnlens.evaluation.metrics import METRICS
from attnlens.evaluation.suite import FAITHFULNESS, SOURCES

ALPHA = 0.05


def ci(e: dict, digits: int = 3) -> str:
    if not e or not e.get("n"):
        return "n/a"
    f = f"{{:+.{digits}f}}"
    return f"{f.format(e['mean'])} [{f.format(e['low'])}, {f.format(e['high'])}]"


def pval(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    return f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def mark(p_holm: float) -> str:
    return " **" if p_holm is not None and not math.isnan(p_holm) and p_holm < ALPHA else ""


def _arrow(metric: str) -> str:
    return METRICS[metric].arrow if metric in METRICS else ""


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows), ""]


def tests_table(tests: list[dict], first: str) -> list[str]:
    rows = [
        [t["group"], t["metric"], f"{t['n1']} / {t['n2']}", f"{t['effect']:+.2f}" if not math.isnan(t["effect"]) else "n/a",
         pval(t["p"]), pval(t["p_holm"]) + mark(t["p_holm"]), pval(t["p_bh"])]
        for t in tests
    ]  # fmt: skip
    return md_table([first, "metric", "n", "rank-biserial r", "p", "p (Holm)", "p (BH)"], rows)


def report(m: dict, figures: dict) -> str:
    cfg = m["config"]
    lines = [
        "# attnlens evaluation report", "",
        f"Run `{cfg['run']}`: {m['scored']} of {m['cases']} explanations scored"
        f" ({len(m['errors'])} failed in evaluation, {len(m['annotation_errors'])} failed in annotation);"
        f" models: {', '.join(m['models']) or 'none'}; categories: {', '.join(m['categories'])}.",
        f"Ablations {', '.join(cfg['ablations'])}; {cfg['random_draws']} random rankings per case; "
        f"seed {cfg['seed']}. Mean seconds per case: {ci(m['timing']['total'], 2)}.",
        "", "Every mean is given with its 95% percentile bootstrap interval (2000 resamples) as `mean [low, high]`.",
        "↑ = higher is better, ↓ = lower is better (definitions: docs/metrics.md). Tests are two-sided; "
        "p-values of one table form one family, corrected by Holm (family-wise) and Benjamini-Hochberg (FDR); "
        "** marks p (Holm) < 0.05.", "",
    ]  # fmt: skip
    lines += ["## Faithfulness by explanation source", ""]
    for ablation, table in m["faithfulness"].items():
        lines += [f"### {ablation}", ""]
        header = ["source", *(f"{k} {_arrow(k)}" for k in FAITHFULNESS)]
        rows = [[f"**{s}**" if s == "attnlens" else s, *(ci(table[s][k]) for k in FAITHFULNESS)] for s in SOURCES]
        n = max(table[s][k]["n"] for s in SOURCES for k in FAITHFULNESS)
        lines += md_table(header, rows)
        lines += [f"n = {n} cases (fewer where a source or metric is undefined, e.g. rollout beyond 1024 tokens, "
                  "tau with constant vectors).", ""]  # fmt: skip
        fig = figures.get(f"faithfulness_{ablation}")
        curves = figures.get(f"curves_{ablation}")
        if fig:
            lines += [f"![faithfulness {ablation}]({fig['png']}) ([interactive]({fig['html']}))", ""]
        if curves:
            lines += [f"![deletion curves {ablation}]({curves['png']}) ([interactive]({curves['html']}))", ""]
        lines += ["attnlens against each source, paired over cases (Wilcoxon signed-rank; difference = attnlens - source):", ""]
        rows = [
            [t["source"], t["metric"], str(t["n1"]), ci(t["difference"]), pval(t["p"]), pval(t["p_holm"]) + mark(t["p_holm"]), pval(t["p_bh"])]
            for t in m["versus_attnlens"][ablation]
        ]  # fmt: skip
        lines += md_table(["versus", "metric", "pairs", "mean difference", "p", "p (Holm)", "p (BH)"], rows)
    lines += ["## The scored cluster against random token sets of its size", "",
              "The most important cluster with prompt tokens to remove (the one `attnlens explain` scores), "
              "against the mean of random user-token sets of the same size (paired per case).", ""]  # fmt: skip
    rows = []
    for ablation, c in m["cluster"].items():
        rows.append([ablation, ci(c["comprehensiveness"]), ci(c["random_comprehensiveness"]), pval(c["comprehensiveness_vs_random"]["p"]),
                     ci(c["sufficiency"]), ci(c["random_sufficiency"]), pval(c["sufficiency_vs_random"]["p"])])  # fmt: skip
    lines += md_table(["ablation", "comprehensiveness ↑", "random", "p", "sufficiency ↓", "random", "p"], rows)
    pl = m["plausibility"]
    lines += ["## Plausibility against human evidence", "",
              f"{pl['cases']} cases carry evidence words; top-k tokens with k = |evidence|.", ""]  # fmt: skip
    lines += md_table(["source", "token_f1 ↑", "iou_f1 ↑", "auprc ↑"],
                    [[s, *(ci(pl["by_source"][s][k]) for k in ("token_f1", "iou_f1", "auprc"))] for s in SOURCES])  # fmt: skip
    lines += ["## Complexity of the importance vectors", ""]
    lines += md_table(["source", "entropy (nats) ↓", "gini ↑"],
                    [[s, ci(m["complexity"][s]["entropy"]), ci(m["complexity"][s]["gini"])] for s in SOURCES])  # fmt: skip
    g = m["grounding"]
    lines += ["## Grounding of the rationale text", ""]
    if g["rationales"]:
        lines += [f"{g['rationales']} rationales judged by ragas Faithfulness with the local 135M model as judge "
                  f"(through outlines); {g['judge_failures']} judge failures (no usable statements or verdicts). "
                  f"Deterministic check pass rate {ci(g['deterministic_pass'], 2)}; ragas faithfulness "
                  f"{ci(g['ragas_faithfulness'], 2)}; {ci(g['seconds_per_rationale'], 1)} s per rationale. "
                  "The judge is as small as the writer: its verdicts are weak evidence, the deterministic check is "
                  "the one attnlens enforces.", ""]  # fmt: skip
        lines += md_table(["written by", "n", "deterministic pass", "ragas faithfulness"],
                        [[s, str(v["n"]), ci(v["deterministic_pass"], 2), ci(v["ragas_faithfulness"], 2)] for s, v in g["by_source"].items()])  # fmt: skip
    else:
        lines += ["Not run (`--grounding N` judges up to N rationales).", ""]
    lines += ["## Attention signatures", ""]
    for model, sig in m["signatures"].items():
        names = list(sig["mean"])
        lines += [f"### {model} ({sig['cases']} cases)", ""]
        lines += md_table(["signature", "mean over layers x heads", "spread over heads (std)"],
                        [[n, ci(sig["mean"][n]), f"{sig['head_spread'][n]:.3f}"] for n in names])  # fmt: skip
        if sig["induction_heads"]:
            lines += ["Strongest induction heads (layer.head: score): "
                      + ", ".join(f"{h['layer']}.{h['head']}: {h['score']:.2f}" for h in sig["induction_heads"]), ""]  # fmt: skip
        cats = list(sig["by_category"])
        if len(cats) > 1:
            shown = [n for n in ("entropy", "distance", "gini", "sink", "share_number", "share_instruction") if n in names]
            lines += md_table(["category", *shown], [[c, *(ci(sig["by_category"][c][n]) for n in shown)] for c in cats])
        fig = figures.get(f"signatures_{model}")
        if fig:
            lines += [f"![signatures {model}]({fig['png']}) ([interactive]({fig['html']}))", ""]
    lines += ["## Correct against incorrect answers", "", "Mann-Whitney U per model (correct first: r > 0 means larger when correct).", ""]
    for model, c in m["correct_vs_incorrect"].items():
        lines += [f"### {model}: {c['correct']} correct, {c['incorrect']} incorrect", ""]
        lines += tests_table(c["tests"], "model") if c["tests"] else ["Both groups are needed for a test.", ""]
        fig = figures.get(f"correct_{model}")
        if fig:
            lines += [f"![correct vs incorrect {model}]({fig['png']}) ([interactive]({fig['html']}))", ""]
    lines += ["## Task categories", ""]
    for model, c in m["categories_tests"].items():
        lines += [f"### {model}", "", "Kruskal-Wallis across categories (Holm over metrics): "
                  + "; ".join(f"{k} H={v['H']:.1f} p={pval(v['p'])} (Holm {pval(v['p_holm'])})" for k, v in c["kruskal"].items()), ""]
        significant = [t for t in c["one_vs_rest"] if not math.isnan(t["p_holm"]) and t["p_holm"] < ALPHA]
        lines += ["Each category against the rest (only tests with p (Holm) < 0.05 shown):", ""]
        lines += tests_table(significant, "category") if significant else ["None.", ""]
    lines += ["## Which source is most faithful, per category", "",
              "Mean AOPC comprehensiveness (ERASER bins) per source; `best` names the highest apart from "
              "leave-one-out, which ranks tokens by the very drops this measures (the reference).", ""]  # fmt: skip
    rows = []
    for model, cats in m["best_source_by_category"].items():
        for cat, by_ablation in cats.items():
            for ablation, v in by_ablation.items():
                rows.append([model, cat, ablation, str(v["best"]), *(f"{v['means'][s]['mean']:+.3f}" if v["means"][s]["n"] else "n/a" for s in SOURCES)])
    lines += md_table(["model", "category", "ablation", "best", *SOURCES], rows)
    if m["models_tests"]:
        lines += ["## Models compared", ""] + tests_table(m["models_tests"], "models")
    lines += ["## Study feedback", ""]
    st = m.get("study")
    if st:
        lines += [f"`{k}`: {v}" if not isinstance(v, dict) else f"`{k}`: " + ", ".join(f"{a} {b}" for a, b in v.items()) for k, v in st.items()]
        lines += [""]
    else:
        lines += ["No study database given or found (`--study-db`).", ""]
    if m["errors"] or m["annotation_errors"]:
        lines += ["## Failures", ""]
        lines += [f"- evaluation `{e['key']}`: {e['error']}" for e in m["errors"]]
        lines += [f"- annotation `{e.get('id')}` ({e.get('model')}): {e.get('error')}" for e in m["annotation_errors"]]
        lines += [""]
    return "\n".join(lines)
