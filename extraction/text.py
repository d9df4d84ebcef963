"""Prompt text: what may be given to a model. Light (standard library only), so the CLI can check
a prompt before any model loads."""

from __future__ import annotations

import unicodedata

from attnlens.errors import InputError

ALLOWED_CONTROL = frozenset("\t\n\r")


def check_prompt(prompt: str) -> None:
    """Refuse what no model should be given: a non-string, an empty prompt, a control character
    (a NUL byte, an escape sequence...) or text that is not valid Unicode."""
    if not isinstance(prompt, str):
        raise InputError(f"the prompt must be text, not {type(prompt).__name__}")
    if not prompt.strip():
        raise InputError("the prompt is empty")
    for i, ch in enumerate(prompt):
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in ALLOWED_CONTROL:
            raise InputError(f"the prompt holds the control character U+{ord(ch):04X} at position {i}: remove it")
        if category == "Cs":
            raise InputError(f"the prompt is not valid Unicode (a lone surrogate U+{ord(ch):04X} at position {i})")
