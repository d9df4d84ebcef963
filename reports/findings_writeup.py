"""findings.md from `reports.findings.analyse`: sentences written from the numbers, each with
its interval or its Holm-corrected test, so a re-run on other models rewrites them honestly."""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import numpy as np

from attnlens.evaluation.suite import SOURCES
from attnlens.reports.plots import pyplot, save_png
from attnlens.reports.writeup import ALPHA, ci, mark, md_table, pval, tests_table

LAYER_PLOTS = ("entropy", "distance", "sink", "prev")
CATEGORY_COLUMNS = ("entropy", "distance", "gini", "sink", "share_number", "share_entity")


def _significant(tests: list[dict]) -> list[dict]:
    return [t for t in tests if not math.isnan(t["p_holm"]) and t["p_holm"] < ALPHA]


def _frames(pair: str) -> int:
    """How many frames the conditions of an "A (frame) vs B (frame)" pair span."""
    return len({side.rsplit(" (", 1)[-1] for side in pair.split(" vs ")})


def _effect(t: dict, higher: str, lower: str) -> str:
    """'<metric> is higher in A than in B (r = .., p (Holm) = ..)' from a Mann-Whitney row."""
    direction = (higher, lower) if t["effect"] > 0 else (lower, higher)
    return (f"`{t['metric']}` is higher in {direction[0]} than in {direction[1]} "
            f"(rank-biserial r = {t['effect']:+.2f}, n = {t['n1']}/{t['n2']}, p (Holm) = {pval(t['p_holm'])})")  # fmt: skip


def figures(m: dict, out: Path) -> dict:
    """Per-layer signature profiles of every model (one PNG)."""
    plt = pyplot()
    if not m["models"]:
        return {}
    fig, axes = plt.subplots(1, len(LAYER_PLOTS), figsize=(4 * len(LAYER_PLOTS), 3.2))
    for ax, name in zip(axes, LAYER_PLOTS):
        for model in m["models"]:
            layers = m["signatures"][model]["layers"].get(name)
            if layers:
                depth = np.linspace(0, 1, len(layers))
                ax.plot(depth, layers, marker="o", ms=3, label=model)
        ax.set_title(name)
        ax.set_xlabel("relative depth (layer / last layer)")
    axes[0].legend(fontsize=8)
    return {"layers": save_png(fig, out, "layer-profiles")}


def report(m: dict, figs: dict, base: Path) -> str:
    models = m["models"]
    cfg = m["config"]
    command = ["attnlens", "findings", *(a for r in cfg["runs"] for a in ("--run", r))]
    if cfg["suite_cases"]:
        command += ["--suite", str(cfg["suite_cases"])]
    command += [a for e in cfg["encoders"] for a in ("--encoder", e)]
    total = max((s.get("dataset_cases") or 0 for s in m["run_settings"].values()), default=0)
    n = ", ".join(f"{model}: {m['cases'][model]}" + (f" of the dataset's {total}" if total else "") for model in models)
    lines = [
        "# Findings: what the models' attention shows on the curated cases", "",
        f"Cases per model: {n} ({len(m['errors'])} failed and left out, listed at the end). "
        "Written by `" + shlex.join(command) + " --out <this file>` from the annotated runs; every number "
        "below is recomputed by that command. Means carry 95% bootstrap intervals `mean [low, high]`; "
        "tests are two-sided Mann-Whitney U (rank-biserial r) or Kruskal-Wallis, Holm-corrected within "
        "each table; ** marks p (Holm) < 0.05. Signature definitions: docs/metrics.md.", "",
    ]  # fmt: skip
    lines += _accuracy(m)
    if "accuracy" in figs:
        lines += [f"![accuracy by category]({Path(figs['accuracy']).relative_to(base)})", ""]
    lines += _profiles(m, figs, base)
    lines += _categories(m)
    lines += _correctness(m)
    lines += _failures(m)
    lines += _faithfulness(m)
    lines += _controls(m, figs, base)
    lines += _limits(m)
    if m["errors"]:
        lines += ["## Cases left out", ""]
        lines += [f"- `{e.get('key') or e.get('id')}` ({e.get('model')}): {e.get('error')}" for e in m["errors"]] + [""]
    return "\n".join(lines)


