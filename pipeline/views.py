"""Views of an explanation: self-contained HTML (notebooks, the app's chat) and a rich terminal view.

Every piece of user or model text (prompt, answer, tokens, labels, rationales) goes through
`html.escape` (or rich's `escape`) before it is shown; no template engine ever sees it. The HTML
has no raw newline, so a Markdown renderer (the app's chat) treats it as one HTML block and never
re-interprets the text inside it.
"""

from __future__ import annotations

import html

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Distinct, light enough to read black text on (Tableau 10, lightened); clusters past it are grey.
PALETTE = (
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#d9d9d9",
)
OTHER = "#eeeeee"

CSS = """
.al-msg { white-space: pre-wrap; line-height: 1.7; }
.al-tok { border-radius: 3px; padding: 0 1px; }
.al-clusters { margin: 6px 0 0 0; padding-left: 0; list-style: none; }
.al-clusters li { margin: 3px 0; }
.al-swatch { display: inline-block; min-width: 1.4em; text-align: center; border-radius: 3px; font-weight: bold; color: #222; }
.al-template { font-size: 0.8em; border: 1px solid #999; border-radius: 3px; padding: 0 3px; color: #555; }
.al-scores { font-size: 0.9em; color: #444; margin-top: 4px; }
.al-error { color: #b00020; }
.al-note { font-size: 0.9em; color: #555; }
"""


def colour(cluster_id: int) -> str:
    return PALETTE[cluster_id] if 0 <= cluster_id < len(PALETTE) else OTHER


def text_html(text: str) -> str:
    """Escaped text with newlines as <br>: safe inside a chat message and free of raw newlines."""
    return html.escape(text).replace("\r\n", "<br>").replace("\n", "<br>")


def _tokens_html(data: dict, role: str, colour_of: dict[int, str]) -> str:
    parts = []
    for t in data["tokens"]:
        if t["role"] != role or t["segment"] == "template":
            continue
        shown = text_html(t["text"])
        if t["index"] in colour_of:
            parts.append(f'<span class="al-tok" style="background:{colour_of[t["index"]]}">{shown}</span>')
        else:
            parts.append(shown)
    return "".join(parts)


def effect_text(row: dict) -> str:
    """How much deleting a cluster's words lowers the answer's probability, beside random word sets of its size."""
    random = row.get("random_comprehensiveness")
    beside = "" if random is None else f" (random {random:+.3f} ± {row.get('random_comprehensiveness_sd') or 0:.3f})"
    return f"effect {row['comprehensiveness']:+.3f}{beside}"


def explanation_html(data: dict) -> str:
    """The chat reply to "why did you say this?": the text with its clusters highlighted, then one
    line per cluster (label, rationale, importance, faithfulness; template rationales marked)."""
    colour_of = {t: colour(c["id"]) for c in data["clusters"] for t in c["token_indices"]}
    lines = []
    for c in data["clusters"]:
        template = (
            ' <span class="al-template" title="no LLM draft passed the checks: built from the evidence alone">'
            "template</span>"
            if c["source"] == "template"
            else ""
        )
        lines.append(
            f'<li><span class="al-swatch" style="background:{colour(c["id"])}">{c["id"]}</span> '
            f"<b>{html.escape(c['label'])}</b>{template}: {text_html(c['rationale'])} "
            f'<span class="al-note">{effect_text(c)} &middot; attention {c["importance"]:.1%}</span></li>'
        )
    sc, g = data["scores"], data["graph"]
    scores = (
        f"Clusters are ordered by measured effect: deleting the words of cluster 0 lowers the answer's probability "
        f"by {sc['comprehensiveness']:+.3f}, a random set of as many of the user's words by "
        f"{sc['random_comprehensiveness']:+.3f} (sd {sc['random_comprehensiveness_sd']:.3f}, {sc['random_draws']} draws); "
        f"rationales grounded {sc['grounding']:.0%}. Graph: {g['edges']} edges, "
        f"threshold {g['threshold']:.4f}, resolution {g['resolution']:g}, modularity {g['modularity']:.3f}, "
        f"source {html.escape(str(g.get('source', '')))}; the sink holds {g['sink_share']:.0%} of the attention. "
        f"Took {sum(data['timings_s'].values()):.1f} s ("
        + ", ".join(f"{html.escape(k)} {v:.1f}" for k, v in data["timings_s"].items())
        + ")."
    )
    return (
        '<div class="al-msg">'
        f"<b>prompt:</b> {_tokens_html(data, 'prompt', colour_of)}<br>"
        f"<b>answer:</b> {_tokens_html(data, 'answer', colour_of)}"
        f'<ol class="al-clusters">{"".join(lines)}</ol>'
        f'<div class="al-scores">{scores}</div>'
        "</div>"
    )


def page_html(data: dict) -> str:
    """explanation_html with its stylesheet: a self-contained fragment for a notebook cell."""
    return f"<style>{CSS}</style>{explanation_html(data)}"


TERMINAL_COLOURS = ("red", "green", "blue", "magenta", "cyan", "yellow", "bright_red", "bright_green")


def show(data: dict, console: Console | None = None) -> None:
    """The readable rendering in a terminal: the text with its clusters coloured, one line per cluster."""
    console = console or Console()
    colour_of = {}
    for row in data["clusters"][: len(TERMINAL_COLOURS)]:
        for t in row["token_indices"]:
            colour_of[t] = TERMINAL_COLOURS[row["id"]]

    def shown(role: str) -> str:
        return "".join(
            f"[{colour_of[t['index']]}]{escape(t['text'])}[/]" if t["index"] in colour_of else escape(t["text"])
            for t in data["tokens"]
            if t["role"] == role and t["segment"] != "template"
        )

    console.rule(f"{escape(data['model'])}: why did the model say this?")
    console.print(f"[bold]prompt:[/] {shown('prompt')}\n[bold]answer:[/] {shown('answer')}")
    table = Table("#", "words", "label", "rationale", "effect", "random", "suff.", "source")
    for row in data["clusters"]:
        colour = TERMINAL_COLOURS[row["id"]] if row["id"] < len(TERMINAL_COLOURS) else "white"
        random = row.get("random_comprehensiveness")
        table.add_row(
            f"[{colour}]{row['id']}[/]", escape(" ".join(row.get("words", []))), escape(row["label"]),
            escape(row["rationale"]), f"{row['comprehensiveness']:+.3f}",
            "" if random is None else f"{random:+.3f} ± {row.get('random_comprehensiveness_sd') or 0:.3f}",
            f"{row['sufficiency']:+.3f}", row["source"],
        )
    console.print(table)
    sc, g = data["scores"], data["graph"]
    console.print(
        f"effect = fall of the answer's probability when the cluster's words are deleted; random = the same for "
        f"{sc['random_draws']} random sets of as many of the user's words (mean ± sd). Cluster 0: "
        f"{sc['comprehensiveness']:+.3f} vs {sc['random_comprehensiveness']:+.3f}; grounding {sc['grounding']:.0%}; "
        f"graph: {g['edges']} edges, modularity {g['modularity']:.3f}, sink share {g['sink_share']:.0%}"
    )
    console.print("timings: " + ", ".join(f"{escape(k)} {v:.1f} s" for k, v in data["timings_s"].items()))
