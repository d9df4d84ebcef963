"""attnlens: capture (fast attention, only what is needed) and a small self-contained HTML view.

The view shades every token by the attention the last 32 query rows (the [CLS] row of an encoder)
give it, averaged over layers and heads, with the sink (token 0) set aside and reported, plus the
layer x head entropy grid. Run by the harness in the project's venv:
`python view_attnlens.py INPUT.json OUT_DIR`; prints one JSON line.
"""

import html
import json
import sys
import time
from pathlib import Path

from attnlens.benchmarks.extraction import ANSWER_ROWS
from attnlens.extraction import CaptureConfig, capture_ids, load_model

spec = json.loads(Path(sys.argv[1]).read_text())
started = time.perf_counter()
lm = load_model(spec["folder"])
n = len(spec["ids"])
rows = [0] if spec["kind"] == "encoder" else list(range(max(0, n - ANSWER_ROWS), n))
[(arrays, _)], _ = capture_ids(lm.model, lm.architecture, [spec["ids"]], [rows], CaptureConfig())
share = arrays["rows"].mean((0, 1, 2))
sink = share[0].item()
share[0] = 0
share = share / share.max()
spans = "".join(
    f'<span title="{i}" style="background:rgba(214,39,40,{s:.3f})">{html.escape(lm.tokenizer.decode([t]))}</span>'
    for i, (t, s) in enumerate(zip(spec["ids"], share.tolist()))
)
entropy = arrays["head_entropy"]
grid = "".join(
    "<tr>" + f"<th>L{layer}</th>" + "".join(
        f'<td style="background:rgba(31,119,180,{1 - e / entropy.max().item():.3f})">{e:.2f}</td>' for e in row
    ) + "</tr>"
    for layer, row in enumerate(entropy.tolist())
)
page = (
    '<!doctype html><meta charset="utf-8"><title>attnlens</title>'
    "<style>body{font:14px sans-serif;margin:1em}p{white-space:pre-wrap;line-height:1.6}td{padding:2px 4px}</style>"
    f"<h3>{html.escape(spec['model'])}: what the last {len(rows)} queries attend to ({n} tokens; sink token 0 holds {sink:.0%})</h3>"
    f"<p>{spans}</p><h3>head entropy (nats), layer x head</h3><table>{grid}</table>"
)
out = Path(sys.argv[2]) / "attnlens.html"
out.write_text(page)
print(json.dumps({"output": str(out), "seconds": time.perf_counter() - started}))
