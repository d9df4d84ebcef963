"""Faithfulness on the real SmolLM2: the scoring core, both ablations, the metrics and a planted case.

No mocks: every number comes from real forward passes. The planted prompt states a code and a
distractor (the weather); the model's own greedy answer repeats the code, so the code's tokens
are the true evidence and the weather words are irrelevant.
"""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from attnlens.evaluation.faithfulness import (
    CURVE_POINTS,
    DEFAULT_MAX_BATCH,
    InputError,
    TextDeletion,
    _attention_mask_argument,
    _ranking_numbers,
    answer_logprob,
    answer_probability,
    aopc,
    build_inputs,
    compare,
    curve_auc,
    curve_sizes,
    eraser_sizes,
    faithfulness,
    ferret_sizes,
    kendall_tau,
    kept_positions,
    leave_one_out,
    ranking,
    score_inputs,
    user_indices,
    verify_clusters,
)
from attnlens.evaluation.metrics import METRICS
from attnlens.extraction import generate
from attnlens.extraction.words import user_words
from tests.evaluation.conftest import PLANTED

# A batched, padded forward pass sums in another order than a single one: float32 results differ
# by up to ~1e-5 (measured), so equality across batchings is checked to 5e-5.
BATCH_TOL = 5e-5


@pytest.fixture(scope="module")
def planted(smollm):
    g = generate(smollm, PLANTED, max_new_tokens=16)
    assert "4729" in g.answer, g.answer
    return g


def code_tokens(g):
    first_question = g.input_text.index("Ignore")
    return [t.index for t in g.tokens if t.segment == "user" and t.text.strip().isdigit() and t.start < first_question]


def word_tokens(g, words):
    return [t.index for t in g.tokens if t.segment == "user" and t.text.strip() in words]


# --------------------------------------------------------------------------- arithmetic, no model


def test_bin_sizes():
    assert eraser_sizes(28) == [1, 2, 3, 6, 14]  # max(1, ceil(p U))
    assert eraser_sizes(3) == [1, 1, 1, 1, 2]  # at least one token per bin, repeats kept
    assert ferret_sizes(28) == [2, 5, 8, 11, 14, 16, 19, 22, 25, 28]  # floor(p U)
    assert ferret_sizes(5) == [1, 2, 3, 4, 5]  # k = 0 skipped, repeated top-k sets skipped
    assert curve_sizes(10) == list(range(11))
    assert curve_sizes(4) == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4]
    assert len(CURVE_POINTS) == 11


def test_aopc_and_curve_arithmetic():
    assert aopc(0.8, [0.6, 0.4, 0.2]) == pytest.approx(0.4)
    assert math.isnan(aopc(0.8, []))
    # f falls linearly from 1 to 0: area 0.5; stays flat: area 1
    assert curve_auc(np.linspace(1, 0, 11)) == pytest.approx(0.5)
    assert curve_auc([0.5] * 11) == pytest.approx(1.0)
    assert curve_auc([0.4, 0.2, 0.0], [0, 0.5, 1]) == pytest.approx(0.5 * (1 + 0.5) / 2 + 0.5 * 0.5 / 2)
    assert curve_auc([0.0, 0.4, 0.8], [0, 0.5, 1], full=0.8) == pytest.approx(0.5)  # insertion: by f(x)


def test_kendall_tau_on_a_known_ranking():
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # 5 concordant, 1 discordant
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))


def test_ranking_is_stable_and_descending():
    assert ranking([0.1, 0.5, 0.5, 0.9], [10, 11, 12, 13]) == [13, 11, 12, 10]


