"""Generation: roles, segments, offsets, determinism, and the prompt errors."""

import pytest

from attnlens.errors import InputError
from attnlens.extraction import encode, generate

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


def test_empty_prompt_is_refused(smollm):
    with pytest.raises(InputError, match="empty"):
        generate(smollm, "  \n ")


def test_over_long_prompt_says_the_limit_or_truncates_when_asked(minilm):
    text = " ".join(["word"] * 700)
    with pytest.raises(InputError, match="reads at most 512"):
        encode(minilm, text)
    gen = encode(minilm, text, truncate=True)
    assert len(gen.tokens) == 512