def _accuracy(m: dict) -> list[str]:
    lines = ["## 1. The runs and how often the models are right", ""]
    cats = sorted({c for a in m["accuracy"].values() for c in a["by_category"]})
    rows = [[c, *(ci(m["accuracy"][model]["by_category"].get(c, {}), 2) for model in m["models"])] for c in cats]
    rows.append(["**all**", *(ci(m["accuracy"][model]["all"], 2) for model in m["models"])])
    lines += ["Share of answers that pass the case's checker (greedy decoding, 32 new tokens):", ""]
    lines += md_table(["category", *m["models"]], rows)
    return lines


def _profiles(m: dict, figs: dict, base: Path) -> list[str]:
    lines = ["## 2. Attention signature profiles per model", ""]
    sig = m["signatures"]
    names = [n for n in ("entropy", "distance", "prev", "sink", "topk_mass", "gini", "share_number", "share_entity")
             if all(n in sig[model]["mean"] for model in m["models"])]  # fmt: skip
    rows = [[n, *(ci(sig[model]["mean"][n]) for model in m["models"]), *(f"{sig[model]['head_spread'][n]:.3f}" for model in m["models"])]
            for n in names]  # fmt: skip
    lines += ["Mean over cases of each signature's mean over layers and heads; the spread is the standard "
              "deviation over heads of the per-head means (head specialisation: 0 = every head alike).", ""]  # fmt: skip
    lines += md_table(["signature", *m["models"], *(f"spread {model}" for model in m["models"])], rows)
    same_frame = [t for t in m["models_tests"] if t["metric"] in names and _frames(t["group"]) == 1]
    if same_frame:
        lines += ["Models in the same frame, each on all the cases its run holds (Mann-Whitney, Holm over every "
                  "pair and metric; section 7.2 repeats this on shared cases with length held fixed):", ""]  # fmt: skip
        for t in same_frame:
            a, b = t["group"].split(" vs ")
            lines += [f"- {_effect(t, a, b)}{mark(t['p_holm'])}"]
        lines += [""]
    for model in m["models"]:
        s = sig[model]
        layers = s["layers"]
        roles = s["roles"]
        parts = []
        if "distance" in layers and "entropy" in layers:
            parts.append(f"mean attention distance goes from {layers['distance'][0]:.1f} tokens in the first layer to "
                         f"{layers['distance'][-1]:.1f} in the last, entropy from {layers['entropy'][0]:.2f} to "
                         f"{layers['entropy'][-1]:.2f} nats")  # fmt: skip
        if "sink" in layers:
            deepest = int(np.argmax(layers["sink"]))
            parts.append(f"the first token takes most in layer {deepest} ({layers['sink'][deepest]:.2f} of each row)")
        if "sink" in layers and "distance" in layers and len(layers["sink"]) > 2:
            r = float(np.corrcoef(layers["distance"], layers["sink"])[0, 1])
            parts.append(f"across layers, distance follows the sink share (Pearson r = {r:.2f} over {len(layers['sink'])} layers)"
                         + (": long distances here are mostly mass parked on the first token, not long-range reading"
                            if r > 0.7 else ""))  # fmt: skip
        roles_text = "; ".join(
            f"{role} heads ({r['signature']} ≥ {r['threshold']}): {len(r['heads'])} of {r['of']}"
            + (f" ({', '.join(r['heads'][:8])}{', …' if len(r['heads']) > 8 else ''})" if r["heads"] else "")
            for role, r in roles.items()
        )  # fmt: skip
        lines += [f"**{model}**: " + "; ".join(parts) + f". Head roles, layer.head: {roles_text}.", ""]
    if "layers" in figs:
        lines += [f"![per-layer profiles]({Path(figs['layers']).relative_to(base)})", ""]
    enc = m["encoder"]["signatures"]
    for model, s in enc.items():
        shown = [n for n in ("entropy", "distance", "prev", "sink", "topk_mass") if n in s["mean"]]
        lines += [f"**Encoder side, {model}** ({s['cases']} prompts, bidirectional, prompt only): "
                  + ", ".join(f"{n} {ci(s['mean'][n])}" for n in shown)
                  + ". An encoder row can look both ways, so its distance is not comparable one to one with a decoder's.", ""]  # fmt: skip
    return lines


