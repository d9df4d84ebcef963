"""Prompt templates and few-shot examples: files loaded by name, versioned by the hash of their content.

A template holds `{{slot}}` markers. Every value put into a slot is serialised as JSON first,
so user text reaches the model only as a quoted JSON string: it can never close a block, open
a new instruction, or be interpreted by a template engine (there is none: plain replacement).

A step's conversation is the shared `system` text, then its few-shot examples as earlier turns
(each rendered with a template and followed by the reply it should get), then the step's own
`{step}.user` request. `examples.json` holds the examples: a list of {"values": the case and
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


def messages(step: str, shots: Sequence[tuple[dict, str]] = (), shot_template: str | None = None, **values) -> list[dict]:
    """The chat messages of one agent step: the system text, each shot (slot values rendered with
    `{shot_template}.user`, default the step's own, then the reply it should get), then
    `{step}.user` rendered with values."""
    template = load(f"{shot_template or step}.user")
    turns = []
    for shot_values, reply in shots:
        turns += [{"role": "user", "content": template.render(**shot_values)}, {"role": "assistant", "content": reply}]
    return [
        {"role": "system", "content": load("system").render()},
        *turns,
        {"role": "user", "content": load(f"{step}.user").render(**values)},
    ]


def versions(*steps: str) -> dict[str, str]:
    """Content hashes of the system text, the examples and these steps' templates: recorded in every explanation."""
    out = {"system": load("system").version, **{f"{s}.user": load(f"{s}.user").version for s in steps}}
    if examples().items:
        out["examples"] = examples().version
    return out
