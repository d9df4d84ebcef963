"""Inspectus attention view. Inspectus only calls IPython's `display`, so outside a notebook the
HTML it displays is collected by replacing `IPython.display.display` and written to a file.

Run by the harness in Inspectus's own venv: `python view_inspectus.py INPUT.json OUT_DIR`; prints one JSON line.
"""

import json
import sys
import time
from pathlib import Path

import inspectus
import IPython.display
import torch
from transformers import AutoModel, AutoTokenizer

shown = []
IPython.display.display = lambda *objects: shown.extend(o.data for o in objects)

spec = json.loads(Path(sys.argv[1]).read_text())
started = time.perf_counter()
tokenizer = AutoTokenizer.from_pretrained(spec["folder"])
model = AutoModel.from_pretrained(spec["folder"], attn_implementation="eager")
with torch.inference_mode():
    attention = model(torch.tensor([spec["ids"]]), output_attentions=True).attentions
inspectus.attention(attention, tokenizer.convert_ids_to_tokens(spec["ids"]))
out = Path(sys.argv[2]) / "inspectus.html"
out.write_text('<!doctype html><meta charset="utf-8">' + "".join(shown))
print(json.dumps({"output": str(out), "seconds": time.perf_counter() - started}))