def _categories(m: dict) -> list[str]:
    lines = ["## 3. How attention differs by task category", ""]
    for model in m["models"]:
        by_cat = m["signatures"][model]["by_category"]
        shown = [n for n in CATEGORY_COLUMNS if all(n in v for v in by_cat.values())]
        lines += [f"### {model}", ""]
        lines += md_table(["category", *shown], [[c, *(ci(v[n]) for n in shown)] for c, v in by_cat.items()])
        lines += _category_tests(m["categories"].get(model))
    for model, c in m["encoder"]["categories"].items():
        lines += [f"### {model} (encoder, prompt only)", ""] + _category_tests(c)
    return lines


def _category_tests(c: dict | None) -> list[str]:
    if not c:
        return []
    kw = c["kruskal"]
    sig = [k for k, v in kw.items() if v["p_holm"] < ALPHA]
    lines = [f"Kruskal-Wallis across categories: {len(sig)} of {len(kw)} metrics differ (p (Holm) < 0.05): "
             + ", ".join(f"{k} (H = {kw[k]['H']:.1f}, p (Holm) {pval(kw[k]['p_holm'])})" for k in sig) + ".", ""]  # fmt: skip
    strongest = sorted(_significant(c["one_vs_rest"]), key=lambda t: -abs(t["effect"]))[:8]
    if strongest:
        lines += ["The largest one-category-against-the-rest differences:", ""]
        lines += [f"- {_effect(t, t['group'], 'the other categories')}" for t in strongest] + [""]
    return lines


def _correctness(m: dict) -> list[str]:
    lines = ["## 4. Attention concentration, cluster structure and correct answers", "",
             "Correct against incorrect answers (r > 0: larger when correct). Pooled over categories first; "
             "since accuracy and attention both vary by category, then inside each category with at least 8 "
             "of each.", ""]  # fmt: skip
    lines += tests_table(m["correct_vs_incorrect"], "model")
    for t in _significant(m["correct_vs_incorrect"]):
        lines += [f"- {t['group']}: {_effect(t, 'correct answers', 'incorrect ones')}"]
    if not _significant(m["correct_vs_incorrect"]):
        lines += ["No pooled difference survives Holm correction."]
    lines += ["", "Inside categories:", ""]
    within = m["within_category"]
    if within:
        lines += tests_table(within, "model and category")
        hits = _significant(within)
        lines += [f"- {t['group']}: {_effect(t, 'correct answers', 'incorrect ones')}" for t in hits]
        lines += [] if hits else ["No within-category difference survives Holm correction."]
        for model in m["models"]:
            pooled = {t["metric"] for t in _significant(m["correct_vs_incorrect"]) if t["group"] == model}
            inside = {t["metric"] for t in hits if t["group"].startswith(f"{model} ")}
            tested = {t["metric"] for t in within if t["group"].startswith(f"{model} ")}
            confounded = sorted((pooled & tested) - inside)
            if confounded:
                lines += [f"- {model}: the pooled difference in {', '.join(f'`{c}`' for c in confounded)} appears in no "
                          "single category, so it most likely reflects which categories the model gets right, "
                          "not attention that predicts a correct answer."]  # fmt: skip
    else:
        lines += ["No category has 8 correct and 8 incorrect answers."]
    return lines + [""]


def _failures(m: dict) -> list[str]:
    lines = ["## 5. Hallucination bait, reasoning failures, ambiguity and context", ""]
    subs = ("hallucination_bait", "reasoning", "ambiguity_context")
    acc = m["accuracy"]
    keys = sorted({k for a in acc.values() for k in a["by_subcategory"] if k.split("/")[0] in subs})
    lines += md_table(["subcategory", *m["models"]], [[k, *(ci(acc[model]["by_subcategory"].get(k, {}), 2) for model in m["models"])] for k in keys])
    for model, tests in m["failures"].items():
        lines += [f"### {model}", ""]
        hits = _significant(tests)
        if hits:
            lines += [f"- {t['group']}: {_effect(t, t['group'].split(' vs ')[0], t['group'].split(' vs ')[1])}" for t in hits]
        else:
            lines += ["No difference between these groups survives Holm correction "
                      f"({len(tests)} tests: bait and reasoning failures against each other and against their successes)."]  # fmt: skip
        within = [t for t in hits if "successes" in t["group"]]
        if not within:
            lines += ["- Failures against successes inside hallucination bait or inside reasoning: no difference "
                      "survives Holm correction, so at this scale attention does not tell a failure from a success "
                      "of the same task type."]  # fmt: skip
        if any("vs reasoning failures" in t["group"] for t in hits):
            lines += ["- The bait-against-reasoning differences also separate the two categories as a whole "
                      "(section 3): they describe the task type (numbers to attend to, entities to recall) more "
                      "than the way each fails."]  # fmt: skip
        lines += [""]
    return lines


