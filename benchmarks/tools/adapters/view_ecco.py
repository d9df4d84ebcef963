"""Ecco, written from its README (its install fails here, so this never ran): Ecco collects
attention (`attention=True`) but its views are saliency and activations; the closest one is the
input-saliency view of one generated token, collected from IPython's `display` like Inspectus.

Run by the harness in Ecco's own venv: `python view_ecco.py INPUT.json OUT_DIR`; prints one JSON line.
"""

import json
import sys
import time
from pathlib import Path

import ecco
import IPython.display

shown = []
IPython.display.display = lambda *objects: shown.extend(getattr(o, "data", "") or "" for o in objects)

spec = json.loads(Path(sys.argv[1]).read_text())
started = time.perf_counter()
config = {"embedding": "model.embed_tokens.weight", "type": "causal", "activations": [], "token_prefix": "Ġ", "partial_token_prefix": ""}
lm = ecco.from_pretrained(spec["folder"], model_config=config, attention=True, gpu=False)
output = lm.generate(spec["text"], generate=1, do_sample=False, attribution=["grad_x_input"])
output.primary_attributions(attr_method="grad_x_input")
out = Path(sys.argv[2]) / "ecco.html"
out.write_text('<!doctype html><meta charset="utf-8">' + "".join(str(s) for s in shown))
print(json.dumps({"output": str(out), "seconds": time.perf_counter() - started}))
