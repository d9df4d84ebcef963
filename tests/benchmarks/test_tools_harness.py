"""The tool-benchmark harness, fast: the attnlens adapter end to end, budgets, failures verbatim.

No tool venv is installed by these tests (that takes minutes per tool); the attnlens adapter runs
in the project's own venv, the failing, over-budget and served cells are real child processes,
and the Ecco and LIT cells run where `attnlens bench tools` has installed their venvs.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from attnlens.benchmarks.tools import main
from attnlens.benchmarks.tools.envs import ensure_env
from attnlens.benchmarks.tools.harness import Budget, integration_lines, load_rows, run_adapter, run_cell
from attnlens.benchmarks.tools.inputs import prepare


def test_the_attnlens_cell_runs_end_to_end(tmp_path):
    row = run_cell("attnlens", ensure_env("attnlens"), "tiny-gpt2", 64, Budget(), tmp_path, render=False)
    assert row["status"] == "ok", row
    html = Path(row["output"]).read_text()
    assert row["output_bytes"] == len(html.encode())
    assert html.count("<span") == 64  # one shaded span per token
    assert 0 < row["viz_s"] < row["wall_s"]
    assert 100 < row["peak_rss_mb"] < 4000  # torch alone is a few hundred MB


def test_inputs_have_exactly_the_asked_length_or_say_why_not(tmp_path):
    for model, n in (("minilm-l6", 64), ("tiny-gpt2", 256)):
        spec = json.loads(prepare(model, n, tmp_path).read_text())
        assert len(spec["ids"]) == n
    minilm = json.loads((tmp_path / "minilm-l6-64.json").read_text())
    assert minilm["ids"][0] == 101 and minilm["ids"][-1] == 102  # [CLS] ... [SEP]
    with pytest.raises(ValueError, match="exceeds context: 1024 tokens > 512 positions"):
        prepare("minilm-l6", 1024, tmp_path)


def test_a_cell_over_its_time_budget_is_stopped_and_recorded(tmp_path):
    row = run_cell("attnlens", ensure_env("attnlens"), "tiny-gpt2", 64, Budget(seconds=0.5), tmp_path, render=False)
    assert row["status"] == "time budget exceeded"
    assert row["error"] == "time budget exceeded (over 0.5 s)"
    assert row["wall_s"] < 3


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "adapter.py"
    path.write_text(body)
    return path


def test_a_cell_over_its_memory_budget_is_stopped_and_recorded(tmp_path):
    adapter = _script(tmp_path, "import time\nblock = bytearray(400 * 2**20)\ntime.sleep(30)\n")
    row = run_adapter(sys.executable, adapter, tmp_path / "unused.json", tmp_path / "out", Budget(memory_mb=200))
    assert row["status"] == "memory budget exceeded"
    assert row["peak_rss_mb"] >= 200 and row["wall_s"] < 10


def test_a_failing_tool_is_recorded_verbatim(tmp_path):
    adapter = _script(tmp_path, "def load():\n    raise ValueError('no attention for this model: 42')\nload()\n")
    row = run_adapter(sys.executable, adapter, tmp_path / "unused.json", tmp_path / "out", Budget())
    assert row["status"] == "failed"
    assert row["error"] == "ValueError: no attention for this model: 42"
    assert row["detail"].startswith("Traceback (most recent call last):") and "in load" in row["detail"]


def test_an_adapter_without_a_result_line_is_a_failure_not_a_crash(tmp_path):
    adapter = _script(tmp_path, "print('hello')\n")
    row = run_adapter(sys.executable, adapter, tmp_path / "unused.json", tmp_path / "out", Budget())
    assert row["status"] == "failed" and row["error"].startswith("no result line from the adapter")


def test_json_rows_and_a_second_run_skips_finished_cells(tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    argv = ["--tools", "attnlens", "--models", "minilm-l6", "--lengths", "64", "1024", "--no-render", "--json", "--results", str(results)]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["tool"], r["model"], r["tokens"], r["status"]) for r in rows] == [
        ("attnlens", "minilm-l6", 64, "ok"), ("attnlens", "minilm-l6", 1024, "exceeds context"),
    ]
    assert {"wall_s", "viz_s", "peak_rss_mb", "output_bytes", "budget", "finished_at"} <= rows[0].keys()
    assert main(argv) == 0  # nothing left to run: the same rows, no new line in the results file
    assert json.loads(capsys.readouterr().out) == rows
    assert len(results.read_text().splitlines()) == 2 and len(load_rows(results)) == 2


def test_integration_lines_count_code_not_the_docstring():
    from attnlens.benchmarks.tools.envs import TOOLS

    text = TOOLS["bertviz"].adapter.read_text()
    code = text[text.index('"""', 3) + 3:]
    assert integration_lines("bertviz") == sum(1 for line in code.splitlines() if line.strip())


