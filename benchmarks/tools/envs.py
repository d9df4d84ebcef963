"""One virtual environment per visualisation tool, installed the way its README says.

Each tool gets `python3.11 -m venv` and one `pip install` of the tool plus what it needs to load
our models (transformers, safetensors), with torch held to the CPU wheel by a constraints file
(pip must never pull a CUDA torch here). The tool's own pins on transformers apply. A stamp
records the requirement set, the outcome and `pip freeze`, so a second call is instant and a
failed install is recorded once (pip's own error, verbatim) instead of retried for every cell.

When the README install fails, a tool may name the install a user tries next (`fallback`: e.g.
`pip install --no-deps ecco`, then current versions of what it imports); it runs in the same
venv, and the README install's error is kept beside the outcome (`readme_error`).
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
    # pip install argument lists tried, in order, when the README install fails (what a user tries next)
    fallback: tuple[tuple[str, ...], ...] = ()
    package: str = ""  # its name in pip freeze, when not the tool's name

    @property
    def distribution(self) -> str:
        return self.package or self.name

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
        Tool(
            "ecco", ("ecco",), "https://github.com/jalammar/ecco",
            # ecco 0.1.2 pins scikit-learn~=0.23 and PyYAML~=5.4, which do not build on Python 3.11
            # (no wheels; their setup scripts fail): install Ecco without its pins, then what it imports,
            # each at the newest version that works with it. transformers: <4.47 because lm.py line 300
            # calls `_prepare_attention_mask_for_generation(input_ids, pad_token_id, eos_token_id)`,
            # which 4.47 replaced by (inputs, generation_config, model_kwargs) (and 5.x has no
            # `config.top_k`, lm.py line 177); >=4.45 because tokenizers < 0.20 cannot read the
            # tokenizer.json of our models (written by tokenizers 0.22).
            # matplotlib <3.9: lm_plots.py line 5 imports `matplotlib.cm.get_cmap`, removed in 3.9.
            fallback=(
                ("--no-deps", "ecco"),
                ("transformers>=4.45,<4.47", "seaborn~=0.11", "captum~=0.4", "scikit-learn", "PyYAML",
                 "matplotlib<3.9", "ipython", "safetensors", "torch==2.13.0"),
            ),
        ),
        # lit-nlp 1.2 removed the Attention module from the UI (commit 27d7a841, "Remove attention module
        # from LIT."): 1.3.1 installs, but nothing in it draws AttentionHeads. 1.1.1 is the last release
        # with it; it does not bound numpy, and its pinned shap 0.42.0 fails on NumPy 2 when
        # lit_nlp.dev_server is imported (`np.obj2sctype` was removed), hence numpy<2 (LIT 1.3.1 has that pin).
        Tool("lit", ("lit-nlp==1.1.1", "numpy<2"), "https://github.com/PAIR-code/lit", package="lit-nlp"),
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
    fallback: list[list[str]] | None = None  # the tool's fallback pip installs (they ran only if readme_error is set)
    readme_error: str | None = None  # the README install's own error, when the fallback ran after it


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


def _pip_install(python: str, constraints: Path, args) -> str | None:
    """One `pip install` in the tool's venv; pip's error, or None."""
    try:
        proc = subprocess.run(
            [python, "-m", "pip", "install", "--no-input", "-c", str(constraints), *args],
            capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"pip install did not finish within {INSTALL_TIMEOUT_S} s"
    return None if proc.returncode == 0 else _pip_error(proc.stderr, proc.stdout)


def ensure_env(name: str, log=print) -> Env:
    """The tool's venv, created on first use; idempotent for the same requirement set."""
    tool = TOOLS[name]
    if tool.main_venv:
        # an editable install is not "name==version" in pip freeze
        versions = _freeze(sys.executable) | {"attnlens": importlib.metadata.version("attnlens")}
        return Env(name, sys.executable, [], versions, None, None)
    requirements = [*tool.requirements, *COMMON]
    fallback = [list(step) for step in tool.fallback] or None
    root = env_dir(name)
    stamp = root / STAMP
    try:
        saved = json.loads(stamp.read_text())
        if saved["requirements"] == requirements and saved.get("fallback") == fallback:
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
    error = _pip_install(python, constraints, requirements)
    readme_error = None
    if error and fallback:
        readme_error, error = error, None
        log(f"the {name} README install failed; trying: " + "; ".join("pip install " + " ".join(s) for s in fallback))
        for step in fallback:
            error = _pip_install(python, constraints, step)
            if error:
                break
    env = Env(
        name, None if error else python, requirements, _freeze(python), error,
        round(time.perf_counter() - started, 1), fallback, readme_error,
    )
    stamp.write_text(json.dumps(env.__dict__, indent=1))
    return env
