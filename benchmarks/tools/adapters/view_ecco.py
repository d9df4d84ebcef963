"""Ecco's input-saliency view (grad x input) of one generated token, the view its README shows.

Ecco collects attention (`attention=True`), but its attention view cannot be drawn in 0.1.2:
`output.attention()` raises in Ecco's own code after a forward pass (output.py line 595,
`int(self.token_ids[idx])` on a row of ids: ValueError) and after `generate` (line 582: no
attentions kept, TypeError; with `output_attentions=True`, line 584 sums a tuple of steps:
AttributeError), so the closest view it has is the saliency one.
Ecco only calls IPython's `display`; outside a notebook what it displays (HTML, and JavaScript,
which a notebook runs) is collected into a page, like Inspectus. `generate` works for causal LMs
only (`assert self.model_type in ['enc-dec', 'causal']`).

Run by the harness in Ecco's own venv (transformers 4.46, see envs.py):
`python view_ecco.py INPUT.json OUT_DIR`; prints one JSON line.
"""

import json
import sys
import time
from pathlib import Path

import ecco
import IPython.display

shown = []
IPython.display.display = lambda *objects: shown.extend(
    f"<script>{o.data}</script>" if isinstance(o, IPython.display.Javascript) else o.data for o in objects
)

spec = json.loads(Path(sys.argv[1]).read_text())
started = time.perf_counter()
# Ecco knows models by hub name (its model-config.yaml); a local folder needs its own model_config
model_type = json.loads((Path(spec["folder"]) / "config.json").read_text())["model_type"]
embedding, activations, prefix, partial = {
    "gpt2": ("transformer.wte.weight", r"mlp\.c_proj", "Ġ", ""),
    "llama": ("model.embed_tokens.weight", r"mlp\.down_proj", "Ġ", ""),
    "gemma3_text": ("model.embed_tokens.weight", r"mlp\.down_proj", "▁", ""),
    "bert": ("embeddings.word_embeddings.weight", r"\d+\.output\.dense", "", "##"),
}[model_type]
config = {
    "embedding": embedding, "type": "mlm" if spec["kind"] == "encoder" else "causal", "activations": [activations],
    "token_prefix": prefix, "partial_token_prefix": partial,
}
lm = ecco.from_pretrained(spec["folder"], model_config=config, attention=True, gpu=False, verbose=False)
# Ecco passes int token ids to a transformers helper that takes tensors since 4.41 (lm.py line 300);
# with no pad token it returns the plain mask first (one sequence, no padding)
lm.model.config.pad_token_id = None
output = lm.generate(spec["text"], generate=1, do_sample=False, attribution=["grad_x_input"])
output.primary_attributions(attr_method="grad_x_input")
out = Path(sys.argv[2]) / "ecco.html"
out.write_text('<!doctype html><meta charset="utf-8">' + "".join(shown))
print(json.dumps({"output": str(out), "seconds": time.perf_counter() - started}))
