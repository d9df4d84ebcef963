"""One virtual environment per visualisation tool, installed the way its README says.

Each tool gets `python3.11 -m venv` and one `pip install` of the tool plus what it needs to load
our models (transformers, safetensors), with torch held to the CPU wheel by a constraints file
(pip must never pull a CUDA torch here). The tool's own pins on transformers apply. A stamp
records the requirement set, the outcome and `pip freeze`, so a second call is instant and a
failed install is recorded once (pip's own error, verbatim) instead of retried for every cell.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from attnlens.extraction.models import cache_root

ADAPTERS = Path(__file__).parent / "adapters"
COMMON = ("transformers", "safetensors", "torch==2.13.0")
TORCH_CONSTRAINT = "torch==2.13.0+cpu"
STAMP = "attnlens-env.json"
INSTALL_TIMEOUT_S = 1200


@dataclass(frozen=True)
class Tool:
    name: str
    requirements: tuple[str, ...]  # what the tool's README tells its users to pip install
    url: str
    main_venv: bool = False  # attnlens runs in the project's own venv

    @property
    def adapter(self) -> Path:
        return ADAPTERS / f"view_{self.name}.py"  # not {name}.py: the script would shadow the package


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in [
        Tool("attnlens", (), "https://github.com/attnlens (this project)", main_venv=True),
        Tool("bertviz", ("bertviz",), "https://github.com/jessevig/bertviz"),
        Tool("inspectus", ("inspectus", "ipython"), "https://github.com/labmlai/inspectus"),  # imports IPython, does not declare it
        Tool("circuitsvis", ("circuitsvis", "transformer_lens"), "https://github.com/TransformerLensOrg/CircuitsVis"),
        Tool("inseq", ("inseq",), "https://github.com/inseq-team/inseq"),
        Tool("ecco", ("ecco",), "https://github.com/jalammar/ecco"),
    ]
}


@dataclass(frozen=True)
class Env:
    tool: str
    python: str | None  # None when the install failed
    requirements: list[str]
    versions: dict[str, str]  # resolved by pip (pip freeze)
    error: str | None
    install_seconds: float | None


def env_dir(tool: str) -> Path:
    return cache_root() / "tools" / tool


def _freeze(python: str) -> dict[str, str]:
    proc = subprocess.run([python, "-m", "pip", "freeze", "--all"], capture_output=True, text=True)
    pairs = (line.split("==", 1) for line in proc.stdout.splitlines() if "==" in line)
    return {name: version for name, version in pairs}


def _pip_error(stderr: str, stdout: str) -> str:
    """pip's own words: the package it was at, then its error block verbatim (local-index warnings dropped)."""
    at = [line for line in stdout.splitlines() if line.startswith(("Collecting", "Processing", "Building"))][-1:]
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("WARNING: Location")]
    first = next((i for i, line in enumerate(lines) if line.lstrip().lower().startswith("error")), max(0, len(lines) - 40))
    return "\n".join(at + lines[first:][-60:])


def install_summary(error: str) -> str:
    """One line for a table: where pip was, and the last exception it printed."""
    lines = error.splitlines()
    last = next((line.strip() for line in reversed(lines) if "Error" in line and ":" in line), lines[-1].strip())
    return f"{lines[0].strip()}: {last}" if last != lines[0].strip() else last


def ensure_env(name: str, log=print) -> Env:
    """The tool's venv, created on first use; idempotent for the same requirement set."""
    tool = TOOLS[name]
    if tool.main_venv:
        # an editable install is not "name==version" in pip freeze
        versions = _freeze(sys.executable) | {"attnlens": importlib.metadata.version("attnlens")}
        return Env(name, sys.executable, [], versions, None, None)
    requirements = [*tool.requirements, *COMMON]
    root = env_dir(name)
    stamp = root / STAMP
    try:
        saved = json.loads(stamp.read_text())
        if saved["requirements"] == requirements:
            return Env(**saved)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    log(f"creating the {name} venv: pip install {' '.join(requirements)} (once)")
    started = time.perf_counter()
    python3_11 = shutil.which("python3.11") or sys.executable
    subprocess.run([python3_11, "-m", "venv", str(root / "venv")], check=True)
    python = str(root / "venv" / "bin" / "python")
    constraints = root / "constraints.txt"
    constraints.write_text(TORCH_CONSTRAINT + "\n")
    try:
        proc = subprocess.run(
            [python, "-m", "pip", "install", "--no-input", "-c", str(constraints), *requirements],
            capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
        )
        error = None if proc.returncode == 0 else _pip_error(proc.stderr, proc.stdout)
    except subprocess.TimeoutExpired:
        error = f"pip install did not finish within {INSTALL_TIMEOUT_S} s"
    env = Env(
        name, None if error else python, requirements, _freeze(python), error,
        round(time.perf_counter() - started, 1),
    )
    stamp.write_text(json.dumps(env.__dict__, indent=1))
    return env
