"""Generate an answer and keep every token with its role, segment and text offsets."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import torch

from attnlens.errors import InputError
from attnlens.extraction.loading import LoadedModel
from attnlens.extraction.record import Generation, Token
from attnlens.extraction.text import check_prompt


# How a prompt is put to the model. "auto": a chat model's own chat template, the prompt as it is
# for a base model. "plain": the same question/answer completion frame for every model, chat or
# base (the frame's "Q:" and "A:" are template tokens, not the user's words), the answer cut
# where the model starts a new turn: a line opening with one capital letter and a colon ("Q:",
# "A:", or the "B:", "C:" of options it invents), as small models in this frame often do.
Frame = Literal["auto", "plain"]
FRAMES: tuple[str, ...] = ("auto", "plain")
PLAIN_FRAME = "Q: {prompt}\nA:"
PLAIN_STOP = re.compile(r"\n[A-Z]:")


def _render(lm: LoadedModel, prompt: str, frame: Frame) -> tuple[str, int, bool]:
    """The text the model sees, where the user's prompt starts inside it, and whether the text is
    a chat rendering (which holds its own special tokens)."""
    if frame not in FRAMES:
        raise InputError(f"unknown frame {frame!r}; choose {', '.join(FRAMES)}")
    if frame == "plain":
        return PLAIN_FRAME.format(prompt=prompt), PLAIN_FRAME.index("{prompt}"), False
    if lm.has_chat_template:
        text = lm.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
        return text, text.find(prompt), True
    return prompt, 0, False


def _tokens(
    lm: LoadedModel, input_text: str, user_start: int, user_len: int, answer_ids: list[int], chat: bool
) -> list[Token]:
    tok = lm.tokenizer
    # Chat-rendered text already holds its special tokens; other text gets the model's own (e.g. BOS).
    enc = tok(input_text, add_special_tokens=not chat, return_offsets_mapping=True)
    tokens: list[Token] = []
    user_end = user_start + user_len
    for i, (tid, (start, end)) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
        # a token's surrounding whitespace does not decide its side: in "Q: What" the token " What"
        # (its space from the frame) is the user's first word
        piece = input_text[start:end]
        s, e = start, end
        if piece.strip():
            s, e = start + len(piece) - len(piece.lstrip()), end - len(piece) + len(piece.rstrip())
        inside = user_start >= 0 and s >= user_start and e <= user_end and end > start
        tokens.append(
            Token(i, int(tid), tok.decode([tid]), "prompt", "user" if inside else "template", int(start), int(end))
        )
    offset, previous = len(input_text), ""
    for j, tid in enumerate(answer_ids):
        decoded = tok.decode(answer_ids[: j + 1])
        tokens.append(
            Token(
                len(tokens), int(tid), tok.decode([tid]), "answer", "answer",
                offset + len(previous), offset + len(decoded),
            )
        )
        previous = decoded
    return tokens


def check_length(lm: LoadedModel, n_tokens: int, max_new_tokens: int = 0) -> None:
    limit = lm.architecture.context_length
    if limit and n_tokens + max_new_tokens > limit:
        raise InputError(
            f"the prompt is {n_tokens} tokens; {lm.name} reads at most {limit} "
            f"(including {max_new_tokens} new tokens): shorten it, or pass --truncate"
        )


def generate(
    lm: LoadedModel,
    prompt: str,
    *,
    max_new_tokens: int = 32,
    seed: int | None = None,
    temperature: float = 0.7,
    truncate: bool = False,
    frame: Frame = "auto",
) -> Generation:
    """Greedy by default; sampled (seeded, reproducible) when a seed is given. `frame`: see Frame."""
    if lm.architecture.kind == "encoder":
        return encode(lm, prompt, truncate=truncate)
    input_text, user_start, chat, prompt_tokens = _prompt(lm, prompt, max_new_tokens, truncate, frame)
    if seed is None:
        [answer_ids] = _greedy_answers(lm, [prompt_tokens], max_new_tokens)
    else:
        torch.manual_seed(seed)
        ids = torch.tensor([[t.id for t in prompt_tokens]])
        with torch.inference_mode():
            out = lm.model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=True,
                temperature=temperature, pad_token_id=_pad_id(lm),
            )  # fmt: skip
        answer_ids = out[0, ids.shape[1] :].tolist()
    params = _params(max_new_tokens, frame, seed, temperature)
    return _generation(lm, prompt, input_text, user_start, chat, prompt_tokens, answer_ids, params)


def generate_batch(
    lm: LoadedModel, prompts: Sequence[str], *, max_new_tokens: int = 32, truncate: bool = False, max_batch: int = 16,
    frame: Frame = "auto",
) -> list[Generation | InputError]:
    """Greedy answers to many prompts, `max_batch` at a time in one left-padded `generate` call: the
    same answers as `generate` one prompt at a time (the tests compare them), at a fraction of the
    cost on a CPU (16 prompts of the bundled SmolLM2 on 2 cores: 7.9 s instead of 19.6 s; 8 at a
    time 8.4 s, 4 at a time 11.5 s). A prompt that is not valid input gets its InputError in its
    place; the others go on."""
    if lm.architecture.kind == "encoder":
        return [encode(lm, p, truncate=truncate) for p in prompts]
    prepared: list[tuple[str, int, bool, list[Token]] | InputError] = []
    for prompt in prompts:
        try:
            prepared.append(_prompt(lm, prompt, max_new_tokens, truncate, frame))
        except InputError as exc:
            prepared.append(exc)
    ready = [p[3] for p in prepared if not isinstance(p, InputError)]
    answer_ids = []
    for start in range(0, len(ready), max_batch):
        answer_ids += _greedy_answers(lm, ready[start : start + max_batch], max_new_tokens)
    answers = iter(answer_ids)
    return [
        p if isinstance(p, InputError) else _generation(lm, prompt, *p, next(answers), _params(max_new_tokens, frame))
        for prompt, p in zip(prompts, prepared)
    ]


def _greedy_answers(lm: LoadedModel, prompts: list[list[Token]], max_new_tokens: int) -> list[list[int]]:
    """Greedy answer ids for tokenized prompts, left-padded into one `generate` call (a single
    prompt gets no padding)."""
    pad = _pad_id(lm)
    width = max(map(len, prompts))
    ids = torch.tensor([[pad] * (width - len(tokens)) + [t.id for t in tokens] for tokens in prompts])
    mask = torch.tensor([[0] * (width - len(tokens)) + [1] * len(tokens) for tokens in prompts])
    with torch.inference_mode():
        out = lm.model.generate(
            ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
            temperature=None, top_p=None, top_k=None,
        )  # fmt: skip
    return out[:, width:].tolist()


def _params(max_new_tokens: int, frame: Frame, seed: int | None = None, temperature: float | None = None) -> dict:
    """How an answer was generated, as its Generation records it."""
    params = {"max_new_tokens": max_new_tokens, "do_sample": seed is not None, "seed": seed, "frame": frame}
    if seed is not None:
        params["temperature"] = temperature
    return params


def _prompt(
    lm: LoadedModel, prompt: str, max_new_tokens: int, truncate: bool, frame: Frame
) -> tuple[str, int, bool, list[Token]]:
    """The text the model reads, where the user's prompt starts in it, whether it is a chat
    rendering, and its tokens (cut to the model's context when `truncate`); an InputError when
    the prompt cannot be answered."""
    check_prompt(prompt)
    input_text, user_start, chat = _render(lm, prompt, frame)
    prompt_tokens = _tokens(lm, input_text, user_start, len(prompt), [], chat)
    if truncate:
        keep = max(1, lm.architecture.context_length - max_new_tokens)
        if len(prompt_tokens) > keep:
            input_text = input_text[prompt_tokens[-keep].start :]
            user_start = max(0, user_start - prompt_tokens[-keep].start)
            prompt_tokens = _tokens(lm, input_text, user_start, len(prompt), [], chat)
    check_length(lm, len(prompt_tokens), max_new_tokens)
    return input_text, user_start, chat, prompt_tokens


def _cut_at(lm: LoadedModel, answer_ids: list[int], stop: re.Pattern) -> list[int]:
    """The answer's tokens before `stop` first matches its text (a token that reaches into the
    match goes too)."""
    found = stop.search(lm.tokenizer.decode(answer_ids))
    if found is None:
        return answer_ids
    at = found.start()
    keep = 0
    while keep < len(answer_ids) and len(lm.tokenizer.decode(answer_ids[: keep + 1])) <= at:
        keep += 1
    return answer_ids[:keep]


def _generation(
    lm: LoadedModel, prompt: str, input_text: str, user_start: int, chat: bool, prompt_tokens: list[Token],
    answer_ids: list[int], params: dict,
) -> Generation:
    """The Generation of an answer: cut at the model's first stop token (which is not part of it)
    and, in the plain frame, where the model starts a new turn."""
    stop = set(_eos_ids(lm))
    for j, tid in enumerate(answer_ids):
        if tid in stop:
            answer_ids = answer_ids[:j]
            break
    if params["frame"] == "plain":
        answer_ids = _cut_at(lm, answer_ids, PLAIN_STOP)
    tokens = _tokens(lm, input_text, user_start, len(prompt), answer_ids, chat)
    params["chat_template"] = chat
    return Generation(lm.name, prompt, input_text, lm.tokenizer.decode(answer_ids), tokens, len(prompt_tokens), params)


def encode(lm: LoadedModel, text: str, *, truncate: bool = False) -> Generation:
    """Tokens of a plain text with no answer: for encoders, and for measuring long inputs."""
    check_prompt(text)
    chat = lm.has_chat_template  # a chat model's text gets no special tokens added, as ever
    tokens = _tokens(lm, text, 0, len(text), [], chat)
    limit = lm.architecture.context_length
    if truncate and limit and len(tokens) > limit:
        text = text[: tokens[limit - 1].end]
        tokens = _tokens(lm, text, 0, len(text), [], chat)[:limit]
    check_length(lm, len(tokens))
    return Generation(lm.name, text, text, "", tokens, len(tokens), {"encode_only": True})


def _eos_ids(lm: LoadedModel) -> list[int]:
    eos = lm.model.generation_config.eos_token_id
    if eos is None:
        eos = lm.tokenizer.eos_token_id
    return [eos] if isinstance(eos, int) else list(eos or [])


def _pad_id(lm: LoadedModel) -> int | None:
    pad = lm.tokenizer.pad_token_id
    return pad if pad is not None else (_eos_ids(lm) or [None])[0]