def _faithfulness(m: dict) -> list[str]:
    f = m["faithfulness"]
    lines = ["## 6. Which explanation source is most faithful, per task type", ""]
    if not f["by_category"]:
        return lines + ["Not run (`--suite N` scores N stratified cases per model with every source); docs/metrics.md "
                        "compares the sources on the dataset's held-back split.", ""]
    lines += ["AOPC comprehensiveness (deletion, ERASER bins, ↑) of each source on the suite's stratified sample "
              f"({', '.join(f'{k}: {v} cases' for k, v in f['cases'].items())}). `best` excludes leave-one-out, "
              "the reference that ranks tokens by the very drops measured; the last column tests best against "
              "attnlens (paired Wilcoxon, not corrected: read it as a pointer).", ""]  # fmt: skip
    rows = []
    for model, cats in f["by_category"].items():
        for cat, v in {**cats, "**all**": {"deletion": f["overall"][model]}}.items():
            d = v["deletion"]
            test = d.get("best_vs_attnlens")
            rows.append([model, cat, f"{d['means'][SOURCES[0]]['n']}", str(d["best"]),
                         *(f"{d['means'][s]['mean']:+.3f}" if d["means"][s]["n"] else "n/a" for s in SOURCES),
                         pval(test["p"]) if test else "—"])  # fmt: skip
    lines += md_table(["model", "category", "n", "best", *SOURCES, "p best vs attnlens"], rows)
    for model, d in f["overall"].items():
        ranked = sorted((s for s in SOURCES if s != "loo" and d["means"][s]["n"]), key=lambda s: -d["means"][s]["mean"])
        lines += [f"- {model}, all sampled cases: " + " > ".join(f"{s} {ci(d['means'][s])}" for s in ranked)]
    return lines + [""]


def _limits(m: dict) -> list[str]:
    acc = {model: m["accuracy"][model]["all"] for model in m["models"]}
    sig = m["signatures"]
    sizes = {v["parameters"] for v in m["controls"]["scale"].values() if v.get("parameters")}
    lines = ["## 8. What these small models limit, and what a GPU run would add", ""]
    if any(a.get("n") and a["mean"] < 0.5 for a in acc.values()):
        lines += [f"- **Accuracy is low** ({', '.join(f'{k} {ci(v, 2)}' for k, v in acc.items())}), so the incorrect group "
                  "is large and mixed: a wrong answer from a small model is mostly a fluent non-answer, not a specific "
                  "confusion, which blurs any correct/incorrect contrast. Where a test above is not significant, that is "
                  "absence of evidence at this scale, not evidence of absence."]  # fmt: skip
    lines += [
        "- **Short answers** (at most 32 tokens, greedy) and short prompts (tens of tokens) leave few answer rows per "
        "case, so per-case signatures are noisy and long-range behaviour (sliding windows, retrieval over long "
        "contexts) is not exercised.",
        f"- **{len(sizes)} decoder(s) of {_size_range(sizes)} parameters**: small models all; beyond one family's "
        "step (the Qwen pair) size and architecture change together, so what is scale and what is architecture "
        "cannot be separated. Here: " + "; ".join(
            f"{model} sink {ci(sig[model]['mean']['sink'], 2)}, {len(sig[model]['roles']['induction']['heads'])} "
            f"induction heads of {sig[model]['roles']['induction']['of']}" for model in m["models"]
        ) + ". Whether head roles sharpen with size needs larger models.",
    ]  # fmt: skip
    if m["faithfulness"]["by_category"]:
        lines += ["- **Faithfulness is measured on a sample** (section 6), only a handful of cases per category: the "
                  "ranking of sources per task type is a hypothesis for a larger run."]  # fmt: skip
    templated = [r for r, s in m["run_settings"].items() if s.get("max_llm_clusters") == 0]
    if templated:
        lines += [f"- **The rationales in {', '.join(templated)} are templates** (facts of each cluster, "
                  "`--max-llm-clusters 0`): the findings concern attention, clusters and faithfulness, which do not "
                  "depend on the rationale text."]  # fmt: skip
    return lines + [
        "- **A GPU run on 1B-13B models** (Llama, Mistral, Gemma, Phi, Qwen) would use the same two commands "
        "unchanged: `attnlens annotate --dataset data/cases.jsonl --out RUN -m /path/to/model-folder` (any local "
        "Hugging Face folder with safetensors weights), then this command on RUN. It would add accuracy high enough "
        "for balanced correct/incorrect groups inside each category, GQA and sliding-window heads in the profiles, "
        "and answers long enough to study chain-of-thought attention. Caveat: the subject model is placed on the CPU "
        "today (`load_model(device='cpu')`); moving it to CUDA is one argument, but no GPU was available to verify "
        "that path, so a GPU host would currently run these commands on its CPU.",
        "",
    ]