def test_aopc_numbers_of_a_fixed_ranking_by_hand():
    """Four user tokens 0..3; f of every removed set given as a table: check each AOPC by hand."""
    user = [0, 1, 2, 3]
    all_user = frozenset(user)
    # f drops by 0.1 per removed token, and by 0.3 more when token 2 (the evidence) is removed
    def f(removed):
        return 0.9 - 0.1 * len(removed) - (0.3 if 2 in removed else 0.0)

    order = [2, 0, 1, 3]
    numbers, curve, insertion = _ranking_numbers(order, f, f(frozenset()), all_user)
    f0 = 0.9
    comp = {k: f0 - f(frozenset(order[:k])) for k in range(5)}  # 0.4, 0.5, 0.6, 0.7 for k = 1..4
    suff = {k: f0 - f(all_user - frozenset(order[:k])) for k in range(5)}  # keep the top k
    assert comp[1] == pytest.approx(0.4) and suff[1] == pytest.approx(0.3)  # keeping token 2 removes 3 others
    # ERASER bins for U = 4: k = 1, 1, 1, 1, 2
    assert numbers["aopc_comprehensiveness_eraser"] == pytest.approx((4 * 0.4 + 0.5) / 5)
    assert numbers["aopc_sufficiency_eraser"] == pytest.approx((4 * suff[1] + suff[2]) / 5)
    # ferret bins for U = 4: k = 1, 2, 3, 4 (0 and repeats skipped)
    assert numbers["aopc_comprehensiveness_ferret"] == pytest.approx(np.mean([0.4, 0.5, 0.6, 0.7]))
    assert numbers["aopc_sufficiency_ferret"] == pytest.approx(np.mean([suff[k] for k in (1, 2, 3, 4)]))
    assert suff[4] == pytest.approx(0.0)
    assert curve == pytest.approx([f(frozenset(order[:k])) for k in curve_sizes(4)])
    # insertion: the top k restored, from nothing (k = 0: 0.9 - 4 x 0.1 - 0.3) to everything (f0)
    assert insertion == pytest.approx([f(all_user - frozenset(order[:k])) for k in curve_sizes(4)])
    assert insertion[0] == pytest.approx(0.2) and insertion[-1] == pytest.approx(f0)


# --------------------------------------------------------------------------- the scoring core


def test_full_input_score_matches_a_plain_forward(smollm, planted):
    g = planted
    ids = torch.tensor([g.token_ids])
    with torch.inference_mode():
        logits = smollm.model(ids).logits[0, g.answer_start - 1 : -1].float()
    want = torch.log_softmax(logits, -1).gather(-1, ids[0, g.answer_start :, None])[:, 0]
    got = score_inputs(smollm, g, [()], max_batch=1, reuse_prefix=False)[0]
    assert torch.allclose(got, want, atol=1e-4)
    assert answer_probability(got[None]).item() == pytest.approx(math.exp(want.mean().item()), abs=BATCH_TOL)
    assert answer_logprob(got[None]).item() == pytest.approx(want.sum().item(), abs=1e-3)


@pytest.mark.parametrize("ablation", ["deletion", "knockout"])
def test_batched_and_unbatched_scoring_agree(smollm, planted, ablation):
    g = planted
    user = user_indices(g)
    rng = np.random.default_rng(1)
    variants = [(), tuple(user), (user[0],), (user[-1],), tuple(code_tokens(g))]
    variants += [tuple(int(i) for i in rng.choice(user, size=k, replace=False)) for k in (2, 9, 20)]
    reference = answer_probability(score_inputs(smollm, g, variants, ablation=ablation, max_batch=1, reuse_prefix=False))
    batched = answer_probability(score_inputs(smollm, g, variants, ablation=ablation, max_batch=8, reuse_prefix=True))
    padded = answer_probability(score_inputs(smollm, g, variants, ablation=ablation, max_batch=4, reuse_prefix=False))
    assert (batched - reference).abs().max().item() < 1e-4
    assert (padded - reference).abs().max().item() < 1e-4
    assert len(set(reference.tolist())) > 4  # the ablations really change the score


