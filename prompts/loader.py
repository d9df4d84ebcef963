"""Prompt templates: files loaded by name, versioned by the hash of their content.

A template holds `{{slot}}` markers. Every value put into a slot is serialised as JSON first,
so user text reaches the model only as a quoted JSON string: it can never close a block, open
a new instruction, or be interpreted by a template engine (there is none: plain replacement).
"""

from __future__ import annotations

import hashlib
import json
import re
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
        encoded = {k: json.dumps(v, ensure_ascii=False, indent=1) for k, v in values.items()}
        return _SLOT.sub(lambda m: encoded[m.group(1)], self.text)


@cache
def load(name: str) -> Template:
    path = TEMPLATES / f"{name}.txt"
    if not path.is_file():
        known = sorted(p.stem for p in TEMPLATES.glob("*.txt"))
        raise AttnlensError(f"no prompt template {name!r}; known: {', '.join(known)}")
    return Template(name, path.read_text())


def messages(step: str, **values) -> list[dict]:
    """The chat messages of one agent step: `{step}.system` as is, `{step}.user` rendered with values."""
    return [
        {"role": "system", "content": load(f"{step}.system").render()},
        {"role": "user", "content": load(f"{step}.user").render(**values)},
    ]


def versions(*steps: str) -> dict[str, str]:
    """Content hashes of the templates of these steps: recorded in every explanation."""
    return {f"{s}.{part}": load(f"{s}.{part}").version for s in steps for part in ("system", "user")}
