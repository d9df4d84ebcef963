"""CircuitsVis attention patterns of the last layer, from a TransformerLens cache (TransformerBridge).

The HTML is CircuitsVis's offline variant (`__html__`: its JavaScript inlined, what a notebook
shows when there is no internet; `str()` would load it from unpkg.com).
Run by the harness in the tool's own venv: `python view_circuitsvis.py INPUT.json OUT_DIR`; prints one JSON line.
"""

import json
import sys
import time
from pathlib import Path

import circuitsvis as cv
import torch
from transformer_lens import TransformerBridge

spec = json.loads(Path(sys.argv[1]).read_text())
started = time.perf_counter()
bridge = TransformerBridge.boot_transformers(spec["folder"])
with torch.inference_mode():
    _, cache = bridge.run_with_cache(torch.tensor([spec["ids"]]))
last = bridge.cfg.n_layers - 1
html = cv.attention.attention_patterns(
    tokens=bridge.tokenizer.convert_ids_to_tokens(spec["ids"]), attention=cache["pattern", last][0]
)
out = Path(sys.argv[2]) / "circuitsvis.html"
out.write_text('<!doctype html><meta charset="utf-8">' + html.__html__())
print(json.dumps({"output": str(out), "seconds": time.perf_counter() - started}))