def test_only_user_tokens_are_ever_removed(smollm, planted):
    g = planted
    user = set(user_indices(g))
    kept_always = [t.index for t in g.tokens if t.segment != "user" and t.index < len(g.tokens) - 1]
    rng = np.random.default_rng(0)
    variants = [(), tuple(sorted(user))] + [
        tuple(int(i) for i in rng.choice(sorted(user), size=k, replace=False)) for k in (1, 3, 8, 20)
    ]
    for ablation in ("deletion", "knockout"):
        for prefix in (0, min(user)):
            inputs = build_inputs(g, variants, ablation, prefix=prefix)
            for b, removed in enumerate(variants):
                rows = inputs.token_index[b].tolist()
                present = list(range(prefix)) + [i for i in rows if i >= 0]
                for i in kept_always:  # every template token and every answer token but the last, in order
                    assert i in present, (ablation, removed, i)
                ids = inputs.input_ids[b][inputs.token_index[b] >= 0].tolist()
                assert ids == [g.token_ids[i] for i in present[prefix:]]
                if ablation == "deletion":
                    assert not set(present) & set(removed)
                    assert present == kept_positions(g, removed)[:-1]
                else:
                    assert present == list(range(len(g.tokens) - 1))
    template, answer = kept_always[0], g.answer_start
    for bad in [(template,), (answer,), (len(g.tokens) + 3,)]:
        with pytest.raises(InputError, match="only user tokens"):
            score_inputs(smollm, g, [bad])


def test_knockout_blocks_attention_in_every_layer_and_head(smollm, planted):
    """Eager attention with output_attentions and the knockout's own 4-D mask."""
    g = planted
    removed = code_tokens(g) + word_tokens(g, {"weather"})
    inputs = build_inputs(g, [tuple(removed), ()], "knockout")
    model = smollm.model
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        mask = _attention_mask_argument(smollm, inputs)
        assert mask.dtype == torch.float32  # eager adds the mask to the scores
        with torch.inference_mode():
            out = model(
                input_ids=inputs.input_ids, position_ids=inputs.position_ids, attention_mask=mask,
                output_attentions=True, use_cache=False, logits_to_keep=len(g.tokens) - g.answer_start,
            )  # fmt: skip
    finally:
        model.set_attn_implementation(previous)
    attn = torch.stack(out.attentions)  # [L B H n-1 n-1]
    assert attn.shape[0] == smollm.architecture.layers
    answer_rows = list(range(g.answer_start - 1, len(g.tokens) - 1))
    blocked = attn[:, 0][:, :, answer_rows][..., removed]
    assert (blocked == 0).all(), "an answer query still attends to a knocked-out token"
    # the same answer rows still attend to every other causal key, in every layer and head
    for q in answer_rows:
        others = [i for i in range(q + 1) if i not in removed]
        assert (attn[:, 0, :, q, others] > 0).all()
        assert (attn[:, 0, :, q, q + 1 :] == 0).all()  # and still causally
    # prompt positions after the code still read it (only the answer's rows are cut)
    later = [i for i in user_indices(g) if i > max(removed)]
    assert (attn[:, 0][:, :, later][..., removed] > 0).any(-1).all()
    # the unablated row is the plain causal attention: nothing blocked
    assert (attn[:, 1][:, :, answer_rows][..., removed] > 0).all()
    # eager with the float mask scores the answer as SDPA with the boolean mask does
    logits = out.logits.float()
    target = torch.tensor(g.token_ids[g.answer_start :])
    eager_lp = logits.gather(-1, target.expand(2, -1)[..., None])[..., 0] - torch.logsumexp(logits, -1)
    sdpa_lp = score_inputs(smollm, g, [tuple(removed), ()], ablation="knockout", max_batch=1, reuse_prefix=False)
    assert (eager_lp - sdpa_lp).abs().max().item() < 1e-4


# --------------------------------------------------------------------------- the planted case