def _size_range(sizes: set) -> str:
    """"135M to 1.78B" (or one size) from parameter counts."""
    fmt = lambda n: f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"  # noqa: E731
    return "unknown" if not sizes else " to ".join(dict.fromkeys((fmt(min(sizes)), fmt(max(sizes)))))


# --------------------------------------------------------------------------- the controls (reports.controls)

CONTROL_TABLES = (("models", "models in the same frame"), ("frame", "chat against plain frame, same cases"),
                  ("categories", "each category against the rest"), ("correctness", "correct against incorrect"))  # fmt: skip


def _adjusted(t: dict) -> str:
    return ci(t["adjusted"]) if t.get("adjusted") else "n/a"


def controls_table(tests: list[dict], first: str, paired: bool = False) -> list[str]:
    """Raw and adjusted side by side; `survives` = both significant after Holm, same direction."""
    rows = [[t["group"], t["metric"], f"{t['n1']} / {t['n2']}",
             ci(t["difference"]) if paired and t.get("difference") else (f"{t['r']:+.2f}" if not math.isnan(t["r"]) else "n/a"),
             pval(t["p_holm"]) + mark(t["p_holm"]), _adjusted(t), pval(t["p_holm_adjusted"]) + mark(t["p_holm_adjusted"]),
             "**yes**" if t["survives"] else ("no" if t["raw_significant"] else "-")]
            for t in tests]  # fmt: skip
    effect = "mean paired difference" if paired else "rank-biserial r"
    return md_table([first, "metric", "n", effect, "p (Holm)", "adjusted difference [95% CI]", "p (Holm)", "survives"], rows)


def findings_list(c: dict) -> list[dict]:
    """Every raw-significant contrast of the controlled tables, with whether it survives: the list
    a reader (and the closing note of a run) needs."""
    out = []
    for key, title in CONTROL_TABLES:
        for t in c[key]:
            if t["raw_significant"]:
                out.append({"table": title, "group": t["group"], "metric": t["metric"], "r": t["r"],
                            "difference": t.get("difference"), "adjusted": t["adjusted"], "survives": t["survives"]})  # fmt: skip
    return out