@pytest.mark.browser
def test_chromium_tells_a_self_contained_page_from_one_that_needs_a_cdn(tmp_path):
    """`.invalid` never resolves (RFC 2606): the same failure a CDN gives on a machine without internet."""
    from attnlens.benchmarks.tools.render import render

    local = tmp_path / "local.html"
    local.write_text("<!doctype html><svg width='50' height='50'><circle r='20' cx='25' cy='25'/></svg><p>attention</p>")
    cdn = tmp_path / "cdn.html"
    cdn.write_text("<!doctype html><script src='https://cdn.invalid/d3/5.7.0/d3.min.js'></script>"
                   "<div id='vis'></div><script>d3.select('#vis').append('p').text('drawn')</script>")
    ok = render(local, tmp_path / "local.png", budget_s=30)
    broken = render(cdn, tmp_path / "cdn.png", budget_s=30)
    assert ok["renders"] is True and ok["render_error"] is None and ok["render_s"] < 30
    assert (tmp_path / "local.png").read_bytes().startswith(b"\x89PNG")
    assert broken["renders"] is False
    assert "request failed: https://cdn.invalid/d3/5.7.0/d3.min.js" in broken["render_error"]
    assert "d3 is not defined" in broken["render_error"]


@pytest.mark.browser
def test_a_page_that_keeps_chromium_busy_is_stopped_at_the_budget(tmp_path):
    from attnlens.benchmarks.tools.render import render

    busy = tmp_path / "busy.html"
    busy.write_text("<!doctype html><p>loading</p><script>while (true) {}</script>")
    result = render(busy, tmp_path / "busy.png", budget_s=3)
    assert result["renders"] is False and result["render_s"] is None


SERVED = """
import http.server, json, os, sys, threading
from pathlib import Path
page = Path(sys.argv[2]) / "index.html"
page.write_text("<p>served view</p>")
handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=sys.argv[2])
server = http.server.HTTPServer(("127.0.0.1", 0), handler)
url = f"http://127.0.0.1:{server.server_port}/index.html"
print(json.dumps({"output": str(page), "seconds": 0.5, "url": url, "click": ["p"]}), flush=True)
server.serve_forever()
"""


def test_a_served_view_is_opened_while_its_server_runs_then_stopped(tmp_path):
    """LIT's pattern: the adapter serves its view; the harness opens the URL, then stops the server."""
    import urllib.request

    seen = []

    def serve(reported):
        seen.append(reported)
        return {"fetched": urllib.request.urlopen(reported["url"], timeout=10).read().decode()}

    adapter = _script(tmp_path, SERVED)
    row = run_adapter(sys.executable, adapter, tmp_path / "unused.json", tmp_path / "out", Budget(seconds=30), serve=serve)
    assert row["status"] == "ok", row
    assert row["fetched"] == "<p>served view</p>"  # the server answered while the harness held it
    assert seen[0]["click"] == ["p"] and row["url"] == seen[0]["url"]
    assert row["output_bytes"] == len("<p>served view</p>") and row["viz_s"] == 0.5
    assert row["wall_s"] < 10  # the time until the result line, not the 30 s budget
    with pytest.raises(OSError):  # the process group was stopped: nothing listens any more
        urllib.request.urlopen(row["url"], timeout=5)


def test_without_a_serve_callback_a_serving_adapter_runs_into_its_budget(tmp_path):
    adapter = _script(tmp_path, SERVED)
    row = run_adapter(sys.executable, adapter, tmp_path / "unused.json", tmp_path / "out", Budget(seconds=2))
    assert row["status"] == "time budget exceeded"