@pytest.mark.parametrize("ablation", ["deletion", "knockout"])
def test_planted_code_is_comprehensive_and_the_weather_is_not(smollm, planted, ablation):
    g = planted
    code = code_tokens(g)
    weather = word_tokens(g, {"weather", "sunny", "warm"})
    assert len(code) == 4 and len(weather) == 3
    template = [t.index for t in g.tokens if t.segment == "template"][:2]
    report = faithfulness(
        smollm, g, clusters=[code, weather + template], ablation=ablation, cluster_baseline="all", seed=0
    )
    top, distractor = report.clusters
    assert top.tokens == tuple(code)
    assert distractor.tokens == tuple(weather) and distractor.ignored == tuple(template)  # never removed
    assert top.random_comprehensiveness is not None and report.random_draws == 10
    assert top.comprehensiveness > top.random_comprehensiveness, top
    assert top.comprehensiveness > 0.1
    assert abs(distractor.comprehensiveness) < top.comprehensiveness / 2, (distractor, top)
    assert top.sufficiency < distractor.sufficiency  # the code alone keeps more of the answer than the weather
    for name, scored in report.metrics().items():
        assert METRICS[name].in_range(scored.value), (name, scored)


def test_verify_clusters_deletes_words_in_one_batch(smollm, planted):
    g = planted
    words = user_words(g)
    index = {w.text: w.index for w in words}
    clusters = [[index["4729"]], [index["weather"], index["sunny"], index["warm"]], [index["secret"]]]
    assert words[index["4729"]].tokens == tuple(code_tokens(g))  # the code's digit pieces are one word
    report = verify_clusters(smollm, g, words, clusters, random_draws=8)
    assert report.stats.variants <= 1 + 2 * len(clusters) + 8 * 2  # two distinct sizes share their draws
    assert report.stats.forwards <= 2 + report.stats.variants // DEFAULT_MAX_BATCH  # one batched call (and its prefix)
    code, weather, secret = report.clusters
    assert [c.words for c in report.clusters] == [1, 3, 1]
    assert code.random_comprehensiveness == secret.random_comprehensiveness  # same size, same draws
    assert code.comprehensiveness > code.random_comprehensiveness + code.random_comprehensiveness_sd
    assert code.comprehensiveness > weather.comprehensiveness
    # the same seed draws the same random sets; another seed, other sets
    assert verify_clusters(smollm, g, words, clusters, random_draws=8).clusters == report.clusters
    other = verify_clusters(smollm, g, words, clusters, random_draws=8, seed=1).clusters[0]
    assert other.comprehensiveness == pytest.approx(code.comprehensiveness, abs=1e-5)  # other batch mates: float noise
    assert other.random_comprehensiveness != code.random_comprehensiveness


def test_full_report_with_baselines(smollm, planted):
    g = planted
    user = user_indices(g)
    code = set(code_tokens(g))
    planted_importance = torch.tensor([1.0 if i in code else 0.0 for i in user]) + torch.linspace(0, 0.1, len(user))
    report = faithfulness(smollm, g, planted_importance, ablation="knockout", random_draws=5, seed=3)
    assert set(report.aopc) == {
        "aopc_comprehensiveness_eraser", "aopc_sufficiency_eraser",
        "aopc_comprehensiveness_ferret", "aopc_sufficiency_ferret",
    }  # fmt: skip
    for name, scored in report.metrics().items():
        metric = METRICS[name]
        for value in (scored.value, scored.random, scored.loo):
            if value is not None:
                assert metric.in_range(value), (name, scored)
    for name in ("aopc_comprehensiveness_eraser", "aopc_comprehensiveness_ferret"):
        scored = report.aopc[name]
        assert scored.random is not None and scored.loo is not None
        assert scored.value > scored.random, (name, scored)
    assert report.deletion_auc.value < report.deletion_auc.random
    assert len(report.curve.scores) == 11 and report.curve.scores[0] == pytest.approx(report.answer_probability)
    assert len(report.loo) == len(user)
    # LOO drops are the singleton ablations; the code digits are among the largest
    loo = np.array(report.loo)
    assert np.argmax(loo) in [user.index(i) for i in code]
    assert report.tau_loo.loo == 1.0 and -1 <= report.tau_loo.value <= 1
    # leave_one_out on its own gives the report's drops
    alone = leave_one_out(smollm, g, ablation="knockout")
    assert np.allclose(alone.numpy(), loo, atol=1e-4)


