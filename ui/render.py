"""HTML and plot rendering for the Gradio app.

Every piece of user or model text (prompt, answer, tokens, labels, rationales, errors) goes through
`html.escape` before it becomes HTML; no template engine ever sees it. The HTML has no raw newline,
so the chat's Markdown renderer treats each message as one HTML block and never re-interprets the
text inside it. Plots are small plotly figures built from the record's aggregates; per-head data is
rendered only for the one head asked for.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from attnlens.extraction.record import AttentionRecord
from attnlens.pipeline.explanation import Explanation
from attnlens.pipeline.views import colour, text_html

MAX_LABELLED = 80  # graphs up to this many tokens show each token's text beside its vertex

# (record array, what the grid shows) for the layer x head grid.
HEAD_STATS: dict[str, tuple[str, str]] = {
    "entropy": ("head_entropy", "mean entropy of the head's attention rows (nats): low = focused, high = spread out"),
    "sink mass": ("head_sink", "mean share of the head's attention on token 0, the attention sink"),
    "locality": ("head_distance", "mean distance (in tokens) between a query and what it attends to: low = local"),
}


def message_html(text: str) -> str:
    """A plain chat message (a question or an answer)."""
    return f'<div class="al-msg">{text_html(text)}</div>'


def error_html(message: str) -> str:
    return f'<div class="al-msg al-error">&#9888; {text_html(message)}</div>'


def _label(text: str, index: int) -> str:
    """A unique axis label for a token (plotly merges equal category labels)."""
    return f"{index}:{text.strip() or repr(text)[1:-1]}"


def _figure(title: str, height: int = 360) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10), template="plotly_white")
    return fig


def answer_heatmap(explanation: Explanation, mode: str) -> go.Figure:
    """Answer tokens (rows) x prompt tokens (columns): the answer rows averaged over layers and heads
    ("aggregate") or attention rollout's rows ("rollout"); the sink (token 0) set aside."""
    record = explanation.record
    gen = record.generation
    queries = [t - 1 for t in gen.answer_indices]  # the query that produced answer token t is t - 1
    if mode == "rollout":
        if "rollout" not in record:
            raise ValueError(f"no rollout for this record ({record.info.get('rollout', 'not captured')})")
        rows = record["rollout"][queries].float().numpy()
    else:
        rows = record.answer_rows().float().mean((0, 1)).numpy()
    keys = list(range(1, gen.answer_start))
    sink = float(rows[:, 0].mean()) if len(rows) else 0.0
    fig = _figure(f"answer -> prompt attention ({mode}); the sink token 0 holds {sink:.0%}, not shown")
    fig.add_trace(
        go.Heatmap(
            z=np.round(rows[:, keys], 4),
            x=[_label(gen.tokens[k].text, k) for k in keys],
            y=[_label(gen.tokens[t].text, t) for t in gen.answer_indices],
            colorscale="Blues",
            hovertemplate="%{y} -> %{x}: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def head_grid(record: AttentionRecord, stat: str) -> pd.io.formats.style.Styler:
    """The layer x head grid of one per-head statistic, shaded by value; a cell is clickable in the app."""
    values = record[HEAD_STATS[stat][0]].float().numpy()
    frame = pd.DataFrame(np.round(values, 3), columns=[f"head {h}" for h in range(values.shape[1])])
    frame.insert(0, "layer", range(values.shape[0]))
    return frame.style.background_gradient(cmap="YlOrRd", subset=list(frame.columns[1:]), axis=None).format(
        precision=3, subset=list(frame.columns[1:])
    )


def head_pattern(record: AttentionRecord, layer: int, head: int) -> go.Figure:
    """One head's captured query rows (the answer's producing queries) over every token."""
    arch = record.architecture
    if not (0 <= layer < arch.layers and 0 <= head < arch.heads):
        raise ValueError(f"no head ({layer}, {head}): the model has {arch.layers} layers x {arch.heads} heads")
    tokens = record.generation.tokens
    rows = record["rows"][layer, head].float().numpy()
    positions = record["row_positions"].tolist()
    group = head // arch.heads_per_kv_group
    fig = _figure(f"layer {layer}, head {head} (KV group {group}): its captured query rows over all tokens")
    fig.add_trace(
        go.Heatmap(
            z=np.round(rows, 4),
            x=[_label(t.text, t.index) for t in tokens],
            y=[f"query {_label(tokens[p].text, p)}" for p in positions],
            colorscale="Viridis",
            hovertemplate="%{y} -> %{x}: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def graph_figure(explanation: Explanation) -> go.Figure:
    """The pruned token graph, laid out by a fixed-seed spring layout, vertices coloured by cluster."""
    clustering = explanation.clustering
    graph = clustering.graph
    layout = nx.spring_layout(graph.to_networkx(), seed=0, weight="weight")
    fig = _figure(f"pruned graph: {len(graph.nodes)} tokens, {graph.edge_count} edges", height=480)
    xs, ys = [], []
    for a, b in graph.edges:
        xs += [layout[a][0], layout[b][0], None]
        ys += [layout[a][1], layout[b][1], None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(width=0.5, color="#bbbbbb"), hoverinfo="skip", showlegend=False))
    labels = {c.id: explanation.agent.rationales[c.id].label for c in clustering.clusters}
    for c in clustering.clusters:
        fig.add_trace(
            go.Scatter(
                x=[round(float(layout[t][0]), 4) for t in c.tokens],
                y=[round(float(layout[t][1]), 4) for t in c.tokens],
                mode="markers+text" if len(graph.nodes) <= MAX_LABELLED else "markers",
                marker=dict(size=10, color=colour(c.id), line=dict(width=1, color="#555555")),
                name=f"{c.id}: {labels[c.id]}"[:40],
                text=[_label(explanation.generation.tokens[t].text, t) for t in c.tokens],
                textposition="top center",
                textfont=dict(size=9, color="#444444"),
                hovertemplate="%{text}<extra>cluster " + str(c.id) + "</extra>",
            )
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def sweep_figure(explanation: Explanation) -> go.Figure:
    """Modularity over the threshold x resolution sweep; the chosen cell is ringed, fragmented cells marked."""
    clustering = explanation.clustering
    thresholds = sorted({p.threshold for p in clustering.sweep if p.threshold is not None}, reverse=True)
    resolutions = sorted({p.resolution for p in clustering.sweep})
    z = np.full((max(len(thresholds), 1), len(resolutions)), np.nan)
    text = np.full(z.shape, "", dtype=object)
    edges = {}
    for p in clustering.sweep:
        i = thresholds.index(p.threshold) if p.threshold is not None else 0
        j = resolutions.index(p.resolution)
        z[i, j] = round(p.modularity, 4)
        text[i, j] = f"{p.clusters} clusters" + ("" if p.eligible else " (fragmented)")
        edges[i] = p.edges
    y = [f"t={t:.4f} ({edges.get(i, 0)} edges)" for i, t in enumerate(thresholds)] or ["unpruned"]
    fig = _figure("modularity of the partition found, per pruning threshold and Leiden resolution")
    fig.add_trace(
        go.Heatmap(
            z=z, x=[f"r={r:g}" for r in resolutions], y=y, text=text, colorscale="Greens",
            hovertemplate="%{y}, %{x}: modularity %{z:.3f}, %{text}<extra></extra>",
        )
    )
    if clustering.threshold in thresholds or not thresholds:
        chosen_y = y[thresholds.index(clustering.threshold)] if thresholds else y[0]
        fig.add_trace(
            go.Scatter(
                x=[f"r={clustering.resolution:g}"], y=[chosen_y], mode="markers", name="chosen",
                marker=dict(symbol="circle-open", size=22, color="#d62728", line=dict(width=3)),
            )
        )
    fig.update_yaxes(autorange="reversed")
    return fig
