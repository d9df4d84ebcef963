"""Word scores from learned head weights, in the manner of AT2 (Cohen-Wang, Chuang and Madry, 2025,
"Learning to Attribute with Attention").

A word's score is a weighted sum over heads of the attention the answer pays to it:

    features[w, l, h] = mean over answer tokens a of sum over the word's tokens t of A[l, h, a, t]
    score[w]          = sum over l, h of weights[l, h] * features[w, l, h]

where A holds the captured rows of the queries that produced the answer tokens. The weights are
learned per model (`attnlens train-scorer`, evaluation.head_weights) by regressing the measured
effect of random word deletions on these features, so a score estimates how much the answer's
mean log-probability falls when the word is deleted. Scoring costs no forward pass beyond the
capture. A model without learned weights gets the documented default, every head weighted
equally (the answer's mean attention), and a warning.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from attnlens.extraction.models import cache_root
from attnlens.extraction.record import AttentionRecord
from attnlens.extraction.words import Word, sum_over_words

FORMAT_VERSION = 1
SHIPPED = Path(__file__).parent / "head_weights"  # weights built for the bundled models, shipped with attnlens
ScoreSource = Literal["learned", "uniform", "sequence"]

SCORE_NOTES = {
    "learned": "learned head weights (AT2-style): estimated fall of the answer's mean log-probability when the word is deleted",
    "uniform": "no learned weights for this model: every head weighted equally (the answer's mean attention on the word)",
    "sequence": "no answer rows: the mean attention the whole sequence pays the word",
}


@dataclass(frozen=True)
class HeadWeights:
    """One weight per (layer, head) of one model, and how they were learned."""

    model: str
    checksum: str  # the model's checksum (ModelSpec.checksum): weights never apply to another model
    weights: list[list[float]]  # [L][H]
    trained: dict = field(default_factory=dict)  # split, cases, ablations, ridge alpha, held-out figures
    version: int = FORMAT_VERSION

    @property
    def array(self) -> np.ndarray:
        return np.asarray(self.weights, dtype=np.float64)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> HeadWeights:
        data = json.loads(Path(path).read_text())
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path}: head weights of format {data.get('version')}, this attnlens reads {FORMAT_VERSION}")
        return cls(**data)


def trained_path(model: str) -> Path:
    """Where `attnlens train-scorer` writes a model's weights (they take precedence over shipped ones)."""
    return cache_root() / "head_weights" / f"{model}.json"


def find_head_weights(model: str, checksum: str | None, shape: tuple[int, int]) -> HeadWeights | None:
    """The learned weights of this exact model (trained here first, then shipped), or None."""
    for path in (trained_path(model), SHIPPED / f"{model}.json"):
        if not path.is_file():
            continue
        try:
            weights = HeadWeights.load(path)
        except (OSError, ValueError, TypeError) as exc:
            warnings.warn(f"ignoring unreadable head weights {path}: {exc}", stacklevel=2)
            continue
        if weights.checksum == checksum and weights.array.shape == shape:
            return weights
    return None


def head_features(record: AttentionRecord, words: list[Word]) -> np.ndarray:
    """Float[W L H]: the attention the answer pays each word, per head (see the module docstring)."""
    rows = record.answer_rows()  # L H A n
    L, H = rows.shape[:2]
    if not words:
        return np.zeros((0, L, H))
    mean_rows = rows.double().mean(dim=2)  # L H n
    return sum_over_words(words, mean_rows, 2).permute(2, 0, 1).numpy()


@dataclass(frozen=True)
class WordScores:
    values: np.ndarray  # Float[W]
    source: ScoreSource
    weights: HeadWeights | None  # the learned weights used (None: the default)


def score_words(
    record: AttentionRecord, words: list[Word], features: np.ndarray | None, use_learned: bool = True
) -> WordScores:
    """Each word's score; `features` is head_features(record, words), None when the record has no answer rows."""
    if features is None:
        column_means = record["mean"].double().mean(0)  # a word's score: its tokens' columns, summed, row-averaged
        return WordScores(sum_over_words(words, column_means, 0).numpy(), "sequence", None)
    L, H = features.shape[1:] if features.ndim == 3 else (record.architecture.layers, record.architecture.heads)
    found = find_head_weights(record.generation.model, record.info.get("model_checksum"), (L, H)) if use_learned else None
    if found is None:
        if use_learned:
            warnings.warn(
                f"no learned head weights for {record.generation.model}: scoring words with every head weighted "
                f"equally (run `attnlens train-scorer --model {record.generation.model}` to learn them)",
                stacklevel=2,
            )
        return WordScores(features.mean(axis=(1, 2)) if len(words) else np.zeros(0), "uniform", None)
    return WordScores(np.einsum("wlh,lh->w", features, found.array), "learned", found)
