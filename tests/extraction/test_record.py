"""The attention record: saves, reloads unchanged, and says clearly when it cannot."""

import json

import pytest
import torch

from attnlens.errors import InputError
from attnlens.extraction import AttentionRecord, CaptureConfig, capture, generate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def record(smollm):
    return capture(smollm, generate(smollm, "Name a colour.", max_new_tokens=5), CaptureConfig(keep_layers=(2,)))


def test_round_trip(record, tmp_path):
    loaded = AttentionRecord.load(record.save(tmp_path / "r"))
    assert loaded.generation == record.generation and loaded.architecture == record.architecture
    assert loaded.info["config"]["keep_layers"] == [2]
    assert set(loaded.arrays) == set(record.arrays)
    for name, array in record.arrays.items():
        assert torch.equal(loaded[name], array), name


def test_answer_rows_are_the_queries_that_produced_each_answer_token(record):
    gen = record.generation
    rows = record.answer_rows()
    assert rows.shape[2] == len(gen.answer_indices)
    assert record["row_positions"].tolist() == [t - 1 for t in gen.answer_indices]
    assert torch.allclose(rows.sum(-1), torch.ones(rows.shape[:3]), atol=1e-5)  # probabilities


def test_what_is_not_captured_is_named(record):
    with pytest.raises(KeyError, match="was not captured"):
        record["full"]


def test_unreadable_or_foreign_records_are_refused(record, tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        AttentionRecord.load(tmp_path / "missing")
    folder = record.save(tmp_path / "old")
    meta = json.loads((folder / "record.json").read_text())
    meta["schema_version"] = 0
    (folder / "record.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="schema version 0"):
        AttentionRecord.load(folder)
