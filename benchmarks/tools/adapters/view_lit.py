"""LIT's Attention module: our HF model wrapped as a LIT model that returns one AttentionHeads
field per layer, served by LIT's own server (127.0.0.1, a free port) with a layout that shows
the Attention module, the input already selected through the URL.

LIT 1.1.1: the Attention module was removed in 1.2 (the current 1.3.1 draws no AttentionHeads).
LIT takes text and the wrapper tokenizes it. The server computes the predictions at start
(`warm_start=1.0`, cached); a thread then asks the server for what the Attention module asks for
(the tokens and the first layer's heads: the JSON the browser downloads, written as the output),
prints the result line with the view's URL and leaves the server running: the harness opens the
URL in Chromium, clicks the collapsed Attention module open (LIT collapses it by default), then
stops this process.

Run by the harness in LIT's own venv: `python view_lit.py INPUT.json OUT_DIR`; prints one JSON line.
"""

import json
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import portpicker
import torch
from absl import flags
from lit_nlp import dev_server, server_flags
from lit_nlp.api import dataset as lit_dataset
from lit_nlp.api import layout
from lit_nlp.api import model as lit_model
from lit_nlp.api import types as lit_types
from lit_nlp.lib import caching
from transformers import AutoModel, AutoTokenizer

spec = json.loads(Path(sys.argv[1]).read_text())
started = time.perf_counter()
tokenizer = AutoTokenizer.from_pretrained(spec["folder"])
hf_model = AutoModel.from_pretrained(spec["folder"], attn_implementation="eager")


class AttentionModel(lit_model.Model):
    """Tokens and every layer's attention heads for a text."""

    def input_spec(self):
        return {"text": lit_types.TextSegment()}

    def output_spec(self):
        heads = lit_types.AttentionHeads(align_in="tokens", align_out="tokens")
        return {"tokens": lit_types.Tokens(parent="text"),
                **{f"layer_{i}/attention": heads for i in range(hf_model.config.num_hidden_layers)}}

    def predict(self, inputs, **kw):
        outputs = []
        for example in inputs:
            ids = tokenizer(example["text"])["input_ids"]
            with torch.inference_mode():
                attention = hf_model(torch.tensor([ids]), output_attentions=True).attentions
            outputs.append({"tokens": tokenizer.convert_ids_to_tokens(ids),
                            **{f"layer_{i}/attention": a[0].numpy() for i, a in enumerate(attention)}})
        return outputs


example = {"text": spec["text"]}
data = lit_dataset.Dataset(spec={"text": lit_types.TextSegment()}, examples=[example])
modules = layout.LitModuleName
attention_layout = layout.LitCanonicalLayout(
    upper={"Attention": [modules.AttentionModule]}, lower={"Data": [modules.DataTableModule]},
)
flags.FLAGS(sys.argv[:1])  # LIT's server flags at their defaults, as a LIT demo script has them
port = portpicker.pick_unused_port()
server = dev_server.Server(
    {"model": AttentionModel()}, {"input": data}, layouts={"attention": attention_layout},
    **(server_flags.get_flags() | {"host": "127.0.0.1", "port": port, "warm_start": 1.0, "default_layout": "attention"}),
)
example_id = caching.input_hash(example)  # LIT's id for the example
base = f"http://127.0.0.1:{port}"


def open_view():
    """Wait for the server, fetch what the Attention module fetches, print the result line."""
    query = urllib.parse.urlencode({"model": "model", "dataset_name": "input", "requested_types": "Tokens",
                                    "requested_fields": "layer_0/attention"})
    request = urllib.request.Request(f"{base}/get_preds?{query}", data=json.dumps({"inputs": [example_id]}).encode(),
                                     headers={"Content-Type": "application/json"})
    while True:
        try:
            body = urllib.request.urlopen(request, timeout=600).read()
            break
        except OSError:
            time.sleep(0.2)
    out = Path(sys.argv[2]) / "lit-preds.json"
    out.write_bytes(body)
    url = f"{base}/?" + urllib.parse.urlencode({"models": "model", "dataset": "input", "primary": example_id,
                                                "selection": example_id, "layout": "attention"})
    opens = "lit-widget-group[minimized] .title"  # LIT starts its Attention module collapsed: a user clicks its title
    print(json.dumps({"output": str(out), "seconds": time.perf_counter() - started, "url": url, "click": [opens]}), flush=True)


threading.Thread(target=open_view, daemon=True).start()
server.serve()  # LIT's own server (werkzeug), until the harness stops the process