def test_model_folders_name_the_tokenizer_as_transformers_4_does(tmp_path):
    """transformers 5 writes `TokenizersBackend`, which 4.x (Ecco's) cannot load; 5.x reads the 4.x name as the same class."""
    from transformers import AutoTokenizer

    from attnlens.benchmarks.tools.inputs import _legacy_tokenizer, model_folder

    bundled = tmp_path / "bundled.json"
    bundled.write_text(json.dumps({"tokenizer_class": "TokenizersBackend", "bos_token": "<s>"}))
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "tokenizer_config.json").symlink_to(bundled)
    for _ in range(2):  # idempotent
        _legacy_tokenizer(folder)
    written = folder / "tokenizer_config.json"
    assert not written.is_symlink()
    assert json.loads(written.read_text()) == {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>"}
    assert json.loads(bundled.read_text())["tokenizer_class"] == "TokenizersBackend"  # the bundled model untouched
    smollm = model_folder("smollm2-135m")
    assert json.loads((smollm / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert type(AutoTokenizer.from_pretrained(smollm)).__name__ == "TokenizersBackend"


def _wheel(folder: Path, name: str) -> Path:
    """A minimal pure-Python wheel, so that an install needs no index."""
    import zipfile

    path = folder / f"{name}-1.0-py3-none-any.whl"
    info = f"{name}-1.0.dist-info"
    files = {
        f"{name}/__init__.py": "VERSION = '1.0'\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{f},,\n" for f in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as whl:
        for arcname, text in files.items():
            whl.writestr(arcname, text)
    return path


@pytest.mark.slow
def test_a_failed_readme_install_is_kept_and_the_fallback_installs(tmp_path, monkeypatch):
    """Ecco's pattern: `pip install <tool>` fails, the install a user tries next succeeds; both are recorded."""
    from attnlens.benchmarks.tools import envs

    monkeypatch.setenv("ATTNLENS_CACHE", str(tmp_path / "cache"))
    wheel = _wheel(tmp_path, "attnlens_fallback_probe")
    missing = str(tmp_path / "no-such-package")  # pip rejects it before asking any index
    probe = envs.Tool("probe", (missing,), "https://example.invalid", fallback=(("--no-index", "--no-deps", str(wheel)),))
    monkeypatch.setitem(envs.TOOLS, "probe", probe)
    env = envs.ensure_env("probe", log=lambda msg: None)
    assert env.error is None and env.python and Path(env.python).exists()
    assert "does not exist" in env.readme_error
    assert env.fallback == [["--no-index", "--no-deps", str(wheel)]]
    probe_import = subprocess.run([env.python, "-c", "import attnlens_fallback_probe as p; print(p.VERSION)"],
                                  capture_output=True, text=True)
    assert probe_import.stdout.strip() == "1.0"  # installed by the fallback into the tool's venv
    stamp = envs.env_dir("probe") / envs.STAMP
    written = stamp.stat().st_mtime_ns
    assert envs.ensure_env("probe") == env and stamp.stat().st_mtime_ns == written  # recorded once, not redone


@pytest.mark.browser
def test_a_view_drawn_in_shadow_roots_and_opened_by_a_click_renders(tmp_path):
    """LIT's pattern: web components draw inside shadow roots, and its Attention module starts collapsed."""
    from attnlens.benchmarks.tools.render import render

    define = (
        "<script>customElements.define('%s', class extends HTMLElement { connectedCallback() {"
        " this.attachShadow({mode: 'open'}).innerHTML = `%s`; %s } });</script>"
    )
    text = tmp_path / "text.html"
    text.write_text("<!doctype html><text-view></text-view>" + define % ("text-view", "<p>attention</p>", ""))
    collapsed = tmp_path / "collapsed.html"
    collapsed.write_text("<!doctype html><collapsed-view></collapsed-view>" + define % (
        "collapsed-view", "<div class=title style='width:80px;height:20px;background:#ccc'></div>",
        "const root = this.shadowRoot; root.querySelector('.title').onclick = () => root.innerHTML +="
        " '<svg width=40 height=40><line x1=0 y1=0 x2=40 y2=40 stroke=black /></svg>';",
    ))
    shown = render(text, tmp_path / "text.png", budget_s=30)
    assert shown["renders"] is True, shown  # the text is only in a shadow root: document.body.innerText is empty
    closed = render(collapsed, tmp_path / "closed.png", budget_s=30)
    assert closed["renders"] is False and "the page shows nothing" in closed["render_error"]
    opened = render(collapsed, tmp_path / "opened.png", budget_s=30, clicks=["collapsed-view .title"])
    assert opened["renders"] is True, opened  # the click (through the shadow root) drew the SVG
    missing = render(collapsed, tmp_path / "missing.png", budget_s=5, clicks=["collapsed-view .no-such-element"])
    assert missing["renders"] is False and "could not click 'collapsed-view .no-such-element'" in missing["render_error"]


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["ecco", "lit"])
def test_the_ecco_and_lit_cells_run_where_their_venvs_are_installed(tool, tmp_path):
    """The real tools on the tiny GPT-2 (their venvs take minutes to install: skipped where absent)."""
    from attnlens.benchmarks.tools.envs import STAMP, env_dir

    if not (env_dir(tool) / STAMP).exists():
        pytest.skip(f"the {tool} venv is not installed (`attnlens bench tools --tools {tool}` installs it)")
    env = ensure_env(tool)
    assert env.error is None, env.error
    row = run_cell(tool, env, "tiny-gpt2", 64, Budget(), tmp_path, render=False)
    assert row["status"] == "ok", row
    output = Path(row["output"]).read_text()
    if tool == "ecco":  # the saliency view of one generated token over the 64 input tokens
        assert output.count('"token_id"') == 65 and "requirejs(" in output
    else:  # what LIT's Attention module fetches: the tokens and one layer's heads, each row a distribution
        [preds] = json.loads(output)
        heads = preds["layer_0/attention"]
        assert len(preds["tokens"]) == 64 and len(heads) == 4 and len(heads[0]) == 64
        assert all(abs(sum(query) - 1) < 1e-4 for head in heads for query in head)
        assert row["url"].startswith("http://127.0.0.1:") and "layout=attention" in row["url"]
