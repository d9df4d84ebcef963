"""A benchmark's targets: each measured figure beside its goal, in the JSON and under the table.

Every `attnlens bench NAME` that has goals returns `"targets": [Target.to_dict(), ...]`, so one
reader (a person, CI, the closing note of an issue) sees the same fields everywhere: the figure,
the goal, which way the goal points, and whether it is met.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal


@dataclass(frozen=True)
class Target:
    name: str
    figure: float | None  # None: not measured in this run (e.g. the size was not asked for, or failed)
    goal: float
    direction: Literal["at_most", "at_least", "exactly"]
    unit: str = ""  # "s", "x", "%", "min" or "" (a count)

    @property
    def met(self) -> bool | None:
        if self.figure is None:
            return None
        if self.direction == "exactly":
            return self.figure == self.goal
        return self.figure <= self.goal if self.direction == "at_most" else self.figure >= self.goal

    def to_dict(self) -> dict:
        return {**asdict(self), "met": self.met}


def _value(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.0%}"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("s", "min"):
        return f"{value:.2f} {unit}" if value < 10 else f"{value:.1f} {unit}"
    return f"{value:g}"


def render(targets: list[dict]) -> str:
    """One line per target: `name: figure (goal <= x: met | NOT met | not measured)`."""
    out = []
    for t in targets:
        sign = {"at_most": "<=", "at_least": ">=", "exactly": "="}[t["direction"]]
        goal = f"{sign} {_value(t['goal'], t['unit'])}"
        if t["figure"] is None:
            out.append(f"{t['name']}: - (goal {goal}: not measured)")
        else:
            out.append(f"{t['name']}: {_value(t['figure'], t['unit'])} (goal {goal}: {'met' if t['met'] else 'NOT met'})")
    return "\n".join(out)
