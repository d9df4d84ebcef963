"""The user's words: pieces of a word together, template and answer tokens never part of one."""

import pytest

from attnlens.extraction.record import Generation, Token
import torch

from attnlens.extraction.words import sum_over_words, user_words


def generation(pieces: list[tuple[str, str]]) -> Generation:
    """Tokens (text, segment) laid end to end; segment "answer" tokens form the answer."""
    tokens, offset = [], 0
    for i, (text, segment) in enumerate(pieces):
        role = "answer" if segment == "answer" else "prompt"
        tokens.append(Token(i, i, text, role, segment, offset, offset + len(text)))
        offset += len(text)
    text = "".join(t for t, _ in pieces)
    answer_start = next((i for i, (_, s) in enumerate(pieces) if s == "answer"), len(pieces))
    prompt_end = tokens[answer_start].start if answer_start < len(tokens) else len(text)
    return Generation("m", text, text[:prompt_end], text[prompt_end:], tokens, answer_start)


def test_pieces_of_a_word_are_one_word_and_the_template_is_none():
    g = generation([("<|user|>\n", "template"), ("Sh", "user"), ("akes", "user"), ("pe", "user"), ("are", "user"),
                    ("'s", "user"), (" play", "user"), ("?", "user"), ("\n\n", "user"), ("<|end|>", "template"),
                    (" Hamlet", "answer")])  # fmt: skip
    words = user_words(g)
    assert [w.text for w in words] == ["Shakespeare's", "play", "?"]
    assert [w.tokens for w in words] == [(1, 2, 3, 4, 5), (6,), (7,)]  # whitespace-only "\n\n" is in no word
    values = torch.arange(11.0)
    assert sum_over_words(words, values, 0).tolist() == [1 + 2 + 3 + 4 + 5, 6, 7]
    square = values[:, None] * 100 + values[None, :]  # row i, column j: 100 i + j
    assert sum_over_words(words, sum_over_words(words, square, 0), 1)[0, 1].item() == 100 * 15 + 5 * 6


def test_a_token_that_spans_two_words_joins_them():
    g = generation([("The", "user"), (" (5", "user"), (")", "user"), (" cats", "user")])
    # " (5" overlaps "(" and "5": one word; ")" is a word of its own
    assert [(w.text, w.tokens) for w in user_words(g)] == [("The", (0,)), ("(5", (1,)), (")", (2,)), ("cats", (3,))]


@pytest.mark.slow
def test_real_tokenisers(smollm, gemma):
    from attnlens.extraction import generate

    for lm in (smollm, gemma):
        g = generate(lm, "Antidisestablishmentarianism: is it a word?", max_new_tokens=2)
        words = user_words(g)
        assert [w.text for w in words] == ["Antidisestablishmentarianism", ":", "is", "it", "a", "word", "?"]
        assert len(words[0].tokens) > 1  # several pieces, one word
        assert all(g.tokens[t].segment == "user" for w in words for t in w.tokens)
