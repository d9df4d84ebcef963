"""The distribution: one namespace in the wheel, layers that import only downward, a light front door."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel pip builds from this checkout (no dependencies resolved or installed)."""
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [PYTHON, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    [built] = out.glob("attnlens-*.whl")
    return built


@pytest.fixture(scope="module")
def unpacked(wheel, tmp_path_factory) -> Path:
    """The wheel's files, laid out as pip would install them in site-packages."""
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    return site


def test_the_wheel_installs_one_top_level_package(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"attnlens"}
    # each of the repository's stage folders is a subpackage, with its data files
    for package in ("extraction", "prompts", "clustering", "evaluation", "agent", "pipeline", "reports", "ui",
                    "benchmarks", "data"):  # fmt: skip
        assert f"attnlens/{package}/__init__.py" in names
    assert "attnlens/agent/backends/vllm.py" in names
    assert "attnlens/extraction/fused_stats.cpp" in names
    assert "attnlens/data/cases.jsonl" in names
    shipped = {f"attnlens/clustering/head_weights/{m}.json" for m in ("smollm2-135m", "gemma3-270m", "qwen2.5-0.5b")}
    assert shipped <= set(names)
    assert any(n.startswith("attnlens/prompts/templates/") for n in names)
    assert not any(n.startswith(("attnlens/tests", "tests/", "docs/")) for n in names)
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as zf:
        assert "attnlens = attnlens.ui.cli:main" in zf.read(entry).decode()


def test_layers_import_only_downward(unpacked):
    """import-linter's layers contract (pyproject.toml) on the installed layout: an import from a
    lower layer to a higher one, or between packages of one layer, fails here."""
    proc = subprocess.run(
        [str(Path(PYTHON).with_name("lint-imports")), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True, text=True, cwd=unpacked, env={"PYTHONPATH": str(unpacked), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def _imported_after(code: str) -> set[str]:
    """Top-level modules loaded by a fresh interpreter after running `code`."""
    script = f"import sys\n{code}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    proc = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


HEAVY = {"torch", "transformers", "vllm", "gradio", "ragas", "langgraph", "outlines", "igraph"}


def test_the_front_door_is_light():
    assert not HEAVY & _imported_after("import attnlens")
    # the CLI module (what `attnlens --help` loads) too
    assert not HEAVY & _imported_after("import attnlens.ui.cli")


def test_the_front_door_names_everything_it_promises():
    loaded = _imported_after(
        "import attnlens\n"
        "names = ['explain', 'Explainer', 'Explanation', 'load_model', 'generate', 'capture', 'cluster',\n"
        "         'CaptureConfig', 'ClusterConfig', 'AttnlensError', 'InputError', 'ModelError', 'CaptureError',\n"
        "         'BackendError']\n"
        "assert all(callable(getattr(attnlens, n)) for n in names), names\n"
        "assert set(names) <= set(attnlens.__all__) and set(names) <= set(dir(attnlens))\n"
        "assert issubclass(attnlens.InputError, attnlens.AttnlensError)"
    )
    assert "torch" in loaded  # asking for load_model & co. loads what they need


def test_an_unknown_name_is_an_attribute_error():
    import attnlens

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        attnlens.nope  # noqa: B018


def test_no_file_sends_readers_to_notes_they_do_not_have():
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT, check=True).stdout.split()
    offenders = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in (".py", ".md", ".txt", ".toml", ".sh", ".ipynb", ".json") and path.is_file():
            text = path.read_text(errors="ignore")
            if "DESIGN" + ".md" in text or "FACTS" + ".md" in text:
                offenders.append(name)
    assert offenders == []
