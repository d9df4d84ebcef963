"""Regenerate the import-graph picture of docs/architecture.md from the code.

    .venv/bin/python scripts/import_graph.py

Builds the wheel (the installed layout: every stage folder under `attnlens.`), reads the import
graph of `attnlens` with grimp (the library import-linter runs on), counts the imports between
the packages of the layers contract in pyproject.toml, and writes
  docs/architecture-imports.png   the layers as rows, an arrow per importing package pair
                                  (red if it ran back up a layer: there should be none)
  docs/architecture.md            the same graph as a Mermaid block, between its markers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
PICTURE = ROOT / "docs" / "architecture-imports.png"
START, END = "<!-- import-graph:start -->", "<!-- import-graph:end -->"

COUNT = """
import json, sys
import grimp
packages = json.loads(sys.argv[1])
def package_of(module):
    return next((p for p in packages if module == p or module.startswith(p + ".")), None)
graph = grimp.build_graph("attnlens")
counts = {}
for module in graph.modules:
    a = package_of(module)
    for imported in graph.find_modules_directly_imported_by(module):
        b = package_of(imported)
        if a and b and a != b:
            counts[f"{a} {b}"] = counts.get(f"{a} {b}", 0) + 1
print(json.dumps(counts))
"""


def layers() -> list[list[str]]:
    """The contract's layers, highest first, each a list of its packages."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [contract] = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return [[p.strip() for p in layer.split("|")] for layer in contract["layers"]]


def import_counts(packages: list[str]) -> dict[tuple[str, str], int]:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp, str(ROOT)], check=True
        )
        [wheel] = Path(tmp).glob("attnlens-*.whl")
        site = Path(tmp) / "site"
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(site)
        proc = subprocess.run(
            [sys.executable, "-c", COUNT, json.dumps(packages)], capture_output=True, text=True, check=True,
            cwd=site, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        )
    return {tuple(k.split()): v for k, v in json.loads(proc.stdout).items()}


def short(package: str) -> str:
    return package.removeprefix("attnlens.")


def draw(rows: list[list[str]], counts: dict[tuple[str, str], int], rank: dict[str, int]) -> None:
    position = {}
    for r, row in enumerate(rows):
        for c, package in enumerate(row):
            position[package] = ((c + 1) / (len(row) + 1), 1 - (r + 0.5) / len(rows))
    fig, ax = plt.subplots(figsize=(9, 7))
    ax.set_axis_off()
    for (a, b), n in sorted(counts.items()):
        up = rank[a] <= rank[b]  # same layer counts as back up: the contract forbids both
        (x0, y0), (x1, y1) = position[a], position[b]
        ax.annotate(
            "", xy=(x1, y1), xytext=(x0, y0),
            arrowprops=dict(arrowstyle="-|>", color="#d62728" if up else "#9a9a9a", lw=0.6 + 0.25 * min(n, 12),
                            shrinkA=18, shrinkB=18, connectionstyle="arc3,rad=0.08"),
        )  # fmt: skip
    for package, (x, y) in position.items():
        ax.text(x, y, short(package), ha="center", va="center", fontsize=11,
                bbox=dict(boxstyle="round,pad=0.5", fc="#eef3fb", ec="#4a6fa5"))  # fmt: skip
    ax.set_title("attnlens: imports between packages (layers top to bottom; grey = downward, red = back up)")
    fig.tight_layout()
    fig.savefig(PICTURE, dpi=110)
    plt.close(fig)


def mermaid(rows: list[list[str]], counts: dict[tuple[str, str], int]) -> str:
    lines = ["```mermaid", "flowchart TD"]
    for r, row in enumerate(rows):
        lines.append(f"  subgraph L{r}[\" \"]")
        lines += [f"    {short(p)}[{short(p)}]" for p in row]
        lines.append("  end")
    lines += [f"  {short(a)} -->|{n}| {short(b)}" for (a, b), n in sorted(counts.items())]
    lines.append("```")
    return "\n".join(lines)


def main() -> int:
    rows = layers()
    rank = {p: len(rows) - r for r, row in enumerate(rows) for p in row}  # higher layer, higher rank
    counts = import_counts([p for row in rows for p in row])
    upward = [f"{short(a)} -> {short(b)}" for (a, b) in counts if rank[a] <= rank[b]]
    draw(rows, counts, rank)
    text = DOC.read_text()
    block = (
        f"{START}\n![imports between packages](architecture-imports.png)\n\n{mermaid(rows, counts)}\n\n"
        f"{len(counts)} importing package pairs; arrows that run back up a layer or across one: {len(upward)}"
        f"{' (' + ', '.join(upward) + ')' if upward else ''}.\n{END}"
    )
    DOC.write_text(text[: text.index(START)] + block + text[text.index(END) + len(END) :])
    print(f"wrote {PICTURE.relative_to(ROOT)} and the graph in {DOC.relative_to(ROOT)}: "
          f"{len(counts)} package pairs, {len(upward)} upward")  # fmt: skip
    return 1 if upward else 0


if __name__ == "__main__":
    raise SystemExit(main())
