"""attnlens: why did the model say this? Explanations from a model's own attention, checked by ablation.

    import attnlens

    e = attnlens.explain("What is the capital of Japan?")       # -> attnlens.Explanation
    e.show()                                                    # rich view in a terminal
    e.save("runs/why"); attnlens.Explanation.load("runs/why") == e
    print(e.to_json())                                          # what `attnlens explain --json` prints

    explainer = attnlens.Explainer("smollm2-135m")              # keeps the models warm between questions
    lm = attnlens.load_model("gemma3-270m")                     # the stages one by one
    record = attnlens.capture(lm, attnlens.generate(lm, "The capital of France is"))
    clustering = attnlens.cluster(record, attnlens.ClusterConfig())

Importing this package is light: torch, transformers and vLLM load only when a name that needs
them is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from attnlens import runtime
from attnlens.errors import AttnlensError, BackendError, CaptureError, InputError, ModelError

__version__ = "0.1.0"

runtime.apply_defaults()

# name -> the module that defines it (imported on first use)
_LAZY = {
    "explain": "attnlens.pipeline.explainer",
    "Explainer": "attnlens.pipeline.explainer",
    "Explanation": "attnlens.pipeline.explanation",
    "load_model": "attnlens.extraction.loading",
    "generate": "attnlens.extraction.generation",
    "capture": "attnlens.extraction.attention",
    "CaptureConfig": "attnlens.extraction.attention",
    "AttentionRecord": "attnlens.extraction.record",
    "Generation": "attnlens.extraction.record",
    "cluster": "attnlens.clustering.pipeline",
    "ClusterConfig": "attnlens.clustering.config",
    "Clustering": "attnlens.clustering.result",
}

__all__ = [
    "AttentionRecord",
    "AttnlensError",
    "BackendError",
    "CaptureConfig",
    "CaptureError",
    "ClusterConfig",
    "Clustering",
    "Explainer",
    "Explanation",
    "Generation",
    "InputError",
    "ModelError",
    "__version__",
    "capture",
    "cluster",
    "explain",
    "generate",
    "load_model",
]

if TYPE_CHECKING:  # for editors and type checkers; at run time these load lazily
    from attnlens.clustering.config import ClusterConfig
    from attnlens.clustering.pipeline import cluster
    from attnlens.clustering.result import Clustering
    from attnlens.extraction.attention import CaptureConfig, capture
    from attnlens.extraction.generation import generate
    from attnlens.extraction.loading import load_model
    from attnlens.extraction.record import AttentionRecord, Generation
    from attnlens.pipeline.explainer import Explainer, explain
    from attnlens.pipeline.explanation import Explanation


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'attnlens' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