def _controls(m: dict, figs: dict, base: Path) -> list[str]:
    c = m["controls"]
    lines = ["## 7. Length, frame and scale: what survives the controls", "",
             "A signature can differ between two groups because the groups differ in length (entropy grows with the "
             "log of the sequence length; the chat frame adds dozens of template tokens). Every contrast below is "
             "therefore given raw (Mann-Whitney; for the frame, Wilcoxon signed-rank on the same cases) and adjusted: "
             "the difference of the group means with log prompt tokens and log answer tokens held fixed (OLS, HC3 "
             "errors; correct vs incorrect and the frame contrast also hold the category fixed). Both are "
             "Holm-corrected within their table. A finding **survives** when both are significant and point the "
             "same way.", ""]  # fmt: skip
    lines += ["### 7.1 How much the signatures follow length", "",
              "Spearman's rho of each signature with log(prompt + answer tokens), over cases and over category means:", ""]
    names = ("entropy", "distance", "sink", "prev", "topk_mass")
    rho = lambda v: "n/a" if math.isnan(v) else f"{v:+.2f}"  # noqa: E731
    rows = [[cond, ci(e["prompt_tokens"], 1), *(f"{rho(e[n]['rho_cases'])} / {rho(e[n]['rho_categories'])}" for n in names)]
            for cond, e in c["length"].items()]  # fmt: skip
    lines += md_table(["condition", "prompt tokens", *(f"{n} (cases / categories)" for n in names)], rows)
    if "length" in figs:
        lines += [f"![signatures against length]({Path(figs['length']).relative_to(base)})", ""]
    for number, (key, title) in enumerate(CONTROL_TABLES, start=2):
        tests = c[key]
        lines += [f"### 7.{number} {title[0].upper() + title[1:]}", ""]
        if not tests:
            lines += ["Not measured: the runs hold no such pair.", ""]
            continue
        raw = [t for t in tests if t["raw_significant"]]
        kept = [t for t in raw if t["survives"]]
        lines += [f"{len(raw)} of {len(tests)} raw differences are significant; {len(kept)} of them survive the control.", ""]
        if key == "categories":
            if raw:
                lines += controls_table(raw, "contrast") + ["(Only the raw-significant rows are shown; findings.json has all.)", ""]
        else:
            lines += controls_table(tests, "contrast", paired=key == "frame")
        if key == "frame":
            for group, share in sorted({(t["group"], t["length_overlap"]) for t in tests}):
                lines += [f"{group}: {share:.0%} of the cases lie inside the other frame's length range. The "
                          "template adds a near-constant length to every case, so the adjusted differences rest on "
                          "the length slope measured across cases and carried over that shift: read them as a model "
                          "of the frame; the paired raw differences are the measurement.", ""]  # fmt: skip
    if "frame" in figs:
        lines += [f"![frame effect]({Path(figs['frame']).relative_to(base)})", ""]
    scale = c["scale"]
    sizes = {v["parameters"] for v in scale.values() if v.get("parameters")}
    lines += [f"### 7.6 Scale: {_size_range(sizes)} parameters, one frame", "",
              "Means (95% CI) in the plain frame, the one every model shares; the Qwen pair is the within-family step.", ""]
    shown = ("entropy", "distance", "prev", "sink", "topk_mass", "answer_probability")
    order = sorted(scale, key=lambda k: scale[k]["parameters"] or 0)
    rows = [[k, f"{(scale[k]['parameters'] or 0) / 1e6:.0f}M", str(scale[k]["cases"]), *(ci(scale[k]["means"][n], 2) for n in shown)] for k in order]
    lines += md_table(["model", "parameters", "cases", *shown], rows)
    if "scale" in figs:
        lines += [f"![scale]({Path(figs['scale']).relative_to(base)})", ""]
    loc = c.get("locality") or {}
    if loc:
        lines += ["Local or global, at equal length: each signature's mean predicted at the pooled mean prompt "
                  "and answer length (plain frame; OLS on the model and the length covariates, 95% CI). Longer "
                  "distance and lower previous-token share mean a more global reader.", ""]  # fmt: skip
        names = [n for n in ("distance", "prev", "entropy") if all(n in v for v in loc.values())]
        ranked = sorted(loc, key=lambda k: loc[k]["distance"]["mean"]) if "distance" in names else sorted(loc)
        lines += md_table(["model", *names], [[k, *(ci(loc[k][n], 3) for n in names)] for k in ranked])
        if "distance" in names:
            lines += [f"Most local: {ranked[0]}; most global: {ranked[-1]} (distance at equal length)."
                      + ("" if loc[ranked[0]]["distance"]["high"] < loc[ranked[-1]]["distance"]["low"]
                         else " Their intervals overlap: the order is not established."), ""]  # fmt: skip
    lines += ["### 7.7 Ambiguity: pronoun pairs", "",
              "Both cases of a pair right (one word flips the referent; a model that guesses each scores 0.25, one "
              "that repeats the prompt 0):", ""]
    lines += md_table(["condition", "pairs", "both right", "exactly one right"],
                      [[k, str(v["pairs"]), ci(v["both_right"], 2), ci(v["one_right"], 2)] for k, v in c["ambiguity"].items()])
    lines += ["### 7.8 The findings, and whether they survive", ""]
    found = findings_list(c)
    if not found:
        lines += ["No raw difference is significant.", ""]
    for f in found:
        effect = f"mean difference {ci(f['difference'])}" if f.get("difference") else f"r = {f['r']:+.2f}"
        lines += [f"- {f['table']}: {f['group']}, `{f['metric']}`: {effect}; adjusted {ci(f['adjusted'])} "
                  f"-> {'survives' if f['survives'] else 'does not survive'} the length control."]  # fmt: skip
    return lines + [""]


def _yerr(estimates: list[dict]) -> list[list[float]]:
    """Matplotlib's asymmetric error bars from {mean, low, high} estimates."""
    return [[e["mean"] - e["low"] for e in estimates], [e["high"] - e["mean"] for e in estimates]]


