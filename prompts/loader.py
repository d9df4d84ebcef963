"""Prompt templates and few-shot examples: files loaded by name, versioned by the hash of their content.

A template holds `{{slot}}` markers. Every value put into a slot is serialised as JSON first,
so user text reaches the model only as a quoted JSON string: it can never close a block, open
a new instruction, or be interpreted by a template engine (there is none: plain replacement).

A step's conversation is the shared `system` text, then its few-shot examples as earlier turns
(each a draft request followed by the line it should get), then the draft request; a critique or
refinement continues that conversation with the line the model wrote and its own `{step}.user`
request (see `messages`). `examples.json` holds the examples: a list of {"values": the case and
words slots, "label": the role, "sentence": a good sentence, "facts": the cluster they came from}.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from attnlens.errors import AttnlensError

TEMPLATES = Path(__file__).with_name("templates")
_SLOT = re.compile(r"\{\{([a-z_]+)\}\}")


@dataclass(frozen=True)
class Template:
    name: str
    text: str

    @property
    def version(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]

    @property
    def slots(self) -> set[str]:
        return set(_SLOT.findall(self.text))

    def render(self, **values) -> str:
        if set(values) != self.slots:
            raise AttnlensError(f"template {self.name!r} takes slots {sorted(self.slots)}, got {sorted(values)}")
        encoded = {k: json.dumps(v, ensure_ascii=False) for k, v in values.items()}
        return _SLOT.sub(lambda m: encoded[m.group(1)], self.text)


@dataclass(frozen=True)
class Examples:
    name: str
    items: tuple[dict, ...]  # {"values": {...}, "label": str, "sentence": str, "facts": {...}}

    @property
    def version(self) -> str:
        return hashlib.sha256(json.dumps(self.items, sort_keys=True).encode()).hexdigest()[:12]


@cache
def examples() -> Examples:
    """The few-shot examples (none when there is no examples file)."""
    path = TEMPLATES / "examples.json"
    if not path.is_file():
        return Examples("examples", ())
    try:
        items = json.loads(path.read_text())
    except ValueError as exc:
        raise AttnlensError(f"{path.name} is not valid JSON: {exc}") from None
    needed = {"values", "label", "sentence"}
    if not isinstance(items, list) or not all(isinstance(i, dict) and needed <= set(i) for i in items):
        raise AttnlensError(f"{path.name} must be a list of objects with {', '.join(sorted(needed))}")
    return Examples("examples", tuple(items))


@cache
def load(name: str) -> Template:
    path = TEMPLATES / f"{name}.txt"
    if not path.is_file():
        known = sorted(p.stem for p in TEMPLATES.glob("*.txt"))
        raise AttnlensError(f"no prompt template {name!r}; known: {', '.join(known)}")
    return Template(name, path.read_text())


def messages(
    step: str, values: dict, shots: Sequence[tuple[dict, str]] = (), line: str | None = None, **step_values
) -> list[dict]:
    """The chat messages of one agent step. Every step opens with the same conversation: the system
    text, each shot (its slot values rendered with `draft.user`, then the line it should get), then
    the draft request rendered with `values` (the case and the words). A draft ends there; a
    critique or a refinement goes on from it: the `line` the model wrote, as its reply, then
    `{step}.user` rendered with step_values. So a cluster's later requests repeat its draft request
    and line word for word, and an engine's prefix cache computes them once."""
    draft = load("draft.user")
    turns = [{"role": "system", "content": load("system").render()}]
    for shot_values, reply in shots:
        turns += [{"role": "user", "content": draft.render(**shot_values)}, {"role": "assistant", "content": reply}]
    turns.append({"role": "user", "content": draft.render(**values)})
    if step == "draft":
        if line is not None or step_values:
            raise AttnlensError("a draft request takes no line and no step values")
        return turns
    if line is None:
        raise AttnlensError(f"a {step} request goes on from a line: give the line")
    return turns + [
        {"role": "assistant", "content": line},
        {"role": "user", "content": load(f"{step}.user").render(**step_values)},
    ]


def versions(*steps: str) -> dict[str, str]:
    """Content hashes of the system text, the examples and these steps' templates: recorded in every explanation."""
    out = {"system": load("system").version, **{f"{s}.user": load(f"{s}.user").version for s in steps}}
    if examples().items:
        out["examples"] = examples().version
    return out