def test_compare_scores_every_source_as_faithfulness_does_alone(smollm, planted):
    """One batched pass for several sources gives each the numbers it gets on its own."""
    g = planted
    user = user_indices(g)
    code = set(code_tokens(g))
    sources = {
        "planted": torch.tensor([1.0 if i in code else 0.0 for i in user]) + torch.linspace(0, 0.1, len(user)),
        "reversed": torch.linspace(1, 0, len(user)),
    }
    together = compare(smollm, g, sources, [sorted(code)], random_draws=2, seed=1)
    assert set(together) == set(sources)
    planted_report = together["planted"]
    for name, vector in sources.items():
        alone = faithfulness(smollm, g, vector, [sorted(code)], random_draws=2, seed=1)
        for metric, scored in alone.metrics().items():
            got = together[name].metrics()[metric]
            for a, b in ((scored.value, got.value), (scored.random, got.random), (scored.loo, got.loo)):
                assert (a is None and b is None) or a == pytest.approx(b, abs=BATCH_TOL), (name, metric)
    # shared baselines really are shared; the variants were scored once for both
    assert together["reversed"].loo == planted_report.loo
    assert planted_report.stats is together["reversed"].stats
    assert planted_report.aopc["aopc_comprehensiveness_eraser"].value > together["reversed"].aopc["aopc_comprehensiveness_eraser"].value
    with pytest.raises(ValueError, match="at least one"):
        compare(smollm, g, {})


def test_sliding_window_model_masks_match_its_own(gemma):
    """Gemma 3 mixes sliding and full layers: a dict of masks; with a window that binds (8 tokens)
    the scores still equal the model's own forward, batched or not."""
    import dataclasses

    g = generate(gemma, PLANTED, max_new_tokens=6)
    user = user_indices(g)
    variants = [(), tuple(user[4:8]), (user[1],), tuple(user)]
    ids = torch.tensor([g.token_ids])
    config = gemma.model.config
    window = config.sliding_window
    try:
        for w in (window, 8):
            config.sliding_window = w
            lm = dataclasses.replace(gemma, architecture=dataclasses.replace(gemma.architecture, sliding_window=w))
            with torch.inference_mode():
                logits = gemma.model(ids).logits[0, g.answer_start - 1 : -1].float()
            want = torch.log_softmax(logits, -1).gather(-1, ids[0, g.answer_start :, None])[:, 0]
            for ablation in ("deletion", "knockout"):
                one = score_inputs(lm, g, variants, ablation=ablation, max_batch=1, reuse_prefix=False)
                batched = score_inputs(lm, g, variants, ablation=ablation, max_batch=4, reuse_prefix=True)
                assert torch.allclose(one[0], want, atol=1e-4), (w, ablation)
                assert (answer_probability(one) - answer_probability(batched)).abs().max() < 1e-4, (w, ablation)
    finally:
        config.sliding_window = window


# --------------------------------------------------------------------------- deletion edits the text