def control_figures(m: dict, rows: list[dict], out: Path) -> dict:
    """Length against signatures per condition, the frame effect, scale, accuracy, ambiguity."""
    plt = pyplot()
    c, figs = m["controls"], {}
    conditions = sorted({r["condition"] for r in rows})
    if rows:
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        for ax, name in zip(axes, ("entropy", "distance", "sink")):
            for cond in conditions:
                rs = [r for r in rows if r["condition"] == cond]
                ax.scatter([r["prompt_tokens"] + r["answer_tokens"] for r in rs],
                           [r["signatures"].get(name, np.nan) for r in rs], s=6, alpha=0.5, label=cond)  # fmt: skip
            ax.set_xscale("log")
            ax.set_xlabel("prompt + answer tokens (log)")
            ax.set_title(name)
        axes[0].legend(fontsize=7, markerscale=2)
        figs["length"] = save_png(fig, out, "length-confound")
    frame = [t for t in c["frame"] if t.get("difference")]
    if frame:
        groups = sorted({t["group"] for t in frame})
        fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.6), squeeze=False)
        for ax, group in zip(axes[0], groups):
            ts = [t for t in frame if t["group"] == group]
            for i, t in enumerate(ts):
                d = t["difference"]
                scaled = {k: d[k] / max(abs(d["low"]), abs(d["high"]), 1e-9) for k in ("mean", "low", "high")}
                ax.errorbar([scaled["mean"]], [i], xerr=_yerr([scaled]), fmt="o", color="#d62728" if t["survives"] else "#7f7f7f")
            ax.axvline(0, color="k", lw=0.5)
            ax.set_yticks(range(len(ts)), [t["metric"] for t in ts])
            ax.set_title(f"{group}\n(chat - plain, scaled; red: survives)", fontsize=9)
        figs["frame"] = save_png(fig, out, "frame-effect")
    scale = {k: v for k, v in c["scale"].items() if v["parameters"]}
    if scale:
        fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
        order = sorted(scale, key=lambda k: scale[k]["parameters"])
        for ax, name in zip(axes, ("entropy", "distance", "prev", "sink")):
            xs = [scale[k]["parameters"] / 1e6 for k in order]
            ms = [scale[k]["means"][name] for k in order]
            ax.errorbar(xs, [e["mean"] for e in ms], yerr=_yerr(ms), fmt="o-")
            for x, k, e in zip(xs, order, ms):
                ax.annotate(k, (x, e["mean"]), fontsize=7)
            ax.set_xscale("log")
            ax.set_xlabel("parameters (M, log)")
            ax.set_title(f"{name} (plain frame)")
        figs["scale"] = save_png(fig, out, "scale")
    acc = m["accuracy"]
    if acc:
        cats = sorted({k for a in acc.values() for k in a["by_category"]})
        fig, ax = plt.subplots(figsize=(11, 3.8))
        width = 0.8 / len(acc)
        for j, (cond, a) in enumerate(sorted(acc.items())):
            es = [a["by_category"].get(cat, {"mean": np.nan, "low": np.nan, "high": np.nan}) for cat in cats]
            xs = np.arange(len(cats)) + j * width
            ax.bar(xs, [e["mean"] for e in es], width, label=cond,
                   yerr=_yerr(es), capsize=2)  # fmt: skip
        ax.set_xticks(np.arange(len(cats)) + 0.4 - width / 2, [cat.replace("_", "\n") for cat in cats], fontsize=8)
        ax.set_ylabel("share of answers passing the check")
        ax.legend(fontsize=7, ncol=2)
        figs["accuracy"] = save_png(fig, out, "accuracy")
    amb = {k: v for k, v in c["ambiguity"].items() if v["pairs"]}
    if amb:
        fig, ax = plt.subplots(figsize=(7, 3.2))
        ks = sorted(amb)
        es = [amb[k]["both_right"] for k in ks]
        ax.barh(ks, [e["mean"] for e in es], xerr=_yerr(es))
        ax.axvline(0.25, color="k", ls="--", lw=0.8, label="guessing (0.25)")
        ax.set_xlabel("pronoun pairs with both cases right")
        ax.legend(fontsize=7)
        figs["ambiguity"] = save_png(fig, out, "ambiguity")
    return figs
