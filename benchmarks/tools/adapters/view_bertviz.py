"""BertViz head view: eager attention of every layer, written as the HTML `head_view` returns.

Run by the harness in BertViz's own venv: `python view_bertviz.py INPUT.json OUT_DIR`; prints one JSON line.
"""

import json
import sys
import time
from pathlib import Path

import torch
from bertviz import head_view
from transformers import AutoModel, AutoTokenizer

spec = json.loads(Path(sys.argv[1]).read_text())
started = time.perf_counter()
tokenizer = AutoTokenizer.from_pretrained(spec["folder"])
model = AutoModel.from_pretrained(spec["folder"], attn_implementation="eager")
ids = torch.tensor([spec["ids"]])
with torch.inference_mode():
    attention = model(ids, output_attentions=True).attentions
tokens = tokenizer.convert_ids_to_tokens(spec["ids"])
html = head_view(attention, tokens, html_action="return")
out = Path(sys.argv[2]) / "bertviz.html"
out.write_text(html.data)
print(json.dumps({"output": str(out), "seconds": time.perf_counter() - started}))
