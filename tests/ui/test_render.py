"""The chat's HTML: every piece of user or model text is escaped, clusters get distinct colours."""

import re

from attnlens.pipeline.views import PALETTE, explanation_html
from attnlens.ui.render import error_html, message_html

PROBE = "<img src=x onerror=alert(1)>"


def explanation(label: str = "<b>label</b>", rationale: str = PROBE) -> dict:
    """An `attnlens explain --json` object with hostile text everywhere."""
    texts = [("<|im_start|>", "prompt", "template"), ("What", "prompt", "user"), (" <script>", "prompt", "user"),
             ("?", "prompt", "user"), (" Yes\n\n", "answer", "answer"), ("&amp;", "answer", "answer")]
    tokens = [{"index": i, "text": t, "role": r, "segment": s} for i, (t, r, s) in enumerate(texts)]
    cluster = {"label": label, "rationale": rationale, "evidence_tokens": [], "comprehensiveness": 0.1, "sufficiency": -0.2,
               "random_comprehensiveness": 0.05, "random_comprehensiveness_sd": 0.01, "words": ["What", "<script>"]}
    return {
        "model": "m", "prompt": "What <script>?", "answer": " Yes\n\n&amp;", "tokens": tokens,
        "graph": {"threshold": 0.1, "resolution": 1.0, "modularity": 0.4, "edges": 3, "sink_share": 0.3, "source": "<i>"},
        "clusters": [
            {**cluster, "id": 0, "token_indices": [1, 2], "source": "llm", "importance": 0.6},
            {**cluster, "id": 1, "token_indices": [3, 4, 5], "source": "template", "importance": 0.4},
        ],
        "scores": {"comprehensiveness": 0.1, "sufficiency": 0.2, "random_comprehensiveness": 0.0, "grounding": 0.5,
                   "random_comprehensiveness_sd": 0.0, "random_draws": 8, "cluster_id": 0},
        "timings_s": {"generate": 1.0, "agent": 2.0},
    }


def test_explanation_escapes_every_text_and_has_no_raw_newline():
    html = explanation_html(explanation())
    assert "<script>" not in html and "<img" not in html and "<b>label</b>" not in html and "<i>" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&amp;amp;" in html  # the token "&amp;" shows as typed
    assert "\n" not in html  # one HTML block: Markdown never re-reads the text inside
    assert "im_start" not in html  # chat-template scaffolding is not shown


def test_each_cluster_has_a_line_a_colour_and_template_rationales_are_marked():
    html = explanation_html(explanation())
    lines = re.findall(r"<li>.*?</li>", html)
    assert len(lines) == 2
    assert "template" not in lines[0] and 'class="al-template"' in lines[1]
    assert "effect +0.100 (random +0.050 ± 0.010)" in lines[0] and "attention 60.0%" in lines[0]
    assert html.count(f"background:{PALETTE[0]}") == 3  # two tokens and the swatch
    assert html.count(f"background:{PALETTE[1]}") == 4  # three tokens and the swatch


def test_plain_messages_and_errors_are_escaped():
    assert message_html(f"a\n{PROBE}") == '<div class="al-msg">a<br>&lt;img src=x onerror=alert(1)&gt;</div>'
    assert "<img" not in error_html(PROBE)
