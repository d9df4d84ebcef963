"""inseq with its "attention" method: the attribution of one generated token to the input text,
shown as the HTML `show(return_html=True)` returns. inseq takes text and tokenizes it itself.

Run by the harness in inseq's own venv: `python view_inseq.py INPUT.json OUT_DIR`; prints one JSON line.
"""

import json
import sys
import time
from pathlib import Path

import inseq

spec = json.loads(Path(sys.argv[1]).read_text())
started = time.perf_counter()
model = inseq.load_model(spec["folder"], "attention")
attribution = model.attribute(spec["text"], generation_args={"max_new_tokens": 1})
html = attribution.show(display=False, return_html=True)
out = Path(sys.argv[2]) / "inseq.html"
out.write_text('<!doctype html><meta charset="utf-8">' + html)
print(json.dumps({"output": str(out), "seconds": time.perf_counter() - started}))
