"""The evaluation report's figures, each as a PNG (matplotlib) and an interactive HTML (plotly).

The HTML files share one copy of plotly.js written beside them (include_plotlyjs="directory"),
so they open offline and the folder stays small.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from attnlens.evaluation.suite import SOURCES

COLOURS = {"attnlens": "#d62728", "head_weights": "#e377c2", "context_cite": "#17becf", "last_layer": "#1f77b4",
           "mean": "#2ca02c", "rollout": "#9467bd", "grad_x_input": "#8c564b", "loo": "#ff7f0e",
           "random": "#7f7f7f"}  # fmt: skip
BARS = ("aopc_comprehensiveness_eraser", "aopc_sufficiency_eraser", "tau_loo")
HEATMAPS = ("entropy", "distance", "sink", "induction")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, out: Path, name: str) -> Path:
    """The figure as OUT/NAME.png (tight layout, 110 dpi), then closed."""
    plt = pyplot()
    fig.tight_layout()
    path = out / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _save(fig_png, fig_html, out: Path, name: str) -> dict:
    save_png(fig_png, out, name)
    fig_html.write_html(out / f"{name}.html", include_plotlyjs="directory", full_html=True)
    return {"png": f"{name}.png", "html": f"{name}.html"}


def faithfulness_bars(metrics: dict, ablation: str, out: Path) -> dict:
    import plotly.graph_objects as go

    plt = pyplot()
    table = metrics["faithfulness"][ablation]
    fig, axes = plt.subplots(1, len(BARS), figsize=(4.2 * len(BARS), 3.6))
    html = go.Figure()
    for ax, metric in zip(axes, BARS):
        means = [table[s][metric]["mean"] for s in SOURCES]
        err = np.array([[table[s][metric]["mean"] - table[s][metric]["low"], table[s][metric]["high"] - table[s][metric]["mean"]] for s in SOURCES]).T
        ax.bar(range(len(SOURCES)), means, yerr=err, color=[COLOURS[s] for s in SOURCES], capsize=3)
        ax.set_xticks(range(len(SOURCES)), SOURCES, rotation=40, ha="right", fontsize=8)
        arrow = "↓" if "sufficiency" in metric else "↑"
        ax.set_title(f"{metric} {arrow}", fontsize=9)
        ax.axhline(0, color="black", lw=0.5)
        html.add_trace(go.Bar(name=metric, x=list(SOURCES), y=means,
                              error_y={"type": "data", "symmetric": False, "array": err[1], "arrayminus": err[0]}))  # fmt: skip
    fig.suptitle(f"faithfulness by explanation source ({ablation}), mean and 95% bootstrap interval", fontsize=10)
    html.update_layout(barmode="group", title=f"faithfulness by source ({ablation})")
    return _save(fig, html, out, f"faithfulness_{ablation}")


def ranking_curves(rows: list[dict], ablation: str, out: Path, kind: str = "deletion") -> dict:
    """Mean deletion curves (`curves`: lower is more faithful) or insertion curves (`insertion`: higher is)."""
    import plotly.graph_objects as go

    key, verb, better = ("curves", "removed", "lower") if kind == "deletion" else ("insertion", "kept", "higher")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    html = go.Figure()
    x = np.linspace(0, 1, 11)
    for source in SOURCES:
        curves = [r[key][ablation][source] for r in rows if source in r.get(key, {}).get(ablation, {})]
        curves = [c for c in curves if len(c) == len(x) and np.all(np.isfinite(c))]
        if not curves:
            continue
        mean = np.mean(curves, axis=0)
        ax.plot(x, mean, label=f"{source} (n={len(curves)})", color=COLOURS[source], lw=2.2 if source == "attnlens" else 1.2)
        html.add_trace(go.Scatter(x=x, y=mean, name=source, line={"color": COLOURS[source]}))
    ax.set_xlabel(f"share of user tokens {verb}, most important first")
    ax.set_ylabel("f / f(x)")
    ax.set_title(f"{kind} curves ({ablation}); {better} = more faithful ranking", fontsize=9)
    ax.legend(fontsize=7)
    html.update_layout(title=f"{kind} curves ({ablation})", xaxis_title=f"share {verb}", yaxis_title="f / f(x)")
    name = f"curves_{ablation}" if kind == "deletion" else f"insertion_{ablation}"
    return _save(fig, html, out, name)


def signature_maps(metrics: dict, model: str, out: Path) -> dict:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    plt = pyplot()
    sig = metrics["signatures"][model]
    maps = {name: np.asarray(sig["heads"][name]) for name in HEATMAPS[:-1] if name in sig["heads"]}
    if sig["induction"]:
        maps["induction"] = np.asarray(sig["induction"])
    fig, axes = plt.subplots(1, len(maps), figsize=(3.3 * len(maps), 4.2))
    axes = np.atleast_1d(axes)
    html = make_subplots(rows=1, cols=len(maps), subplot_titles=list(maps))
    for j, (ax, (name, values)) in enumerate(zip(axes, maps.items())):
        im = ax.imshow(values, aspect="auto", cmap="viridis", origin="lower")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        fig.colorbar(im, ax=ax, fraction=0.046)
        html.add_trace(go.Heatmap(z=values, colorscale="Viridis", showscale=False, name=name), row=1, col=j + 1)
    fig.suptitle(f"{model}: attention signatures per layer x head (mean over {sig['cases']} cases)", fontsize=10)
    html.update_layout(title=f"{model}: attention signatures per layer x head")
    return _save(fig, html, out, f"signatures_{model}")


def correct_vs_incorrect(rows: list[dict], model: str, out: Path) -> dict | None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    plt = pyplot()
    names = ("entropy", "gini", "sink", "answer_probability")
    rs = [r for r in rows if r["model"] == model and r["correct"] is not None]
    if not any(r["correct"] for r in rs) or all(r["correct"] for r in rs):
        return None
    fig, axes = plt.subplots(1, len(names), figsize=(3 * len(names), 3.2))
    html = make_subplots(rows=1, cols=len(names), subplot_titles=names)
    for j, (ax, name) in enumerate(zip(axes, names)):
        groups = []
        for flag in (True, False):
            vals = [(r["answer_probability"] if name == "answer_probability" else r["signatures"].get(name)) for r in rs if r["correct"] == flag]
            groups.append([v for v in vals if v is not None and np.isfinite(v)])
            html.add_trace(go.Box(y=groups[-1], name="correct" if flag else "incorrect", showlegend=j == 0), row=1, col=j + 1)
        ax.boxplot(groups, tick_labels=[f"correct\n(n={len(groups[0])})", f"incorrect\n(n={len(groups[1])})"])
        ax.set_title(name, fontsize=9)
    fig.suptitle(f"{model}: correct vs incorrect answers", fontsize=10)
    return _save(fig, html, out, f"correct_{model}")


def write_all(metrics: dict, rows: list[dict], out: Path) -> dict[str, dict]:
    """Every figure the report links, by name."""
    ok = [r for r in rows if not r.get("error")]
    figures = {}
    for ablation in metrics["faithfulness"]:
        figures[f"faithfulness_{ablation}"] = faithfulness_bars(metrics, ablation, out)
        figures[f"curves_{ablation}"] = ranking_curves(ok, ablation, out)
        if any(r.get("insertion", {}).get(ablation) for r in ok):
            figures[f"insertion_{ablation}"] = ranking_curves(ok, ablation, out, "insertion")
    for model in metrics["signatures"]:
        figures[f"signatures_{model}"] = signature_maps(metrics, model, out)
        fig = correct_vs_incorrect(ok, model, out)
        if fig:
            figures[f"correct_{model}"] = fig
    return figures
