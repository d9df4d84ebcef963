"""The findings' controls (reports.controls) on hand-made rows: a difference that length explains
does not survive, one that length does not explain does; pairs, frames and scale."""

import math

import numpy as np
import pytest

from attnlens.evaluation.cases import load_cases
from attnlens.reports import controls


def row(i, model="m", frame="plain", category="a", correct=True, prompt_tokens=20, entropy=1.0, **signatures):
    return {"id": f"c-{i:03d}", "base_model": model, "frame": frame, "condition": controls.condition(model, frame),
            "category": category, "correct": correct, "prompt_tokens": prompt_tokens, "answer_tokens": 10,
            "signatures": {"entropy": entropy, **signatures}, "graph": {}}  # fmt: skip


def test_a_difference_that_length_explains_does_not_survive():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(120):
        long = i % 2 == 0  # group a has the long prompts
        n = int(rng.integers(60, 120) if long else rng.integers(10, 60))
        rows.append(row(i, category="a" if long else "b", prompt_tokens=n, entropy=0.5 * math.log(n) + rng.normal(0, 0.02),
                        sink=0.3 + 0.1 * long + rng.normal(0, 0.01)))  # fmt: skip
    tests = {t["metric"]: t for t in controls.categories(rows) if t["group"] == "m (plain): a"}
    entropy, sink = tests["entropy"], tests["sink"]
    assert entropy["raw_significant"] and not entropy["survives"]  # a pure length effect
    assert entropy["adjusted"]["low"] < 0 < entropy["adjusted"]["high"]
    assert sink["survives"] and sink["adjusted"]["mean"] == pytest.approx(0.1, abs=0.01)  # a real one


def test_the_frame_is_compared_on_the_same_cases():
    rows = []
    for i in range(30):
        rows.append(row(i, frame="plain", prompt_tokens=15 + i, entropy=1.0 + 0.01 * i, category="ab"[i % 2]))
        rows.append(row(i, frame="chat", prompt_tokens=45 + i, entropy=0.8 + 0.01 * i, category="ab"[i % 2]))
    rows.append(row(99, frame="chat"))  # a case seen in one frame only is not paired
    [entropy] = [t for t in controls.frame_effect(rows, ("entropy",))]
    assert entropy["group"] == "m: chat vs plain" and entropy["n1"] == entropy["n2"] == 30
    assert entropy["difference"]["mean"] == pytest.approx(-0.2)
    # plain totals 25-54, chat 55-84 tokens: no case lies inside the other frame's range
    assert entropy["length_overlap"] == 0.0


def test_models_are_compared_within_one_frame_on_shared_cases():
    rows = [row(i, model="a", entropy=1.0 + i / 100) for i in range(20)]
    rows += [row(i, model="b", entropy=2.0 + i / 100) for i in range(10, 30)]
    rows += [row(i, model="b", frame="chat") for i in range(20)]  # another frame: not in a's comparison
    tests = controls.models_within_frame(rows)
    assert {t["group"] for t in tests} == {"a vs b (plain)"}
    entropy = next(t for t in tests if t["metric"] == "entropy")
    assert entropy["n1"] == entropy["n2"] == 10 and entropy["r"] == pytest.approx(-1.0)


def test_correctness_holds_the_category_fixed():
    # correct answers are all in category "easy", whose entropy is lower: pooled, a difference;
    # inside each category, none (Simpson)
    rng = np.random.default_rng(1)
    rows = [row(i, category="easy" if i < 40 else "hard", correct=(i < 30) or (40 <= i < 50),
                entropy=(1.0 if i < 40 else 2.0) + rng.normal(0, 0.05)) for i in range(80)]  # fmt: skip
    entropy = next(t for t in controls.correctness(rows) if t["metric"] == "entropy")
    assert entropy["raw_significant"] and not entropy["survives"]


def test_pronoun_pairs_both_right():
    cases = {c.id: c for c in load_cases()}
    pronoun = [c.id for c in cases.values() if c.subcategory == "pronoun_resolution"]
    rows = [row(i, correct=True) | {"id": cid} for i, cid in enumerate(pronoun)]
    out = controls.ambiguity(rows, cases)["m (plain)"]
    assert out["pairs"] >= 8 and out["both_right"]["mean"] == 1.0 and out["one_right"]["mean"] == 0.0
    rows = [r | {"correct": r["id"] in pronoun[::2]} for r in rows]  # the first of every pair only
    out = controls.ambiguity(rows, cases)["m (plain)"]
    assert out["both_right"]["mean"] < 0.5


def test_length_dependence_and_frames():
    rows = [row(i, prompt_tokens=10 + 5 * i, entropy=float(i), category="abc"[i % 3]) for i in range(30)]
    out = controls.length_dependence(rows)["m (plain)"]
    assert out["entropy"]["rho_cases"] == pytest.approx(1.0) and out["cases"] == 30
    assert controls.frame_of("chat_template") == "chat" and controls.frame_of("Q: {prompt}\nA:") == "plain"


def test_parameters_are_read_from_the_weights_headers():
    assert controls.parameters("smollm2-135m") == 134_515_008
    assert controls.parameters("no-such-model") is None


def test_locality_compares_models_at_equal_length():
    # model "near" reads at a distance of 2 whatever the length; "far" at 0.5 x length, but on
    # shorter prompts: at the pooled mean length "far" must come out more global
    rows = [row(i, model="near", prompt_tokens=40 + i, distance=2.0) for i in range(20)]
    rows += [row(100 + i, model="far", prompt_tokens=10 + i, distance=0.5 * (10 + i)) for i in range(20)]
    loc = controls.locality(rows, ("distance",))
    assert loc["far"]["distance"]["mean"] > loc["near"]["distance"]["mean"]
    assert loc["near"]["distance"]["n"] == 20
    assert controls.locality([r for r in rows if r["base_model"] == "near"]) == {}