@pytest.mark.parametrize("model", ["smollm", "gemma"])
def test_deletion_edits_the_prompt_text_and_tokenises_it_again(model, request):
    """The chat model (template around the user's text) and the base model (BOS, then the text)."""
    lm = request.getfixturevalue(model)
    g = generate(lm, PLANTED, max_new_tokens=8)
    deletion = TextDeletion.of(lm.tokenizer, g)
    assert deletion is not None
    assert deletion.ids(frozenset()) == g.token_ids  # the untouched text tokenises back to itself
    words = user_words(g)
    weather = next(w for w in words if w.text == "weather")
    first, last = words[0], words[-1]
    text = deletion.edited_text(frozenset(weather.tokens))
    assert text == g.prompt.replace(" weather", "")  # the word and one space go, nothing else
    assert first.text == "The" and deletion.edited_text(frozenset(first.tokens)) == g.prompt[3:].lstrip()
    assert deletion.edited_text(frozenset(last.tokens)).endswith("secret code")
    keep = {w.index for w in words if w.text in ("secret", "code", "4729")}
    only = deletion.edited_text(frozenset(t for w in words if w.index not in keep for t in w.tokens))
    assert "  " not in only and only.split() == ["secret", "code", "4729", "secret", "code"]
    ids = deletion.ids(frozenset(weather.tokens))
    assert ids[: len(deletion.head)] == g.token_ids[: min(user_indices(g))]  # template / BOS untouched
    assert ids[len(ids) - len(deletion.tail) :] == g.token_ids[max(user_indices(g)) + 1 :]  # and the answer
    assert lm.tokenizer.decode(ids[len(deletion.head) : len(ids) - len(deletion.tail)]) == text


def test_text_and_id_deletion_agree_on_whole_words_and_differ_inside_one(smollm, planted):
    g = planted
    words = user_words(g)
    weather, sunny, code = (next(w for w in words if w.text == t) for t in ("weather", "sunny", "4729"))
    assert len(code.tokens) > 1  # SmolLM2 splits the number into digits
    whole = [tuple(weather.tokens), tuple(sunny.tokens)]
    text = score_inputs(smollm, g, [(), *whole], max_batch=1, reuse_prefix=False)
    ids = score_inputs(smollm, g, [(), *whole], max_batch=1, reuse_prefix=False, retokenise=False)
    assert (text - ids).abs().max().item() < 1e-4  # the same inputs: BPE cuts the rest of the text the same way
    # dropping the middle digit's id leaves "4" "9" as two tokens; the edited text "479" is tokenised afresh
    middle = (code.tokens[1],)
    deletion = TextDeletion.of(smollm.tokenizer, g)
    assert deletion.ids(frozenset(middle)) != kept_positions(g, middle)
    inputs = build_inputs(g, [middle], "deletion", deletion=deletion)
    assert (inputs.token_index == -2).any()  # re-tokenised positions are marked NEW


def test_deletion_falls_back_to_dropping_ids_when_the_text_does_not_round_trip(smollm, planted):
    """A record whose user tokens are not the tokenizer's own cut of their text (here: one token per
    character of the first word) cannot be edited as text: deletion drops ids, with a warning."""
    g = planted
    first = user_words(g)[0]
    chars = [smollm.tokenizer.convert_tokens_to_ids(c) for c in first.text]
    t0 = g.tokens[first.tokens[0]]
    split = [
        replace(t0, index=0, id=cid, text=c, start=t0.start + j, end=t0.start + j + 1) for j, (c, cid) in enumerate(zip(first.text, chars))
    ]
    tokens = g.tokens[: first.tokens[0]] + split + g.tokens[first.tokens[-1] + 1 :]
    tokens = [replace(t, index=i) for i, t in enumerate(tokens)]
    shift = len(split) - len(first.tokens)
    odd = replace(g, tokens=tokens, answer_start=g.answer_start + shift)
    assert TextDeletion.of(smollm.tokenizer, odd) is None
    variants = [(), tuple(t.index for t in tokens if t.segment == "user")[1:3]]
    with pytest.warns(UserWarning, match="does not tokenise back"):
        got = score_inputs(smollm, odd, variants, max_batch=1, reuse_prefix=False)
    want = score_inputs(smollm, odd, variants, max_batch=1, reuse_prefix=False, retokenise=False)
    assert torch.equal(got, want)
