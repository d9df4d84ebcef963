"""Does a tool's HTML render in headless Chromium, how long does it take, and what does it show?

The page is opened from disk with the network as it is here (PyPI only): a visualisation that
loads its JavaScript from a CDN fails, which is what a user without internet access sees.
"Renders" means: the load event came within the budget, no script error, no console error, no
failed request, the page shows something (text, SVG or canvas), and its screenshot could be taken,
all within the budget. The time is until the load event; the screenshot is taken once the network
is idle and drawing has had 2 s. Every error is kept verbatim.

Each page gets its own Chromium in a child process that is killed at the budget: a page that keeps
the (software) GPU busy can otherwise hang a screenshot far past any Playwright timeout.

    python -m benchmarks.tools.render PAGE.html SHOT.png BUDGET_S   # prints one JSON line
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
VIEWPORT = {"width": 1100, "height": 720}
IDLE_MS = 5000  # after the load event, wait at most this long for the network to go idle
DRAW_MS = 2000  # then let asynchronous drawing (WebGL, React) finish before the screenshot
START_S = 10  # Chromium's own start-up, on top of the page's budget
SHOWS_SOMETHING = "() => !!document.body && (document.body.innerText.trim().length > 0 || !!document.querySelector('svg, canvas'))"


def _render_here(html: Path, screenshot: Path, budget_s: float) -> dict:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport=VIEWPORT)
        page.on("pageerror", lambda exc: errors.append(f"script error: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and errors.append(f"console error: {msg.text[:300]}"))
        page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url} ({req.failure})"))
        started = time.perf_counter()
        try:
            page.goto(html.resolve().as_uri(), wait_until="load", timeout=budget_s * 1000)
            seconds = time.perf_counter() - started
            try:
                page.wait_for_load_state("networkidle", timeout=IDLE_MS)
            except PlaywrightError:
                errors.append(f"network not idle {IDLE_MS / 1000:.0f} s after the load event")
            page.wait_for_timeout(DRAW_MS)
            if not page.evaluate(SHOWS_SOMETHING):
                errors.append("the page shows nothing (no text, SVG or canvas)")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            left_ms = max(1000, (budget_s - (time.perf_counter() - started)) * 1000)  # the budget covers it all
            page.screenshot(path=str(screenshot), timeout=left_ms)
        except PlaywrightError as exc:
            return {"renders": False, "render_s": None, "render_error": "; ".join([str(exc).splitlines()[0], *errors])}
        finally:
            browser.close()
    return {"renders": not errors, "render_s": round(seconds, 2), "render_error": "; ".join(errors) or None}


def render(html: Path, screenshot: Path, budget_s: float) -> dict:
    """Open `html` in a fresh headless Chromium (child process, killed at the budget) and screenshot it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "attnlens.benchmarks.tools.render", str(html), str(screenshot), str(budget_s)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=budget_s + START_S)
    except subprocess.TimeoutExpired:
        for child in [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        proc.communicate()
        return {"renders": False, "render_s": None, "render_error": f"Chromium still busy after {budget_s:g} s: stopped"}
    try:
        return json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        return {"renders": False, "render_s": None, "render_error": f"the Chromium driver failed: {last}"}


if __name__ == "__main__":
    print(json.dumps(_render_here(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]))))
