"""Hand-made attention records: small real tensors in the real AttentionRecord, no model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlens.extraction.record import ArchitectureInfo, AttentionRecord, Generation, Token


def _make_record(
    mean: np.ndarray,
    *,
    texts: list[str] | None = None,
    answer_start: int | None = None,
    rows: np.ndarray | None = None,
    extra: dict[str, np.ndarray] | None = None,
    info: dict | None = None,
) -> AttentionRecord:
    """A record over len(mean) tokens. Token 0 is template (a BOS-like sink), the rest up to
    `answer_start` the user's words (" t1", " t2", ...), then the answer; `rows`
    (Float[L H A n]) are then the rows of the queries that produced them (positions t - 1)."""
    n = len(mean)
    texts = texts or [f" t{i}" for i in range(n)]
    answer_start = n if answer_start is None else answer_start
    tokens, offset = [], 0
    for i, text in enumerate(texts):
        answer = i >= answer_start
        role, segment = ("answer", "answer") if answer else ("prompt", "template" if i == 0 else "user")
        tokens.append(Token(i, 100 + i, text, role, segment, offset, offset + len(text)))
        offset += len(text)
    prompt = "".join(texts[:answer_start])
    generation = Generation("test", prompt, prompt, "".join(texts[answer_start:]), tokens, answer_start)
    arrays = {"mean": torch.tensor(np.asarray(mean), dtype=torch.float32)}
    if rows is not None:
        arrays["rows"] = torch.tensor(np.asarray(rows), dtype=torch.float32)
        arrays["row_positions"] = torch.tensor([t - 1 for t in range(answer_start, n)], dtype=torch.long)
    for name, value in (extra or {}).items():
        arrays[name] = torch.tensor(np.asarray(value), dtype=torch.float32)
    layers, heads = (rows.shape[0], rows.shape[1]) if rows is not None else (1, 1)
    architecture = ArchitectureInfo("test", "causal", layers, heads, heads, 4, 64, None, [])
    return AttentionRecord(generation, architecture, arrays, info or {})


def _planted(blocks: int = 4, size: int = 15, sink: float = 0.3, noise: float = 0.02, seed: int = 0):
    """Attention with planted communities: each query spreads its mass over its own block, a little
    noise everywhere, and `sink` of it on token 0 (its own block-less sink). Returns (matrix, truth)."""
    rng = np.random.default_rng(seed)
    n = 1 + blocks * size
    truth = np.repeat(np.arange(blocks), size)
    matrix = rng.random((n, n)) * noise
    for b in range(blocks):
        members = 1 + np.flatnonzero(truth == b)
        matrix[np.ix_(members, members)] += rng.random((size, size)) * 0.5 + 0.5
    matrix[:, 0] = 0
    matrix /= matrix.sum(axis=1, keepdims=True)
    matrix *= 1 - sink
    matrix[:, 0] = sink
    return matrix, truth


@pytest.fixture
def make_record():
    return _make_record


@pytest.fixture
def planted():
    return _planted
