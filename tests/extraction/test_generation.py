"""Generation: roles, segments, offsets, determinism, and the prompt errors."""

import pytest

from attnlens.errors import InputError
from attnlens.extraction import encode, generate, generate_batch

pytestmark = pytest.mark.slow


def test_greedy_is_deterministic_and_tokens_are_consistent(smollm):
    prompt = "What is the capital of France?"
    first = generate(smollm, prompt, max_new_tokens=8)
    assert first == generate(smollm, prompt, max_new_tokens=8)
    assert first.answer.strip() and first.answer_start < len(first.tokens)
    assert [t.index for t in first.tokens] == list(range(len(first.tokens)))
    user = [t for t in first.tokens if t.segment == "user"]
    assert "".join(t.text for t in user).strip() == prompt  # the user's words, and only them
    assert all(first.text[t.start : t.end] == t.text for t in first.tokens if t.segment != "template")
    answer = [t for t in first.tokens if t.role == "answer"]
    assert "".join(t.text for t in answer) == first.answer
    assert first.tokens[first.answer_start].role == "answer" and first.tokens[first.answer_start - 1].role == "prompt"


def test_sampling_is_reproducible_with_a_seed(smollm):
    a = generate(smollm, "Tell me a word.", max_new_tokens=10, seed=3, temperature=1.5)
    b = generate(smollm, "Tell me a word.", max_new_tokens=10, seed=3, temperature=1.5)
    assert a.answer == b.answer and a.params["do_sample"]


def test_base_model_without_chat_template_uses_plain_completion(gemma):
    gen = generate(gemma, "The capital of France is", max_new_tokens=4)
    assert gen.input_text == "The capital of France is" and not gen.params["chat_template"]
    assert gen.tokens[0].segment == "template"  # <bos>


@pytest.mark.parametrize("lm", ["smollm", "gemma"])
def test_the_plain_frame_is_the_same_text_for_chat_and_base_models(lm, request):
    """frame="plain": "Q: ...\\nA:" with no chat template; the frame's words are template tokens,
    the prompt's (its first word too, whose token carries the frame's space) are the user's."""
    model = request.getfixturevalue(lm)
    prompt = "What is the capital of France?"
    gen = generate(model, prompt, max_new_tokens=24, frame="plain")
    assert gen.input_text == f"Q: {prompt}\nA:" and gen.prompt == prompt
    assert gen.params["frame"] == "plain" and not gen.params["chat_template"]
    user = [t for t in gen.tokens if t.segment == "user"]
    assert "".join(t.text for t in user).strip() == prompt
    assert all(t.segment == "template" for t in gen.tokens[: user[0].index])  # BOS (where there is one), "Q", ":"
    assert "\nQ:" not in gen.answer
    assert generate_batch(model, [prompt, "2 + 2 ="], max_new_tokens=24, frame="plain")[0] == gen


@pytest.mark.parametrize(("text", "answer"), [
    (" Paris.\nQ: What is the capital of Spain?\nA: Madrid", " Paris."),  # a new question
    (" 1.00 Celsius\nB: 1.000 Celsius\nC: 1.0000", " 1.00 Celsius"),  # options it invents
    (" Step 1: add.\nStep 2: carry.\nAnswer: 42", " Step 1: add.\nStep 2: carry.\nAnswer: 42"),  # not a turn
])  # fmt: skip
def test_a_plain_answer_ends_where_the_model_starts_a_new_turn(smollm, text, answer):
    from attnlens.extraction.generation import PLAIN_STOP, _cut_at

    ids = smollm.tokenizer(text, add_special_tokens=False)["input_ids"]
    kept = _cut_at(smollm, ids, PLAIN_STOP)
    assert smollm.tokenizer.decode(kept) == answer and kept == ids[: len(kept)]
    assert _cut_at(smollm, ids[: len(kept)], PLAIN_STOP) == kept  # nothing to cut
    with pytest.raises(InputError, match="unknown frame"):
        generate(smollm, "Hi", frame="chatty")


@pytest.mark.parametrize("lm", ["smollm", "gemma"])
def test_a_batch_gives_each_prompt_the_answer_it_gets_alone(lm, request):
    """Left padding changes nothing: prompts of different lengths, chat-rendered (SmolLM2) and plain
    (Gemma 3), get the same Generation in one batched call as one by one; a bad prompt gets its
    error in its place and the others go on."""
    model = request.getfixturevalue(lm)
    prompts = [
        "What is the capital of France?", " ", "Mia has 3 apples and buys 4 more. How many apples does Mia have now?",
        "Write a haiku about the sea.", "2 + 2 =",
    ]
    batch = generate_batch(model, prompts, max_new_tokens=12)
    assert isinstance(batch[1], InputError) and "empty" in str(batch[1])
    for prompt, got in zip(prompts, batch):
        if prompt.strip():
            assert got == generate(model, prompt, max_new_tokens=12)
    in_pairs = generate_batch(model, prompts, max_new_tokens=12, max_batch=2)  # [0, 2], [3, 4]
    assert in_pairs[0] == batch[0] and in_pairs[2:] == batch[2:]


def test_empty_prompt_is_refused(smollm):
    with pytest.raises(InputError, match="empty"):
        generate(smollm, "  \n ")


def test_over_long_prompt_says_the_limit_or_truncates_when_asked(minilm):
    text = " ".join(["word"] * 700)
    with pytest.raises(InputError, match="reads at most 512"):
        encode(minilm, text)
    gen = encode(minilm, text, truncate=True)
    assert len(gen.tokens) == 512
